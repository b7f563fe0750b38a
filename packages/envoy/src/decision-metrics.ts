/**
 * The two per-check metrics, `verdict_decisions_total` and `verdict_decision_duration_seconds`,
 * kept as plain numbers on the check path and turned into Prometheus samples only when scraped.
 * prom-client validates and hashes the labels on every `inc` / `observe`, even through a bound
 * child; here a check costs two map lookups, an increment and a bucket search.
 */
import type { Registry } from 'prom-client'

type Result = 'allow' | 'deny'

/** What prom-client's registry reads from a metric (its `get()`), for text and for aggregation. */
interface MetricSnapshot {
  name: string
  help: string
  type: 'counter' | 'histogram'
  aggregator: 'sum'
  values: Array<{ labels: Record<string, string | number>; value: number; metricName?: string }>
}

export interface DecisionMetrics {
  /** Count one decision and its duration. */
  record(allowed: boolean, code: string, rule: string, seconds: number): void
}

/** Register both metrics on `registry`; `buckets` are the histogram's upper bounds, ascending. */
export function createDecisionMetrics(registry: Registry, buckets: readonly number[]): DecisionMetrics {
  // result -> code -> rule -> count
  const counts: Record<Result, Map<string, Map<string, number>>> = { allow: new Map(), deny: new Map() }
  const histogram = {
    allow: { buckets: new Float64Array(buckets.length), sum: 0, count: 0 },
    deny: { buckets: new Float64Array(buckets.length), sum: 0, count: 0 },
  }
  const decisions = {
    name: 'verdict_decisions_total',
    help: 'Decisions by result (allow, deny), code and deciding rule.',
    type: 'counter' as const,
    aggregator: 'sum' as const,
    async get(): Promise<MetricSnapshot> {
      const values: MetricSnapshot['values'] = []
      for (const result of ['allow', 'deny'] as const)
        for (const [code, rules] of counts[result])
          for (const [rule, value] of rules) values.push({ labels: { result, code, rule }, value })
      return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
    },
    reset() {
      counts.allow.clear()
      counts.deny.clear()
    },
  }
  const duration = {
    name: 'verdict_decision_duration_seconds',
    help: 'Time to decide one request, from the engine receiving it to the answer.',
    type: 'histogram' as const,
    aggregator: 'sum' as const,
    async get(): Promise<MetricSnapshot> {
      const values: MetricSnapshot['values'] = []
      for (const result of ['allow', 'deny'] as const) {
        const h = histogram[result]
        if (h.count === 0) continue
        let cumulative = 0
        for (let i = 0; i < buckets.length; i++) {
          cumulative += h.buckets[i]!
          values.push({
            metricName: `${this.name}_bucket`,
            labels: { le: buckets[i]!, result },
            value: cumulative,
          })
        }
        values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', result }, value: h.count })
        values.push({ metricName: `${this.name}_sum`, labels: { result }, value: h.sum })
        values.push({ metricName: `${this.name}_count`, labels: { result }, value: h.count })
      }
      return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
    },
    reset() {
      for (const h of [histogram.allow, histogram.deny]) {
        h.buckets.fill(0)
        h.sum = 0
        h.count = 0
      }
    },
  }
  // The registry takes any object with a name and get(); these two are read like prom-client's own.
  registry.registerMetric(decisions as never)
  registry.registerMetric(duration as never)
  return {
    record(allowed, code, rule, seconds) {
      const result: Result = allowed ? 'allow' : 'deny'
      let byRule = counts[result].get(code)
      if (byRule === undefined) {
        byRule = new Map()
        counts[result].set(code, byRule)
      }
      byRule.set(rule, (byRule.get(rule) ?? 0) + 1)
      const h = histogram[result]
      h.count++
      h.sum += seconds
      for (let i = 0; i < buckets.length; i++)
        if (seconds <= buckets[i]!) {
          h.buckets[i]!++
          return
        }
    },
  }
}
