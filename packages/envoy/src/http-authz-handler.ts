/**
 * Envoy's HTTP ext_authz service mode: Envoy forwards the original method, path (after its
 * `path_prefix`) and headers, and the body when configured. A 200 allows and the headers on it are
 * copied upstream (or to the client, per Envoy's allow lists); any other status denies and goes to
 * the client with its headers and body. Headers to remove travel in
 * `x-envoy-auth-headers-to-remove`.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { Decision, Engine, HeaderEntry } from '@verdict/core'
import { evaluateCheck, type FailurePolicy, hostDenial } from './evaluate-check.js'
import type { Limiter } from './limiter.js'
import type { Telemetry } from './telemetry.js'

export interface HttpAuthzHandlerOptions {
  readonly engine: Engine
  readonly telemetry: Telemetry
  readonly failure: FailurePolicy
  readonly limiter: Limiter
  /** Largest body read; larger requests are denied with 413 without being read. */
  readonly maxRequestBytes: number
  /**
   * Longest wait for the whole body once the headers are in (default 5000 ms); past it the request
   * is denied with 408 and its connection closed. The limiter is only taken after the body is read.
   */
  readonly receiveTimeoutMs?: number
  /** Envoy's `http_service.path_prefix`, removed from the path before deciding. */
  readonly pathPrefix?: string
}

/** Header carrying, on allow, the request headers Envoy must remove before forwarding. */
export const HEADERS_TO_REMOVE = 'x-envoy-auth-headers-to-remove'

function readBody(req: IncomingMessage, max: number): Promise<Buffer | 'too_large'> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > max) return Promise.resolve('too_large')
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > max) {
        req.removeAllListeners('data')
        req.resume()
        resolve('too_large')
        return
      }
      chunks.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(chunks, size)))
    req.on('error', reject)
    // After 'end' this is a no-op; before it, the client went away mid-body.
    req.on('close', () => reject(new Error('connection closed before the body ended')))
  })
}

/** Close the connection of `res` once its answer is written, or after a second if it cannot be. */
function closeAfterAnswer(res: ServerResponse): void {
  const socket = res.req.socket
  const destroy = (): void => {
    socket.destroy()
  }
  if (res.writableFinished) {
    destroy()
    return
  }
  res.once('finish', destroy)
  setTimeout(destroy, 1000).unref()
}

function headerObject(list: readonly HeaderEntry[], into: OutgoingHttpHeaders = {}): OutgoingHttpHeaders {
  for (const h of list) {
    const prev = into[h.key]
    if (prev === undefined || h.append === undefined || h.append === 'overwrite') into[h.key] = h.value
    else if (h.append === 'append')
      into[h.key] = Array.isArray(prev) ? [...prev, h.value] : [String(prev), h.value]
    // add_if_absent: the first value stays.
  }
  return into
}

function send(res: ServerResponse, d: Decision, closeConnection: boolean): void {
  let status: number
  let headers: OutgoingHttpHeaders
  let body: string | undefined
  if (d.allowed) {
    status = 200
    headers = headerObject(d.responseHeadersToAdd, headerObject(d.headers))
    if (d.headersToRemove.length > 0) headers[HEADERS_TO_REMOVE] = d.headersToRemove.join(',')
  } else {
    // Only a 200 allows in this mode, so a denial shaped as 2xx (an MCP JSON-RPC error) or 1xx
    // becomes a 403 carrying the same headers and body.
    status = d.status >= 300 ? d.status : 403
    headers = headerObject(d.headers)
    body = d.body
    if (body !== undefined && headers['content-type'] === undefined)
      headers['content-type'] = 'text/plain; charset=utf-8'
  }
  if (closeConnection) headers.connection = 'close'
  try {
    res.writeHead(status, headers)
    res.end(body)
  } catch {
    // A header the policy produced that HTTP cannot carry: still a denial, never a 200.
    if (!res.headersSent) {
      res.writeHead(d.allowed ? 500 : status >= 300 ? status : 403, { 'content-type': 'text/plain' })
      res.end('access denied')
    } else res.destroy()
  }
}

/**
 * The request handler of the HTTP service mode, for `http.createServer`.
 *
 * @example
 * ```ts
 * http.createServer(createHttpAuthzHandler({ engine, telemetry, failure, limiter, maxRequestBytes: 1 << 20 }))
 * ```
 */
export function createHttpAuthzHandler(
  options: HttpAuthzHandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { engine, telemetry, failure, limiter, maxRequestBytes, pathPrefix } = options
  const receiveTimeoutMs = options.receiveTimeoutMs ?? 5000
  const hostAnswer = (res: ServerResponse, d: Decision, started: number, close: boolean): void => {
    telemetry.hostDecision(d, performance.now() - started, engine.info.name)
    send(res, d, close)
  }
  return (req, res) => {
    const started = performance.now()
    let timedOut = false
    // Reading the body holds no slot of the limiter, only this timer: a slow client cannot starve
    // the checks that are ready to be decided.
    const receiveTimer = setTimeout(() => {
      timedOut = true
      if (!res.headersSent && !res.destroyed)
        hostAnswer(
          res,
          hostDenial(408, 'timeout', `request body not received within ${receiveTimeoutMs} ms`),
          started,
          true,
        )
      closeAfterAnswer(res)
    }, receiveTimeoutMs)
    let acquired = false
    readBody(req, maxRequestBytes)
      .then(async (body) => {
        clearTimeout(receiveTimer)
        if (timedOut) return
        if (body === 'too_large') {
          hostAnswer(
            res,
            hostDenial(413, 'body_too_large', 'request body larger than the sidecar accepts'),
            started,
            true,
          )
          return
        }
        let path = req.url ?? ''
        if (pathPrefix !== undefined && pathPrefix !== '' && path.startsWith(pathPrefix)) {
          path = path.slice(pathPrefix.length)
          if (!path.startsWith('/')) path = `/${path}`
        }
        const input: Record<string, unknown> = {
          method: req.method ?? 'GET',
          path,
          headers: req.headersDistinct,
          protocol: `HTTP/${req.httpVersion}`,
        }
        if (body.length > 0) input.body = body
        if (!limiter.tryAcquire()) {
          hostAnswer(
            res,
            hostDenial(failure.statusOnError, 'overloaded', 'too many checks in progress'),
            started,
            false,
          )
          return
        }
        acquired = true
        const { decision } = await evaluateCheck(engine, telemetry, input, failure)
        send(res, decision, false)
      })
      .catch(() => {
        clearTimeout(receiveTimer)
        // The client went away mid-body, or something failed before a decision: deny if possible.
        if (!timedOut && !res.headersSent && !res.destroyed)
          send(res, hostDenial(failure.statusOnError, 'internal', 'request could not be read'), true)
      })
      .finally(() => {
        if (acquired) limiter.release()
      })
  }
}
