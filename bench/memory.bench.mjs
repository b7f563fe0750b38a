// Memory over one million decisions of the reference policy: heap and RSS before and after, in a
// child process started with --expose-gc (so collections can be forced before each snapshot and
// no other suite's objects are counted). BENCH_DECISIONS scales the count down for quick runs.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`
const signed = (b) => `${b >= 0 ? '+' : '−'}${mib(Math.abs(b))}`

function runChild(gc) {
  const child = fileURLToPath(new URL('lib/memory-child.mjs', import.meta.url))
  const r = spawnSync(process.execPath, [...(gc ? ['--expose-gc'] : []), child], {
    encoding: 'utf8',
    env: process.env,
    maxBuffer: 1 << 20,
  })
  if (r.status !== 0) return { error: (r.stderr || r.error?.message || `exit ${r.status}`).slice(0, 500) }
  return JSON.parse(r.stdout.trim().split('\n').pop())
}

export default async function (report) {
  let res = runChild(true)
  // Some Node builds refuse V8 flags from the command line (NODE_OPTIONS policies): run without.
  if (res.error !== undefined) res = runChild(false)
  if (res.error !== undefined) throw new Error(`memory child failed: ${res.error}`)
  const { before, after } = res
  const row = (name, key) =>
    `| ${name} | ${mib(before[key])} | ${mib(after[key])} | ${signed(after[key] - before[key])} |`
  const perDecision = res.ns / res.total
  report.section(
    `Memory: ${res.total.toLocaleString('en-US')} decisions`,
    `The reference policy (JWT, header rule, CEL tool and repoName allow-lists) decided
${res.total.toLocaleString('en-US')} times in a fresh process, one after another, cycling through
${res.cases} cases of the shared list (${res.counts.allowed.toLocaleString('en-US')} allowed,
${res.counts.denied.toLocaleString('en-US')} denied; the expired token, which is verified again
each time, 1 in 1,000), each request with its own JSON-RPC id. "Before" is taken after 20,000
warm-up decisions, both snapshots ${res.forcedGc ? 'after forced full collections (`--expose-gc`)' : '**without** forced collection (`--expose-gc` unavailable), so they include garbage'}.

| | before | after | change |
|---|---|---|---|
${row('heap used', 'heapUsed')}
${row('heap total', 'heapTotal')}
${row('external', 'external')}
${row('RSS', 'rss')}

Heap retained per decision: ${((after.heapUsed - before.heapUsed) / res.total).toFixed(2)} bytes. Peak RSS
during the run: ${mib(res.peakRss)}. Mean time per decision over the run (sequential,
including building each request): ${(perDecision / 1000).toFixed(2)} µs.`,
  )
}
