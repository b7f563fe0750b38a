// Self time by function and by file from a V8 CPU profile (the JSON `node --cpu-prof` writes and
// node:inspector's Profiler.stop returns), as Markdown tables of the top entries. Shares are of the
// busy samples: time the thread sat idle in the event loop is left out.

const ROOT = new URL('../../', import.meta.url).href

/** Shorten a script URL: relative to the repository, or to its package under node_modules. */
const shortUrl = (url) => url.replace(ROOT, '').replace(/^.*\/\.pnpm\/[^/]+\/node_modules\//, '')

/** `{ functions, files, samples }`: Markdown tables of the `top` heaviest by self time, and the busy sample count. */
export function hotSpots(profile, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const counts = new Map()
  let total = 0
  for (const id of profile.samples) {
    if (byId.get(id).callFrame.functionName === '(idle)') continue
    counts.set(id, (counts.get(id) ?? 0) + 1)
    total++
  }
  const fn = new Map()
  const file = new Map()
  for (const [id, n] of counts) {
    const f = byId.get(id).callFrame
    const short = shortUrl(f.url)
    const key = `${f.functionName || '(anonymous)'} ${short ? `${short}:${f.lineNumber + 1}` : ''}`.trim()
    fn.set(key, (fn.get(key) ?? 0) + n)
    const where = short === '' ? `(${f.functionName || 'native'})` : short
    file.set(where, (file.get(where) ?? 0) + n)
  }
  const table = (head, m, k) =>
    [
      `| ${head} | share |`,
      '|---|---|',
      ...[...m]
        .sort((a, b) => b[1] - a[1])
        .slice(0, k)
        .map(([name, n]) => `| ${name} | ${((100 * n) / total).toFixed(1)}% |`),
    ].join('\n')
  return {
    functions: table('function (self time)', fn, top),
    files: table('file (self time)', file, Math.ceil(top / 2)),
    samples: total,
  }
}

/**
 * Profile `fn` (awaited `iterations` times, after a warm-up) with V8's sampler through
 * node:inspector, sampling every 100 µs: the profile and the time per call with the profiler on.
 */
export async function profileCalls(fn, iterations, warmup = 20_000) {
  const { Session } = await import('node:inspector/promises')
  for (let i = 0; i < warmup; i++) await fn()
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 100 })
  await session.post('Profiler.start')
  const t0 = performance.now()
  for (let i = 0; i < iterations; i++) await fn()
  const elapsed = performance.now() - t0
  const { profile } = await session.post('Profiler.stop')
  session.disconnect()
  return { profile, usPerCall: (elapsed * 1000) / iterations }
}
