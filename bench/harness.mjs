// Shared benchmark harness. Contenders are interleaved (A B A B ...) round by round after a
// warm-up, so a noisy shared machine affects all of them alike; only ratios measured in one run
// are reported as results.

/**
 * @typedef {{ name: string, fn: () => unknown, async?: boolean }} Contender
 * @typedef {{ name: string, medianNs: number, minNs: number, maxNs: number, spreadPct: number, opsPerSec: number }} Row
 */

const now = () => process.hrtime.bigint()

async function timeBatch(c, iterations) {
  const t0 = now()
  if (c.async) for (let i = 0; i < iterations; i++) await c.fn()
  else for (let i = 0; i < iterations; i++) c.fn()
  return Number(now() - t0)
}

/** Iterations needed for one sample to last about `ms`. */
async function calibrate(c, ms) {
  let n = 1
  for (;;) {
    const t = await timeBatch(c, n)
    if (t > ms * 1e6 || n > 1e8) return Math.max(1, Math.round((n * ms * 1e6) / Math.max(t, 1)))
    n *= 4
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/**
 * Measure contenders side by side.
 * @param {Contender[]} contenders
 * @param {{ rounds?: number, sampleMs?: number, warmupMs?: number }} [opts]
 * @returns {Promise<Row[]>}
 */
export async function compare(contenders, opts = {}) {
  const rounds = opts.rounds ?? Number(process.env.BENCH_ROUNDS ?? 7)
  const sampleMs = opts.sampleMs ?? Number(process.env.BENCH_SAMPLE_MS ?? 100)
  const warmupMs = opts.warmupMs ?? 100
  const iters = []
  for (const c of contenders) {
    await timeBatch(c, await calibrate(c, warmupMs))
    iters.push(await calibrate(c, sampleMs))
  }
  const samples = contenders.map(() => [])
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const i = (r + k) % contenders.length // rotate the order every round too
      samples[i].push((await timeBatch(contenders[i], iters[i])) / iters[i])
    }
  }
  return contenders.map((c, i) => {
    const med = median(samples[i])
    const min = Math.min(...samples[i])
    const max = Math.max(...samples[i])
    return {
      name: c.name,
      medianNs: med,
      minNs: min,
      maxNs: max,
      spreadPct: ((max - min) / med) * 100,
      opsPerSec: 1e9 / med,
    }
  })
}

const fmtNs = (ns) =>
  ns >= 1e6
    ? `${(ns / 1e6).toFixed(2)} ms`
    : ns >= 1e3
      ? `${(ns / 1e3).toFixed(2)} µs`
      : `${ns.toFixed(0)} ns`

/**
 * Markdown table with ratios against named reference rows.
 * @param {Row[]} rows
 * @param {string[]} refs names of the rows to divide by (e.g. the hand-written baseline, the raw engine)
 */
export function table(rows, refs = []) {
  const head = ['contender', 'median', 'ops/s', 'spread', ...refs.map((r) => `x ${r}`)]
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`]
  for (const row of rows) {
    const ratios = refs.map((r) => {
      const ref = rows.find((x) => x.name === r)
      return ref ? `${(row.medianNs / ref.medianNs).toFixed(2)}x` : 'n/a'
    })
    lines.push(
      `| ${row.name} | ${fmtNs(row.medianNs)} | ${Math.round(row.opsPerSec).toLocaleString('en-US')} | ±${(row.spreadPct / 2).toFixed(0)}% | ${ratios.join(' | ')} |`,
    )
  }
  return lines.join('\n')
}

export { fmtNs }
