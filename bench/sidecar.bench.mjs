// verdict serve against OPA-Envoy (issue 19): the same CheckRequests over gRPC to `verdict serve` and
// to `opa run --server` with the envoy_ext_authz_grpc plugin, on two policies written both ways
// (lib/sidecar-setup.mjs). Before any timing both servers answer the same case list and must agree
// (allowed, HTTP status, the compared headers and body); a disagreement aborts the bench.
//
// Pinned rows: on Linux with two or more cores and `taskset`, each server runs pinned to core 0
// (OPA with GOMAXPROCS=1) and the lean generator (lib/loadgen-child.mjs) pinned to core 1; both
// servers are up at once and take turns, phase by phase, in interleaved rounds (A B, then B A).
// Phases: saturation (closed loop, CONCURRENCY calls in flight) and open loop at fixed rates
// (latency from each request's scheduled send time). Per phase the server's CPU time comes from
// /proc (user + system of the process and its children) and, for verdict, the V8 heap allocated
// from a v8.GCProfiler preloaded into the server (lib/server-probe-child.mjs).
//
// Unpinned row: `verdict serve --workers 2` against OPA-Envoy with the Go runtime's default, the
// generator unpinned too, when `verdict serve` has `--workers`; otherwise the row says why not.
//
// SIDECAR_BENCH_ROUNDS (3), SIDECAR_BENCH_PHASE_MS (2000), SIDECAR_BENCH_RATES (500,2000,5000),
// SIDECAR_BENCH_PIN=0 (no pinning), SIDECAR_BENCH_CPU_PROF=<dir> (the pinned verdict servers are
// profiled by V8's sampler over the timed rounds, profiles written to <dir>; the section then lists
// their hot spots).
import { spawnSync } from 'node:child_process'
import { randomInt, randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { hotSpots } from './lib/cpu-profile.mjs'
import { canPin, machineStalls, startLoadgen } from './lib/loadgen.mjs'
import {
  checkAgreement,
  checkWire,
  findOpa,
  grpcFrame,
  jwtHeader,
  ROOT,
  seed000,
  startOpaEnvoy,
  startVerdict,
  treeCpuMs,
  workersFlag,
} from './lib/sidecar-setup.mjs'

const TITLE = 'Sidecar: verdict serve against OPA-Envoy'
const ROUNDS = Number(process.env.SIDECAR_BENCH_ROUNDS ?? 3)
const PHASE_MS = Number(process.env.SIDECAR_BENCH_PHASE_MS ?? 2000)
const RATES = (process.env.SIDECAR_BENCH_RATES ?? '500,2000,5000').split(',').map(Number)
const CONCURRENCY = 32
/** gRPC connections the generator spreads calls over, as an Envoy with two worker threads keeps. */
const CONNECTIONS = 2
/** A call slower than this counts as an error, so a phase always ends. */
const TIMEOUT_MS = 2000
const WORKERS = 2
const CPU_PROF = process.env.SIDECAR_BENCH_CPU_PROF
/** Distinct timed requests the generator sends in turn (see `variants`). */
const VARIANTS = 1024
const PIN = canPin('SIDECAR_BENCH_PIN')

const fmtMs = (ms) =>
  Number.isNaN(ms) ? 'n/a' : ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(0)} µs`
const fmtUs = (us) => (us === undefined || Number.isNaN(us) ? 'n/a' : `${us.toFixed(1)} µs`)
const fmtKb = (b) => (b === undefined || Number.isNaN(b) ? 'n/a' : `${(b / 1024).toFixed(1)} KB`)
const fmtRate = (x) => `${Math.round(x).toLocaleString('en-US')}/s`
const ratio = (a, b) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : 'n/a')
const median = (xs) => {
  const s = xs.filter((x) => x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/**
 * `VARIANTS` copies of the timed request that differ as Envoy's checks do, sent in turn: each has
 * its own request id (`http.id` and `x-request-id`) and time (nanoseconds, a few seconds apart),
 * so no server sees the same bytes twice in a row.
 */
function variants(request) {
  return Array.from({ length: VARIANTS }, (_, i) => {
    const r = structuredClone(request)
    const a = r.attributes.request
    a.time = {
      seconds: String(Number(a.time.seconds) + Math.floor(i / 256)),
      nanos: randomInt(1_000_000_000),
    }
    a.http.id = String(10_000_000_000_000_000_000n + BigInt(randomInt(2 ** 47)) * 4096n + BigInt(i))
    a.http.headers = { ...a.http.headers, 'x-request-id': randomUUID() }
    return r
  })
}

/** One phase against one server: the generator's summary plus the server's CPU and heap per check. */
async function phase(server, gen, what) {
  const cpu0 = treeCpuMs(server.pid)
  await server.probe?.start()
  const r =
    what === 'saturation'
      ? await gen.ask({ cmd: 'saturate', concurrency: CONCURRENCY, ms: PHASE_MS, timeoutMs: TIMEOUT_MS })
      : await gen.ask({ cmd: 'rate', rate: what, ms: PHASE_MS, timeoutMs: TIMEOUT_MS })
  const heap = await server.probe?.stop()
  const cpu1 = treeCpuMs(server.pid)
  const checks = r.n + r.errors
  return {
    ...r,
    cpuUs:
      cpu0 === undefined || cpu1 === undefined || checks === 0 ? undefined : ((cpu1 - cpu0) * 1000) / checks,
    heapBytes: heap === undefined || checks === 0 ? undefined : heap.allocatedBytes / checks,
    gcMs: heap?.gcMs,
  }
}

/**
 * Both servers for `policy` up at once, agreement checked, then interleaved rounds of every phase.
 * `pinned`: servers on core 0, generators on core 1; `workers`: verdict serve --workers N.
 */
async function sideBySide(policy, opaBin, dir, { pinned, workers }) {
  const core = pinned ? 0 : undefined
  const servers = []
  const gens = []
  const profile =
    CPU_PROF !== undefined && pinned && workers === undefined
      ? join(CPU_PROF, `verdict-${policy.id}.cpuprofile`)
      : undefined
  let results
  try {
    servers.push(await startVerdict(policy, { cpu: core, workers, probe: pinned && workers === undefined }))
    servers.push(await startOpaEnvoy(policy, opaBin, dir, { cpu: core }))
    await checkAgreement(policy, servers)
    const payload = grpcFrame(policy.timed).toString('base64')
    const payloads = variants(policy.timed).map((r) => grpcFrame(r).toString('base64'))
    for (const s of servers) {
      const gen = startLoadgen(pinned ? 1 : undefined)
      gens.push(gen)
      await gen.ask({
        cmd: 'connect',
        transport: 'grpc',
        target: s.grpc,
        path: checkWire().path,
        payload,
        payloads,
        connections: CONNECTIONS,
      })
      if (!(await gen.ask({ cmd: 'check' })).ok)
        throw new Error(`${policy.name}: ${s.name} did not allow the timed request from the generator`)
    }
    // Warm-up (JIT, token caches, connections), not recorded.
    for (const [i, s] of servers.entries()) await phase(s, gens[i], 'saturation')
    const phases = ['saturation', ...RATES]
    results = servers.map(() => Object.fromEntries(phases.map((p) => [p, []])))
    if (profile !== undefined) await servers[0].probe.profileStart()
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? [0, 1] : [1, 0]
      for (const p of phases)
        for (const i of order) {
          const x = await phase(servers[i], gens[i], p)
          results[i][p].push(x)
          console.error(
            `  ${policy.id} round ${r + 1} ${servers[i].name} ${p === 'saturation' ? 'saturation' : `${p}/s`}: ${fmtRate(x.rps)}, p99 ${fmtMs(x.p99)}, errors ${x.errors}`,
          )
        }
    }
    if (profile !== undefined) {
      await mkdir(CPU_PROF, { recursive: true })
      await servers[0].probe.profileStop(profile)
    }
  } finally {
    for (const g of gens) await g.close()
    for (const s of servers) await s.stop()
  }
  return {
    servers: servers.map((s, i) => ({ name: s.name, results: results[i] })),
    profile:
      profile === undefined
        ? undefined
        : { path: profile, ...hotSpots(JSON.parse(await readFile(profile, 'utf8')), 20) },
  }
}

/** Per server: medians over rounds (and the rounds) of what the tables show. */
function summarize(results) {
  const sat = results.saturation
  const out = {
    satRps: median(sat.map((x) => x.rps)),
    satRounds: sat.map((x) => x.rps),
    satP50: median(sat.map((x) => x.p50)),
    satP99: median(sat.map((x) => x.p99)),
    satErrors: sat.reduce((a, x) => a + x.errors, 0),
    satReopened: sat.reduce((a, x) => a + (x.reopened ?? 0), 0),
    satCpu: median(sat.map((x) => x.cpuUs)),
    satHeap: median(sat.map((x) => x.heapBytes)),
    rates: {},
  }
  for (const rate of RATES) {
    const xs = results[rate]
    out.rates[rate] = {
      rps: median(xs.map((x) => x.rps)),
      p50: median(xs.map((x) => x.p50)),
      p99: median(xs.map((x) => x.p99)),
      p99Rounds: xs.map((x) => x.p99),
      max: Math.max(...xs.map((x) => x.max).filter((x) => !Number.isNaN(x))),
      lateP99: median(xs.map((x) => x.sendLateP99)),
      errors: xs.reduce((a, x) => a + x.errors, 0),
      reopened: xs.reduce((a, x) => a + (x.reopened ?? 0), 0),
      cpu: median(xs.map((x) => x.cpuUs)),
      heap: median(xs.map((x) => x.heapBytes)),
    }
  }
  return out
}

function tables(label, runs) {
  const rows = []
  const targets = []
  const rounds = (xs, f) => xs.map(f).join(' / ')
  const errs = (n, reopened) => (reopened > 0 ? `${n} (${reopened} new connections)` : String(n))
  for (const { policy, servers } of runs) {
    const [v, o] = servers.map((s) => ({ name: s.name, ...summarize(s.results) }))
    for (const s of [v, o]) {
      rows.push(
        `| ${policy.name} | ${s.name} | saturation (${CONCURRENCY} in flight) | ${fmtRate(s.satRps)} (${rounds(s.satRounds, fmtRate)}) | ${fmtMs(s.satP50)} | ${fmtMs(s.satP99)} | | ${errs(s.satErrors, s.satReopened)} | ${fmtUs(s.satCpu)} | ${fmtKb(s.satHeap)} |`,
      )
      for (const rate of RATES) {
        const x = s.rates[rate]
        rows.push(
          `| ${policy.name} | ${s.name} | ${fmtRate(rate)} | ${fmtRate(x.rps)} | ${fmtMs(x.p50)} | ${fmtMs(x.p99)} (${rounds(x.p99Rounds, fmtMs)}) | ${fmtMs(x.lateP99)} | ${errs(x.errors, x.reopened)} | ${fmtUs(x.cpu)} | ${fmtKb(x.heap)} |`,
        )
      }
    }
    const perRound = v.satRounds.map((x, i) => ratio(x, o.satRounds[i])).join(' / ')
    const satRatio = v.satRps / o.satRps
    const p99Ratio = v.rates[2000]?.p99 / o.rates[2000]?.p99
    const top = RATES[RATES.length - 1]
    const verdict = (ok) => (ok ? 'met' : '**missed**')
    targets.push(
      `| ${policy.name} | saturation, checks/s${label.pinned ? ' per core' : ''} | ${fmtRate(v.satRps)} | ${fmtRate(o.satRps)} | ${ratio(v.satRps, o.satRps)} (rounds ${perRound}) | ≥ 2x | ${verdict(Number(satRatio.toFixed(2)) >= 2)} |`,
    )
    if (v.rates[2000] !== undefined)
      targets.push(
        `| ${policy.name} | p99 at 2,000/s | ${fmtMs(v.rates[2000].p99)} | ${fmtMs(o.rates[2000].p99)} | ${ratio(v.rates[2000].p99, o.rates[2000].p99)} | ≤ 1x | ${verdict(Number(p99Ratio.toFixed(2)) <= 1)} |`,
      )
    targets.push(
      `| ${policy.name} | errors at ${top.toLocaleString('en-US')}/s (all rounds) | ${v.rates[top].errors} | ${o.rates[top].errors} | | 0 | ${verdict(v.rates[top].errors === 0)} |`,
    )
    if (label.pinned) {
      targets.push(
        `| ${policy.name} | CPU per check, saturation | ${fmtUs(v.satCpu)} | ${fmtUs(o.satCpu)} | ${ratio(v.satCpu, o.satCpu)} | | |`,
      )
      if (v.rates[2000] !== undefined)
        targets.push(
          `| ${policy.name} | CPU per check at 2,000/s | ${fmtUs(v.rates[2000].cpu)} | ${fmtUs(o.rates[2000].cpu)} | ${ratio(v.rates[2000].cpu, o.rates[2000].cpu)} | | |`,
        )
      const heap = (s) => `${fmtKb(s.satHeap)}${s.rates[2000] ? ` / ${fmtKb(s.rates[2000].heap)}` : ''}`
      targets.push(
        `| ${policy.name} | heap allocated per check (V8 / Go), saturation${v.rates[2000] ? ' / 2,000/s' : ''} | ${heap(v)} | ${heap(o)} | ${ratio(v.satHeap, o.satHeap)} | | |`,
      )
    }
  }
  return [
    '| policy | server | offered | achieved (rounds) | p50 | p99 (rounds) | gen late p99 | errors | CPU per check | heap per check |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `Ratios from this run (medians over the ${ROUNDS} rounds; saturation also round by round):`,
    '',
    '| policy | measure | verdict | OPA-Envoy | verdict / OPA-Envoy | target | |',
    '|---|---|---|---|---|---|---|',
    ...targets,
  ].join('\n')
}

export default async function (report) {
  const opa = findOpa()
  if (opa.bin === undefined) {
    console.error(`[sidecar] SKIPPED verdict serve against OPA-Envoy: ${opa.why}`)
    report.section(
      TITLE,
      `Not run: ${opa.why}. Put OPA with the Envoy plugin on PATH or set OPA_BIN (in this repository's CI it is ../shared/bin/opa).`,
    )
    return
  }
  if (!existsSync(join(ROOT, 'packages/cli/dist/main.js'))) {
    report.section(
      TITLE,
      'Not run: packages/cli is not built (`pnpm build`, or run it through `pnpm bench`).',
    )
    return
  }
  const dir = await mkdtemp(join(tmpdir(), 'verdict-sidecar-bench-'))
  try {
    const policies = [seed000(), await jwtHeader(dir)]
    const stalls = PIN ? await machineStalls(PHASE_MS) : undefined
    const pinnedRuns = []
    for (const policy of policies) {
      console.error(`sidecar: ${policy.name}, ${PIN ? 'pinned' : 'not pinned'}`)
      pinnedRuns.push({ policy, ...(await sideBySide(policy, opa.bin, dir, { pinned: PIN })) })
    }
    const workers = workersFlag()
    const unpinnedRuns = []
    if (workers.ok)
      for (const policy of policies) {
        console.error(`sidecar: ${policy.name}, verdict serve --workers ${WORKERS}, not pinned`)
        unpinnedRuns.push({
          policy,
          ...(await sideBySide(policy, opa.bin, dir, { pinned: false, workers: WORKERS })),
        })
      }
    else console.error(`[sidecar] SKIPPED the --workers ${WORKERS} row: ${workers.why}`)
    const stall = (s, core) =>
      `core ${core}: ${s.totalMs.toFixed(1)} ms in all, ${s.over1ms} stalls over 1 ms, longest ${s.maxMs.toFixed(2)} ms`
    const agreed = policies.map((p) => `${p.name} (${p.cases.map((c) => c.name).join('; ')})`).join('; and ')
    const lost = stalls === undefined ? 0 : Math.max(...stalls.map((s) => s.totalMs)) / PHASE_MS
    const noisy =
      lost > 0.05
        ? `**A noisy run**: in the stall test before it, a core was taken away from a spinning process ${(lost * 100).toFixed(0)}% of the time (a quiet machine shows well under 1%), so the numbers below show that the bench runs and what it reports, not how the servers compare. Re-run on a quiet machine.`
        : undefined
    const version = spawnSync(opa.bin, ['version'], { encoding: 'utf8' }).stdout.split('\n')[0]
    report.section(
      TITLE,
      [
        `\`verdict serve\` (gRPC, decision log and metrics off) and OPA-Envoy (\`opa run --server\` with the
\`envoy_ext_authz_grpc\` plugin, ${version}, decision logs off, log level error), both up at once and
taking turns phase by phase, in ${ROUNDS} interleaved rounds (verdict first in odd rounds, OPA-Envoy
first in even ones) after one unrecorded saturation phase each; ${PHASE_MS / 1000} s per phase. The
load comes from bench/lib/loadgen-child.mjs (pre-encoded gRPC frames on raw HTTP/2, ${CONNECTIONS}
connections used in turn, a call slower than ${TIMEOUT_MS} ms counts as an error): the same
CheckRequests for both servers: ${VARIANTS.toLocaleString('en-US')} versions of one request from a caller allowed by the
policy, differing as Envoy's checks do in their request id (\`http.id\`, \`x-request-id\`) and time, sent in
turn. A connection the server closes is
replaced as Envoy's pool would (calls refused by a GOAWAY are sent again on the new one); the errors
column also says how many new connections a phase needed.`,
        '',
        `Before timing, both servers answered the same CheckRequests and agreed on every one (allowed or
denied, HTTP status, body, and the headers each policy sets): ${agreed}. The policies written both
ways: seed 000 is examples/000-istio-ext-authz/policy.yaml and bench/fixtures/seed-000.rego; the
JWT one is an \`authentication.jwt\` section (Strict, the bench's ES256 JWKS inline) with one
\`match\` rule against bench/fixtures/jwt-header.rego (\`io.jwt.verify_es256\`, then the issuer,
audience, expiry and the header in Rego). Both see the same valid token on every timed call;
verdict's verified-token cache hits, OPA verifies the signature on each call as configured by default.`,
        '',
        PIN
          ? `**Pinned, one core each**: each server pinned to core 0 with \`taskset\` (OPA with GOMAXPROCS=1), the generator to core 1. Machine stalls while spinning on both cores for ${PHASE_MS / 1000} s before the runs: ${stall(stalls[0], 0)}; ${stall(stalls[1], 1)}.`
          : '**Not pinned** (no `taskset`, fewer than two cores, or SIDECAR_BENCH_PIN=0): servers and generator share the cores as the scheduler sees fit, so the rows are not per core.',
        ...(noisy !== undefined ? ['', noisy] : []),
        '',
        `Open-loop rows: latency from each call's scheduled send time, so queueing anywhere counts;
"gen late p99" is how late the generator itself sent. CPU per check: the server's user + system time
over the phase (/proc, the process and its children) divided by the calls answered or failed. Heap
per check: for verdict, bytes allocated on the V8 heap over the phase, from a \`v8.GCProfiler\`
preloaded into the server (bench/lib/server-probe-child.mjs: the used heap's growth plus what each
collection freed; Buffer backing stores outside the V8 heap are not in it); for OPA-Envoy, the Go
runtime's \`go_memstats_alloc_bytes_total\` from OPA's /metrics at both ends of the phase.`,
        '',
        tables({ pinned: PIN }, pinnedRuns),
        '',
        `**${WORKERS} workers unpinned against OPA-Envoy unpinned**: ${
          workers.ok
            ? `\`verdict serve --workers ${WORKERS}\` against OPA-Envoy with the Go runtime's default (GOMAXPROCS = ${cpus().length}), servers and generator unpinned.`
            : `skipped: ${workers.why}, so there is nothing to run the row with. It runs by itself once the flag exists.`
        } On this ${cpus().length}-core machine the generator needs most of a core to offer ${RATES[RATES.length - 1].toLocaleString('en-US')} checks/s and far more at saturation, so two workers and the generator share two cores (and the machine is shared with other work): this row can show whether a second worker helps or hurts under that contention, and whether the open-loop tails stay put, not how verdict scales with cores. Scaling needs at least one core per worker plus the generator's own.`,
        ...(workers.ok ? ['', tables({ pinned: false }, unpinnedRuns)] : []),
        ...pinnedRuns
          .filter((r) => r.profile !== undefined)
          .flatMap((r) => [
            '',
            `**Where the pinned verdict server's CPU went, ${r.policy.name}** (SIDECAR_BENCH_CPU_PROF: V8's sampler every 100 µs over the timed rounds, every phase; shares of the ${r.profile.samples.toLocaleString('en-US')} busy samples, idle left out; ${r.profile.path}). The profiler's own cost is in this run's timings:`,
            '',
            r.profile.functions,
            '',
            r.profile.files,
          ]),
      ].join('\n'),
    )
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
