/**
 * The gateway's mutual-TLS principal: real HTTPS on loopback with the fixture certificates of
 * `testing/tls/` (see its README), no principal header unless a test configures one.
 */
import { readFileSync } from 'node:fs'
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http'
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https'
import type { TLSSocket } from 'node:tls'
import { createEngine, type Engine } from '@verdict/core'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createMcpEvaluator } from './mcp-evaluator.js'
import { createMcpGateway, type McpGateway, type McpGatewayOptions } from './mcp-gateway.js'
import {
  AGENT_A,
  AGENT_B,
  AGENTS_POLICY,
  closeServer,
  createWikiServer,
  listen,
  serveSessions,
} from './testing/mcp-peers.js'

const pem = (name: string): Buffer => readFileSync(new URL(`./testing/tls/${name}.pem`, import.meta.url))
const ca = pem('ca')
const identity = (name: string) => ({ cert: pem(name), key: pem(`${name}-key`) })
const agentA = identity('agent-a')
const agentB = identity('agent-b')
/** Self-signed, not from the CA, URI SAN = AGENT_B. */
const rogue = identity('rogue')
/** From the CA; no URI SAN, a DNS SAN whose value spells `x, URI:<AGENT_B>, DNS:y`. */
const smuggled = identity('smuggled')
/** From the CA; two URI SANs, AGENT_A then AGENT_B. */
const twoUris = identity('two-uris')
/** From the CA; URI SAN `<AGENT_B>,x` (Node prints it JSON-quoted). */
const commaUri = identity('comma-uri')
type Identity = typeof agentA

let engine: Engine
let upstream: HttpServer
let upstreamUrl: string
const servers: HttpServer[] = []
const gateways: McpGateway[] = []
/** `source.principal` of every input the engine decided. */
const principals: Array<string | undefined> = []
/** What the TLS layer saw of each request's peer, before the gateway. */
const peers: Array<{ authorized: boolean; san: string | undefined }> = []

/** Serve the gateway over HTTPS with `requestCert` and no `rejectUnauthorized`; returns its URL. */
async function startTls(options: Partial<McpGatewayOptions> = {}): Promise<string> {
  const recording: Engine = {
    decide(input, o) {
      principals.push((input as { source?: { principal?: string } }).source?.principal)
      return engine.decide(input, o)
    },
    update: (p) => engine.update(p),
    get info() {
      return engine.info
    },
    close: () => {},
  }
  const gw = createMcpGateway({ engine: recording, upstream: upstreamUrl, ...options })
  gateways.push(gw)
  const server = createHttpsServer(
    { key: pem('server-key'), cert: pem('server'), ca, requestCert: true, rejectUnauthorized: false },
    (req: IncomingMessage, res: ServerResponse) => {
      const socket = req.socket as TLSSocket
      peers.push({ authorized: socket.authorized, san: socket.getPeerCertificate().subjectaltname })
      gw.node(req, res)
    },
  )
  servers.push(server)
  return `${(await listen(server)).replace('http:', 'https:')}/mcp`
}

interface Reply {
  status: number
  session: string | undefined
  json: unknown
}

/** One JSON-RPC POST over a new TLS connection, presenting `who`'s certificate (or none). */
function post(
  url: string,
  who: Identity | undefined,
  message: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: 'POST',
        agent: false,
        ca,
        ...(who ?? {}),
        headers: {
          accept: 'application/json, text/event-stream',
          'content-type': 'application/json',
          ...headers,
        },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          text += c
        })
        res.on('end', () => {
          const sid = res.headers['mcp-session-id']
          let json: unknown = text
          try {
            json = JSON.parse(text)
          } catch {}
          resolve({ status: res.statusCode ?? 0, session: typeof sid === 'string' ? sid : undefined, json })
        })
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(JSON.stringify(message))
  })
}

const init = {
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
}
const call = (name: string) => ({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name, arguments: { repoName: 'x/y' } },
})
/** The upstream's answer to `call(name)`. */
const answered = (name: string) => ({
  jsonrpc: '2.0',
  id: 1,
  result: { content: [{ type: 'text', text: `${name}:x/y` }] },
})
/** The gateway's `hidden` denial of `call(name)`. */
const hiddenTool = (name: string) => ({
  jsonrpc: '2.0',
  id: 1,
  error: { code: -32602, message: `Unknown tool: ${name}` },
})
const hiddenInit = { jsonrpc: '2.0', id: 0, error: { code: -32601, message: 'Method not found: initialize' } }

/** Initialize as `who` (must be allowed), then call `tool` in that session. */
async function callIn(
  url: string,
  who: Identity | undefined,
  tool: string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const opened = await post(url, who, init, headers)
  expect(opened.status).toBe(200)
  expect(opened.session).toBeTruthy()
  return post(url, who, call(tool), {
    ...headers,
    'mcp-session-id': opened.session!,
    'mcp-protocol-version': '2025-06-18',
  })
}

beforeAll(async () => {
  engine = await createEngine(AGENTS_POLICY, { evaluators: [createMcpEvaluator()] })
  upstream = serveSessions(createWikiServer, { json: true })
  upstreamUrl = `${await listen(upstream)}/mcp`
})

beforeEach(() => {
  principals.length = 0
  peers.length = 0
})

afterAll(async () => {
  for (const g of gateways) g.close()
  await Promise.all([...servers, upstream].map(closeServer))
  engine.close()
})

describe('mutual TLS', () => {
  let url: string
  beforeAll(async () => {
    url = await startTls()
  })

  it("agent A's certificate: read_wiki_structure reaches the upstream, ask_question is denied", async () => {
    const read = await callIn(url, agentA, 'read_wiki_structure')
    expect(read.status).toBe(200)
    expect(read.json).toEqual(answered('read_wiki_structure'))
    const ask = await callIn(url, agentA, 'ask_question')
    expect(ask.status).toBe(400)
    expect(ask.json).toEqual(hiddenTool('ask_question'))
    expect(new Set(principals)).toEqual(new Set([AGENT_A]))
    expect(peers.every((p) => p.authorized)).toBe(true)
  })

  it("agent B's certificate: ask_question is allowed", async () => {
    const ask = await callIn(url, agentB, 'ask_question')
    expect(ask.status).toBe(200)
    expect(ask.json).toEqual(answered('ask_question'))
    expect(new Set(principals)).toEqual(new Set([AGENT_B]))
  })

  it('no client certificate: no principal, everything denied', async () => {
    const opened = await post(url, undefined, init)
    expect(opened.status).toBe(400)
    expect(opened.session).toBeUndefined()
    expect(opened.json).toEqual(hiddenInit)
    const read = await post(url, undefined, call('read_wiki_structure'))
    expect(read.status).toBe(400)
    expect(read.json).toEqual(hiddenTool('read_wiki_structure'))
    expect(principals).toEqual([undefined, undefined])
    expect(peers).toEqual([
      { authorized: false, san: undefined },
      { authorized: false, san: undefined },
    ])
  })

  it('a self-signed certificate claiming agent B is presented but not trusted: no principal, denied', async () => {
    const opened = await post(url, rogue, init)
    expect(opened.status).toBe(400)
    expect(opened.json).toEqual(hiddenInit)
    const ask = await post(url, rogue, call('ask_question'))
    expect(ask.status).toBe(400)
    expect(ask.json).toEqual(hiddenTool('ask_question'))
    expect(principals).toEqual([undefined, undefined])
    // The claim did reach the server; only the failed verification keeps it from counting.
    expect(peers).toEqual([
      { authorized: false, san: `URI:${AGENT_B}` },
      { authorized: false, san: `URI:${AGENT_B}` },
    ])
  })

  it('a principal header is ignored over mTLS when the gateway has no principalHeader', async () => {
    const ask = await callIn(url, agentA, 'ask_question', { 'x-verdict-principal': AGENT_B })
    expect(ask.status).toBe(400)
    expect(ask.json).toEqual(hiddenTool('ask_question'))
    expect(new Set(principals)).toEqual(new Set([AGENT_A]))
    // Without a certificate the header gives no principal either.
    const anon = await post(url, undefined, init, { 'x-verdict-principal': AGENT_B })
    expect(anon.status).toBe(400)
    expect(anon.json).toEqual(hiddenInit)
  })

  it('a verified certificate wins over a configured principal header', async () => {
    const withHeader = await startTls({ principalHeader: 'x-verdict-principal' })
    const ask = await callIn(withHeader, agentA, 'ask_question', { 'x-verdict-principal': AGENT_B })
    expect(ask.status).toBe(400)
    expect(ask.json).toEqual(hiddenTool('ask_question'))
    // The header does work on this gateway when no verified certificate is presented.
    const viaHeader = await callIn(withHeader, undefined, 'ask_question', { 'x-verdict-principal': AGENT_B })
    expect(viaHeader.status).toBe(200)
    expect(viaHeader.json).toEqual(answered('ask_question'))
  })

  it('a session opened with one certificate cannot be used with another', async () => {
    const opened = await post(url, agentA, init)
    expect(opened.status).toBe(200)
    const stolen = await post(url, agentB, call('read_wiki_structure'), {
      'mcp-session-id': opened.session!,
      'mcp-protocol-version': '2025-06-18',
    })
    expect(stolen.status).toBe(403)
  })

  it('a DNS SAN spelling ", URI:<agent B>, " in its value gives no principal', async () => {
    const opened = await post(url, smuggled, init)
    expect(opened.status).toBe(400)
    expect(opened.json).toEqual(hiddenInit)
    expect(principals).toEqual([undefined])
    expect(peers).toEqual([{ authorized: true, san: expect.stringMatching(/^DNS:"x\\u002c URI:spiffe:/) }])
  })

  it('two URI SANs are ambiguous: no principal', async () => {
    const opened = await post(url, twoUris, init)
    expect(opened.status).toBe(400)
    expect(opened.json).toEqual(hiddenInit)
    expect(principals).toEqual([undefined])
    expect(peers).toEqual([{ authorized: true, san: `URI:${AGENT_A}, URI:${AGENT_B}` }])
  })

  it('a URI SAN Node prints quoted is decoded, and is not agent B', async () => {
    const opened = await post(url, commaUri, init)
    expect(opened.status).toBe(400)
    expect(principals).toEqual([`${AGENT_B},x`])
    expect(peers).toEqual([{ authorized: true, san: `URI:"${AGENT_B}\\u002cx"` }])
  })
})
