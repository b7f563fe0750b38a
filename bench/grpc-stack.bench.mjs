// Why the gRPC listener is hand-written on node:http2 (issue 19 part 3): three servers that answer
// every Authorization/Check with the same canned CheckResponse and decide nothing, so all they
// cost is their gRPC stack. Bare node:http2 (lib/canned-authz-child.mjs, the floor of
// envoy.bench.mjs), `@grpc/grpc-js` (lib/canned-grpcjs-child.mjs) and `@connectrpc/connect-node`
// with a service descriptor built at run time (lib/canned-connect-child.mjs).
//
// Driven as sidecar.bench.mjs drives verdict and OPA-Envoy: on Linux with two or more cores and
// `taskset`, each server pinned to core 0 and its lean generator (lib/loadgen-child.mjs) to core 1;
// all three up at once, taking turns in interleaved rounds (the order rotates every round) after
// unrecorded warm-up phases (until each answered WARMUP_CALLS calls); saturation (closed loop,
// CONCURRENCY calls in flight over CONNECTIONS connections), the same CheckRequest frame for all
// (seed 000's timed request). Per phase: checks/s from the generator, the server's CPU per check
// from /proc. Before timing, each server answers a grpc-js client (gRPC status 0,
// CheckResponse.status.code 0) and the generator's own `check` (the frame the timed calls send).
//
// GRPC_STACK_BENCH_ROUNDS (3), GRPC_STACK_BENCH_PHASE_MS (2000), GRPC_STACK_BENCH_PIN=0 (no pinning).
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { canPin, machineStalls, onCore, startLoadgen } from './lib/loadgen.mjs'
import { versionOf } from './lib/packages.mjs'
import {
  answerOf,
  checkClient,
  checkWire,
  grpcFrame,
  ROOT,
  seed000,
  treeCpuMs,
} from './lib/sidecar-setup.mjs'

const TITLE = 'gRPC stack: canned answers on node:http2, grpc-js and Connect'
const ROUNDS = Number(process.env.GRPC_STACK_BENCH_ROUNDS ?? 3)
const PHASE_MS = Number(process.env.GRPC_STACK_BENCH_PHASE_MS ?? 2000)
const CONCURRENCY = 32
const CONNECTIONS = 2
const TIMEOUT_MS = 2000
/** Warm-up: saturation phases, not recorded, until a server answered this many calls (at most WARMUP_PHASES). */
const WARMUP_CALLS = 5000
const WARMUP_PHASES = 5
const PIN = canPin('GRPC_STACK_BENCH_PIN')

const SERVERS = [
  { name: 'bare node:http2', file: 'canned-authz-child.mjs' },
  { name: `@grpc/grpc-js ${versionOf('@grpc/grpc-js')}`, file: 'canned-grpcjs-child.mjs' },
  {
    name: `@connectrpc/connect-node ${versionOf('@connectrpc/connect-node')} + @bufbuild/protobuf ${versionOf('@bufbuild/protobuf')}`,
    file: 'canned-connect-child.mjs',
  },
]

const fmtMs = (ms) =>
  Number.isNaN(ms) ? 'n/a' : ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(0)} µs`
const fmtUs = (us) => (us === undefined || Number.isNaN(us) ? 'n/a' : `${us.toFixed(0)} µs`)
const fmtRate = (x) => `${Math.round(x).toLocaleString('en-US')}/s`
const ratio = (a, b) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : 'n/a')
const median = (xs) => {
  const s = xs.filter((x) => x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const pinned = (core, argv) => onCore(PIN ? core : undefined, argv)

/** A canned server on core 0; resolves once it printed its `listening` line. */
async function startServer(file) {
  const [cmd, ...args] = pinned(0, [process.execPath, join(ROOT, 'bench/lib', file)])
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise((r) => proc.on('exit', r))
  let out = ''
  const listening = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not start`)), 30_000)
    proc.stdout.on('data', (c) => {
      out += c
      const line = out.split('\n').find((l) => l.includes('"listening"'))
      if (line) {
        clearTimeout(timer)
        resolve(JSON.parse(line))
      }
    })
    proc.on('exit', (code) => reject(new Error(`${file} exited with ${code}`)))
  })
  return {
    grpc: listening.grpc,
    pid: proc.pid,
    stop: () => {
      proc.kill('SIGTERM')
      return exited
    },
  }
}

/** One saturation phase: the generator's summary plus the server's CPU per check. */
async function phase(server, gen) {
  const cpu0 = treeCpuMs(server.pid)
  const r = await gen.ask({ cmd: 'saturate', concurrency: CONCURRENCY, ms: PHASE_MS, timeoutMs: TIMEOUT_MS })
  const cpu1 = treeCpuMs(server.pid)
  const checks = r.n + r.errors
  return {
    ...r,
    cpuUs:
      cpu0 === undefined || cpu1 === undefined || checks === 0 ? undefined : ((cpu1 - cpu0) * 1000) / checks,
  }
}

/** The server's answer to one Check through a grpc-js client: gRPC status 0 and an allow, or throws. */
async function checkAnswer(name, target, request) {
  const client = checkClient(target)
  try {
    const res = await client.check(request)
    if (!answerOf(res).allowed) throw new Error(`${name}: CheckResponse.status.code ${res.status?.code}`)
  } catch (e) {
    throw new Error(`${name} did not answer Check with gRPC status 0 and an allow: ${e.message}`)
  } finally {
    client.close()
  }
}

export default async function (report) {
  const request = seed000().timed
  const payload = grpcFrame(request).toString('base64')
  const servers = []
  const gens = []
  let results
  let stalls
  try {
    if (PIN) stalls = await machineStalls(PHASE_MS)
    for (const s of SERVERS) {
      const server = { ...s, ...(await startServer(s.file)) }
      servers.push(server)
      await checkAnswer(s.name, server.grpc, request)
      const gen = startLoadgen(PIN ? 1 : undefined)
      gens.push(gen)
      await gen.ask({
        cmd: 'connect',
        transport: 'grpc',
        target: server.grpc,
        path: checkWire().path,
        payload,
        connections: CONNECTIONS,
      })
      if (!(await gen.ask({ cmd: 'check' })).ok)
        throw new Error(`${s.name} did not allow the generator's Check (gRPC status 0, status.code 0)`)
    }
    // Warm-up by calls, not time: a slow stack gets as many calls to be compiled by V8 as a fast one.
    for (const [i, s] of servers.entries())
      for (let calls = 0, k = 0; calls < WARMUP_CALLS && k < WARMUP_PHASES; k++)
        calls += (await phase(s, gens[i])).n
    results = servers.map(() => [])
    for (let r = 0; r < ROUNDS; r++)
      for (let k = 0; k < servers.length; k++) {
        const i = (k + r) % servers.length
        const x = await phase(servers[i], gens[i])
        results[i].push(x)
        console.error(
          `  grpc-stack round ${r + 1} ${servers[i].name}: ${fmtRate(x.rps)}, ${fmtUs(x.cpuUs)} CPU per check, errors ${x.errors}`,
        )
      }
  } finally {
    for (const g of gens) await g.close()
    for (const s of servers) await s.stop()
  }
  const sum = results.map((xs) => ({
    rps: median(xs.map((x) => x.rps)),
    rpsRounds: xs.map((x) => x.rps),
    cpu: median(xs.map((x) => x.cpuUs)),
    cpuRounds: xs.map((x) => x.cpuUs),
    p99: median(xs.map((x) => x.p99)),
    errors: xs.reduce((a, x) => a + x.errors, 0),
    reopened: xs.reduce((a, x) => a + (x.reopened ?? 0), 0),
  }))
  const floor = sum[0]
  const rows = servers.map((s, i) => {
    const x = sum[i]
    const errors = x.reopened > 0 ? `${x.errors} (${x.reopened} new connections)` : String(x.errors)
    return `| ${s.name} (bench/lib/${s.file}) | ${fmtRate(x.rps)} (${x.rpsRounds.map(fmtRate).join(' / ')}) | ${ratio(x.rps, floor.rps)} | ${fmtUs(x.cpu)} (${x.cpuRounds.map(fmtUs).join(' / ')}) | ${ratio(x.cpu, floor.cpu)} | ${fmtMs(x.p99)} | ${errors} |`
  })
  const lost = stalls === undefined ? 0 : Math.max(...stalls.map((s) => s.totalMs)) / PHASE_MS
  const stall = (s, core) =>
    `core ${core}: ${s.totalMs.toFixed(1)} ms in all, ${s.over1ms} stalls over 1 ms, longest ${s.maxMs.toFixed(2)} ms`
  report.section(
    TITLE,
    [
      `Three Authorization/Check servers that decide nothing: each answers every call with the same
CheckResponse (status OK, the bytes \`0a 00\`) and decodes no more of the request than its stack
must, so the difference between them is the gRPC stack alone. grpc-js gets a method definition whose
serializers pass bytes through; Connect gets a descriptor built at run time (no generated code) with
unknown request fields skipped. Node ${process.version}. Before timing, each answered a grpc-js client with gRPC status 0 and
CheckResponse.status.code 0, and the generator's own check of the frame it times.`,
      '',
      `Saturation, ${CONCURRENCY} calls in flight over ${CONNECTIONS} connections from bench/lib/loadgen-child.mjs
(pre-encoded frames on raw HTTP/2; the request is seed 000's timed CheckRequest), ${PHASE_MS / 1000} s per phase,
${ROUNDS} interleaved rounds (the order rotates each round) after unrecorded phases until each
server answered ${WARMUP_CALLS.toLocaleString('en-US')} calls (at most ${WARMUP_PHASES} phases: a slow stack gets as many calls
for V8 to compile as a fast one). CPU per check: the server process's user + system time over the phase (/proc, 10 ms
ticks) divided by the calls answered or failed; it is steadier than throughput when other work shares the cores.`,
      '',
      PIN
        ? `Pinned with \`taskset\`: servers on core 0, generators on core 1. Machine stalls while spinning on both cores for ${PHASE_MS / 1000} s before the runs: ${stall(stalls[0], 0)}; ${stall(stalls[1], 1)}.`
        : 'Not pinned (no `taskset`, fewer than two cores, or GRPC_STACK_BENCH_PIN=0): servers and generators share the cores, so the rows are not per core.',
      ...(lost > 0.05
        ? [
            '',
            `**A noisy run**: in the stall test a core was taken away from a spinning process ${(lost * 100).toFixed(0)}% of the time (a quiet machine shows well under 1%). Throughput then says little; CPU per check and the ratios between servers say more.`,
          ]
        : []),
      '',
      '| server (canned answer, no decision) | checks/s, median (rounds) | vs node:http2 | CPU per check, median (rounds) | vs node:http2 | p99 | errors |',
      '|---|---|---|---|---|---|---|',
      ...rows,
    ].join('\n'),
  )
}
