// The ext_authz sidecar under load: `verdict serve` as a child process, driven over loopback by
// an open-loop generator at fixed rates (latency counted from each request's scheduled send time,
// so a stall shows up in the percentiles) and by a closed loop at saturation. Both gRPC
// (Authorization/Check, one HTTP/2 connection) and the HTTP service mode (keep-alive pool).
// Policies: seed 003 (JWT ES256 + CEL) and seed 001 (MCP tool allow-list), plus a floor: a canned
// answer on bare node:http2 / node:http that decides nothing (bench/lib/canned-authz-child.mjs).
//
// The generator is its own lean process (bench/lib/loadgen-child.mjs: pre-encoded requests, raw
// HTTP/2 frames and raw HTTP/1.1 on sockets, little allocation), as Envoy's C++ client would be.
// On Linux with two or more cores and `taskset`, the sidecar is pinned to core 0 and the generator
// to core 1 (ENVOY_BENCH_PIN=0 turns that off); the section says which was used.
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parsePolicyText } from '@verdict/core/internal'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { canPin, machineStalls, startLoadgen } from './lib/loadgen.mjs'
import { optionalImport } from './lib/packages.mjs'
import { checkWire, grpcFrame, jsonToStruct } from './lib/sidecar-setup.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(ROOT, 'packages/cli/bin/verdict.js')
const CANNED = join(ROOT, 'bench/lib/canned-authz-child.mjs')
const RATES = (process.env.ENVOY_BENCH_RATES ?? '500,2000,5000').split(',').map(Number)
const PHASE_MS = Number(process.env.ENVOY_BENCH_PHASE_MS ?? 2000)
const CONCURRENCY = 32
/** Any request slower than this counts as an error, so a phase always ends. */
const REQUEST_TIMEOUT_MS = 2000
const PIN = canPin('ENVOY_BENCH_PIN')

const fmtMs = (ms) => (ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(0)} µs`)

/** `argv` run on `core` when pinning, else as is. */
const onCore = (core, argv) => (PIN ? ['taskset', ['-c', String(core), ...argv]] : [argv[0], argv.slice(1)])

async function startSidecar(argv) {
  const [cmd, args] = onCore(0, [process.execPath, ...argv])
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] })
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

const serveArgs = (policyPath) => [
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
]

/** The pre-encoded request each transport sends, for the generator. */
function payloads(sidecar, grpcRequest, httpRequest) {
  const frame = grpcFrame(grpcRequest())
  const { method, path, headers } = httpRequest()
  const head = Object.entries({ host: sidecar.http, ...headers, 'content-length': '0' })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')
  return {
    gRPC: {
      transport: 'grpc',
      target: sidecar.grpc,
      path: checkWire().path,
      payload: frame.toString('base64'),
    },
    HTTP: {
      transport: 'http',
      target: sidecar.http,
      payload: Buffer.from(`${method} ${path} HTTP/1.1\r\n${head}\r\n`).toString('base64'),
    },
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
async function seed001() {
  const principal = 'spiffe://cluster.local/ns/agents/sa/agent-a'
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: 7,
    method: 'tools/call',
    params: { name: 'get-sum', arguments: { a: 1, b: 2 } },
  })
  const headers = { 'content-type': 'application/json', 'mcp-session-id': 's1' }
  const metadata = jsonToStruct({
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
  const stalls = await machineStalls(PHASE_MS)
  const floor = async () => ({
    name: 'floor: canned allow, no decision (bare node:http2 / node:http)',
    argv: [CANNED],
    grpc: () => ({ attributes: {} }),
    http: () => ({ method: 'GET', path: '/' }),
  })
  try {
    for (const make of [floor, seed003, seed001]) {
      const policy = await make(dir)
      const sidecar = await startSidecar(policy.argv ?? serveArgs(policy.path))
      const p = payloads(sidecar, policy.grpc, policy.http ?? (() => ({ method: 'GET', path: '/' })))
      try {
        for (const transport of ['gRPC', ...(policy.http ? ['HTTP'] : [])]) {
          const gen = startLoadgen(PIN ? 1 : undefined)
          try {
            await gen.ask({ cmd: 'connect', ...p[transport] })
            if (!(await gen.ask({ cmd: 'check' })).ok) {
              rows.push(
                `| ${policy.name} | ${transport} | - | not run: the check was not allowed | | | | | |`,
              )
              continue
            }
            const saturate = () =>
              gen.ask({
                cmd: 'saturate',
                concurrency: CONCURRENCY,
                ms: PHASE_MS,
                timeoutMs: REQUEST_TIMEOUT_MS,
              })
            await saturate() // warm-up: JIT, token cache, connections
            for (const rate of RATES) {
              const r = await gen.ask({ cmd: 'rate', rate, ms: PHASE_MS, timeoutMs: REQUEST_TIMEOUT_MS })
              rows.push(
                `| ${policy.name} | ${transport} | ${rate.toLocaleString('en-US')}/s | ${Math.round(r.rps).toLocaleString('en-US')}/s | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} | ${fmtMs(r.max)} | ${fmtMs(r.sendLateP99)} | ${r.errors} |`,
              )
            }
            const r = await saturate()
            rows.push(
              `| ${policy.name} | ${transport} | saturation (${CONCURRENCY} in flight) | ${Math.round(r.rps).toLocaleString('en-US')}/s | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} | ${fmtMs(r.max)} | | ${r.errors} |`,
            )
          } finally {
            await gen.close()
          }
        }
      } finally {
        await sidecar.stop()
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  const stall = (s, core) =>
    `core ${core}: ${s.totalMs.toFixed(1)} ms in all, ${s.over1ms} stalls over 1 ms, longest ${s.maxMs.toFixed(2)} ms`
  report.section(
    'Envoy ext_authz sidecar under load',
    [
      `\`verdict serve\` in a child process (decision log off), load from a separate lean generator process over loopback (raw HTTP/2 frames for gRPC, raw HTTP/1.1 on keep-alive sockets); ${PHASE_MS / 1000} s per row.`,
      'Fixed rates are open loop: latency runs from the scheduled send time, so queueing and stalls anywhere count.',
      `Errors are non-allow answers or requests over ${REQUEST_TIMEOUT_MS} ms. Target: p99 under 1 ms at 2,000 checks/s.`,
      PIN
        ? 'Pinned with taskset: sidecar (or floor server) on core 0, generator on core 1.'
        : 'Not pinned: the generator and the sidecar share the cores as the scheduler sees fit.',
      '"gen late p99": how late the generator itself sent (p99), part of the latency.',
      "The floor rows answer a canned allow without deciding anything: what this machine, Node's HTTP stacks and the generator cost.",
      `Machine stalls while spinning on both cores for ${PHASE_MS / 1000} s before the runs (time taken away from a running process by the kernel or hypervisor): ${stall(stalls[0], 0)}; ${stall(stalls[1], 1)}.`,
      '',
      '| policy | transport | offered | achieved | p50 | p99 | max | gen late p99 | errors |',
      '|---|---|---|---|---|---|---|---|---|',
      ...rows,
    ].join('\n'),
  )
}
