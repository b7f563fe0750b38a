/**
 * Bounds on what a peer can hold open on the check listeners: how long a new connection may stay
 * silent, how long a connection the server has finished with may stay half-closed, and the HTTP
 * listener's lingering close and header limit. The gRPC listener's per-call bounds (request
 * deadline, stream limit, age, idle, keepalive) are in grpc-server.ts.
 */
import { chmod, unlink } from 'node:fs/promises'
import type { Server as HttpServer, ServerResponse } from 'node:http'
import { type AddressInfo, connect, createServer, type Server as NetServer, type Socket } from 'node:net'
import { DEFAULT_INPUT_OPTIONS, type Engine } from '@verdict/core/internal'

/** A TCP address (`host` defaults to 127.0.0.1; port 0 picks a free port). */
export interface TcpAddress {
  readonly host?: string
  readonly port: number
}

/** A Unix domain socket (Envoy's `pipe` address); `mode` is the file mode set after binding. */
export interface UnixAddress {
  readonly path: string
  readonly mode?: number
}

export const DEFAULT_HOST = '127.0.0.1'

/** `host:port` (IPv6 hosts in brackets), or `unix:<path>`. */
export function formatBound(server: NetServer, at: TcpAddress | UnixAddress): string {
  if ('path' in at) return `unix:${at.path}`
  const a = server.address() as AddressInfo
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
}

/** True when something accepts connections on the Unix socket at `path`. */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

/**
 * Bind `server` to `at`. A Unix socket file left by a process that is gone (nothing answers on it)
 * is removed first; one in use is an error (EADDRINUSE), as for a TCP port. The file gets `mode`.
 */
export async function listenOn(server: NetServer, at: TcpAddress | UnixAddress): Promise<string> {
  const bind = (): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject)
      const done = (): void => {
        server.off('error', reject)
        resolve()
      }
      if ('path' in at) server.listen(at.path, done)
      else server.listen(at.port, at.host ?? DEFAULT_HOST, done)
    })
  try {
    await bind()
  } catch (e) {
    if (
      !('path' in at) ||
      (e as NodeJS.ErrnoException).code !== 'EADDRINUSE' ||
      (await socketAnswers(at.path))
    )
      throw e
    await unlink(at.path)
    await bind()
  }
  if ('path' in at && at.mode !== undefined) await chmod(at.path, at.mode)
  return formatBound(server, at)
}

export interface ConnectionListenerOptions {
  /**
   * A connection that sends no byte within this is destroyed before the server sees it; one the
   * server has closed its side of is destroyed if the peer has not closed it within this either.
   */
  readonly firstByteTimeoutMs: number
  /** Open connections past this are closed at once. */
  readonly maxConnections: number
}

/**
 * A TCP or Unix listener that hands connections to a server once they have sent their first byte.
 * Sockets silent until `firstByteTimeoutMs` are destroyed; once the server has ended a connection
 * (its HTTP/2 session closed gracefully: idle, maximum age, shutdown) the peer gets
 * `firstByteTimeoutMs` to close it too, then it is destroyed — Node would otherwise wait for the
 * peer's FIN forever.
 */
export class ConnectionListener {
  private readonly server: NetServer
  private readonly sockets = new Set<Socket>()
  private readonly silent = new Set<Socket>()

  constructor(inject: (socket: Socket) => void, options: ConnectionListenerOptions) {
    this.server = createServer({ noDelay: true }, (socket) =>
      this.accept(socket, inject, options.firstByteTimeoutMs),
    )
    this.server.maxConnections = options.maxConnections
  }

  private accept(socket: Socket, inject: (socket: Socket) => void, firstByteTimeoutMs: number): void {
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
      // Back into the socket's buffer: Node's HTTP/2 session and TLS socket read what is buffered first.
      socket.pause()
      socket.unshift(first)
      socket.once('finish', () => {
        const linger = setTimeout(() => socket.destroy(), firstByteTimeoutMs)
        linger.unref()
        socket.once('close', () => clearTimeout(linger))
      })
      try {
        inject(socket)
      } catch {
        socket.destroy()
      }
    })
  }

  /** Bind; resolves with the bound address (`host:port` or `unix:<path>`). */
  listen(at: TcpAddress | UnixAddress): Promise<string> {
    return listenOn(this.server, at)
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
