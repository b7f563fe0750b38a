/**
 * Metrics of a server made of several processes (`verdict serve --workers`): each worker keeps its
 * own registry and answers the primary's requests for it; the primary's `/metrics` sums them
 * (prom-client's AggregatorRegistry over node:cluster IPC). Counters and histograms add up; the
 * policy generation is the lowest any worker has reached.
 */
import { AggregatorRegistry, type Registry } from 'prom-client'

/** What the operations listener reads metrics from: one registry, or the whole cluster. */
export interface MetricsSource {
  readonly contentType: string
  metrics(): Promise<string>
}

/** In a cluster worker: answer the primary's metric requests with `registry`. */
export function shareMetricsWithPrimary(registry: Registry): void {
  AggregatorRegistry.setRegistries([registry])
  // Constructing one installs the worker's IPC listener.
  new AggregatorRegistry()
}

/** In the cluster primary: every worker's metrics, aggregated. */
export function clusterMetricsSource(): MetricsSource {
  const aggregator = new AggregatorRegistry()
  return {
    contentType: aggregator.contentType,
    metrics: () => aggregator.clusterMetrics(),
  }
}
