/**
 * Bounds on what a peer can hold open on the check listeners: how long a gRPC call may take to
 * deliver its request message, how long a new connection may stay silent, and how long a
 * connection the server has finished with may stay half-closed. grpc-js has options for the age,
 * idle time and stream count of a connection but none for these, so the sidecar owns the gRPC
 * listener's sockets (grpc-js's connection injector) and wraps each call in an interceptor.
 */
import type { Server as HttpServer } from 'node:http'
import { constants as h2 } from 'node:http2'
import { type AddressInfo, createServer, type Server as NetServer, type Socket } from 'node:net'
import {
  type ConnectionInjector,
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type ServerMethodDefinition,
} from '@grpc/grpc-js'

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
