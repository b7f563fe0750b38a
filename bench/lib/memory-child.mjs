// Run by memory.bench.mjs as `node --expose-gc memory-child.mjs`: one million decisions (or
// BENCH_DECISIONS) of the reference policy, cycling through the shared case list with a new
// JSON-RPC id each time, and memory before and after, after forced collections. Prints one JSON
// line on stdout.
import { createCelEvaluator } from '@verdict/cel-adapter'
import { celPolicy, createIssuer, engineFor, referenceCases } from './reference-policy.mjs'

const total = Number(process.env.BENCH_DECISIONS ?? 1_000_000)
const gc = globalThis.gc

function settle() {
  if (gc === undefined) return
  for (let i = 0; i < 4; i++) gc()
}

function snapshot() {
  const m = process.memoryUsage()
  return { heapUsed: m.heapUsed, heapTotal: m.heapTotal, rss: m.rss, external: m.external }
}

const issuer = await createIssuer()
const cases = await referenceCases(issuer)
// The expired token is verified again on every decision (a failure is not cached): keep it rare so
// the run measures the common path, as in traffic where bad tokens are the exception.
const mix = cases.filter((c) => c.name !== 'expired token')
const expired = cases.find((c) => c.name === 'expired token')
const engine = await engineFor(celPolicy([issuer]), [createCelEvaluator()])

async function run(n) {
  const counts = { allowed: 0, denied: 0 }
  for (let i = 0; i < n; i++) {
    const c = i % 1000 === 999 ? expired : mix[i % mix.length]
    const request = { ...c.request, body: c.request.body.replace('"id":7', `"id":${i}`) }
    const d = await engine.decide(request)
    if (d.allowed !== c.allowed) throw new Error(`wrong decision on ${c.name}: ${d.reason}`)
    counts[d.allowed ? 'allowed' : 'denied']++
  }
  return counts
}

await run(Math.min(20_000, total))
settle()
const before = snapshot()
const t0 = process.hrtime.bigint()
const counts = await run(total)
const ns = Number(process.hrtime.bigint() - t0)
const peakRss = process.resourceUsage().maxRSS * 1024
settle()
const after = snapshot()
engine.close()
process.stdout.write(
  `${JSON.stringify({ total, counts, ns, before, after, peakRss, forcedGc: gc !== undefined, cases: mix.length + 1 })}\n`,
)
