/**
 * The operations listener: `/healthz` (the process answers), `/readyz` (a policy is loaded and the
 * server is not draining) and `/metrics` (Prometheus text format).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'

export interface OpsHandlerOptions {
  readonly registry: Registry
  /** True while the server takes checks. */
  readonly ready: () => boolean
}

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
    if (path === '/readyz') return options.ready() ? text(res, 200, 'ready\n') : text(res, 503, 'not ready\n')
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
