/**
 * The gRPC listener: unary `Authorization/Check`, `Health/Check` and server-streaming
 * `Health/Watch` served straight on node:http2 (gRPC over HTTP/2: a length-prefixed message each
 * way, `grpc-status` in the trailers). No gRPC framework: the bench found @grpc/grpc-js and
 * @connectrpc/connect-node far from what node:http2 itself does per call (docs/envoy.md, "Speed").
 *
 * What a gRPC server owes its peers is here too: the stream limit (HTTP/2 SETTINGS), maximum
 * connection age with a grace period, idle connections closed, keepalive PINGs, a deadline for the
 * request message, the message size limit, and a graceful close that never refuses a call it has
 * read (GOAWAY names the last stream taken; calls after it were never started and the client may
 * retry them elsewhere).
 */
import {
  createSecureServer as createH2SecureServer,
  createServer as createH2Server,
  type Http2Server,
  type Http2Session,
  constants as h2,
  type IncomingHttpHeaders,
  type SecureServerOptions,
  type ServerHttp2Stream,
} from 'node:http2'
import type { Socket } from 'node:net'
import { type Deadline, DeadlineQueue } from './deadline-queue.js'

/** How long a stream answered before its request ended gets to close before it is reset. */
export const RESET_AFTER_ANSWER_MS = 1000

export const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check'
export const HEALTH_CHECK_PATH = '/grpc.health.v1.Health/Check'
export const HEALTH_WATCH_PATH = '/grpc.health.v1.Health/Watch'

/** gRPC status codes used here. */
export const GRPC = {
  OK: 0,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const

/** An answer to a unary call: a message, or a gRPC error status. */
export type UnaryAnswer = Uint8Array | { readonly code: number; readonly message: string }

/** One call being served: write messages (server streaming) or a final answer. */
export interface GrpcCall {
  /** True once the call ended (answered, cancelled, reset, connection gone). */
  readonly ended: boolean
  /** Send one message without ending the call (server streaming). */
  write(message: Uint8Array): void
  /** End the call with `grpc-status` `code`. */
  end(code?: number, message?: string): void
  /** Called once when the call ends for any reason. */
  onEnd(listener: () => void): void
  /** The TLS or TCP socket under the call. */
  readonly socket: Socket
}

export interface GrpcHandlers {
  /**
   * Unary Check: the request message's bytes (or a problem with them) -> the answer, a message
   * already framed for gRPC (see `grpcFrame`): a Check always answers with a CheckResponse.
   */
  check(request: Uint8Array | 'too_large' | 'compressed', started: number): Buffer | Promise<Buffer>
  /** The framed answer for a Check whose request did not arrive within `receiveTimeoutMs`. */
  checkUnreceived(waitedMs: number): Buffer
  /**
   * The framed answer for a Check whose handler failed (its promise rejected): a denial, never a
   * gRPC error status, which Envoy's `failure_mode_allow` would turn into an allow.
   */
  checkFailed(waitedMs: number): Buffer
  /** Unary Health/Check. */
  healthCheck(request: Uint8Array): UnaryAnswer
  /** Server-streaming Health/Watch: write on `call` until it ends. */
  healthWatch(request: Uint8Array, call: GrpcCall): void
}

export interface GrpcServerLimits {
  readonly maxRequestBytes: number
  readonly receiveTimeoutMs: number
  readonly maxConcurrentStreams: number
  readonly maxConnectionAgeMs: number
  readonly maxConnectionAgeGraceMs: number
  readonly maxConnectionIdleMs: number
  readonly keepaliveTimeMs: number
  readonly keepaliveTimeoutMs: number
}

const RESPONSE_HEADERS = Object.freeze({
  [h2.HTTP2_HEADER_STATUS]: 200,
  [h2.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
})
/** gRPC needs no Date header; leaving it out spares building and compressing one per call. */
const RESPOND_WITH_TRAILERS = Object.freeze({ waitForTrailers: true, sendDate: false })
const RESPOND_AND_END = Object.freeze({ endStream: true, sendDate: false })

/** The 5-byte gRPC prefix (not compressed, length) and the message, in one buffer. */
export function grpcFrame(message: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(5 + message.length)
  b[0] = 0
  b.writeUInt32BE(message.length, 1)
  b.set(message, 5)
  return b
}

/** grpc-message is percent-encoded (gRPC over HTTP/2, "Responses"). */
function grpcMessage(text: string): string {
  return encodeURIComponent(text)
}

/**
 * A call on `stream`: response headers are sent with the first message or the end, trailers carry
 * the status. Writes after the call ended are dropped.
 */
class Call implements GrpcCall {
  ended = false
  private headersSent = false
  private readonly listeners: Array<() => void> = []

  private readonly closeListeners: Array<() => void> = []

  constructor(private readonly stream: ServerHttp2Stream) {
    // One 'close' listener per stream for everything that waits for it.
    stream.on('close', () => {
      this.finish()
      for (const l of this.closeListeners) l()
    })
  }

  /** Called when the stream has closed (after `onEnd` listeners). */
  onClose(listener: () => void): void {
    this.closeListeners.push(listener)
  }

  get socket(): Socket {
    return this.stream.session?.socket as Socket
  }

  private finish(): void {
    if (this.ended) return
    this.ended = true
    for (const l of this.listeners.splice(0)) l()
  }

  onEnd(listener: () => void): void {
    if (this.ended) listener()
    else this.listeners.push(listener)
  }

  write(message: Uint8Array): void {
    if (this.ended || this.stream.destroyed) return
    if (!this.headersSent) {
      this.headersSent = true
      this.stream.respond(RESPONSE_HEADERS, RESPOND_WITH_TRAILERS)
    }
    this.stream.write(grpcFrame(message))
  }

  /** Answer a unary call: one message and OK, or an error status. */
  answer(a: UnaryAnswer): void {
    if (a instanceof Uint8Array) this.answerFrame(grpcFrame(a))
    else this.end(a.code, a.message)
  }

  /** Answer a unary call with one message already framed, and OK. */
  answerFrame(frame: Buffer): void {
    if (this.ended || this.stream.destroyed) return
    if (!this.headersSent) {
      this.headersSent = true
      this.stream.respond(RESPONSE_HEADERS, RESPOND_WITH_TRAILERS)
    }
    this.stream.on('wantTrailers', () => this.trailers(GRPC.OK, undefined))
    this.stream.end(frame)
    this.finish()
  }

  private trailers(code: number, message: string | undefined): void {
    if (this.stream.destroyed) return
    const t: Record<string, string> = { 'grpc-status': String(code) }
    if (message !== undefined && message !== '') t['grpc-message'] = grpcMessage(message)
    try {
      this.stream.sendTrailers(t)
    } catch {
      // The stream went away between the data and the trailers.
    }
  }

  end(code: number = GRPC.OK, message?: string): void {
    if (this.ended || this.stream.destroyed) {
      this.finish()
      return
    }
    if (this.headersSent) {
      this.stream.once('wantTrailers', () => this.trailers(code, message))
      this.stream.end()
    } else {
      // Trailers-only: one HEADERS frame with the status, ending the stream.
      const h: Record<string, string | number> = { ...RESPONSE_HEADERS, 'grpc-status': String(code) }
      if (message !== undefined && message !== '') h['grpc-message'] = grpcMessage(message)
      this.headersSent = true
      this.stream.respond(h, RESPOND_AND_END)
    }
    this.finish()
  }
}

/**
 * Reset `stream` a moment after it was answered, so a peer that keeps sending (or never reads)
 * cannot keep the stream and its buffered bytes. CANCEL: Node does not send a NO_ERROR reset for
 * a stream it has finished writing.
 */
function resetSoon(stream: ServerHttp2Stream): void {
  if (stream.closed) return
  const timer = setTimeout(() => {
    if (!stream.closed) stream.close(h2.NGHTTP2_CANCEL)
  }, RESET_AFTER_ANSWER_MS)
  timer.unref()
  stream.once('close', () => clearTimeout(timer))
}

/** A stream's errors end the call through its 'close' event; the error itself needs no handling. */
const ignore = (): void => {}

/** `application/grpc`, optionally `+codec` or `;params`; not `application/grpc-web` (gRPC over HTTP/2, "Requests"). */
const GRPC_CONTENT_TYPE = /^application\/grpc(?:[+;]|$)/

type Method = 'check' | 'healthCheck' | 'healthWatch'

function methodOf(path: unknown): Method | undefined {
  if (path === CHECK_PATH) return 'check'
  if (path === HEALTH_CHECK_PATH) return 'healthCheck'
  if (path === HEALTH_WATCH_PATH) return 'healthWatch'
  return undefined
}

/** Per-connection state: open calls, timers. */
interface SessionState {
  active: number
  idle: NodeJS.Timeout | undefined
  closing: boolean
  readonly timers: NodeJS.Timeout[]
}

export interface GrpcServer {
  /** The node:http2 server; connections reach it through `accept(socket)`. */
  readonly server: Http2Server
  /** Hand a connected socket (plain TCP or Unix) to the server. */
  accept(socket: Socket): void
  /** Close every connection gracefully: GOAWAY, open calls finish, then the socket closes. */
  closeAll(): void
  /** Destroy every connection now. */
  destroyAll(): void
  /** Resolves once no connection is open. */
  idle(): Promise<void>
}

/**
 * Close a session gracefully: GOAWAY naming the last stream the server took (nghttp2 clamps the
 * id to that), calls in progress finish, new ones are refused as never started; the socket closes
 * when the last call ends or `graceMs` later.
 */
function closeGracefully(session: Http2Session, state: SessionState, graceMs: number): void {
  if (state.closing || session.closed || session.destroyed) return
  state.closing = true
  try {
    session.close()
  } catch {
    session.destroy()
    return
  }
  const t = setTimeout(() => session.destroy(), graceMs)
  t.unref()
  state.timers.push(t)
}

/** A gRPC server on node:http2 (TLS when `tls` is given). Nothing listens: see `accept`. */
export function createGrpcServer(
  handlers: GrpcHandlers,
  limits: GrpcServerLimits,
  tls?: SecureServerOptions,
): GrpcServer {
  const settings = { maxConcurrentStreams: limits.maxConcurrentStreams }
  const server: Http2Server = tls
    ? (createH2SecureServer({ ...tls, settings, allowHTTP1: false }) as unknown as Http2Server)
    : createH2Server({ settings })
  const sessions = new Map<Http2Session, SessionState>()
  const receiveDeadlines = new DeadlineQueue(limits.receiveTimeoutMs)
  const idleWaiters: Array<() => void> = []

  const startIdle = (session: Http2Session, state: SessionState): void => {
    if (state.active > 0 || state.closing) return
    clearTimeout(state.idle)
    state.idle = setTimeout(
      () => closeGracefully(session, state, limits.maxConnectionAgeGraceMs),
      limits.maxConnectionIdleMs,
    )
    state.idle.unref()
  }

  server.on('session', (session: Http2Session) => {
    const state: SessionState = { active: 0, idle: undefined, closing: false, timers: [] }
    sessions.set(session, state)
    session.on('error', () => {})
    // Maximum age, ±10 % so that connections opened together do not all close together.
    const age = limits.maxConnectionAgeMs * (0.9 + Math.random() * 0.2)
    const ageTimer = setTimeout(() => closeGracefully(session, state, limits.maxConnectionAgeGraceMs), age)
    ageTimer.unref()
    state.timers.push(ageTimer)
    // Keepalive: a PING every keepaliveTimeMs; no answer within keepaliveTimeoutMs closes it.
    const keepalive = setInterval(() => {
      if (session.destroyed || session.closed) return
      const dead = setTimeout(() => session.destroy(), limits.keepaliveTimeoutMs)
      dead.unref()
      try {
        session.ping((err) => {
          clearTimeout(dead)
          if (err) session.destroy()
        })
      } catch {
        clearTimeout(dead)
      }
    }, limits.keepaliveTimeMs)
    keepalive.unref()
    state.timers.push(keepalive as unknown as NodeJS.Timeout)
    startIdle(session, state)
    session.once('close', () => {
      clearTimeout(state.idle)
      for (const t of state.timers) clearTimeout(t)
      sessions.delete(session)
      if (sessions.size === 0) for (const w of idleWaiters.splice(0)) w()
    })
  })

  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    const session = stream.session
    const state = session === undefined ? undefined : sessions.get(session)
    stream.on('error', ignore)
    const call = new Call(stream)
    if (state !== undefined) {
      state.active++
      clearTimeout(state.idle)
      call.onClose(() => {
        state.active--
        if (session !== undefined) startIdle(session, state)
      })
    }
    serveStream(stream, headers, call)
  })

  const serveStream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, call: Call): void => {
    const method = methodOf(headers[h2.HTTP2_HEADER_PATH])
    const contentType = headers[h2.HTTP2_HEADER_CONTENT_TYPE]
    if (
      headers[h2.HTTP2_HEADER_METHOD] !== 'POST' ||
      typeof contentType !== 'string' ||
      !GRPC_CONTENT_TYPE.test(contentType)
    ) {
      stream.respond({ [h2.HTTP2_HEADER_STATUS]: 415 }, { endStream: true })
      return
    }
    if (method === undefined) {
      call.end(GRPC.UNIMPLEMENTED, `unknown method ${String(headers[h2.HTTP2_HEADER_PATH])}`)
      stream.resume()
      resetSoon(stream)
      return
    }
    const started = performance.now()
    // The request: the 5-byte prefix and one message, then the end of the stream.
    let chunks: Buffer[] = []
    let size = 0
    let declared = -1
    let answered = false
    // The receive deadline; for a unary call it also bounds how long an answered stream may stay
    // open: a peer that does not read its answer (flow-control window 0) holds the stream and the
    // answer's bytes until then, not until the connection's maximum age.
    // (One queue for every call: they all wait as long, so no Node timer per call.)
    const deadline: Deadline = receiveDeadlines.add(() => {
      if (answered) {
        if (!call.ended) receiveDeadlines.renew(deadline)
        else if (!stream.closed) stream.close(h2.NGHTTP2_CANCEL)
        return
      }
      answered = true
      chunks = []
      if (method === 'check') call.answerFrame(handlers.checkUnreceived(performance.now() - started))
      else call.end(GRPC.DEADLINE_EXCEEDED, 'request not received in time')
      resetSoon(stream)
    })
    const answerEarly = (problem: 'too_large' | 'compressed'): void => {
      answered = true
      deadline.cancel()
      chunks = []
      if (method === 'check') deliver(handlers.check(problem, started))
      else call.end(GRPC.RESOURCE_EXHAUSTED, 'request message too large')
      resetSoon(stream)
    }
    const deliver = (a: Buffer | Promise<Buffer>): void => {
      if (a instanceof Uint8Array) call.answerFrame(a)
      else
        a.then(
          (x) => call.answerFrame(x),
          () => call.answerFrame(handlers.checkFailed(performance.now() - started)),
        )
    }
    stream.on('data', (chunk: Buffer) => {
      if (answered) return
      size += chunk.length
      if (declared < 0 && size >= 5) {
        const head = chunks.length === 0 ? chunk : Buffer.concat([...chunks, chunk])
        if (head[0] !== 0) return answerEarly('compressed')
        declared = head.readUInt32BE(1)
        if (declared > limits.maxRequestBytes) return answerEarly('too_large')
      }
      if (size > limits.maxRequestBytes + 5) return answerEarly('too_large')
      chunks.push(chunk)
    })
    stream.on('end', () => {
      if (answered) return
      answered = true
      // A unary call keeps the timer until its stream closes (cleared then); Watch streams live on.
      if (method === 'healthWatch') deadline.cancel()
      const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)
      chunks = []
      // A message cut short, or more than one (not unary): not a request this server reads.
      const message = declared >= 0 && all.length === 5 + declared ? all.subarray(5) : undefined
      if (method === 'check') {
        deliver(handlers.check(message ?? 'compressed', started))
        return
      }
      if (message === undefined) {
        call.end(GRPC.INTERNAL, 'not one request message')
        return
      }
      if (method === 'healthCheck') call.answer(handlers.healthCheck(message))
      else handlers.healthWatch(message, call)
    })
    call.onClose(() => deadline.cancel())
  }

  return {
    server,
    accept(socket) {
      server.emit('connection', socket)
    },
    closeAll() {
      for (const [session, state] of sessions) closeGracefully(session, state, limits.maxConnectionAgeGraceMs)
    },
    destroyAll() {
      for (const session of sessions.keys()) session.destroy()
    },
    idle() {
      if (sessions.size === 0) return Promise.resolve()
      return new Promise((resolve) => {
        idleWaiters.push(resolve)
      })
    },
  }
}
