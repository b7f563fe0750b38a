// verdict serve and OPA-Envoy side by side: the two policies written both ways, the CheckRequests
// both get, starting either server as a child process (optionally pinned to a core), and the
// answer-agreement check that runs before any timing. Shared by bench/sidecar.bench.mjs and
// test/sidecar-agreement.test.ts.
//
// The CheckRequests are encoded and the answers decoded with @grpc/grpc-js and @grpc/proto-loader
// from @verdict/envoy's own .proto files (packages/envoy/proto, Envoy's field numbers), not through
// @verdict/envoy's code, so the bench and the test judge the server from the outside.
import { spawn, spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as grpc from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const BIN = join(ROOT, 'packages/cli/bin/verdict.js')
const PROBE = join(ROOT, 'bench/lib/server-probe-child.mjs')
const FIXTURES = join(ROOT, 'bench/fixtures')

/** The `opa` to run (OPA_BIN, else `opa` on PATH), or why there is none: findOpa()'s rule. */
export function findOpa() {
  const bin = process.env.OPA_BIN || 'opa'
  const r = spawnSync(bin, ['version'], { encoding: 'utf8' })
  if (r.error === undefined && r.status === 0) return { bin }
  return {
    why: process.env.OPA_BIN
      ? `OPA_BIN=${bin} does not run (${r.error?.message ?? r.stderr.trim()})`
      : 'no `opa` binary on PATH and OPA_BIN is not set',
  }
}

/** Whether `verdict serve` has `--workers` (read from its --help), with the reason when not. */
export function workersFlag() {
  const r = spawnSync(process.execPath, [BIN, 'serve', '--help'], { encoding: 'utf8' })
  if (r.status !== 0) return { ok: false, why: `verdict serve --help failed: ${r.stderr.slice(0, 200)}` }
  return /--workers\b/.test(r.stdout)
    ? { ok: true }
    : { ok: false, why: '`verdict serve --help` lists no `--workers` option yet' }
}

let definitions
/** Authorization/Check: its path, request encoder and response decoder (HTTP status codes as numbers). */
export function checkWire() {
  definitions ??= loadSync(['envoy/service/auth/v3/external_auth.proto'], {
    includeDirs: [join(ROOT, 'packages/envoy/proto')],
    keepCase: false,
    longs: String,
    enums: Number,
    defaults: false,
    oneofs: false,
  })
  const m = definitions['envoy.service.auth.v3.Authorization'].Check
  return {
    path: m.path,
    encode: (req) => m.requestSerialize(req),
    decode: (buf) => m.responseDeserialize(buf),
  }
}

/** Plain JSON as a google.protobuf.Struct in proto-loader's object form (`{ fields: { k: Value } }`). */
export function jsonToStruct(o) {
  const value = (v) => {
    if (v === null || v === undefined) return { nullValue: 0 }
    if (typeof v === 'string') return { stringValue: v }
    if (typeof v === 'number') return { numberValue: v }
    if (typeof v === 'boolean') return { boolValue: v }
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } }
    return { structValue: jsonToStruct(v) }
  }
  return { fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, value(v)])) }
}

/** A gRPC frame (5-byte prefix) around the encoded CheckRequest, for the load generator. */
export function grpcFrame(req) {
  const message = checkWire().encode(req)
  const frame = Buffer.alloc(5 + message.length)
  frame.writeUInt32BE(message.length, 1)
  message.copy(frame, 5)
  return frame
}

/** A unary Check client on one channel. */
export function checkClient(target) {
  const wire = checkWire()
  const client = new grpc.Client(target, grpc.credentials.createInsecure())
  return {
    check: (req, deadlineMs = 5000) =>
      new Promise((resolve, reject) =>
        client.makeUnaryRequest(
          wire.path,
          wire.encode,
          wire.decode,
          req,
          new grpc.Metadata(),
          { deadline: Date.now() + deadlineMs },
          (err, res) => (err ? reject(err) : resolve(res)),
        ),
      ),
    close: () => client.close(),
  }
}

/**
 * What Envoy does with a CheckResponse, in comparable terms: allowed (gRPC status code 0), the
 * HTTP status the client sees (200, the denied_response's status, else Envoy's default 403), the
 * headers added to the request or the denial (lower-case name -> values joined by ", "), the body.
 */
export function answerOf(res) {
  const allowed = (res.status?.code ?? 0) === 0
  const list = (allowed ? res.okResponse?.headers : res.deniedResponse?.headers) ?? []
  const headers = {}
  for (const h of list) {
    const k = h.header.key.toLowerCase()
    const v = h.header.value ?? ''
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`
  }
  return {
    allowed,
    status: allowed ? 200 : (res.deniedResponse?.status?.code ?? 403),
    headers,
    body: allowed ? '' : (res.deniedResponse?.body ?? ''),
  }
}

/** A free loopback port (closed again before use: a small race, fine on loopback). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** The HTTP attributes of a CheckRequest as Envoy fills them (pseudo-headers in the header map). */
function httpAttributes({ method = 'GET', path, host, headers = {} }) {
  return {
    id: '12840273620834596912',
    method,
    path,
    host,
    scheme: 'http',
    protocol: 'HTTP/1.1',
    headers: {
      ':authority': host,
      ':method': method,
      ':path': path,
      ':scheme': 'http',
      'user-agent': 'curl/8.5.0',
      accept: '*/*',
      'x-forwarded-proto': 'http',
      'x-request-id': '9b7b1c4e-6a0f-4e58-9d55-2f1f3c0c7a11',
      'x-envoy-expected-rq-timeout-ms': '15000',
      ...headers,
    },
  }
}

/** A CheckRequest from a calling workload (`principal`) to the productpage service. */
function checkRequest({ principal = 'spiffe://cluster.local/ns/default/sa/client', ...http }) {
  return {
    attributes: {
      source: {
        address: { socketAddress: { address: '10.0.0.7', portValue: 41234 } },
        ...(principal !== null ? { principal } : {}),
      },
      destination: {
        address: { socketAddress: { address: '10.0.0.9', portValue: 9080 } },
        principal: 'spiffe://cluster.local/ns/default/sa/productpage',
      },
      request: { time: { seconds: '1767225600', nanos: 0 }, http: httpAttributes(http) },
    },
  }
}

/**
 * Seed 000 (the Istio ext-authz sample): verdict's examples/000-istio-ext-authz/policy.yaml and
 * bench/fixtures/seed-000.rego. Agreement covers allowed, status, the check-result header, the body.
 */
export function seed000() {
  const host = 'productpage.default.svc.cluster.local'
  const req = (headers, principal, path = '/productpage') => checkRequest({ path, host, headers, principal })
  const denied = { allowed: false, status: 403 }
  return {
    id: 'seed-000',
    name: 'seed 000: Istio ext-authz sample',
    verdictPolicy: join(ROOT, 'examples/000-istio-ext-authz/policy.yaml'),
    rego: join(FIXTURES, 'seed-000.rego'),
    data: undefined,
    compareHeaders: ['x-ext-authz-check-result'],
    compareBody: true,
    cases: [
      { name: 'x-ext-authz: allow', request: req({ 'x-ext-authz': 'allow' }), allowed: true, status: 200 },
      { name: 'x-ext-authz: deny', request: req({ 'x-ext-authz': 'deny' }), ...denied },
      { name: 'no x-ext-authz header', request: req({}, undefined, '/headers'), ...denied },
      {
        name: 'x-ext-authz: Allow (case-sensitive value)',
        request: req({ 'x-ext-authz': 'Allow' }),
        ...denied,
      },
      { name: 'x-ext-authz empty', request: req({ 'x-ext-authz': '' }), ...denied },
      {
        name: 'service account a, no header',
        request: req({}, 'spiffe://cluster.local/ns/foo/sa/a'),
        allowed: true,
        status: 200,
      },
      {
        name: 'service account b, no header',
        request: req({}, 'spiffe://cluster.local/ns/foo/sa/b'),
        ...denied,
      },
      {
        name: 'service account a with x-ext-authz: deny',
        request: req({ 'x-ext-authz': 'deny' }, 'spiffe://cluster.local/ns/foo/sa/a'),
        ...denied,
      },
      {
        name: 'service account ab (suffix /sa/ab), no header',
        request: req({}, 'spiffe://cluster.local/ns/foo/sa/ab'),
        ...denied,
      },
      { name: 'no principal, no header', request: req({}, null), ...denied },
    ],
    // The request timed under load: a caller that asked to be let through.
    timed: req({ 'x-ext-authz': 'allow' }),
  }
}

const JWT_ISSUER = 'https://idp.bench.example'
const JWT_AUDIENCE = 'orders-api'

/**
 * JWT (ES256) + header, written both ways with a key pair made here: verdict's `authentication.jwt`
 * (Strict, inline JWKS) and one `match` rule on `x-ext-authz: allow`; bench/fixtures/jwt-header.rego
 * with io.jwt.verify_es256 and the same claims and header checks. Writes the verdict policy and the
 * Rego data document to `dir`. Agreement covers allowed, status (401 for the token, 403 for the
 * header), the body and the WWW-Authenticate challenge.
 */
export async function jwtHeader(dir) {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'bench-es256', alg: 'ES256', use: 'sig' }] }
  const policy = {
    version: 'verdict/v1',
    name: 'bench-jwt-header',
    authentication: {
      jwt: {
        mode: 'Strict',
        providers: [{ name: 'bench', issuer: JWT_ISSUER, audiences: [JWT_AUDIENCE], jwks: { inline: jwks } }],
      },
    },
    rules: [
      {
        id: 'ext-authz-header',
        action: 'allow',
        match: { headers: [{ name: 'x-ext-authz', exact: 'allow' }] },
      },
    ],
  }
  const verdictPolicy = join(dir, 'jwt-header.policy.json')
  await writeFile(verdictPolicy, JSON.stringify(policy, null, 2))
  const data = join(dir, 'jwt-header.data.json')
  await writeFile(
    data,
    JSON.stringify({ bench: { jwks: JSON.stringify(jwks), issuer: JWT_ISSUER, audience: JWT_AUDIENCE } }),
  )
  const sign = (
    key = privateKey,
    { iss = JWT_ISSUER, aud = JWT_AUDIENCE, exp = '1h', alg = 'ES256', claims = {} } = {},
  ) =>
    new SignJWT({ sub: 'alice', email: 'alice@company.example', ...claims })
      .setProtectedHeader({ alg, kid: 'bench-es256' })
      .setIssuer(iss)
      .setAudience(aud)
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(key)
  const good = await sign()
  const other = (await generateKeyPair('ES256')).privateKey
  const host = 'orders.default.svc.cluster.local'
  const req = (headers) => checkRequest({ path: '/api/orders/42', host, headers })
  const bearer = (t, ext = 'allow') => ({
    authorization: `Bearer ${t}`,
    ...(ext !== null ? { 'x-ext-authz': ext } : {}),
  })
  const unauthenticated = { allowed: false, status: 401 }
  const forbidden = { allowed: false, status: 403 }
  return {
    id: 'jwt-header',
    name: 'JWT (ES256) + header rule',
    verdictPolicy,
    rego: join(FIXTURES, 'jwt-header.rego'),
    data,
    compareHeaders: ['www-authenticate'],
    compareBody: true,
    cases: [
      { name: 'valid token, x-ext-authz: allow', request: req(bearer(good)), allowed: true, status: 200 },
      {
        name: 'valid token with an audience list',
        request: req(bearer(await sign(privateKey, { aud: ['other', JWT_AUDIENCE] }))),
        allowed: true,
        status: 200,
      },
      { name: 'valid token, x-ext-authz: deny', request: req(bearer(good, 'deny')), ...forbidden },
      { name: 'valid token, no x-ext-authz', request: req(bearer(good, null)), ...forbidden },
      { name: 'no Authorization header', request: req({ 'x-ext-authz': 'allow' }), ...unauthenticated },
      {
        name: 'Basic credentials instead of a token',
        request: req({ authorization: 'Basic YWxpY2U6c2VjcmV0', 'x-ext-authz': 'allow' }),
        ...unauthenticated,
      },
      { name: 'not a JWT', request: req(bearer('abc.def')), ...unauthenticated },
      { name: 'signed by another key', request: req(bearer(await sign(other))), ...unauthenticated },
      {
        name: 'expired an hour ago',
        request: req(bearer(await sign(privateKey, { exp: Math.floor(Date.now() / 1000) - 3600 }))),
        ...unauthenticated,
      },
      {
        name: 'another issuer',
        request: req(bearer(await sign(privateKey, { iss: 'https://evil.example' }))),
        ...unauthenticated,
      },
      {
        name: 'another audience',
        request: req(bearer(await sign(privateKey, { aud: 'billing-api' }))),
        ...unauthenticated,
      },
      {
        name: 'HS256 token',
        request: req(bearer(await sign(new TextEncoder().encode('x'.repeat(32)), { alg: 'HS256' }))),
        ...unauthenticated,
      },
    ],
    // The same valid token every time, as a client reusing its token sends it.
    timed: req(bearer(good)),
  }
}

/** Last bytes of a child's output, for error messages. */
function tail(proc) {
  let out = ''
  const keep = (b) => {
    out = (out + b.toString()).slice(-4000)
  }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  return () => out
}

/** `argv` under `taskset -c <cpu>` when a core is given. */
const pinned = (cpu, argv) => (cpu === undefined ? argv : ['taskset', '-c', String(cpu), ...argv])

/** Resolves when `target` answers `probe` over gRPC; rejects when the process dies or 30 s pass. */
async function ready(target, probe, proc, output) {
  const client = checkClient(target)
  try {
    for (let i = 0; ; i++) {
      if (proc.exitCode !== null || proc.signalCode !== null)
        throw new Error(`exited (${proc.exitCode ?? proc.signalCode}) before answering:\n${output()}`)
      try {
        await client.check(probe, 1000)
        return
      } catch (e) {
        if (i >= 150) throw new Error(`did not answer on ${target} in 30 s (${e.message}):\n${output()}`)
        await new Promise((r) => setTimeout(r, 200))
      }
    }
  } finally {
    client.close()
  }
}

function stopper(proc) {
  const exited = new Promise((r) => {
    if (proc.exitCode !== null || proc.signalCode !== null) r()
    else proc.once('exit', r)
  })
  return async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
    const t = setTimeout(() => proc.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(t)
  }
}

/**
 * `verdict serve` for `policy` on a free loopback port, gRPC only, decision log and metrics off.
 * `cpu`: pin to that core; `workers`: pass `--workers N`; `probe`: preload bench/lib/server-probe-child.mjs
 * (V8 heap allocation and CPU profiles over IPC; one process only).
 */
export async function startVerdict(policy, { cpu, workers, probe = false } = {}) {
  const port = await freePort()
  const argv = [
    process.execPath,
    ...(probe ? ['--import', PROBE] : []),
    BIN,
    'serve',
    '-p',
    policy.verdictPolicy,
    '--grpc',
    `127.0.0.1:${port}`,
    '--metrics',
    'off',
    '--json',
    '--no-decision-log',
    '--no-watch',
    '--max-concurrent',
    '100000',
    ...(workers !== undefined ? ['--workers', String(workers)] : []),
  ]
  const [cmd, ...args] = pinned(cpu, argv)
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe', ...(probe ? ['ipc'] : [])] })
  const output = tail(proc)
  const target = `127.0.0.1:${port}`
  const stop = stopper(proc)
  try {
    await ready(target, policy.timed, proc, output)
  } catch (e) {
    await stop()
    throw new Error(`verdict serve: ${e.message}`)
  }
  return {
    name: 'verdict',
    pid: proc.pid,
    grpc: target,
    stop,
    /** start/stop: V8 heap bytes allocated in between; profileStart/profileStop(path): a CPU profile. */
    probe: probe ? heapProbe(proc) : undefined,
  }
}

function heapProbe(proc) {
  const ask = (m) =>
    new Promise((resolve) => {
      proc.once('message', resolve)
      proc.send(m)
    })
  return {
    start: () => ask({ probe: 'start' }),
    stop: () => ask({ probe: 'stop' }),
    profileStart: () => ask({ probe: 'profile-start' }),
    profileStop: (path) => ask({ probe: 'profile-stop', path }),
  }
}

/**
 * OPA-Envoy: `opa run --server` with the envoy_ext_authz_grpc plugin answering at
 * envoy/authz/result, on free loopback ports, decision logs off. `cpu`: pin to that core
 * (GOMAXPROCS=1 then, as the Go runtime would also derive from the affinity mask). Its `probe`
 * reads the Go heap allocated over a phase from OPA's /metrics.
 */
export async function startOpaEnvoy(policy, opaBin, dir, { cpu } = {}) {
  const [port, httpPort] = [await freePort(), await freePort()]
  const config = join(dir, `opa-${policy.id}-${port}.yaml`)
  await writeFile(
    config,
    [
      'plugins:',
      '  envoy_ext_authz_grpc:',
      `    addr: 127.0.0.1:${port}`,
      '    path: envoy/authz/result',
      'decision_logs:',
      '  console: false',
      '',
    ].join('\n'),
  )
  const argv = [
    opaBin,
    'run',
    '--server',
    '--disable-telemetry',
    '--log-level',
    'error',
    '--addr',
    `127.0.0.1:${httpPort}`,
    '--config-file',
    config,
    policy.rego,
    ...(policy.data !== undefined ? [policy.data] : []),
  ]
  const [cmd, ...args] = pinned(cpu, argv)
  const env = cpu === undefined ? process.env : { ...process.env, GOMAXPROCS: '1' }
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env })
  const output = tail(proc)
  const target = `127.0.0.1:${port}`
  const stop = stopper(proc)
  try {
    await ready(target, policy.timed, proc, output)
  } catch (e) {
    await stop()
    throw new Error(`opa run (envoy_ext_authz_grpc): ${e.message}`)
  }
  return { name: 'OPA-Envoy', pid: proc.pid, grpc: target, stop, probe: goHeapProbe(`127.0.0.1:${httpPort}`) }
}

/**
 * Go heap bytes allocated between start and stop, from `go_memstats_alloc_bytes_total` on OPA's
 * /metrics (the Go runtime's cumulative count; one small HTTP request at each end of a phase).
 */
function goHeapProbe(addr) {
  const read = async () => {
    const text = await (await fetch(`http://${addr}/metrics`)).text()
    const m = /^go_memstats_alloc_bytes_total ([0-9.e+]+)$/m.exec(text)
    return m === null ? Number.NaN : Number(m[1])
  }
  let before = Number.NaN
  return {
    start: async () => {
      before = await read()
    },
    stop: async () => ({ allocatedBytes: (await read()) - before }),
  }
}

/**
 * Send every case of `policy` to every server and compare the answers with each other and with
 * the case's expectation (allowed, status; the policy's compared headers and body across servers).
 * Throws one error listing every disagreement; returns the answers otherwise.
 */
export async function checkAgreement(policy, servers) {
  const clients = servers.map((s) => checkClient(s.grpc))
  const problems = []
  const rows = []
  try {
    for (const c of policy.cases) {
      const answers = []
      for (const [i, client] of clients.entries()) {
        try {
          answers.push(answerOf(await client.check(c.request)))
        } catch (e) {
          answers.push({ error: e.message })
        }
        const a = answers[i]
        const who = `${servers[i].name} on "${c.name}"`
        if (a.error !== undefined) problems.push(`${who}: gRPC error ${a.error}`)
        else if (a.allowed !== c.allowed || a.status !== c.status)
          problems.push(
            `${who}: ${a.allowed ? 'allowed' : 'denied'} ${a.status}, expected ${c.allowed ? 'allowed' : 'denied'} ${c.status}`,
          )
      }
      const [first, ...rest] = answers
      for (const [k, a] of rest.entries()) {
        if (first.error !== undefined || a.error !== undefined) continue
        const who = `${servers[0].name} and ${servers[k + 1].name} on "${c.name}"`
        for (const h of policy.compareHeaders)
          if (first.headers[h] !== a.headers[h])
            problems.push(
              `${who}: header ${h} ${JSON.stringify(first.headers[h])} vs ${JSON.stringify(a.headers[h])}`,
            )
        if (policy.compareBody && first.body !== a.body)
          problems.push(`${who}: body ${JSON.stringify(first.body)} vs ${JSON.stringify(a.body)}`)
      }
      rows.push({ name: c.name, answers })
    }
  } finally {
    for (const c of clients) c.close()
  }
  if (problems.length > 0)
    throw new Error(
      `${policy.name}: the servers do not give the same answers, so nothing is timed:\n- ${problems.join('\n- ')}`,
    )
  return rows
}

/**
 * CPU time (user + system, ms) of `pid` and every process under it, from /proc (Linux); undefined
 * elsewhere. Children that already exited are not counted.
 */
export function treeCpuMs(pid) {
  const tick = 1000 / 100 // USER_HZ is 100 on Linux
  const stat = (p) => {
    try {
      const s = readFileSync(`/proc/${p}/stat`, 'latin1')
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
      return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) * tick }
    } catch {
      return undefined
    }
  }
  const own = stat(pid)
  if (own === undefined) return undefined
  const all = new Map()
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    const s = stat(d)
    if (s !== undefined) all.set(Number(d), s)
  }
  let total = 0
  const walk = (p) => {
    total += all.get(p)?.cpu ?? 0
    for (const [c, s] of all) if (s.ppid === p) walk(c)
  }
  walk(pid)
  return total
}
