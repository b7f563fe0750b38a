/**
 * Seed 001 end to end, real parts on loopback: server-everything (local tools) and an SDK-built
 * wiki server (remote tools) each behind verdict's MCP gateway, driven by the official SDK client
 * under two caller identities; then the allow-list is edited on disk while everything runs.
 *
 * server-everything 2026.8.31 names its tools `get-sum` and `echo` (as in seed 001's table), so
 * the table maps one to one.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server as HttpServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { createEngineFromFile, type Engine } from '@verdict/core'
import { createMcpEvaluator, createMcpGateway, type McpGateway } from '@verdict/mcp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  AGENT_A,
  AGENT_B,
  callTool,
  closeServer,
  connectAs,
  createWikiServer,
  listen,
  serveSessions,
  startEverything,
} from '../packages/mcp/src/testing/mcp-peers.js'

const APPROVED = ['kubernetes-sigs/kube-agentic-networking', 'kubernetes-sigs/gateway-api']

const localPolicy = `
name: seed-001-local
mcp: { denial: jsonrpc }
rules:
  - id: agent-a-local-tools
    action: allow
    mcp:
      source: { serviceAccount: { namespace: agents, name: agent-a } }
      tools: [get-sum]
      baseProtocol: MATCH
  - id: agent-b-no-local-tools
    action: allow
    mcp:
      source: { serviceAccount: { namespace: agents, name: agent-b } }
      tools: []
      baseProtocol: MATCH
`

const remotePolicy = (repos: readonly string[]) => `
name: seed-001-remote
mcp: { denial: jsonrpc }
rules:
  - id: agent-a-approved-repos
    action: allow
    mcp:
      source: { serviceAccount: { namespace: agents, name: agent-a } }
      tools: [read_wiki_structure, ask_question]
      baseProtocol: MATCH
      arguments:
        repoName: { in: [${repos.join(', ')}] }
  - id: agent-b-base-only
    action: allow
    mcp:
      source: { serviceAccount: { namespace: agents, name: agent-b } }
      baseProtocol: MATCH
      tools: []
`

let dir: string
let everything: Awaited<ReturnType<typeof startEverything>> | undefined
const servers: HttpServer[] = []
const gateways: McpGateway[] = []
const engines: Engine[] = []
const clients: Client[] = []
let localUrl: string
let remoteUrl: string
let remoteFile: string
const reloadErrors: unknown[] = []
let reloads = 0

async function gateway(
  upstream: string,
  file: string,
  extra: Partial<Parameters<typeof createMcpGateway>[0]> = {},
) {
  const engine = await createEngineFromFile(file, { evaluators: [createMcpEvaluator()] })
  engines.push(engine)
  const gw = createMcpGateway({
    engine,
    upstream,
    principalHeader: 'x-verdict-principal',
    policyFile: file,
    ...extra,
  })
  gateways.push(gw)
  const server = createServer(gw.node)
  servers.push(server)
  return `${await listen(server)}/mcp`
}

async function client(url: string, principal: string): Promise<Client> {
  const c = await connectAs(url, principal)
  clients.push(c)
  return c
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verdict-mcp-e2e-'))
  everything = await startEverything()
  const wiki = serveSessions(createWikiServer)
  servers.push(wiki)
  const wikiUrl = `${await listen(wiki)}/mcp`
  const localFile = join(dir, 'local.yaml')
  remoteFile = join(dir, 'remote.yaml')
  await writeFile(localFile, localPolicy)
  await writeFile(remoteFile, remotePolicy(APPROVED))
  localUrl = await gateway(everything.url, localFile)
  remoteUrl = await gateway(wikiUrl, remoteFile, {
    onPolicyReload: () => {
      reloads++
    },
    onPolicyError: (e) => reloadErrors.push(e),
  })
})

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})))
  for (const g of gateways) g.close()
  for (const e of engines) e.close()
  await Promise.all(servers.map(closeServer))
  await everything?.stop()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

describe('seed 001 through the gateway', () => {
  it('local server (server-everything): per-caller allow-lists, filtered lists', async () => {
    const a = await client(localUrl, AGENT_A)
    const b = await client(localUrl, AGENT_B)
    const everythingTools = (
      await connectAs(everything!.url, undefined).then(async (direct) => {
        clients.push(direct)
        return direct.listTools()
      })
    ).tools.map((t) => t.name)
    expect(everythingTools).toEqual(expect.arrayContaining(['get-sum', 'echo']))

    const table = {
      'agent-a tools/list': (await a.listTools()).tools.map((t) => t.name),
      'agent-a get-sum': await callTool(a, 'get-sum', { a: 2, b: 3 }),
      'agent-a echo': await callTool(a, 'echo', { message: 'hi' }),
      'agent-b tools/list': (await b.listTools()).tools.map((t) => t.name),
      'agent-b get-sum': await callTool(b, 'get-sum', { a: 2, b: 3 }),
    }
    expect(table).toEqual({
      'agent-a tools/list': ['get-sum'],
      'agent-a get-sum': expect.stringContaining('5'),
      'agent-a echo': 'denied:403',
      'agent-b tools/list': [],
      'agent-b get-sum': 'denied:403',
    })
  })

  it('remote server: only approved repositories, then the allow-list changes on disk', async () => {
    const a = await client(remoteUrl, AGENT_A)
    const b = await client(remoteUrl, AGENT_B)
    const ask = (c: Client, repo: string) =>
      callTool(c, 'ask_question', { repoName: repo, question: 'what?' })
    expect({
      'agent-a tools/list': (await a.listTools()).tools.map((t) => t.name),
      'agent-a read_wiki_structure kube-agentic-networking': await callTool(a, 'read_wiki_structure', {
        repoName: APPROVED[0],
      }),
      'agent-a ask_question gateway-api': await ask(a, APPROVED[1]!),
      'agent-a ask_question kubernetes/kubernetes': await ask(a, 'kubernetes/kubernetes'),
      'agent-a ask_question cncf/toc': await ask(a, 'cncf/toc'),
      'agent-b tools/list': (await b.listTools()).tools.map((t) => t.name),
      'agent-b ask_question gateway-api': await ask(b, APPROVED[1]!),
    }).toEqual({
      'agent-a tools/list': ['read_wiki_structure', 'ask_question'],
      'agent-a read_wiki_structure kube-agentic-networking': `read_wiki_structure:${APPROVED[0]}`,
      'agent-a ask_question gateway-api': `ask_question:${APPROVED[1]}`,
      'agent-a ask_question kubernetes/kubernetes': 'denied:403',
      'agent-a ask_question cncf/toc': 'denied:403',
      'agent-b tools/list': [],
      'agent-b ask_question gateway-api': 'denied:403',
    })

    // Edit the allow-list to one repository; the running gateway must deny gateway-api within 2 s.
    const before = reloads
    await writeFile(remoteFile, remotePolicy([APPROVED[0]!]))
    const deadline = Date.now() + 2000
    let last = ''
    while (Date.now() < deadline) {
      last = await ask(a, APPROVED[1]!)
      if (last === 'denied:403') break
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(last, 'gateway-api denied within 2 s of the edit').toBe('denied:403')
    expect(reloads).toBeGreaterThan(before)
    expect(await ask(a, APPROVED[0]!)).toBe(`ask_question:${APPROVED[0]}`)

    // An invalid edit is reported and the policy in force stays.
    const errorsBefore = reloadErrors.length
    await writeFile(
      remoteFile,
      `${remotePolicy(APPROVED)}\n  - id: broken\n    action: allow\n    mcp: { tools: nope }\n`,
    )
    const errDeadline = Date.now() + 2000
    while (reloadErrors.length === errorsBefore && Date.now() < errDeadline)
      await new Promise((r) => setTimeout(r, 50))
    expect(reloadErrors.length).toBeGreaterThan(errorsBefore)
    expect(String(reloadErrors.at(-1))).toContain('/rules/2/mcp/tools')
    expect(await ask(a, APPROVED[1]!)).toBe('denied:403')
    expect(await ask(a, APPROVED[0]!)).toBe(`ask_question:${APPROVED[0]}`)
  })
})
