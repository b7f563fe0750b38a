/**
 * Collector outage under load: decisions flow for 12 s while the collector answers 503 for 10 s
 * of them. After it returns, every decision id arrives at least once (duplicates counted); with a
 * buffer too small for the outage, exactly the dropped events are missing.
 */
import { createEngine } from '@verdict/core'
import { expect, it } from 'vitest'
import { createDecisionLogger } from './decision-log.js'
import { startCollector, until } from './testing/servers.js'

const POLICY =
  'rules:\n  - id: ok\n    action: allow\n    match: { headers: [{ name: x-ok, exact: "yes" }] }\n'

it('a 10 s collector outage under load loses nothing, or exactly what the drop counter says', async () => {
  const roomy = await startCollector()
  const tight = await startCollector()
  // Room for the whole outage however fast this machine decides (events carry the request record).
  const big = createDecisionLogger({
    url: roomy.url,
    minDelayMs: 100,
    maxDelayMs: 1000,
    bufferSizeLimitBytes: 512 * 1024 * 1024,
  })
  const small = createDecisionLogger({
    url: tight.url,
    minDelayMs: 100,
    maxDelayMs: 1000,
    bufferSizeLimitBytes: 64 * 1024,
  })
  const engine = await createEngine(POLICY, {
    onDecision: (e) => {
      big.onDecision(e)
      small.onDecision(e)
    },
  })
  const ids: string[] = []
  let stop = false
  const generator = (async () => {
    for (let n = 0; !stop; n++) {
      const id = `load-${n}`
      await engine.decide(
        { method: 'GET', path: `/p/${n}`, headers: { 'x-ok': n % 3 === 0 ? 'no' : 'yes' } },
        { id },
      )
      ids.push(id)
      if (n % 20 === 0) await new Promise((r) => setTimeout(r, 5))
    }
  })()
  try {
    await new Promise((r) => setTimeout(r, 1000))
    roomy.down = true
    tight.down = true
    const before = roomy.headers.length
    await new Promise((r) => setTimeout(r, 10_000))
    expect(big.state).toBe('ERROR')
    // Retries back off (100 ms doubling to 1 s): a few dozen POSTs in 10 s, not one per decision.
    expect(roomy.headers.length - before).toBeLessThan(60)
    roomy.down = false
    tight.down = false
    await new Promise((r) => setTimeout(r, 1000))
    stop = true
    await generator
    await Promise.all([big.flush(10_000), small.flush(10_000)])
    await until(() => big.buffered === 0 && small.buffered === 0, 10_000, 'empty buffers')

    expect(ids.length).toBeGreaterThan(2000)
    const got = new Map<string, number>()
    for (const e of roomy.events)
      got.set(e.decision_id as string, (got.get(e.decision_id as string) ?? 0) + 1)
    const duplicates = [...got.values()].reduce((a, n) => a + n - 1, 0)
    console.log(
      `outage: ${ids.length} decisions, ${roomy.events.length} events received, ${duplicates} duplicates`,
    )
    expect(big.dropped).toBe(0)
    expect(ids.filter((id) => !got.has(id))).toEqual([])

    const tightIds = new Set(tight.events.map((e) => e.decision_id as string))
    const lost = ids.filter((id) => !tightIds.has(id)).length
    console.log(`outage with a 64 KiB buffer: ${lost} lost, ${small.dropped} dropped`)
    expect(lost).toBeGreaterThan(0)
    expect(small.dropped).toBe(lost)
  } finally {
    stop = true
    big.close()
    small.close()
    engine.close()
    await roomy.close()
    await tight.close()
  }
}, 40_000)
