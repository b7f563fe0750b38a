// The ext_authz sidecar under load: `verdict serve` as a child process, driven over loopback by
// an open-loop generator at fixed rates (latency counted from each request's scheduled send time,
// so a stall shows up in the percentiles) and by a closed loop at saturation. Both gRPC
// (Authorization/Check, one HTTP/2 connection) and the HTTP service mode (keep-alive pool).
// Policies: seed 003 (JWT ES256 + CEL) and seed 001 (MCP tool allow-list). The generator and the
// sidecar share this machine's cores, so the numbers are an upper bound on the sidecar's cost.
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { connect } from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parsePolicyText } from '@verdict/core'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { optionalImport } from './lib/packages.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(ROOT, 'packages/cli/bin/verdict.js')
const RATES = (process.env.ENVOY_BENCH_RATES ?? '500,2000,5000').split(',').map(Number)
const PHASE_MS = Number(process.env.ENVOY_BENCH_PHASE_MS ?? 2000)
const CONCURRENCY = 32
/** Any request slower than this counts as an error, so a phase always ends. */
const REQUEST_TIMEOUT_MS = 2000

const fmtMs = (ms) => (ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(0)} µs`)

function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

async function startSidecar(policyPath) {
  const proc = spawn(
    process.execPath,
    [
      BIN,
      'serve',
      '-p',
      policyPath,
      '--grpc',
      '127.0.0.1:0',
      '--http',
      '127.0.0.1:0',
      '--metrics',
      'off',
      '--json',
      '--no-decision-log',
      '--max-concurrent',
      '100000',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let out = ''
  const listening = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('sidecar did not start')), 30_000)
    proc.stdout.on('data', (c) => {
      out += c
      const line = out.split('\n').find((l) => l.includes('"listening"'))
      if (line) {
        clearTimeout(timer)
        resolve(JSON.parse(line))
      }
    })
    proc.on('exit', (code) => reject(new Error(`sidecar exited with ${code}`)))
  })
  const exited = new Promise((r) => proc.on('exit', r))
  return {
    ...listening,
    stop: () => {
      proc.kill('SIGTERM')
      return exited
    },
  }
}

/** One request sender per transport: resolves true when the answer is the expected allow. */
function senders(envoy, sidecar, grpcRequest, httpRequest) {
  // A bare HTTP/2 gRPC sender (one connection, the request encoded once) so the generator spends
  // little CPU next to the sidecar; grpc-js's client machinery would dominate the measurement.
  const session = connect(`http://${sidecar.grpc}`)
  const check = envoy.loadDefinitions()['envoy.service.auth.v3.Authorization'].Check
  const message = check.requestSerialize(grpcRequest())
  const frame = Buffer.alloc(5 + message.length)
  frame.writeUInt32BE(message.length, 1)
  message.copy(frame, 5)
  const grpc = () =>
    new Promise((resolve) => {
      const stream = session.request({
        ':method': 'POST',
        ':path': check.path,
        'content-type': 'application/grpc',
        te: 'trailers',
      })
      const chunks = []
      let status
      stream.setTimeout(REQUEST_TIMEOUT_MS, () => stream.close())
      stream.on('trailers', (t) => {
        status = t['grpc-status']
      })
      stream.on('data', (c) => chunks.push(c))
      stream.on('error', () => resolve(false))
      stream.on('close', () => {
        if (status !== '0' || chunks.length === 0) return resolve(false)
        const body = Buffer.concat(chunks).subarray(5)
        resolve((check.responseDeserialize(body).status?.code ?? 0) === 0)
      })
      stream.end(frame)
    })
  const [host, port] = sidecar.http.split(':')
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY * 2 })
  const http = () =>
    new Promise((resolve) => {
      const { method, path, headers, body } = httpRequest()
      const req = request(
        { host, port: Number(port), method, path, headers, agent, timeout: REQUEST_TIMEOUT_MS },
        (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode === 200))
        },
      )
      req.on('error', () => resolve(false))
      req.on('timeout', () => req.destroy())
      req.end(body)
    })
  return {
    grpc,
    http,
    close: () => {
      session.close()
      agent.destroy()
    },
  }
}

/** Open loop: `rate` requests per second for PHASE_MS, latency from the scheduled send time. */
async function fixedRate(send, rate) {
  const total = Math.round((rate * PHASE_MS) / 1000)
  const interval = 1000 / rate
  const lat = []
  let errors = 0
  let sent = 0
  const pending = []
  const t0 = performance.now()
  while (sent < total) {
    const now = performance.now()
    const due = Math.min(total, Math.floor((now - t0) / interval) + 1)
    for (; sent < due; sent++) {
      const scheduled = t0 + sent * interval
      pending.push(
        send().then((ok) => {
          if (ok) lat.push(performance.now() - scheduled)
          else errors++
        }),
      )
    }
    await new Promise((r) => setImmediate(r))
  }
  await Promise.all(pending)
  const elapsed = (performance.now() - t0) / 1000
  return summary(lat, errors, elapsed)
}

/** Closed loop: CONCURRENCY workers back to back for PHASE_MS. */
async function saturate(send) {
  const lat = []
  let errors = 0
  const t0 = performance.now()
  const end = t0 + PHASE_MS
  const worker = async () => {
    while (performance.now() < end) {
      const s = performance.now()
      if (await send()) lat.push(performance.now() - s)
      else errors++
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  return summary(lat, errors, (performance.now() - t0) / 1000)
}

function summary(lat, errors, seconds) {
  lat.sort((a, b) => a - b)
  return {
    n: lat.length,
    errors,
    rps: lat.length / seconds,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    max: lat.at(-1) ?? Number.NaN,
  }
}

/** Seed 003 with a key pair made here (the example's private key is not in the repo). */
async function seed003(dir) {
  const doc = parsePolicyText(await readFile(join(ROOT, 'examples/003-jwt-cel/policy.yaml'), 'utf8')).value
  const provider = doc.authentication.jwt.providers[0]
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  provider.jwks = {
    inline: { keys: [{ ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256', use: 'sig' }] },
  }
  const path = join(dir, 'seed-003.json')
  await writeFile(path, JSON.stringify(doc))
  const token = await new SignJWT({ sub: 'alice', email: 'alice@company.com' })
    .setProtectedHeader({ alg: 'ES256', kid: 'bench' })
    .setIssuer(provider.issuer)
    .setAudience(provider.audiences?.[0] ?? 'verdict')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(privateKey)
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  return {
    name: 'seed 003: JWT (ES256) + CEL',
    path,
    grpc: () => ({
      attributes: {
        request: { http: { method: 'POST', path: '/v1/chat/completions', host: 'llm', headers } },
      },
    }),
    http: () => ({ method: 'POST', path: '/v1/chat/completions', headers }),
  }
}

/** Seed 001, local server policy: agent-a calls get-sum (MCP metadata + JSON-RPC body). */
async function seed001(_dir, envoy) {
  const principal = 'spiffe://cluster.local/ns/agents/sa/agent-a'
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: 7,
    method: 'tools/call',
    params: { name: 'get-sum', arguments: { a: 1, b: 2 } },
  })
  const headers = { 'content-type': 'application/json', 'mcp-session-id': 's1' }
  const metadata = envoy.jsonToStruct({
    jsonrpc: '2.0',
    method: 'tools/call',
    id: 7,
    params: { name: 'get-sum' },
  })
  return {
    name: 'seed 001: MCP tool allow-list',
    path: join(ROOT, 'examples/001-mcp-tools/local.policy.yaml'),
    grpc: () => ({
      attributes: {
        source: { principal },
        request: { http: { method: 'POST', path: '/mcp', host: 'mcp', headers, body } },
        metadataContext: { filterMetadata: { mcp_proxy: metadata } },
      },
    }),
    // The HTTP service mode carries no peer principal: the check runs, the rule denies (403).
    http: undefined,
  }
}

export default async function (report) {
  const envoy = await optionalImport('@verdict/envoy')
  if (typeof envoy === 'string') {
    report.section('Envoy ext_authz sidecar under load', `Not run: ${envoy}.`)
    return
  }
  const dir = await mkdtemp(join(tmpdir(), 'verdict-envoy-bench-'))
  const rows = []
  try {
    for (const make of [seed003, seed001]) {
      const policy = await make(dir, envoy)
      const sidecar = await startSidecar(policy.path)
      const s = senders(envoy, sidecar, policy.grpc, policy.http ?? (() => ({ method: 'GET', path: '/' })))
      try {
        const transports = [['gRPC', s.grpc], ...(policy.http ? [['HTTP', s.http]] : [])]
        for (const [transport, send] of transports) {
          if (!(await send())) {
            rows.push(`| ${policy.name} | ${transport} | - | not run: the check was not allowed | | | | |`)
            continue
          }
          await saturate(send) // warm-up: JIT, token cache, connections
          for (const rate of RATES) {
            const r = await fixedRate(send, rate)
            rows.push(
              `| ${policy.name} | ${transport} | ${rate.toLocaleString('en-US')}/s | ${Math.round(r.rps).toLocaleString('en-US')}/s | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} | ${fmtMs(r.max)} | ${r.errors} |`,
            )
          }
          const r = await saturate(send)
          rows.push(
            `| ${policy.name} | ${transport} | saturation (${CONCURRENCY} in flight) | ${Math.round(r.rps).toLocaleString('en-US')}/s | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} | ${fmtMs(r.max)} | ${r.errors} |`,
          )
        }
      } finally {
        s.close()
        await sidecar.stop()
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  report.section(
    'Envoy ext_authz sidecar under load',
    [
      `\`verdict serve\` in a child process (decision log off), load from this process over loopback; ${PHASE_MS / 1000} s per row.`,
      'Fixed rates are open loop: latency runs from the scheduled send time, so queueing counts. Errors are',
      `non-allow answers or requests over ${REQUEST_TIMEOUT_MS} ms. Target: p99 under 1 ms at 2,000 checks/s.`,
      'The generator shares the two cores with the sidecar.',
      '',
      '| policy | transport | offered | achieved | p50 | p99 | max | errors |',
      '|---|---|---|---|---|---|---|---|',
      ...rows,
    ].join('\n'),
  )
}
