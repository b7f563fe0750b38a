/**
 * Seed 001 end to end from the seed's own resources (issue 21): the XAccessPolicy objects and the
 * Authorino AuthConfig, loaded through `@verdict/import`, decide real MCP traffic from the SDK
 * client to server-everything (local) and an SDK wiki server (remote) behind verdict's gateway;
 * then the AuthConfig's Rego allow-list is cut on disk, as in the seed's "dynamic policy updates",
 * and gateway-api is denied within seconds, with no restart. The same files behind
 * `verdict serve` are in import-serve-mcp.test.ts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server as HttpServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { createCelEvaluator } from '@verdict/cel-adapter'
import { createEngineFromFile, type Engine } from '@verdict/core'
import { installPolicyImporter } from '@verdict/import'
import { createMcpEvaluator, createMcpGateway, type McpGateway } from '@verdict/mcp'
import { createRegoEvaluator } from '@verdict/rego-adapter'
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
import { findOpa } from '../packages/rego-adapter/src/testing/find-opa.js'
import { APPROVED, LOCAL_POLICY, remotePolicy } from './fixtures/seed001-resources.js'

const found = findOpa()
const OPA = found.bin
if (found.why !== undefined)
  console.warn(
    `[import e2e] SKIPPED seed 001 from its own resources (its AuthConfig holds Rego): ${found.why}`,
  )

let dir: string
let everything: Awaited<ReturnType<typeof startEverything>> | undefined
const servers: HttpServer[] = []
const gateways: McpGateway[] = []
const engines: Engine[] = []
const clients: Client[] = []
let uninstall: (() => void) | undefined
let localUrl: string
let remoteUrl: string
let localFile: string
let remoteFile: string
let reloads = 0
const evaluators = () => [createMcpEvaluator(), createCelEvaluator(), createRegoEvaluator()]

async function gateway(
  upstream: string,
  file: string,
  extra: Partial<Parameters<typeof createMcpGateway>[0]> = {},
) {
  const engine = await createEngineFromFile(file, { evaluators: evaluators() })
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

describe.skipIf(OPA === undefined)('seed 001 from its own resources, real MCP traffic', () => {
  beforeAll(async () => {
    uninstall = installPolicyImporter({ ...(OPA ? { opa: OPA } : {}) })
    dir = await mkdtemp(join(tmpdir(), 'verdict-import-e2e-'))
    everything = await startEverything()
    const wiki = serveSessions(createWikiServer)
    servers.push(wiki)
    const wikiUrl = `${await listen(wiki)}/mcp`
    localFile = join(dir, 'local.yaml')
    remoteFile = join(dir, 'remote.yaml')
    await writeFile(localFile, LOCAL_POLICY)
    await writeFile(remoteFile, remotePolicy(APPROVED))
    localUrl = await gateway(everything.url, localFile)
    remoteUrl = await gateway(wikiUrl, remoteFile, {
      onPolicyReload: () => {
        reloads++
      },
    })
  })

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})))
    for (const g of gateways) g.close()
    for (const e of engines) e.close()
    await Promise.all(servers.map(closeServer))
    await everything?.stop()
    uninstall?.()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('local backend (server-everything): InlineTools', async () => {
    const a = await client(localUrl, AGENT_A)
    const b = await client(localUrl, AGENT_B)
    expect({
      'agent-a tools/list': (await a.listTools()).tools.map((t) => t.name),
      'agent-a get-sum': await callTool(a, 'get-sum', { a: 2, b: 3 }),
      'agent-a echo': await callTool(a, 'echo', { message: 'hello' }),
      'agent-b tools/list': (await b.listTools()).tools.map((t) => t.name),
      'agent-b get-sum': await callTool(b, 'get-sum', { a: 2, b: 3 }),
    }).toEqual({
      'agent-a tools/list': ['get-sum'],
      'agent-a get-sum': expect.stringContaining('5'),
      'agent-a echo': 'denied:403',
      'agent-b tools/list': [],
      'agent-b get-sum': 'denied:403',
    })
  })

  it('remote backend: ExternalAuth to the AuthConfig Rego, then the allow-list is cut on disk', async () => {
    const a = await client(remoteUrl, AGENT_A)
    const ask = (repo: string) => callTool(a, 'ask_question', { repoName: repo, question: 'what?' })
    expect({
      'tools/list': Array.isArray((await a.listTools()).tools),
      'read_wiki_structure kube-agentic-networking': await callTool(a, 'read_wiki_structure', {
        repoName: APPROVED[0],
      }),
      'ask_question kube-agentic-networking': await ask(APPROVED[0]!),
      'read_wiki_structure gateway-api': await callTool(a, 'read_wiki_structure', { repoName: APPROVED[1] }),
      'ask_question kubernetes/kubernetes': await ask('kubernetes/kubernetes'),
      'read_wiki_structure cncf/toc': await callTool(a, 'read_wiki_structure', { repoName: 'cncf/toc' }),
    }).toEqual({
      'tools/list': true,
      'read_wiki_structure kube-agentic-networking': `read_wiki_structure:${APPROVED[0]}`,
      'ask_question kube-agentic-networking': `ask_question:${APPROVED[0]}`,
      'read_wiki_structure gateway-api': `read_wiki_structure:${APPROVED[1]}`,
      'ask_question kubernetes/kubernetes': 'denied:403',
      'read_wiki_structure cncf/toc': 'denied:403',
    })
    const before = reloads
    await writeFile(remoteFile, remotePolicy([APPROVED[0]!]))
    const deadline = Date.now() + 5000
    let last = ''
    while (Date.now() < deadline) {
      last = await callTool(a, 'read_wiki_structure', { repoName: APPROVED[1] })
      if (last === 'denied:403') break
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(last, 'gateway-api denied within seconds of the AuthConfig edit').toBe('denied:403')
    expect(reloads).toBeGreaterThan(before)
    expect(await ask(APPROVED[0]!)).toBe(`ask_question:${APPROVED[0]}`)
    expect(await callTool(await client(localUrl, AGENT_A), 'get-sum', { a: 2, b: 3 })).toContain('5')
  })
})
