import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { createDecisionMetrics } from './decision-metrics.js'

const BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]
const SAMPLES: Array<[boolean, string, string, number]> = [
  [true, 'allowed', 'a', 0.00004],
  [true, 'allowed', 'a', 0.0003],
  [true, 'allowed', 'b', 0.002],
  [false, 'no_match', '', 0.7],
  [false, 'unauthenticated', 'jwt', 3],
  [false, 'no_match', '', 0.0001],
]

/** The same observations through prom-client's own Counter and Histogram. */
function reference(): Registry {
  const registry = new Registry()
  const c = new Counter({
    name: 'verdict_decisions_total',
    help: 'Decisions by result (allow, deny), code and deciding rule.',
    labelNames: ['result', 'code', 'rule'],
    registers: [registry],
  })
  const h = new Histogram({
    name: 'verdict_decision_duration_seconds',
    help: 'Time to decide one request, from the engine receiving it to the answer.',
    labelNames: ['result'],
    buckets: BUCKETS,
    registers: [registry],
  })
  for (const [allowed, code, rule, s] of SAMPLES) {
    const result = allowed ? 'allow' : 'deny'
    c.inc({ result, code, rule })
    h.observe({ result }, s)
  }
  return registry
}

function ours(): Registry {
  const registry = new Registry()
  const m = createDecisionMetrics(registry, BUCKETS)
  for (const [allowed, code, rule, s] of SAMPLES) m.record(allowed, code, rule, s)
  return registry
}

const lines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .sort()

describe('decision metrics kept as numbers', () => {
  it('scrape to the same Prometheus text as prom-client Counter and Histogram', async () => {
    expect(lines(await ours().metrics())).toEqual(lines(await reference().metrics()))
  })

  it('aggregate across workers as prom-client metrics do', async () => {
    const a = AggregatorRegistry.aggregate([await ours().getMetricsAsJSON(), await ours().getMetricsAsJSON()])
    const b = AggregatorRegistry.aggregate([
      await reference().getMetricsAsJSON(),
      await reference().getMetricsAsJSON(),
    ])
    expect(lines(await a.metrics())).toEqual(lines(await b.metrics()))
    expect(await a.metrics()).toMatch(/verdict_decisions_total\{result="allow",code="allowed",rule="a"\} 4/)
  })
})
