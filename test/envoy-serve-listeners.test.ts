/**
 * The listeners Envoy deployments use, over real sockets: Unix domain sockets (Envoy's `pipe`
 * address) with a file mode, and TLS / mTLS on the gRPC and HTTP listeners, the HTTP service mode
 * taking the caller's principal from its client certificate's URI SAN. The certificates are the
 * committed test fixtures in packages/mcp/src/testing/tls (a test CA, a server certificate for
 * 127.0.0.1, client certificates for two SPIFFE IDs, and a self-signed impostor).
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createCheckClient } from '@verdict/envoy'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildCli, ROOT, SEED_000, type ServeProcess, startServe } from './fixtures/serve-process.js'

const TLS_DIR = join(ROOT, 'packages/mcp/src/testing/tls')
const AGENT_A = 'spiffe://cluster.local/ns/agents/sa/agent-a'
const pem = (name: string): Promise<Buffer> => readFile(join(TLS_DIR, name))

let dir: string
const running = new Set<ServeProcess>()
beforeAll(async () => {
  buildCli()
  dir = await mkdtemp(join(tmpdir(), 'verdict-listeners-'))
}, 180_000)
afterAll(async () => {
  for (const s of running) await s.stop()
  await rm(dir, { recursive: true, force: true })
})

async function serve(args: string[]): Promise<ServeProcess> {
  const s = await startServe(['--drain-delay', '0', '--no-decision-log', ...args])
  running.add(s)
  return s
}

const checkRequest = (headers: Record<string, string>) => ({
  attributes: { request: { http: { method: 'GET', path: '/', host: 'a', headers } } },
})

/** One HTTP exchange; resolves with the status, or rejects (a refused TLS handshake). */
function exchange(
  send: typeof httpRequest | typeof httpsRequest,
  options: Record<string, unknown>,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = (send as typeof httpRequest)(
      { method: 'GET', path: '/x', agent: false, ...options },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

describe('verdict serve on Unix domain sockets', () => {
  it('serves gRPC and HTTP checks on socket files with the given mode; a socket in use is refused', async () => {
    const grpcPath = join(dir, 'grpc.sock')
    const httpPath = join(dir, 'http.sock')
    const s = await serve([
      '-p',
      SEED_000,
      '--grpc',
      `unix:${grpcPath}`,
      '--http',
      `unix:${httpPath}`,
      '--socket-mode',
      '660',
      '--metrics',
      'off',
    ])
    expect(s.listening).toMatchObject({ grpc: `unix:${grpcPath}`, http: `unix:${httpPath}` })
    for (const p of [grpcPath, httpPath]) {
      const st = await stat(p)
      expect(st.isSocket()).toBe(true)
      expect(st.mode & 0o777).toBe(0o660)
    }
    const client = createCheckClient(`unix:${grpcPath}`)
    try {
      expect((await client.check(checkRequest({ 'x-ext-authz': 'allow' }))).status?.code ?? 0).toBe(0)
      expect((await client.check(checkRequest({ 'x-ext-authz': 'deny' }))).status?.code).toBe(7)
    } finally {
      client.close()
    }
    const allowHeaders = { 'x-ext-authz': 'allow' }
    expect(await exchange(httpRequest, { socketPath: httpPath, headers: allowHeaders })).toBe(200)
    expect(await exchange(httpRequest, { socketPath: httpPath })).toBe(403)

    // A second server on the same socket cannot take it over.
    const second = startServe(['-p', SEED_000, '--grpc', `unix:${grpcPath}`, '--metrics', 'off'])
    await expect(second).rejects.toThrow(/exited with 1 before listening.*(EADDRINUSE|in use)/s)

    expect(await s.stop()).toBe(0)
  }, 90_000)
})

describe('verdict serve over TLS', () => {
  let policy: string
  beforeAll(async () => {
    policy = join(dir, 'principal.yaml')
    await writeFile(
      policy,
      [
        'name: principal',
        'rules:',
        '  - id: agent-a',
        '    action: allow',
        `    match: { principals: [{ exact: "${AGENT_A}" }] }`,
        '',
      ].join('\n'),
    )
  })

  it('mTLS: gRPC and HTTP need a client certificate from the CA; the HTTP mode decides on its URI SAN', async () => {
    const s = await serve([
      '-p',
      policy,
      '--grpc',
      '127.0.0.1:0',
      '--http',
      '127.0.0.1:0',
      '--metrics',
      'off',
      '--tls-cert',
      join(TLS_DIR, 'server.pem'),
      '--tls-key',
      join(TLS_DIR, 'server-key.pem'),
      '--client-ca',
      join(TLS_DIR, 'ca.pem'),
    ])
    const ca = await pem('ca.pem')
    const [aCert, aKey] = [await pem('agent-a.pem'), await pem('agent-a-key.pem')]
    const [bCert, bKey] = [await pem('agent-b.pem'), await pem('agent-b-key.pem')]
    const [rogueCert, rogueKey] = [await pem('rogue.pem'), await pem('rogue-key.pem')]
    const [host, port] = String(s.listening.http).split(':') as [string, string]
    const https = (cert?: Buffer, key?: Buffer) =>
      exchange(httpsRequest, { host, port: Number(port), ca, ...(cert ? { cert, key } : {}) })
    // The principal comes from the certificate: agent A is allowed, agent B is not.
    expect(await https(aCert, aKey)).toBe(200)
    expect(await https(bCert, bKey)).toBe(403)
    // No certificate, or one the CA did not sign (claiming agent B's URI): no connection at all.
    await expect(https()).rejects.toThrow()
    await expect(https(rogueCert, rogueKey)).rejects.toThrow()
    // Plain HTTP on the TLS port is not served either.
    await expect(exchange(httpRequest, { host, port: Number(port) })).rejects.toThrow()

    // gRPC over TLS: the policy sees Envoy's principal from the CheckRequest, as always.
    const withCert = createCheckClient(String(s.listening.grpc), { tls: { ca, cert: aCert, key: aKey } })
    const request = {
      attributes: {
        source: { principal: AGENT_A },
        request: { http: { method: 'GET', path: '/', headers: {} } },
      },
    }
    try {
      expect((await withCert.check(request)).status?.code ?? 0).toBe(0)
      expect((await withCert.check(checkRequest({}))).status?.code).toBe(7)
      expect(await withCert.health()).toBe('SERVING')
    } finally {
      withCert.close()
    }
    const withoutCert = createCheckClient(String(s.listening.grpc), { tls: { ca } })
    try {
      await expect(withoutCert.check(request, { deadlineMs: 3000 })).rejects.toThrow()
    } finally {
      withoutCert.close()
    }
    const plain = createCheckClient(String(s.listening.grpc))
    try {
      await expect(plain.check(request, { deadlineMs: 3000 })).rejects.toThrow()
    } finally {
      plain.close()
    }
    expect(await s.stop()).toBe(0)
  }, 90_000)

  it('TLS without --client-ca: any client connects, and the HTTP mode has no principal', async () => {
    const s = await serve([
      '-p',
      policy,
      '--http',
      '127.0.0.1:0',
      '--metrics',
      'off',
      '--tls-cert',
      join(TLS_DIR, 'server.pem'),
      '--tls-key',
      join(TLS_DIR, 'server-key.pem'),
    ])
    const ca = await pem('ca.pem')
    const [aCert, aKey] = [await pem('agent-a.pem'), await pem('agent-a-key.pem')]
    const [host, port] = String(s.listening.http).split(':') as [string, string]
    expect(await exchange(httpsRequest, { host, port: Number(port), ca })).toBe(403)
    // A certificate nobody asked for is not verified, so it names nobody.
    expect(await exchange(httpsRequest, { host, port: Number(port), ca, cert: aCert, key: aKey })).toBe(403)
    expect(await s.stop()).toBe(0)
  }, 90_000)

  it('refuses --tls-key without --tls-cert, and --client-ca alone', async () => {
    for (const extra of [
      ['--tls-key', join(TLS_DIR, 'server-key.pem')],
      ['--client-ca', join(TLS_DIR, 'ca.pem')],
    ]) {
      const s = startServe(['-p', SEED_000, '--metrics', 'off', ...extra])
      await expect(s).rejects.toThrow(/exited with 2 before listening.*--tls-cert and --tls-key go together/s)
    }
  }, 60_000)
})
