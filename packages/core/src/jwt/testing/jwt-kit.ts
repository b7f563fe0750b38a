/**
 * Test kit for the JWT tests: keys and tokens made with jose, and a real HTTP server on 127.0.0.1
 * that serves JWKS and OIDC discovery documents. Test-only; not exported from the package.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  CompactSign,
  type CryptoKey,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importPKCS8,
  type JWK,
} from 'jose'

/** A signing key pair with its public JWK (carrying `kid` and `alg`). */
export interface TestKey {
  readonly alg: string
  readonly kid: string
  readonly privateKey: CryptoKey
  readonly publicKey: CryptoKey
  readonly jwk: JWK
}

export async function makeKey(alg: string, kid: string = `${alg.toLowerCase()}-1`): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  return { alg, kid, privateKey, publicKey, jwk }
}

/** The same RSA key pair used for another algorithm (RS256 <-> PS256): WebCrypto binds one per key. */
export async function withAlg(key: TestKey, alg: string): Promise<TestKey> {
  const privateKey = await importPKCS8(await exportPKCS8(key.privateKey), alg, { extractable: true })
  return { ...key, alg, privateKey }
}

export const jwks = (...keys: TestKey[]): { keys: JWK[] } => ({ keys: keys.map((k) => k.jwk) })

const enc = new TextEncoder()

/**
 * Sign `payload` (an object, or raw JSON text for hostile payloads such as `{"exp":1e400}`) with
 * `key`. `header` adds or overrides protected header fields (`kid: undefined` removes it).
 */
export async function sign(
  key: TestKey,
  payload: Record<string, unknown> | string,
  header: Record<string, unknown> = {},
  crit?: Record<string, boolean>,
): Promise<string> {
  const text = typeof payload === 'string' ? payload : JSON.stringify(payload)
  const h: Record<string, unknown> = { alg: key.alg, kid: key.kid, typ: 'JWT', ...header }
  for (const k of Object.keys(h)) if (h[k] === undefined) delete h[k]
  return new CompactSign(enc.encode(text))
    .setProtectedHeader(h as { alg: string })
    .sign(key.privateKey, crit === undefined ? {} : { crit })
}

/** WebCrypto parameters that sign as the JWS algorithms the kit's keys use. */
function subtleParams(key: CryptoKey): Parameters<typeof crypto.subtle.sign>[0] {
  const a = key.algorithm as { name: string; namedCurve?: string; hash?: { name: string } }
  if (a.name === 'ECDSA') {
    const bits = { 'P-256': 256, 'P-384': 384, 'P-521': 512 }[a.namedCurve ?? ''] ?? 256
    return { name: 'ECDSA', hash: `SHA-${bits}` }
  }
  if (a.name === 'RSA-PSS') return { name: 'RSA-PSS', saltLength: Number(a.hash?.name.slice(4)) / 8 }
  return { name: a.name }
}

/**
 * A compact JWS over exact header and payload bytes, for what jose will not build: a header with a
 * member twice, a byte order mark before the JSON. Strings are encoded as UTF-8.
 */
export async function signRaw(
  key: TestKey,
  header: string | Uint8Array,
  payload: string | Uint8Array,
): Promise<string> {
  const part = (v: string | Uint8Array) =>
    Buffer.from(typeof v === 'string' ? enc.encode(v) : v).toString('base64url')
  const input = `${part(header)}.${part(payload)}`
  const sig = await crypto.subtle.sign(subtleParams(key.privateKey), key.privateKey, enc.encode(input))
  return `${input}.${Buffer.from(sig).toString('base64url')}`
}

/** UTF-8 bytes of `text` after a byte order mark (EF BB BF). */
export const withBom = (text: string): Uint8Array =>
  Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), enc.encode(text)])

/** base64url of a JSON value or text, for hand-built tokens. */
export const b64 = (v: unknown): string =>
  Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')

/** A route: a status, headers and body, or a handler that may delay or hang. */
type Route =
  | { status?: number; headers?: Record<string, string>; body: unknown }
  | ((req: IncomingMessage, res: ServerResponse) => void)

/** A loopback HTTP server whose routes tests change while it runs; counts requests per path. */
export interface TestServer {
  readonly url: string
  readonly routes: Map<string, Route>
  readonly hits: Map<string, number>
  hitsOf(path: string): number
  close(): Promise<void>
}

export async function startServer(): Promise<TestServer> {
  const routes = new Map<string, Route>()
  const hits = new Map<string, number>()
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!
    hits.set(path, (hits.get(path) ?? 0) + 1)
    const r = routes.get(path)
    if (r === undefined) {
      res.writeHead(404).end('not found')
      return
    }
    if (typeof r === 'function') {
      r(req, res)
      return
    }
    const body = typeof r.body === 'string' ? r.body : JSON.stringify(r.body)
    res.writeHead(r.status ?? 200, { 'content-type': 'application/json', ...r.headers }).end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    routes,
    hits,
    hitsOf: (p) => hits.get(p) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** A settable clock in milliseconds. */
export function clock(startMs: number): {
  now: () => number
  set(ms: number): void
  advance(ms: number): void
} {
  let t = startMs
  return {
    now: () => t,
    set(ms) {
      t = ms
    },
    advance(ms) {
      t += ms
    },
  }
}
