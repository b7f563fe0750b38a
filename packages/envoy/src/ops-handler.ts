/**
 * The operations listener: `/healthz` (the process answers), `/readyz` (a policy is loaded and the
 * server is not draining), `/metrics` (Prometheus text format) and, when a host gives one,
 * `/status` (a JSON document, e.g. OPA's status report from @verdict/fleet).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { MetricsSource } from './cluster-metrics.js'

export interface OpsHandlerOptions {
  /** A prom-client Registry, or the whole cluster's metrics (`clusterMetricsSource()`). */
  readonly registry: MetricsSource
  /** True while the server takes checks. */
  readonly ready: () => boolean
  /**
   * More readiness (e.g. a bundle is active): `ready: false` makes `/readyz` a 503; `detail` is
   * sent as JSON (`{"ready": ..., ...detail}`) instead of the plain text answer.
   */
  readonly readiness?: () => { readonly ready: boolean; readonly detail: Readonly<Record<string, unknown>> }
  /** The document `GET /status` answers (JSON); without it `/status` is a 404. */
  readonly status?: () => unknown
}

const JSON_TYPE = 'application/json'

/** Request handler for the operations listener. */
export function createOpsHandler(
  options: OpsHandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const text = (res: ServerResponse, code: number, body: string, type = 'text/plain; charset=utf-8') => {
    res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' })
    res.end(body)
  }
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'method not allowed\n')
    if (path === '/healthz') return text(res, 200, 'ok\n')
    if (path === '/readyz') {
      const extra = options.readiness?.()
      if (extra === undefined)
        return options.ready() ? text(res, 200, 'ready\n') : text(res, 503, 'not ready\n')
      const ready = options.ready() && extra.ready
      return text(res, ready ? 200 : 503, `${JSON.stringify({ ...extra.detail, ready })}\n`, JSON_TYPE)
    }
    if (path === '/status' && options.status !== undefined) {
      Promise.resolve()
        .then(() => options.status!())
        .then(
          (doc) => text(res, 200, `${JSON.stringify(doc)}\n`, JSON_TYPE),
          () => text(res, 500, 'status unavailable\n'),
        )
      return
    }
    if (path === '/metrics') {
      options.registry.metrics().then(
        (body) => text(res, 200, body, options.registry.contentType),
        () => text(res, 500, 'metrics unavailable\n'),
      )
      return
    }
    text(res, 404, 'not found\n')
  }
}
