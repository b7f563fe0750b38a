/**
 * Status reports in OPA's format (`labels`, `bundles.<name>`, `plugins.<name>.state`,
 * `metrics.prometheus`), POSTed as JSON to `<service>/status` whenever something changes, and
 * the same document for a local `/status` endpoint.
 */
import { randomUUID } from 'node:crypto'
import type { Registry } from 'prom-client'
import type { BundleSource, OpaBundleStatus } from './bundle-source.js'
import { createServiceClient, type ServiceOptions } from './service-client.js'

export interface StatusReport {
  labels: Record<string, string>
  bundles: Record<string, OpaBundleStatus>
  plugins: Record<string, { state: 'OK' | 'NOT_READY' | 'ERROR' }>
  metrics?: { prometheus: Record<string, unknown> }
}

export interface StatusOptions {
  /** Where to POST reports; without it the report is only local. */
  readonly service?: ServiceOptions
  /** Path under the service (default `status`, as OPA). */
  readonly resource?: string
  readonly labels?: Readonly<Record<string, string>>
  readonly sources?: readonly BundleSource[]
  /** Further plugin states (`decision_logs`, ...). */
  readonly plugins?: () => Record<string, 'OK' | 'NOT_READY' | 'ERROR'>
  /** Metrics to include (as `metrics.prometheus`). */
  readonly registry?: Registry
  readonly requestTimeoutMs?: number
  readonly version?: string
}

export interface StatusReporter {
  report(): Promise<StatusReport>
  /** Send the current report now (and again with backoff until the service accepts it). */
  send(): void
  /** Reports accepted by the service. */
  readonly sent: number
  close(): void
}

export function createStatusReporter(o: StatusOptions): StatusReporter {
  const labels: Record<string, string> = {
    id: randomUUID(),
    version: o.version ?? 'verdict-0.1.0',
    ...o.labels,
  }
  const client = o.service !== undefined ? createServiceClient(o.service) : undefined
  let sent = 0
  let failures = 0
  let timer: NodeJS.Timeout | undefined
  let sending = false
  let again = false
  let closed = false

  const report = async (): Promise<StatusReport> => {
    const bundles: Record<string, OpaBundleStatus> = {}
    let bundleState: 'OK' | 'NOT_READY' | 'ERROR' = 'OK'
    for (const s of o.sources ?? []) {
      const st = s.status()
      bundles[st.bundle.name] = st.bundle
      if (!st.active) bundleState = 'NOT_READY'
    }
    const plugins: StatusReport['plugins'] = { bundle: { state: bundleState } }
    for (const [k, v] of Object.entries(o.plugins?.() ?? {})) plugins[k] = { state: v }
    if (client !== undefined) plugins.status = { state: failures > 0 ? 'ERROR' : 'OK' }
    const out: StatusReport = { labels, bundles, plugins }
    if (o.registry !== undefined) {
      const prometheus: Record<string, unknown> = {}
      for (const m of await o.registry.getMetricsAsJSON()) prometheus[m.name] = m
      out.metrics = { prometheus }
    }
    return out
  }

  const send = () => {
    if (client === undefined || closed) return
    if (sending) {
      again = true
      return
    }
    sending = true
    void (async () => {
      let ok = false
      try {
        const body = Buffer.from(JSON.stringify(await report()))
        const res = await client.call(o.resource ?? 'status', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          timeoutMs: o.requestTimeoutMs ?? 10_000,
          maxBytes: 64 * 1024,
        })
        ok = res.status >= 200 && res.status <= 299
      } catch {
        ok = false
      }
      sending = false
      if (ok) {
        sent++
        failures = 0
        if (again) {
          again = false
          send()
        }
        return
      }
      failures++
      if (timer === undefined && !closed) {
        timer = setTimeout(
          () => {
            timer = undefined
            send()
          },
          Math.min(10_000, 100 * 2 ** Math.min(failures - 1, 30)),
        )
        timer.unref?.()
      }
    })()
  }
  for (const s of o.sources ?? []) s.onChange(send)

  return {
    report,
    send,
    get sent() {
      return sent
    },
    close() {
      closed = true
      if (timer !== undefined) clearTimeout(timer)
    },
  }
}
