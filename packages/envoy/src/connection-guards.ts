/**
 * Bounds on what a peer can hold open on the check listeners: how long a gRPC call may take to
 * deliver its request message, how long a new connection may stay silent, and how long a
 * connection the server has finished with may stay half-closed. grpc-js has options for the age,
 * idle time and stream count of a connection but none for these, so the sidecar owns the gRPC
 * listener's sockets (grpc-js's connection injector) and wraps each call in an interceptor.
 */
import type { Server as HttpServer, ServerResponse } from 'node:http'
import { constants as h2 } from 'node:http2'
import { type AddressInfo, createServer, type Server as NetServer, type Socket } from 'node:net'
import {
  type ConnectionInjector,
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type ServerMethodDefinition,
} from '@grpc/grpc-js'
import { DEFAULT_INPUT_OPTIONS, type Engine } from '@verdict/core/internal'

/** How long a stream answered for lack of its request gets to close before it is reset. */
export const RESET_AFTER_ANSWER_MS = 1000

/** The part of a Node HTTP/2 stream used to reset it. */
interface ResettableStream {
  readonly closed: boolean
  close(code: number): void
  once(event: 'close', listener: () => void): unknown
}

function resettable(value: unknown): ResettableStream | undefined {
  const s = value as Partial<ResettableStream> | null | undefined
  return typeof s?.close === 'function' && typeof s.once === 'function' && typeof s.closed === 'boolean'
    ? (s as ResettableStream)
    : undefined
}

/**
 * Reset the HTTP/2 stream under `call` a moment after it was answered, so that a peer that keeps
 * sending (or never reads) cannot keep the stream and its buffered bytes. grpc-js has no public
 * way to reset a stream: its base call keeps the stream in `stream`, reachable only by the first
 * interceptor. If a grpc-js version moves it, the answer is still sent and the stream lasts until
 * the peer closes it or the connection reaches its maximum age plus grace.
 */
function resetSoon(call: ServerInterceptingCallInterface): void {
  const stream = resettable((call as unknown as { stream?: unknown }).stream)
  if (stream === undefined || stream.closed) return
  // CANCEL: Node does not send a NO_ERROR reset for a stream it has finished writing.
  const timer = setTimeout(() => {
    if (!stream.closed) stream.close(h2.NGHTTP2_CANCEL)
  }, RESET_AFTER_ANSWER_MS)
  timer.unref()
  stream.once('close', () => clearTimeout(timer))
}

/**
 * An interceptor (it must be the first) that gives each call `timeoutMs` from its headers to the
 * end of its request (grpc-js runs unary and server-streaming handlers only once the client has
 * half-closed, so a message without the end of stream would wait forever too). Past that,
 * `answer` responds (a denial for Check) and the stream is reset.
 */
export function receiveDeadline(
  timeoutMs: number,
  answer: (
    method: ServerMethodDefinition<unknown, unknown>,
    call: ServerInterceptingCallInterface,
    waitedMs: number,
  ) => void,
): ServerInterceptor {
  return (method, call) => {
    let timer: NodeJS.Timeout | undefined
    const clear = (): void => {
      if (timer === undefined) return
      clearTimeout(timer)
      timer = undefined
    }
    return new ServerInterceptingCall(call, {
      start(next) {
        const started = performance.now()
        timer = setTimeout(() => {
          timer = undefined
          try {
            answer(method, call, performance.now() - started)
          } finally {
            resetSoon(call)
          }
        }, timeoutMs)
        next({
          onReceiveHalfClose(nextHalfClose) {
            clear()
            nextHalfClose()
          },
          onCancel: clear,
        })
      },
    })
  }
}

export interface GrpcListenerOptions {
  /**
   * A connection that sends no byte within this is destroyed before grpc-js sees it; one the
   * server has closed its side of is destroyed if the peer has not closed it within this either.
   */
  readonly firstByteTimeoutMs: number
  /** Open connections past this are closed at once. */
  readonly maxConnections: number
}

/**
 * A TCP listener that hands connections to grpc-js once they have sent their first byte. Sockets
 * silent until `firstByteTimeoutMs` are destroyed; once the server has ended a connection (grpc-js
 * closed its session gracefully: idle, maximum age, shutdown) the peer gets `firstByteTimeoutMs`
 * to close it too, then it is destroyed — Node would otherwise wait for the peer's FIN forever.
 */
export class GrpcListener {
  private readonly server: NetServer
  private readonly sockets = new Set<Socket>()
  private readonly silent = new Set<Socket>()

  constructor(injector: ConnectionInjector, options: GrpcListenerOptions) {
    this.server = createServer((socket) => this.accept(socket, injector, options.firstByteTimeoutMs))
    this.server.maxConnections = options.maxConnections
  }

  private accept(socket: Socket, injector: ConnectionInjector, firstByteTimeoutMs: number): void {
    this.sockets.add(socket)
    this.silent.add(socket)
    socket.on('error', () => {})
    const timer = setTimeout(() => socket.destroy(), firstByteTimeoutMs)
    socket.once('close', () => {
      clearTimeout(timer)
      this.sockets.delete(socket)
      this.silent.delete(socket)
    })
    socket.once('data', (first: Buffer) => {
      clearTimeout(timer)
      this.silent.delete(socket)
      // Back into the socket's buffer: Node's HTTP/2 session reads what is buffered first.
      socket.pause()
      socket.unshift(first)
      socket.once('finish', () => {
        const linger = setTimeout(() => socket.destroy(), firstByteTimeoutMs)
        linger.unref()
        socket.once('close', () => clearTimeout(linger))
      })
      try {
        injector.injectConnection(socket)
      } catch {
        socket.destroy()
      }
    })
  }

  /** Bind; resolves with the bound address. */
  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => {
        this.server.off('error', reject)
        resolve(this.server.address() as AddressInfo)
      })
    })
  }

  /** Stop accepting and drop connections that have not sent a byte. */
  stopAccepting(): void {
    if (this.server.listening) this.server.close()
    for (const s of this.silent) s.destroy()
  }

  /** Destroy every connection still open. */
  destroyAll(): void {
    for (const s of this.sockets) s.destroy()
  }
}

/**
 * Close HTTP connections that send nothing for `firstByteTimeoutMs` before their first request
 * (Node's `headersTimeout` only starts at the first byte). From the first request on, Node's own
 * timeouts apply: `headersTimeout`, `requestTimeout`, `keepAliveTimeout` between requests.
 */
export function closeSilentHttpConnections(server: HttpServer, firstByteTimeoutMs: number): void {
  // Node destroys a socket whose timeout fires when nobody listens for 'timeout'.
  server.on('connection', (socket: Socket) => socket.setTimeout(firstByteTimeoutMs))
  server.on('request', (req) => {
    if (req.socket.timeout !== undefined && req.socket.timeout > 0) req.socket.setTimeout(0)
  })
}

/** How long a lingering close keeps reading a connection it has answered (default). */
export const LINGER_TIMEOUT_MS = 2000
/** How many bytes a lingering close reads and drops before it gives up (default, 16 MiB). */
export const LINGER_MAX_BYTES = 16 * 1024 * 1024
/** How often a lingering close looks at the bytes read. */
const LINGER_POLL_MS = 10

/** Bounds of a lingering close: whichever comes first ends it. */
export interface LingerLimits {
  readonly timeoutMs: number
  readonly maxBytes: number
}

const lingering = new WeakSet<Socket>()

/** True once `lingeringClose` has started on `socket`: its answer is sent, what arrives is dropped. */
export function isLingering(socket: Socket): boolean {
  return lingering.has(socket)
}

/**
 * Close a connection whose answer was written while the peer may still be sending (a denial before
 * the body was read): end the write side after the answer, keep reading and dropping what arrives
 * for up to `limits.timeoutMs` or `limits.maxBytes` (counted from here, checked every 10 ms), then
 * destroy it. Destroying at once with unread bytes makes the kernel send a reset, and a reset can
 * discard the answer before the peer reads it — the peer is usually still writing its body and sees
 * only the reset. A peer that closes its side in time closes the connection normally. Idempotent.
 */
export function lingeringClose(socket: Socket, limits: LingerLimits): void {
  if (lingering.has(socket) || socket.destroyed) return
  lingering.add(socket)
  const startBytes = socket.bytesRead
  const stop = (): void => {
    clearTimeout(timer)
    clearInterval(poll)
    socket.destroy()
  }
  const timer = setTimeout(stop, limits.timeoutMs)
  const poll = setInterval(() => {
    if (socket.bytesRead - startBytes > limits.maxBytes) stop()
  }, LINGER_POLL_MS)
  timer.unref()
  poll.unref()
  socket.once('close', () => {
    clearTimeout(timer)
    clearInterval(poll)
  })
  // A peer that resets while we linger is no error of ours.
  socket.on('error', () => {})
  // An HTTP socket's bytes keep flowing into Node's parser, which drops the body of a request that
  // was answered; a socket nobody reads (after a parser error the parser still consumes it) is
  // resumed so its bytes are read and dropped.
  socket.resume()
  socket.setTimeout(0)
  socket.end()
}

/**
 * Make the connection under `res` close by lingering (see `lingeringClose`) once its answer is
 * written. Node ends a `connection: close` response's socket with `destroySoon()` (end, then
 * destroy as soon as the write side is flushed, unread bytes or not); this socket's `destroySoon`
 * lingers instead. Should a Node version stop calling it, the response's 'close' starts the linger.
 * An answer that cannot be written within `limits.timeoutMs` (a peer that never reads) is dropped
 * with its connection.
 */
export function lingerAfterAnswer(res: ServerResponse, limits: LingerLimits): void {
  const socket = res.req.socket
  const linger = (): void => {
    clearTimeout(unsent)
    lingeringClose(socket, limits)
  }
  ;(socket as Socket & { destroySoon?: () => void }).destroySoon = linger
  res.once('close', linger)
  // An answer the peer never reads (it does not read while it sends) cannot finish: drop it then.
  const unsent = setTimeout(() => {
    if (!isLingering(socket)) socket.destroy()
  }, limits.timeoutMs)
  unsent.unref()
}

/**
 * What the HTTP listener's header limit allows over the policy's `input.maxHeaderBytes`. Node counts
 * the request target, names and values (with trailing blanks) as verdict does, so this is room for
 * blanks, Envoy's `path_prefix` and a little more: a request just over the policy's limit still
 * reaches the policy, which answers its 431.
 */
export const LISTENER_HEADER_ROOM = 4096
/**
 * The most the HTTP listener takes whatever the policy says: Envoy's own ceiling
 * (`max_request_headers_kb` is at most 8192) plus the room above. Past it Node refuses the headers.
 */
export const MAX_LISTENER_HEADER_BYTES = 8192 * 1024 + LISTENER_HEADER_ROOM

/**
 * The policy's `input.maxHeaderBytes`. core's `Engine` interface does not expose its input limits;
 * the engine `createEngine` returns keeps its compiled policy in `current`, read here. Should that
 * move, the default (64 KiB) is used and the listener-limit tests fail.
 */
export function policyMaxHeaderBytes(engine: Engine): number {
  const current = (engine as unknown as { current?: { input?: { maxHeaderBytes?: unknown } } }).current
  const v = current?.input?.maxHeaderBytes
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : DEFAULT_INPUT_OPTIONS.maxHeaderBytes
}

/** The HTTP listener's `maxHeaderSize` for a policy allowing `maxHeaderBytes`. */
export function listenerHeaderLimit(maxHeaderBytes: number): number {
  return Math.min(maxHeaderBytes + LISTENER_HEADER_ROOM, MAX_LISTENER_HEADER_BYTES)
}

/**
 * Keep `server.maxHeaderSize` (Node's header limit, which answers 431 before any handler runs) just
 * above the policy's `input.maxHeaderBytes`, so the policy decides about large headers. Node reads
 * the limit when a connection opens: after a reload with another limit, new connections get the new
 * one (checked on each new connection, by the engine's generation); connections already open keep
 * theirs. Node's header count limit is lifted (it drops the lines past 2000 silently); the byte limit
 * bounds the count, and the policy's `maxHeaders` refuses too many.
 */
export function followPolicyHeaderLimit(server: HttpServer, engine: Engine): void {
  const limited = server as HttpServer & { maxHeaderSize?: number }
  let generation: number | undefined
  const update = (): void => {
    const now = engine.info.generation
    if (now === generation) return
    generation = now
    limited.maxHeaderSize = listenerHeaderLimit(policyMaxHeaderBytes(engine))
  }
  update()
  server.maxHeadersCount = 0
  // Before Node's own 'connection' listener, which creates the connection's parser with the limit.
  server.prependListener('connection', update)
}
