/**
 * Envoy's HTTP ext_authz service mode: Envoy forwards the original method, path (after its
 * `path_prefix`) and headers, and the body when configured. A 200 allows and the headers on it are
 * copied upstream (or to the client, per Envoy's allow lists); any other status denies and goes to
 * the client with its headers and body. Headers to remove travel in
 * `x-envoy-auth-headers-to-remove`.
 */
import { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse, STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { Decision, Engine, HeaderEntry } from '@verdict/core'
import { headerFieldLines } from '@verdict/node'
import {
  isLingering,
  LINGER_MAX_BYTES,
  LINGER_TIMEOUT_MS,
  type LingerLimits,
  lingerAfterAnswer,
  lingeringClose,
} from './connection-guards.js'
import { DeadlineQueue } from './deadline-queue.js'
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
  /**
   * How a connection answered before its request was read (413, 408, a listener refusal) is
   * closed: it is read and dropped for up to this long or this many bytes, then destroyed
   * (defaults `LINGER_TIMEOUT_MS`, `LINGER_MAX_BYTES`). See `lingeringClose`.
   */
  readonly linger?: LingerLimits
  /** True while every answer should close its connection (the server is draining). */
  readonly closeConnections?: () => boolean
  /**
   * The peer principal of a request's connection (the URI SAN of a verified client certificate),
   * passed to the policy as `source.principal`.
   */
  readonly principal?: (socket: Socket) => string | undefined
}

/** Header carrying, on allow, the request headers Envoy must remove before forwarding. */
export const HEADERS_TO_REMOVE = 'x-envoy-auth-headers-to-remove'

/** A body being read; `abandon()` stops keeping its bytes (what arrives later is dropped). */
interface BodyRead {
  readonly done: Promise<Buffer | 'too_large'>
  abandon(): void
}

function readBody(req: IncomingMessage, max: number): BodyRead {
  const declared = Number(req.headers['content-length'] ?? 0)
  // Not read at all: Node drops the body once the answer is sent (and the connection lingers).
  if (declared > max) return { done: Promise.resolve('too_large'), abandon() {} }
  let chunks: Buffer[] = []
  let size = 0
  const stop = (): void => {
    req.removeListener('data', onData)
    chunks = []
    // Keep the bytes flowing (and dropped) so the connection can be closed cleanly.
    req.resume()
  }
  let onData: (c: Buffer) => void = () => {}
  const done = new Promise<Buffer | 'too_large'>((resolve, reject) => {
    onData = (c: Buffer) => {
      size += c.length
      if (size > max) {
        stop()
        resolve('too_large')
        return
      }
      chunks.push(c)
    }
    req.on('data', onData)
    req.on('end', () => resolve(Buffer.concat(chunks, size)))
    req.on('error', reject)
    // After 'end' this is a no-op; before it, the client went away mid-body.
    req.on('close', () => reject(new Error('connection closed before the body ended')))
  })
  return { done, abandon: stop }
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
  // A length, not chunks: the answer is complete as soon as its bytes are read.
  headers['content-length'] = body === undefined ? 0 : Buffer.byteLength(body)
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
  const linger = options.linger ?? DEFAULT_LINGER
  const closing = options.closeConnections ?? (() => false)
  const principalOf = options.principal
  const decisionDeadlines = new DeadlineQueue(failure.timeoutMs)
  const hostAnswer = (res: ServerResponse, d: Decision, started: number, close: boolean): void => {
    // Nothing to answer on a connection that is gone or already answered; it is not logged either.
    if (res.destroyed) return
    if (res.headersSent) {
      if (close) lingeringClose(res.req.socket, linger)
      return
    }
    telemetry.hostDecision(d, performance.now() - started, engine.info.name)
    // Answered before the request was read: the connection lingers closed so the answer is read.
    if (close) lingerAfterAnswer(res, linger)
    send(res, d, close || closing())
  }
  return (req, res) => {
    // A request parsed from bytes that came after an answer with `connection: close` (pipelined
    // behind a refused body): no answer to it would be read; the linger ends the connection.
    if (isLingering(req.socket)) {
      req.resume()
      return
    }
    const started = performance.now()
    let timedOut = false
    const body = readBody(req, maxRequestBytes)
    // Reading the body holds no slot of the limiter, only this timer: a slow client cannot starve
    // the checks that are ready to be decided.
    const receiveTimer = setTimeout(() => {
      timedOut = true
      body.abandon()
      const d = hostDenial(408, 'timeout', `request body not received within ${receiveTimeoutMs} ms`)
      hostAnswer(res, d, started, true)
    }, receiveTimeoutMs)
    let acquired = false
    body.done
      .then(async (bytes) => {
        clearTimeout(receiveTimer)
        if (timedOut) return
        if (bytes === 'too_large') {
          hostAnswer(res, bodyTooLarge(maxRequestBytes), started, true)
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
          // Every field line as it came: req.headers keeps only the first of a repeated
          // authorization, host, ... and joins the others.
          headers: headerFieldLines(req.rawHeaders),
          protocol: `HTTP/${req.httpVersion}`,
        }
        if (bytes.length > 0) input.body = bytes
        const principal = principalOf?.(req.socket)
        if (principal !== undefined) input.source = { principal }
        if (!limiter.tryAcquire()) {
          const d = hostDenial(failure.statusOnError, 'overloaded', 'too many checks in progress')
          hostAnswer(res, d, started, false)
          return
        }
        acquired = true
        const { decision } = await evaluateCheck(engine, telemetry, input, failure, decisionDeadlines)
        send(res, decision, closing())
      })
      .catch(() => {
        clearTimeout(receiveTimer)
        // The client went away mid-body, or something failed before a decision: deny if possible.
        if (!timedOut)
          hostAnswer(
            res,
            hostDenial(failure.statusOnError, 'internal', 'request could not be read'),
            started,
            true,
          )
      })
      .finally(() => {
        if (acquired) limiter.release()
      })
  }
}

const DEFAULT_LINGER: LingerLimits = { timeoutMs: LINGER_TIMEOUT_MS, maxBytes: LINGER_MAX_BYTES }

/** The denial of a request larger than `maxRequestBytes`; the gRPC listener's has the same fields. */
export function bodyTooLarge(maxRequestBytes: number, what = 'request body'): Decision {
  return hostDenial(
    413,
    'body_too_large',
    `${what} larger than the sidecar accepts (maxRequestBytes ${maxRequestBytes})`,
  )
}

export interface ClientErrorHandlerOptions {
  readonly engine: Engine
  readonly telemetry: Telemetry
  /** See `HttpAuthzHandlerOptions.linger`. */
  readonly linger?: LingerLimits
}

/** The host's denial for a request Node's parser refused, or undefined when there is nothing to answer. */
function clientErrorDenial(code: string | undefined): Decision | undefined {
  if (code === 'HPE_HEADER_OVERFLOW')
    return hostDenial(431, 'headers_too_large', 'request headers larger than the listener accepts')
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return hostDenial(408, 'timeout', 'request headers not received in time')
  if (code?.startsWith('HPE_'))
    return hostDenial(400, 'malformed_input', 'malformed input: not a valid HTTP/1.1 request')
  return undefined
}

/** The bytes of an HTTP/1.1 answer carrying host denial `d` and closing the connection. */
function rawAnswer(d: Decision): string {
  const body = d.body ?? ''
  return [
    `HTTP/1.1 ${d.status} ${STATUS_CODES[d.status] ?? ''}`,
    'content-type: text/plain; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
    '',
    body,
  ].join('\r\n')
}

/**
 * A `clientError` listener for the HTTP service listener. What Node's parser refuses before the
 * handler sees a request (headers over the listener's `maxHeaderSize`, bytes that are not HTTP/1.1,
 * headers not received within `headersTimeout`) is answered as Node would answer it (431, 400,
 * 408), but as a denial logged like every other decision, and the connection lingers closed so the
 * answer is read. Errors that leave nothing to answer (a reset, a response already started on the
 * connection) destroy the connection, as Node does.
 */
export function createClientErrorHandler(
  options: ClientErrorHandlerOptions,
): (err: Error, socket: Socket) => void {
  const { engine, telemetry } = options
  const linger = options.linger ?? DEFAULT_LINGER
  return (err, socket) => {
    // Once answered, the parser reports an error for each chunk it is still fed: all dropped.
    if (isLingering(socket)) return
    const d = clientErrorDenial((err as NodeJS.ErrnoException).code)
    // Node's own rule: answer only when no response has started on this connection (Node keeps the
    // response in progress in `_httpMessage`).
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
    if (d === undefined || !socket.writable || inFlight?.headersSent === true) {
      socket.destroy()
      return
    }
    telemetry.hostDecision(d, 0, engine.info.name)
    socket.write(rawAnswer(d))
    lingeringClose(socket, linger)
  }
}
