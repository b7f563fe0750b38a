// The middleware's WWW-Authenticate realm names the scheme the service is actually reached by.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createEngine } from '@verdict/core'
import { createHttpMiddleware, type VerdictRequest } from '@verdict/core/middleware'
import { createTestIssuer } from '@verdict/core/testing'
import { afterAll, beforeAll, expect, test } from 'vitest'

let server: Server
let base: string
let mw: ReturnType<typeof createHttpMiddleware>

beforeAll(async () => {
  const issuer = await createTestIssuer({ issuer: 'https://idp.example', audience: 'api' })
  const engine = await createEngine({
    authentication: {
      jwt: {
        mode: 'Strict',
        providers: [
          { name: 'idp', issuer: 'https://idp.example', audiences: ['api'], jwks: { inline: issuer.jwks } },
        ],
      },
    },
    default: 'allow',
  })
  mw = createHttpMiddleware(engine)
  server = createServer((req, res) => mw(req as VerdictRequest, res, () => res.end('ok')))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((r) => server.close(() => r())))

test('a plain-HTTP service challenges with an http:// realm', async () => {
  const res = await fetch(`${base}/reports`)
  expect(res.status).toBe(401)
  const challenge = res.headers.get('www-authenticate') ?? ''
  expect(challenge).toBe(`Bearer realm="${base}/reports"`)
})

test('a TLS service challenges with an https:// realm', async () => {
  const req = {
    method: 'GET',
    url: '/reports',
    rawHeaders: ['host', 'api.example'],
    headers: { host: 'api.example' },
    socket: { encrypted: true, remoteAddress: '127.0.0.1', remotePort: 50000 },
  }
  const headers: Record<string, string> = {}
  const done = new Promise<number>((resolve) => {
    const res = {
      statusCode: 0,
      setHeader: (k: string, v: string) => {
        headers[k.toLowerCase()] = v
      },
      end() {
        resolve(this.statusCode)
      },
    }
    mw(req as never, res as never, () => resolve(200))
  })
  expect(await done).toBe(401)
  expect(headers['www-authenticate']).toBe('Bearer realm="https://api.example/reports"')
})
