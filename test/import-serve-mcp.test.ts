/**
 * Seed 001 through `verdict serve` (issue 21): the seed's own XAccessPolicy objects and Authorino
 * AuthConfig are served by two real `verdict serve` processes (one per backend, as two routes with
 * their own ext_authz policy), and a real MCP SDK client reaches server-everything (local) and an
 * SDK wiki server (remote) through an Envoy stand-in that sends one gRPC Check per request
 * (test/fixtures/ext-authz-front.ts). Then the AuthConfig's allow-list is cut on disk and the
 * running sidecar denies gateway-api within seconds, with no restart.
 *
 * What ext_authz cannot do, the gateway does: Envoy's ext_authz sees requests only, so `tools/list`
 * through the sidecar returns the upstream's full list; the gateway (import-mcp-e2e.test.ts)
 * filters it. Calls are decided the same way in both.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import type { Server as HttpServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
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
import { type ExtAuthzFront, startExtAuthzFront } from './fixtures/ext-authz-front.js'
import { APPROVED, LOCAL_POLICY, remotePolicy } from './fixtures/seed001-resources.js'

const found = findOpa()
const OPA = found.bin
if (found.why !== undefined)
  console.warn(
    `[import serve] SKIPPED seed 001 through verdict serve (its AuthConfig holds Rego): ${found.why}`,
  )
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(ROOT, 'packages/cli/bin/verdict.js')

let dir: string
let everything: Awaited<ReturnType<typeof startEverything>> | undefined
const servers: HttpServer[] = []
const sidecars: ChildProcess[] = []
const fronts: ExtAuthzFront[] = []
const clients: Client[] = []
let remoteFile: string
let local: ExtAuthzFront
let remote: ExtAuthzFront

/** Start `verdict serve` on a policy file; resolves with its gRPC address. */
function serve(policy: string): Promise<string> {
  const proc = spawn(
    process.execPath,
    [BIN, 'serve', '--policy', policy, '--grpc', '127.0.0.1:0', '--metrics', 'off', '--json'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OPA_BIN: OPA } },
  )
  sidecars.push(proc)
  return new Promise<string>((resolve, reject) => {
    let buf = ''
    let err = ''
    const timer = setTimeout(() => reject(new Error(`verdict serve did not start: ${err}`)), 30_000)
    proc.stderr!.on('data', (c: Buffer) => {
      err += c.toString()
    })
    proc.stdout!.on('data', (c: Buffer) => {
      buf += c.toString()
      const lines = buf.split('\n')
      buf = lines.pop() ?? ''
      for (const line of lines) {
        if (!line.startsWith('{')) continue
        const l = JSON.parse(line) as { msg?: string; grpc?: string }
        if (l.msg === 'listening' && l.grpc) {
          clearTimeout(timer)
          resolve(l.grpc)
        }
      }
    })
  })
}

async function client(front: ExtAuthzFront, principal: string): Promise<Client> {
  const c = await connectAs(`${front.url}/mcp`, principal)
  clients.push(c)
  return c
}

describe.skipIf(OPA === undefined)('seed 001 through verdict serve, real MCP client', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'verdict-import-serve-'))
    const localFile = join(dir, 'local.yaml')
    remoteFile = join(dir, 'remote.yaml')
    await writeFile(localFile, LOCAL_POLICY)
    await writeFile(remoteFile, remotePolicy(APPROVED))
    const wiki = serveSessions(createWikiServer)
    servers.push(wiki)
    const [ev, wikiUrl, localGrpc, remoteGrpc] = await Promise.all([
      startEverything(),
      listen(wiki),
      serve(localFile),
      serve(remoteFile),
    ])
    everything = ev
    const principalHeader = 'x-verdict-principal'
    local = await startExtAuthzFront({ upstream: new URL(ev.url).origin, authz: localGrpc, principalHeader })
    remote = await startExtAuthzFront({ upstream: wikiUrl, authz: remoteGrpc, principalHeader })
    fronts.push(local, remote)
  }, 60_000)

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})))
    await Promise.all(fronts.map((f) => f.close()))
    for (const p of sidecars) p.kill('SIGTERM')
    await Promise.all(servers.map(closeServer))
    await everything?.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('local backend (server-everything): InlineTools decided by the sidecar', async () => {
    const before = { ...local.counts }
    const a = await client(local, AGENT_A)
    const b = await client(local, AGENT_B)
    const listA = (await a.listTools()).tools.map((t) => t.name)
    expect({
      'agent-a tools/list has get-sum and echo': listA.includes('get-sum') && listA.includes('echo'),
      'agent-a get-sum': await callTool(a, 'get-sum', { a: 2, b: 3 }),
      'agent-a echo': await callTool(a, 'echo', { message: 'hello' }),
      'agent-a Get-Sum (names are exact)': await callTool(a, 'Get-Sum', { a: 2, b: 3 }),
      'agent-b get-sum': await callTool(b, 'get-sum', { a: 2, b: 3 }),
    }).toEqual({
      'agent-a tools/list has get-sum and echo': true,
      'agent-a get-sum': expect.stringContaining('5'),
      'agent-a echo': 'denied:403',
      'agent-a Get-Sum (names are exact)': 'denied:403',
      'agent-b get-sum': 'denied:403',
    })
    // Every request went through a Check, and the sidecar both allowed and denied.
    expect(local.counts.checks - before.checks).toBeGreaterThanOrEqual(5)
    expect(local.counts.allowed - before.allowed).toBeLessThan(local.counts.checks - before.checks)
  })

  it('an unknown caller may use the base protocol (v0alpha0) but call no tool', async () => {
    const intruder = await client(local, 'spiffe://cluster.local/ns/agents/sa/intruder')
    expect((await intruder.listTools()).tools.length).toBeGreaterThan(0)
    expect(await callTool(intruder, 'get-sum', { a: 2, b: 3 })).toBe('denied:403')
  })

  it('remote backend: ExternalAuth to the AuthConfig Rego, then the allow-list is cut on disk', async () => {
    const a = await client(remote, AGENT_A)
    const ask = (repo: string) => callTool(a, 'ask_question', { repoName: repo, question: 'what?' })
    expect({
      'read_wiki_structure kube-agentic-networking': await callTool(a, 'read_wiki_structure', {
        repoName: APPROVED[0],
      }),
      'ask_question gateway-api': await ask(APPROVED[1]!),
      'ask_question kubernetes/kubernetes': await ask('kubernetes/kubernetes'),
      'read_wiki_structure cncf/toc': await callTool(a, 'read_wiki_structure', { repoName: 'cncf/toc' }),
      'ask_question without repoName': await callTool(a, 'ask_question', { question: 'anything' }),
    }).toEqual({
      'read_wiki_structure kube-agentic-networking': `read_wiki_structure:${APPROVED[0]}`,
      'ask_question gateway-api': `ask_question:${APPROVED[1]}`,
      'ask_question kubernetes/kubernetes': 'denied:403',
      'read_wiki_structure cncf/toc': 'denied:403',
      'ask_question without repoName': 'denied:403',
    })
    await writeFile(remoteFile, remotePolicy([APPROVED[0]!]))
    const deadline = Date.now() + 10_000
    let last = ''
    while (Date.now() < deadline) {
      last = await ask(APPROVED[1]!)
      if (last === 'denied:403') break
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(last, 'gateway-api denied within seconds of the AuthConfig edit').toBe('denied:403')
    expect(await ask(APPROVED[0]!)).toBe(`ask_question:${APPROVED[0]}`)
  })
})
