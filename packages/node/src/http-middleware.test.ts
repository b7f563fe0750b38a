import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http'
import { type AddressInfo, connect } from 'node:net'
import { createEngine, type Evaluator, ok } from '@verdict/core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createHttpMiddleware, headerFieldLines, type VerdictRequest } from './http-middleware.js'

let server: Server
let base: string
const seen: Array<Record<string, unknown>> = []

beforeAll(async () => {
  const engine = await createEngine({
    responses: {
      denied: { status: 403, body: 'nope', headers: { 'x-why': 'policy' } },
      allowed: { responseHeaders: { 'x-checked': 'yes' } },
    },
    rules: [
      {
        id: 'reports',
        action: 'allow',
        match: { paths: [{ prefix: '/reports' }], headers: [{ name: 'x-api-key', exact: 'k1' }] },
        headers: { 'x-caller': 'k1-client' },
      },
      { id: 'agent', action: 'allow', match: { principals: [{ exact: 'spiffe://td/ns/a/sa/b' }] } },
    ],
  })
  const mw = createHttpMiddleware(engine, {
    principal: (req) => req.headers['x-test-principal'] as string | undefined,
    onDecision: () => {
      throw new Error('logging failure')
    },
  })
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    mw(req as VerdictRequest, res, () => {
      seen.push({ caller: req.headers['x-caller'], rule: (req as VerdictRequest).verdict?.rule })
      res.end('ok')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((r) => server.close(() => r())))

describe('HTTP middleware on a real server', () => {
  test('allowed requests reach the route with upstream headers applied', async () => {
    const res = await fetch(`${base}/reports/2026?x=1`, {
      headers: { 'x-api-key': 'k1', 'x-caller': 'spoofed' },
    })
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('ok')
    expect(res.headers.get('x-checked')).toBe('yes')
    expect(seen.at(-1)).toEqual({ caller: 'k1-client', rule: 'reports' })
  })

  test('denied requests get the policy response and never reach the route', async () => {
    const before = seen.length
    const res = await fetch(`${base}/reports`, { headers: { 'x-api-key': 'wrong' } })
    expect(res.status).toBe(403)
    expect(await res.text()).toBe('nope')
    expect(res.headers.get('x-why')).toBe('policy')
    expect(seen.length).toBe(before)
  })

  test('the principal hook identifies the caller', async () => {
    const res = await fetch(`${base}/anything`, { headers: { 'x-test-principal': 'spiffe://td/ns/a/sa/b' } })
    expect(res.status).toBe(200)
  })

  test('an ambiguous path is refused with 400', async () => {
    // fetch would resolve the dot segment itself; send the raw target.
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request(
        `${base}/`,
        { path: '/reports/%2e%2e/admin', headers: { 'x-api-key': 'k1' } },
        (res) => {
          res.resume()
          resolve(res.statusCode)
        },
      )
      req.on('error', reject)
      req.end()
    })
    expect(status).toBe(400)
  })
})

describe('HTTP middleware: headers only Envoy may set', () => {
  test("a client's x-envoy-auth-partial-body does not hide the body from the rules", async () => {
    // A deny rule on the parsed body; the route reads the body first, as express.json() would.
    const adminBody: Evaluator = {
      kind: 'adminBody',
      compile: () => ({
        ok: true,
        program: { evaluate: (ctx) => ok((ctx.parsedBody as { admin?: unknown })?.admin === true) },
      }),
    }
    const engine = await createEngine(
      {
        rules: [
          { id: 'no-admin', action: 'deny', adminBody: {} },
          { id: 'rest', action: 'allow', match: { always: true } },
        ],
      },
      { evaluators: [adminBody] },
    )
    const mw = createHttpMiddleware(engine)
    const s = createServer((req: IncomingMessage, res: ServerResponse) => {
      let text = ''
      req.setEncoding('utf8')
      req.on('data', (c: string) => {
        text += c
      })
      req.on('end', () => {
        ;(req as VerdictRequest).body = text
        mw(req as VerdictRequest, res, () => res.end('ok'))
      })
    })
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}/api`
    try {
      const post = (headers: Record<string, string>) =>
        fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: '{"admin":true}',
        })
      expect((await post({})).status).toBe(403)
      expect((await post({ 'x-envoy-auth-partial-body': 'true' })).status).toBe(403)
      // Other headers still reach the rules.
      const fine = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-envoy-auth-partial-body': 'true' },
        body: '{"admin":false}',
      })
      expect(fine.status).toBe(200)
    } finally {
      await new Promise<void>((r) => s.close(() => r()))
    }
  })
})

/** Send `head` on a fresh loopback connection and resolve with the status of the answer. */
function rawStatus(port: number, head: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(head))
    let text = ''
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1')
    })
    socket.on('error', reject)
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1])))
  })
}

describe('HTTP middleware: every field line reaches the input', () => {
  test('repeated authorization and x-role lines (any letter case) all reach the rules', async () => {
    const seenHeaders: Array<Readonly<Record<string, string>>> = []
    const capture: Evaluator = {
      kind: 'capture',
      compile: () => ({
        ok: true,
        program: {
          evaluate: (ctx) => {
            seenHeaders.push(ctx.input.headers)
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
    const mw = createHttpMiddleware(engine)
    const s = createServer((req: IncomingMessage, res: ServerResponse) =>
      mw(req as VerdictRequest, res, () => res.end('ok')),
    )
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
    try {
      const status = await rawStatus(
        (s.address() as AddressInfo).port,
        'GET /x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer a\r\nauthorization: Bearer b\r\n' +
          'X-Role: r1\r\nx-role: r2\r\nX-Envoy-Auth-Partial-Body: true\r\nConnection: close\r\n\r\n',
      )
      expect(status).toBe(200)
      const h = seenHeaders.at(-1)!
      // Node's req.headers would say "Bearer a" and "r1, r2".
      expect(h.authorization).toBe('Bearer a,Bearer b')
      expect(h['x-role']).toBe('r1,r2')
      expect(h['x-envoy-auth-partial-body']).toBeUndefined()
      expect(h.host).toBe('a')
    } finally {
      await new Promise<void>((r) => s.close(() => r()))
    }
  })

  test('headerFieldLines: one string per single line, a list for repeats, in order', () => {
    const h = headerFieldLines(['Host', 'a', 'X-A', '1', 'x-a', '2', 'X-a', '3', 'Drop-Me', 'x'], ['drop-me'])
    expect({ ...h }).toEqual({ host: 'a', 'x-a': ['1', '2', '3'] })
    expect(Object.getPrototypeOf(h)).toBeNull()
  })
})
