/**
 * `verdict serve` as a child process on loopback, called over gRPC (a client built from
 * @verdict/envoy's own .proto) and plain HTTP, as Envoy would call it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createEngine } from '@verdict/core'
import { type CheckClient, createCheckClient } from '@verdict/envoy'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { jsonToStruct } from '../packages/envoy/src/struct.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(ROOT, 'packages/cli/bin/verdict.js')
const SEED_000 = join(ROOT, 'examples/000-istio-ext-authz/policy.yaml')
const DENY_BODY = 'denied by ext_authz for not found header `x-ext-authz: allow` in the request'

beforeAll(() => {
  // The command runs from the build; in CI `pnpm build` ran already and this is a no-op check.
  const r = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', 'packages/cli'],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  )
  if (!existsSync(join(ROOT, 'packages/cli/dist/main.js'))) throw new Error(`build failed:\n${r.stdout}`)
  if (r.status !== 0)
    console.warn(`tsc -b packages/cli reported errors; testing what it emitted:\n${r.stdout.slice(0, 1500)}`)
}, 180_000)

type LogLine = Record<string, unknown>

interface Sidecar {
  readonly proc: ChildProcess
  readonly lines: LogLine[]
  readonly grpc: string
  readonly http: string
  readonly ops: string
  readonly client: CheckClient
  waitFor(pred: (l: LogLine) => boolean, ms?: number): Promise<LogLine>
  /** Send SIGTERM once; `stop()` then only waits for the exit. */
  terminate(): void
  stop(): Promise<number | null>
}

const running = new Set<Sidecar>()
afterAll(async () => {
  for (const s of running) await s.stop()
})

async function serve(policy: string, extra: string[] = []): Promise<Sidecar> {
  const proc = spawn(
    process.execPath,
    [
      BIN,
      'serve',
      '--policy',
      policy,
      '--grpc',
      '127.0.0.1:0',
      '--http',
      '127.0.0.1:0',
      '--metrics',
      '127.0.0.1:0',
      '--json',
      ...extra,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const lines: LogLine[] = []
  let terminated = false
  const waiters: Array<() => void> = []
  let stderr = ''
  let buf = ''
  proc.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString()
  })
  proc.stdout!.on('data', (c: Buffer) => {
    buf += c.toString()
    let nl = buf.indexOf('\n')
    while (nl !== -1) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      lines.push(JSON.parse(line) as LogLine)
      nl = buf.indexOf('\n')
    }
    for (const w of waiters.splice(0)) w()
  })
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)))
  const waitFor = (pred: (l: LogLine) => boolean, ms = 10_000): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for a log line; stderr:\n${stderr}`)),
        ms,
      )
      const look = (): void => {
        const hit = lines.find(pred)
        if (hit) {
          clearTimeout(timer)
          resolve(hit)
        } else waiters.push(look)
      }
      look()
    })
  const listening = await waitFor((l) => l.msg === 'listening', 20_000)
  const client = createCheckClient(listening.grpc as string)
  const sidecar: Sidecar = {
    proc,
    lines,
    grpc: listening.grpc as string,
    http: listening.http as string,
    ops: listening.ops as string,
    client,
    waitFor,
    terminate() {
      terminated = true
      proc.kill('SIGTERM')
    },
    async stop() {
      running.delete(sidecar)
      client.close()
      if (proc.exitCode === null && !terminated) proc.kill('SIGTERM')
      return exited
    },
  }
  running.add(sidecar)
  return sidecar
}

const checkRequest = (headers: Record<string, string>, extra: Record<string, unknown> = {}) => ({
  attributes: {
    request: { http: { method: 'GET', path: '/headers', host: 'httpbin', headers, ...extra } },
  },
})

function headerOf(list: Array<{ header?: { key?: string; value?: string } }> | undefined, key: string) {
  return list?.find((h) => h.header?.key === key)?.header?.value
}

describe('verdict serve: seed 000 (Istio ext-authz sample)', () => {
  let s: Sidecar
  beforeAll(async () => {
    s = await serve(SEED_000)
  }, 60_000)

  it('gRPC: allows with x-ext-authz: allow and tags the upstream request', async () => {
    const res = await s.client.check(
      checkRequest({ 'x-ext-authz': 'allow', authorization: 'Bearer secret-token-123' }),
    )
    expect(res.status?.code ?? 0).toBe(0)
    expect(headerOf(res.okResponse?.headers, 'x-ext-authz-check-result')).toBe('allowed')
    const id = res.dynamicMetadata?.decision_id as string
    expect(id).toMatch(/^[0-9a-f-]{36}$/)
    const log = await s.waitFor((l) => l.id === id)
    expect(log).toMatchObject({ msg: 'decision', allowed: true, status: 200, rule: 'header-allow' })
    expect(typeof log.duration_ms).toBe('number')
    expect(JSON.stringify(s.lines)).not.toContain('secret-token-123')
  })

  it('gRPC: denies with the sample body and header', async () => {
    const res = await s.client.check(checkRequest({ 'x-ext-authz': 'deny' }))
    expect(res.status?.code).toBe(7)
    expect(res.deniedResponse?.status?.code).toBe('Forbidden')
    expect(res.deniedResponse?.body).toBe(DENY_BODY)
    expect(headerOf(res.deniedResponse?.headers, 'x-ext-authz-check-result')).toBe('denied')
  })

  it('gRPC: allows service account a without the header', async () => {
    const req = checkRequest({})
    ;(req.attributes as Record<string, unknown>).source = {
      principal: 'spiffe://cluster.local/ns/foo/sa/a',
      address: { socketAddress: { address: '10.0.0.7', portValue: 43210 } },
    }
    const res = await s.client.check(req)
    expect(res.status?.code ?? 0).toBe(0)
  })

  it('HTTP service mode: 200 with headers on allow, 403 with body and headers on deny', async () => {
    const ok = await fetch(`http://${s.http}/headers?x=1`, { headers: { 'x-ext-authz': 'allow' } })
    expect(ok.status).toBe(200)
    expect(ok.headers.get('x-ext-authz-check-result')).toBe('allowed')
    const no = await fetch(`http://${s.http}/headers`)
    expect(no.status).toBe(403)
    expect(no.headers.get('x-ext-authz-check-result')).toBe('denied')
    expect(await no.text()).toBe(DENY_BODY)
  })

  it('answers malformed CheckRequests with a 400 denial, never an error or an allow', async () => {
    const garbage = await s.client.checkBytes(new Uint8Array([0x0a, 0xff, 0xff, 0xff]))
    expect(garbage.status?.code).toBe(7)
    expect(garbage.deniedResponse?.status?.code).toBe('BadRequest')
    const noPath = await s.client.check({
      attributes: { request: { http: { method: 'GET', headers: { 'x-ext-authz': 'allow' } } } },
    })
    expect(noPath.deniedResponse?.status?.code).toBe('BadRequest')
    expect(noPath.status?.message).toMatch(/path/)
    const empty = await s.client.check({})
    expect(empty.deniedResponse?.status?.code).toBe('BadRequest')
    const dotted = await s.client.check(checkRequest({ 'x-ext-authz': 'allow' }, { path: '/a/%2e%2e/admin' }))
    expect(dotted.deniedResponse?.status?.code).toBe('BadRequest')
  })

  it('answers gRPC health and the operations endpoints', async () => {
    expect(await s.client.health()).toBe('SERVING')
    expect(await s.client.health('envoy.service.auth.v3.Authorization')).toBe('SERVING')
    await expect(s.client.health('no.such.Service')).rejects.toThrow(/NOT_FOUND|unknown service/)
    expect((await fetch(`http://${s.ops}/healthz`)).status).toBe(200)
    expect((await fetch(`http://${s.ops}/readyz`)).status).toBe(200)
    const metrics = await (await fetch(`http://${s.ops}/metrics`)).text()
    expect(metrics).toMatch(
      /verdict_decisions_total\{result="allow",code="allowed",rule="header-allow"\} [1-9]/,
    )
    expect(metrics).toMatch(/verdict_decisions_total\{result="deny",code="no_match",rule=""\} [1-9]/)
    expect(metrics).toMatch(/verdict_decision_duration_seconds_bucket\{le="0.001",result="allow"\}/)
    expect(metrics).toContain('verdict_policy_reloads_total')
    expect(metrics).toContain('verdict_jwks_fetches_total')
  })
})

describe('verdict serve: other policies', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'verdict-serve-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('MCP: a denied tools/call is a JSON-RPC error with the request id (gRPC: 200, HTTP mode: 403)', async () => {
    const policy = join(dir, 'mcp.yaml')
    await writeFile(
      policy,
      [
        'name: mcp-jsonrpc',
        'mcp: { denial: jsonrpc }',
        'rules:',
        '  - id: admins-only',
        '    action: allow',
        '    match: { headers: [{ name: x-team, exact: admin }] }',
        '',
      ].join('\n'),
    )
    const s = await serve(policy)
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 'call-9',
      method: 'tools/call',
      params: { name: 'echo' },
    })
    const res = await s.client.check({
      attributes: {
        request: {
          http: { method: 'POST', path: '/mcp', headers: { 'content-type': 'application/json' }, body },
        },
        metadataContext: {
          filterMetadata: {
            mcp_proxy: jsonToStruct({
              jsonrpc: '2.0',
              method: 'tools/call',
              id: 'call-9',
              params: { name: 'echo' },
            }),
          },
        },
      },
    })
    expect(res.status?.code).toBe(7)
    expect(res.deniedResponse?.status?.code).toBe('OK')
    expect(headerOf(res.deniedResponse?.headers, 'content-type')).toBe('application/json')
    expect(JSON.parse(res.deniedResponse?.body ?? '')).toMatchObject({
      jsonrpc: '2.0',
      id: 'call-9',
      error: { code: 403 },
    })
    const log = await s.waitFor((l) => l.id === res.dynamicMetadata?.decision_id)
    expect(log).toMatchObject({ mcp_method: 'tools/call', mcp_tool: 'echo' })

    const http = await fetch(`http://${s.http}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    })
    expect(http.status).toBe(403)
    expect(await http.json()).toMatchObject({ id: 'call-9', error: { code: 403 } })
    const admin = await fetch(`http://${s.http}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-team': 'admin' },
      body,
    })
    expect(admin.status).toBe(200)
    expect(await s.stop()).toBe(0)
  }, 60_000)

  it('deny means deny over both transports: several header values, host spellings, method overrides', async () => {
    const policy = join(dir, 'canonical.yaml')
    await writeFile(
      policy,
      [
        'name: canonical',
        'rules:',
        '  - { id: no-admin, action: deny, match: { headers: [{ name: x-role, exact: admin }] } }',
        '  - { id: no-admin-host, action: deny, cel: \'request.host == "admin.example.com"\' }',
        '  - { id: rest, action: allow, match: { always: true } }',
        '',
      ].join('\n'),
    )
    const s = await serve(policy)
    const grpc = (headers: Record<string, string>, extra: Record<string, unknown> = {}) =>
      s.client.check(checkRequest({ 'x-role': 'user', ...headers }, extra))
    // gRPC: Envoy's joined form, header_map lines, host spellings, an override header.
    expect((await grpc({})).status?.code).toBe(0)
    const joined = await grpc({ 'x-role': 'user,admin' })
    expect(joined.status?.code).toBe(7)
    expect(joined.deniedResponse?.status?.code).toBe('BadRequest')
    const lines = await s.client.check({
      attributes: {
        request: {
          http: {
            method: 'GET',
            path: '/',
            headerMap: {
              headers: [
                { key: 'x-role', value: 'user' },
                { key: 'X-Role', rawValue: Buffer.from('admin').toString('base64') },
              ],
            },
          },
        },
      },
    })
    expect(lines.deniedResponse?.status?.code).toBe('BadRequest')
    for (const host of ['ADMIN.example.com', 'admin.example.com.', 'admin.example.com:443']) {
      const r = await grpc({ ':authority': host }, { host })
      expect(r.status?.code, host).toBe(7)
      expect(r.deniedResponse?.status?.code, host).toBe('Forbidden')
    }
    expect((await grpc({ 'x-http-method-override': 'DELETE' })).deniedResponse?.status?.code).toBe(
      'BadRequest',
    )
    const refused = await s.waitFor((l) => l.code === 'malformed_input')
    expect(refused).toMatchObject({ allowed: false, status: 400 })

    // HTTP: two field lines on the wire, and a host spelled with a default port.
    const raw = (lines: string[]) =>
      new Promise<string>((resolve, reject) => {
        const [host, port] = s.http.split(':')
        const sock = connect(Number(port), host!, () => sock.end(`${lines.join('\r\n')}\r\n\r\n`))
        let out = ''
        sock.on('data', (c: Buffer) => {
          out += c.toString('latin1')
        })
        sock.on('end', () => resolve(out))
        sock.on('error', reject)
      })
    const status = (res: string) => Number(res.slice(9, 12))
    expect(status(await raw(['GET / HTTP/1.1', 'host: x', 'x-role: user', 'connection: close']))).toBe(200)
    expect(
      status(await raw(['GET / HTTP/1.1', 'host: x', 'x-role: user', 'x-role: admin', 'connection: close'])),
    ).toBe(400)
    expect(
      status(await raw(['GET / HTTP/1.1', 'host: x', 'X-Role: user', 'x-role: admin', 'connection: close'])),
    ).toBe(400)
    expect(
      status(
        await raw(['GET / HTTP/1.1', 'host: Admin.Example.com:443', 'x-role: user', 'connection: close']),
      ),
    ).toBe(403)
    expect(await s.stop()).toBe(0)
  }, 60_000)

  it('JWT: 401 with a WWW-Authenticate challenge', async () => {
    const { SignJWT, exportJWK, generateKeyPair } = await import('jose')
    const { publicKey, privateKey } = await generateKeyPair('ES256')
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }
    const jwt = {
      mode: 'Strict',
      providers: [{ name: 'test', issuer: 'https://issuer.test', jwks: { inline: { keys: [jwk] } } }],
    }
    // No skip: a JWT configuration the engine rejects is a broken JWT path, and fails this case.
    await expect(
      createEngine({ authentication: { jwt }, default: 'allow', rules: [] }),
    ).resolves.toBeDefined()
    const policy = join(dir, 'jwt.json')
    await writeFile(
      policy,
      JSON.stringify({ name: 'jwt', authentication: { jwt }, default: 'allow', rules: [] }),
    )
    const s = await serve(policy)
    const none = await s.client.check(checkRequest({}))
    expect(none.deniedResponse?.status?.code).toBe('Unauthorized')
    expect(none.status?.code).toBe(16)
    expect(headerOf(none.deniedResponse?.headers, 'www-authenticate')).toMatch(/^Bearer realm=/)
    const bad = await fetch(`http://${s.http}/x`, { headers: { authorization: 'Bearer not.a.token' } })
    expect(bad.status).toBe(401)
    expect(bad.headers.get('www-authenticate')).toMatch(/error="invalid_token"/)
    const token = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer('https://issuer.test')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey)
    const good = await s.client.check(checkRequest({ authorization: `Bearer ${token}` }))
    expect(good.status?.code ?? 0).toBe(0)
    expect(JSON.stringify(s.lines)).not.toContain(token)
    await s.stop()
  }, 60_000)

  it('reloads the policy under load: every answer is wholly the old or the new policy', async () => {
    const policy = join(dir, 'reload.yaml')
    const version = (v: string) =>
      [
        `name: reload-${v}`,
        'responses:',
        `  allowed: { headers: { x-policy: ${v} } }`,
        `  denied: { status: 403, body: "${v} denied", headers: { x-policy: ${v} } }`,
        'rules:',
        '  - id: pass',
        '    action: allow',
        '    match: { headers: [{ name: x-pass, exact: "yes" }] }',
        `    headers: { x-rule-version: ${v} }`,
        '',
      ].join('\n')
    const put = async (text: string) => {
      const tmp = `${policy}.tmp`
      await writeFile(tmp, text)
      await rename(tmp, policy)
    }
    await put(version('v1'))
    const s = await serve(policy)
    const seen = new Set<string>()
    const problems: string[] = []
    let stop = false
    const grpcLoad = async () => {
      while (!stop) {
        const pass = Math.random() < 0.5
        try {
          const r = await s.client.check(checkRequest(pass ? { 'x-pass': 'yes' } : {}))
          if (pass) {
            const a = headerOf(r.okResponse?.headers, 'x-policy')
            const b = headerOf(r.okResponse?.headers, 'x-rule-version')
            if ((r.status?.code ?? 0) !== 0 || a === undefined || a !== b)
              problems.push(`grpc allow: ${JSON.stringify(r)}`)
            else seen.add(a)
          } else {
            const a = headerOf(r.deniedResponse?.headers, 'x-policy')
            if (r.status?.code !== 7 || r.deniedResponse?.body !== `${a} denied`)
              problems.push(`grpc deny: ${JSON.stringify(r)}`)
          }
        } catch (e) {
          problems.push(`grpc error: ${(e as Error).message}`)
        }
      }
    }
    const httpLoad = async () => {
      while (!stop) {
        try {
          const r = await fetch(`http://${s.http}/x`, { headers: { 'x-pass': 'yes' } })
          await r.arrayBuffer()
          const a = r.headers.get('x-policy')
          if (r.status !== 200 || a === null || a !== r.headers.get('x-rule-version'))
            problems.push(`http: ${r.status} ${a}`)
        } catch (e) {
          problems.push(`http error: ${(e as Error).message}`)
        }
      }
    }
    const load = [grpcLoad(), grpcLoad(), httpLoad()]
    try {
      let generation = 0
      for (const v of ['v2', 'v1', 'v2', 'v3']) {
        await put(version(v))
        // Alternate between the file watch and SIGHUP as the trigger.
        if (generation % 2 === 1) s.proc.kill('SIGHUP')
        generation++
        const g = generation
        await s.waitFor((l) => l.msg === 'policy reloaded' && l.generation === g, 20_000)
        await new Promise((r) => setTimeout(r, 100))
      }
      // An invalid edit keeps the last good policy in force.
      await put('rules: [ { id: broken, action: allow, match: { nosuch: 1 } } ]\n')
      await s.waitFor((l) => l.msg === 'policy reload failed; keeping the previous policy', 20_000)
      await new Promise((r) => setTimeout(r, 100))
    } finally {
      stop = true
      await Promise.all(load)
    }
    expect(problems.slice(0, 5)).toEqual([])
    expect(problems.length).toBe(0)
    expect([...seen].sort()).toEqual(['v1', 'v2', 'v3'])
    const after = await s.client.check(checkRequest({ 'x-pass': 'yes' }))
    expect(headerOf(after.okResponse?.headers, 'x-policy')).toBe('v3')
    const metrics = await (await fetch(`http://${s.ops}/metrics`)).text()
    expect(metrics).toMatch(/verdict_policy_reloads_total\{result="success"\} 4/)
    expect(metrics).toMatch(/verdict_policy_reloads_total\{result="failure"\} 1/)
    const failure = s.lines.find((l) => l.msg === 'policy reload failed; keeping the previous policy')
    expect(String(failure?.error)).toMatch(/reload\.yaml:1:\d+: .*nosuch/)
    await s.stop()
  }, 60_000)

  it('SIGTERM during load: in-flight checks complete, then the process exits 0', async () => {
    const s = await serve(SEED_000)
    // An HTTP check whose body is still arriving when SIGTERM lands.
    const slow = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: s.http.split(':')[0],
          port: Number(s.http.split(':')[1]),
          path: '/upload',
          method: 'POST',
          headers: { 'content-length': '10', 'x-ext-authz': 'allow' },
        },
        (res) => {
          let body = ''
          res.on('data', (c: Buffer) => {
            body += c.toString()
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        },
      )
      req.on('error', reject)
      req.write('12345')
      setTimeout(() => req.end('67890'), 400)
    })
    let stop = false
    const outcomes = { ok: 0, unavailable: 0, other: [] as string[] }
    const grpcLoad = async () => {
      while (!stop) {
        try {
          const r = await s.client.check(checkRequest({ 'x-ext-authz': 'allow' }), { deadlineMs: 2000 })
          if ((r.status?.code ?? 0) === 0) outcomes.ok++
          else outcomes.other.push(JSON.stringify(r))
        } catch (e) {
          // After the listener closes, new calls are refused: that is not an in-flight call failing.
          if ((e as { code?: number }).code === 14) {
            outcomes.unavailable++
            return
          }
          outcomes.other.push((e as Error).message)
          return
        }
      }
    }
    const load = [grpcLoad(), grpcLoad(), grpcLoad()]
    await new Promise((r) => setTimeout(r, 150))
    s.terminate()
    const slowResult = await slow
    expect(slowResult).toEqual({ status: 200, body: '' })
    stop = true
    await Promise.all(load)
    expect(outcomes.other).toEqual([])
    expect(outcomes.ok).toBeGreaterThan(0)
    expect(await s.stop()).toBe(0)
    expect(s.lines.some((l) => l.msg === 'SIGTERM: draining')).toBe(true)
    expect(s.lines.at(-1)?.msg).toBe('stopped')
  }, 60_000)
})
