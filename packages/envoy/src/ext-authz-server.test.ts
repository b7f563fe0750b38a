import net from 'node:net'
import { createEngine, type Evaluator, ok } from '@verdict/core'
import { afterEach, describe, expect, it } from 'vitest'
import { createCheckClient } from './check-client.js'
import { createExtAuthzServer, type ExtAuthzServer } from './ext-authz-server.js'
import { createTelemetry } from './telemetry.js'

/** A rule body that answers true after `ms` (or throws for `throw`), to hold checks in flight. */
const slow: Evaluator = {
  kind: 'slow',
  compile(config) {
    const ms = config as number | 'throw'
    return {
      ok: true,
      program: {
        evaluate: () => {
          if (ms === 'throw') throw new Error('boom')
          return new Promise((r) => setTimeout(() => r({ ok: true, value: true }), ms))
        },
      },
    }
  },
}

const request = (path = '/') => ({ attributes: { request: { http: { method: 'GET', path, headers: {} } } } })

let server: ExtAuthzServer | undefined
afterEach(async () => {
  await server?.stop()
  server = undefined
})

async function start(body: unknown, options: Record<string, unknown> = {}) {
  const lines: string[] = []
  const telemetry = createTelemetry({ write: (l) => lines.push(l), processMetrics: false })
  const engine = await createEngine(
    { timeoutMs: 5000, rules: [{ id: 'r', action: 'allow', slow: body }] },
    { evaluators: [slow], onDecision: telemetry.onDecision },
  )
  server = createExtAuthzServer({ engine, telemetry, grpc: { port: 0 }, http: { port: 0 }, ...options })
  const bound = await server.start()
  return { bound, lines, client: createCheckClient(bound.grpc!) }
}

describe('createExtAuthzServer failure handling', () => {
  it('denies with statusOnError when the engine does not answer in time', async () => {
    const { client } = await start(1000, { decisionTimeoutMs: 30, statusOnError: 503 })
    const res = await client.check(request())
    expect(res.status?.code).toBe(7)
    expect(res.deniedResponse?.status?.code).toBe('ServiceUnavailable')
    expect(res.status?.message).toMatch(/no decision within 30 ms/)
    client.close()
  })

  it('denies when an evaluator throws, and logs the decision under the id sent to Envoy', async () => {
    const { client, lines } = await start('throw')
    const res = await client.check(request())
    expect(res.status?.code).toBe(7)
    const id = res.dynamicMetadata?.decision_id
    const logged = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'decision')
    expect(logged).toMatchObject({ id, allowed: false, code: 'no_match' })
    // What the evaluator said stays out of the log and off the wire (it may quote a token).
    expect(logged.reason).toBe('no allow rule matched (rules failed; their messages are not logged)')
    expect(JSON.stringify(logged)).not.toContain('boom')
    expect(res.status?.message).not.toContain('boom')
    client.close()
  })

  it('denies checks past the concurrency limit instead of queueing them', async () => {
    const { client } = await start(150, { maxConcurrent: 2 })
    const results = await Promise.all([1, 2, 3, 4].map(() => client.check(request())))
    const allowed = results.filter((r) => (r.status?.code ?? 0) === 0).length
    const overloaded = results.filter((r) => /too many checks/.test(r.status?.message ?? '')).length
    expect(allowed).toBe(2)
    expect(overloaded).toBe(2)
    client.close()
  })

  it('finishes in-flight checks on stop, then refuses new ones', async () => {
    const { client, bound } = await start(200)
    const inflight = Array.from({ length: 10 }, () => client.check(request()))
    const http = fetch(`http://${bound.http}/x`)
    await new Promise((r) => setTimeout(r, 50))
    const stopped = server!.stop()
    const results = await Promise.all(inflight)
    expect(results.every((r) => (r.status?.code ?? 0) === 0)).toBe(true)
    expect((await http).status).toBe(200)
    await stopped
    await expect(client.check(request(), { deadlineMs: 500 })).rejects.toThrow()
    client.close()
  })
})

describe('HTTP service mode', () => {
  it('never answers 200 for a denial shaped as 2xx (MCP JSON-RPC errors)', async () => {
    const engine = await createEngine({
      mcp: { denial: 'jsonrpc' },
      rules: [{ id: 'only-list', action: 'allow', match: { headers: [{ name: 'x-list', present: true }] } }],
    })
    server = createExtAuthzServer({
      engine,
      http: { port: 0 },
      telemetry: createTelemetry({ write: () => {}, processMetrics: false }),
    })
    const { http } = await server.start()
    const res = await fetch(`http://${http}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo' } }),
    })
    expect(res.status).toBe(403)
    expect(await res.json()).toMatchObject({ jsonrpc: '2.0', id: 3, error: { code: 403 } })
  })

  it('denies bodies over the limit with 413 without reading them', async () => {
    const engine = await createEngine({ rules: [{ id: 'all', action: 'allow', match: { always: true } }] })
    server = createExtAuthzServer({
      engine,
      http: { port: 0 },
      maxRequestBytes: 1000,
      telemetry: createTelemetry({ write: () => {}, processMetrics: false }),
    })
    const { http } = await server.start()
    const res = await fetch(`http://${http}/upload`, { method: 'POST', body: 'x'.repeat(5000) })
    expect(res.status).toBe(413)
    const ok = await fetch(`http://${http}/upload`, { method: 'POST', body: 'x'.repeat(500) })
    expect(ok.status).toBe(200)
  })

  it('every field line reaches the input: repeated authorization and x-role lines, in any letter case', async () => {
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
    const engine = await createEngine(
      { rules: [{ id: 'c', action: 'allow', capture: {} }] },
      {
        evaluators: [capture],
      },
    )
    server = createExtAuthzServer({
      engine,
      http: { port: 0 },
      telemetry: createTelemetry({ write: () => {}, processMetrics: false }),
    })
    const { http } = await server.start()
    const [host, port] = http!.split(':') as [string, string]
    // A raw socket: fetch and node:http clients would merge or refuse the repeated lines.
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), host, () =>
        socket.write(
          'GET /r HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer a\r\nauthorization: Bearer b\r\n' +
            'X-Role: r1\r\nx-role: r2\r\nX-ROLE: r3\r\nX-Single: s\r\nConnection: close\r\n\r\n',
        ),
      )
      let text = ''
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1')
      })
      socket.on('error', reject)
      socket.on('close', () => resolve(text))
    })
    expect(answer).toMatch(/^HTTP\/1\.1 200 /)
    const h = seen.at(-1)!
    // Node's req.headers would say "Bearer a" and "r1, r2, r3".
    expect(h.authorization).toBe('Bearer a,Bearer b')
    expect(h['x-role']).toBe('r1,r2,r3')
    expect(h['x-single']).toBe('s')
  })
})
