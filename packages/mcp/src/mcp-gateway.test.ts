import { createServer, type Server as HttpServer } from 'node:http'
import { connect } from 'node:net'
import { createEngine, type Engine, type Evaluator, ok, VerdictUsageError } from '@verdict/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMcpEvaluator } from './mcp-evaluator.js'
import { createMcpGateway, type McpGateway } from './mcp-gateway.js'
import {
  AGENT_A,
  AGENT_B,
  AGENTS_POLICY,
  callTool,
  closeServer,
  connectAs,
  createWikiServer,
  listen,
  serveSessions,
} from './testing/mcp-peers.js'

let engine: Engine
let upstream: HttpServer
let upstreamUrl: string
const servers: HttpServer[] = []
const gateways: McpGateway[] = []

async function start(options: Partial<Parameters<typeof createMcpGateway>[0]> = {}): Promise<string> {
  const gw = createMcpGateway({
    engine,
    upstream: upstreamUrl,
    principalHeader: 'x-verdict-principal',
    ...options,
  })
  gateways.push(gw)
  const s = createServer(gw.node)
  servers.push(s)
  return `${await listen(s)}/mcp`
}

const init = {
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
}
const ACCEPT = { accept: 'application/json, text/event-stream', 'content-type': 'application/json' }

beforeAll(async () => {
  engine = await createEngine(AGENTS_POLICY, { evaluators: [createMcpEvaluator()] })
  upstream = serveSessions(createWikiServer, { json: true })
  upstreamUrl = `${await listen(upstream)}/mcp`
})

afterAll(async () => {
  for (const g of gateways) g.close()
  await Promise.all([...servers, upstream].map(closeServer))
  engine.close()
})

describe('createMcpGateway', () => {
  it('a bad upstream is a VerdictUsageError naming the option, not a TypeError', () => {
    for (const upstream of ['not a url', '/mcp', 'ftp://127.0.0.1/mcp', 42, undefined, null]) {
      let err: unknown
      try {
        createMcpGateway({ engine, upstream: upstream as string })
      } catch (e) {
        err = e
      }
      expect(err, String(upstream)).toBeInstanceOf(VerdictUsageError)
      expect((err as VerdictUsageError).option).toBe('upstream')
      expect((err as VerdictUsageError).code).toBe('invalid_option')
    }
    // A URL object and an https URL are fine.
    expect(() => createMcpGateway({ engine, upstream: new URL(upstreamUrl) })).not.toThrow()
    expect(() => createMcpGateway({ engine, upstream: 'https://mcp.example/mcp' })).not.toThrow()
  })

  it('filters JSON (non-SSE) list results and answers denials in the policy format', async () => {
    const url = await start()
    const a = await connectAs(url, AGENT_A)
    expect((await a.listTools()).tools.map((t) => t.name)).toEqual(['read_wiki_structure'])
    expect(await callTool(a, 'read_wiki_structure', { repoName: 'x/y' })).toBe('read_wiki_structure:x/y')
    // agentgateway's format is HTTP 400, which the SDK client reports as a transport error.
    expect(await callTool(a, 'ask_question', { repoName: 'x/y' })).toBe('denied:400')
    await a.close()
  })

  it('unfiltered when asked, and the principal header is ignored unless configured', async () => {
    const open = await start({ filterLists: false })
    const b = await connectAs(open, AGENT_B)
    expect((await b.listTools()).tools).toHaveLength(2)
    await b.close()
    const untrusted = await start({ principalHeader: undefined as never })
    const r = await fetch(untrusted, {
      method: 'POST',
      headers: { ...ACCEPT, 'x-verdict-principal': AGENT_A },
      body: JSON.stringify(init),
    })
    expect(r.status).toBe(400)
    expect(((await r.json()) as { error: { code: number } }).error.code).toBe(-32601)
  })

  it('refuses other methods, large bodies, invalid UTF-8, smuggled and mislabelled bodies', async () => {
    const url = await start({ maxBodyBytes: 1024 })
    const h = { ...ACCEPT, 'x-verdict-principal': AGENT_A }
    expect((await fetch(url, { method: 'PUT', headers: h, body: '{}' })).status).toBe(405)
    expect((await fetch(url, { method: 'POST', headers: h, body: 'x'.repeat(2048) })).status).toBe(413)
    expect(
      (await fetch(url, { method: 'POST', headers: h, body: new Uint8Array([0x7b, 0xff, 0x7d]) })).status,
    ).toBe(400)
    const dup =
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_wiki_structure","name":"ask_question"}}'
    const smuggled = await fetch(url, { method: 'POST', headers: h, body: dup })
    expect(smuggled.status).toBe(400)
    expect(await smuggled.text()).not.toContain('ask_question')
    const plain = await fetch(url, {
      method: 'POST',
      headers: { ...h, 'content-type': 'text/plain' },
      body: JSON.stringify(init),
    })
    expect(plain.status).toBe(415)
  })

  it("a client's x-envoy-auth-partial-body does not make its body look cut by Envoy", async () => {
    const url = await start()
    const h = { ...ACCEPT, 'x-verdict-principal': AGENT_A, 'x-envoy-auth-partial-body': 'true' }
    const r = await fetch(url, { method: 'POST', headers: h, body: JSON.stringify(init) })
    expect(r.status).toBe(200)
    await r.body?.cancel()
  })

  it('does not resume streams while it filters lists (a replay would carry unfiltered results)', async () => {
    const seen: Array<string | undefined> = []
    const recorder = createServer((req, res) => {
      seen.push(req.headers['last-event-id'] as string | undefined)
      res.writeHead(200, { 'content-type': 'text/event-stream' }).end()
    })
    servers.push(recorder)
    const recorderUrl = `${await listen(recorder)}/mcp`
    const h = { accept: 'text/event-stream', 'x-verdict-principal': AGENT_A, 'last-event-id': 'stream-1_3' }
    const open = await createEngine({ rules: [{ id: 'all', action: 'allow', match: { always: true } }] })
    for (const filterLists of [true, false]) {
      const gw = await start({ engine: open, upstream: recorderUrl, filterLists })
      const r = await fetch(gw, { method: 'GET', headers: h })
      await r.body?.cancel()
      expect(r.status).toBe(200)
    }
    expect(seen).toEqual([undefined, 'stream-1_3'])
    open.close()
  })

  it('binds a session to the principal that opened it, and forwards GET and DELETE', async () => {
    const url = await start()
    const opened = await fetch(url, {
      method: 'POST',
      headers: { ...ACCEPT, 'x-verdict-principal': AGENT_A },
      body: JSON.stringify(init),
    })
    expect(opened.status).toBe(200)
    const sid = opened.headers.get('mcp-session-id')!
    expect(sid).toBeTruthy()
    await opened.text()
    const list = { jsonrpc: '2.0', id: 1, method: 'tools/list' }
    const stolen = await fetch(url, {
      method: 'POST',
      headers: {
        ...ACCEPT,
        'x-verdict-principal': AGENT_B,
        'mcp-session-id': sid,
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify(list),
    })
    expect(stolen.status).toBe(403)
    const del = await fetch(url, {
      method: 'DELETE',
      headers: {
        'x-verdict-principal': AGENT_A,
        'mcp-session-id': sid,
        'mcp-protocol-version': '2025-06-18',
      },
    })
    expect(del.status).toBe(200)
    const gone = await fetch(url, {
      method: 'POST',
      headers: { ...ACCEPT, 'x-verdict-principal': AGENT_A, 'mcp-session-id': sid },
      body: JSON.stringify(list),
    })
    expect(gone.status).toBe(404)
  })

  it('the Web handler works on its own; an unreachable upstream is 502', async () => {
    const gw = createMcpGateway({ engine, upstream: 'http://127.0.0.1:1/mcp', principal: () => AGENT_A })
    const r = await gw.fetch(
      new Request('http://gw.test/mcp', { method: 'POST', headers: ACCEPT, body: JSON.stringify(init) }),
    )
    expect(r.status).toBe(502)
    const denied = await gw.fetch(
      new Request('http://gw.test/mcp', {
        method: 'POST',
        headers: ACCEPT,
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 'q',
          method: 'tools/call',
          params: { name: 'ask_question' },
        }),
      }),
    )
    expect(denied.status).toBe(400)
    expect(await denied.json()).toEqual({
      jsonrpc: '2.0',
      id: 'q',
      error: { code: -32602, message: 'Unknown tool: ask_question' },
    })
  })

  it('every field line reaches the input and the upstream: repeated authorization and x-role lines', async () => {
    const seen: Array<Readonly<Record<string, string>>> = []
    const capture: Evaluator = {
      kind: 'capture',
      compile: () => ({
        ok: true,
        program: {
          evaluate: (ctx) => {
            seen.push(ctx.input.headers)
            return ok(true)
          },
        },
      }),
    }
    const captureEngine = await createEngine(
      { rules: [{ id: 'c', action: 'allow', capture: {} }] },
      {
        evaluators: [capture],
      },
    )
    const forwarded: string[][] = []
    const echo = createServer((req, res) => {
      forwarded.push(req.rawHeaders)
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
    servers.push(echo)
    const url = new URL(await start({ engine: captureEngine, upstream: `${await listen(echo)}/mcp` }))
    /** One raw request (fetch would merge or refuse the repeated lines); resolves with the status. */
    const raw = (lines: string) =>
      new Promise<number>((resolve, reject) => {
        const socket = connect(Number(url.port), url.hostname, () =>
          socket.write(`GET /mcp HTTP/1.1\r\nHost: ${url.host}\r\n${lines}Connection: close\r\n\r\n`),
        )
        let text = ''
        socket.on('data', (d: Buffer) => {
          text += d.toString('latin1')
        })
        socket.on('error', reject)
        socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1])))
      })
    expect(
      await raw('Authorization: Bearer a\r\nauthorization: Bearer b\r\nX-Role: r1\r\nx-role: r2\r\n'),
    ).toBe(200)
    const h = seen.at(-1)!
    // Node's req.headers would say "Bearer a" and "r1, r2".
    expect(h.authorization).toBe('Bearer a,Bearer b')
    expect(h['x-role']).toBe('r1,r2')
    const up = forwarded.at(-1)!
    const upValue = (name: string) => up.filter((_, i) => i % 2 === 1 && up[i - 1]!.toLowerCase() === name)
    expect(upValue('authorization').join(', ')).toBe('Bearer a, Bearer b')
    // Two session ids: refused, not guessed.
    expect(await raw('Mcp-Session-Id: s1\r\nmcp-session-id: s2\r\n')).toBe(400)
    captureEngine.close()
  })
})
