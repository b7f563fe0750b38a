/**
 * The ext_authz sidecar: Envoy's gRPC `Authorization/Check` and `grpc.health.v1.Health` on one
 * listener, the HTTP service mode on another, and `/healthz`, `/readyz`, `/metrics` on a third.
 * All three bind to 127.0.0.1 unless told otherwise.
 */
import { createServer, type Server as HttpServer, type ServerOptions as HttpServerOptions } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { Server as NetServer } from 'node:net'
import {
  type Decision,
  type Engine,
  isThenable,
  isValidHttpStatus,
  malformed,
  VerdictUsageError,
} from '@verdict/core/internal'
import { tlsPeerPrincipal } from '@verdict/node'
import {
  ConnectionListener,
  closeSilentHttpConnections,
  followPolicyHeaderLimit,
  LINGER_MAX_BYTES,
  LINGER_TIMEOUT_MS,
  type LingerLimits,
  listenOn,
  type TcpAddress,
  type UnixAddress,
} from './connection-guards.js'
import { DeadlineQueue } from './deadline-queue.js'
import { evaluateCheck, type FailurePolicy, hostDenial, type IdentifiedDecision } from './evaluate-check.js'
import { createGrpcServer, type GrpcServer } from './grpc-server.js'
import { createHealthService } from './health-service.js'
import { bodyTooLarge, createClientErrorHandler, createHttpAuthzHandler } from './http-authz-handler.js'
import { createLimiter } from './limiter.js'
import { createOpsHandler, type OpsHandlerOptions } from './ops-handler.js'
import { createTelemetry, type Telemetry } from './telemetry.js'
import { decodeCheckRequest, encodeCheckResponseFrame } from './wire.js'

/** Where a listener binds. `host` defaults to 127.0.0.1; port 0 picks a free port. */
export type ListenAddress = TcpAddress

/** A Unix domain socket to listen on (Envoy's `pipe` address); `mode` is set on the file (e.g. 0o660). */
export type SocketPathAddress = UnixAddress

/**
 * TLS for the gRPC and HTTP listeners (PEM text or bytes). With `clientCa`, clients must present a
 * certificate that chains to it (mTLS); in the HTTP service mode the certificate's URI SAN becomes
 * the request's `source.principal`.
 */
export interface ListenerTls {
  readonly cert: string | Buffer
  readonly key: string | Buffer
  readonly clientCa?: string | Buffer
}

export interface ExtAuthzServerOptions {
  readonly engine: Engine
  /** gRPC listener (Authorization and Health): TCP or a Unix socket. */
  readonly grpc?: ListenAddress | SocketPathAddress
  /** HTTP service-mode listener: TCP or a Unix socket. */
  readonly http?: ListenAddress | SocketPathAddress
  /** TLS (and mTLS with `clientCa`) on the gRPC and HTTP listeners; the operations listener stays plain. */
  readonly tls?: ListenerTls
  /** Operations listener: /healthz, /readyz, /metrics (and /status with `opsStatus`). */
  readonly ops?: ListenAddress
  /** More readiness for `/readyz` on the operations listener (e.g. a bundle is active). */
  readonly opsReadiness?: OpsHandlerOptions['readiness']
  /** The document `/status` answers on the operations listener (e.g. OPA's status report). */
  readonly opsStatus?: OpsHandlerOptions['status']
  /** Logs and metrics; pass the same one to the engine's `onDecision`. Default: a new one. */
  readonly telemetry?: Telemetry
  /** Status of denials the host makes when it cannot decide (default 403). */
  readonly statusOnError?: number
  /** Longest wait for a decision before denying with code `timeout` (default 2000 ms). */
  readonly decisionTimeoutMs?: number
  /** Largest CheckRequest message or HTTP body accepted (default 5 MiB); larger ones get 413. */
  readonly maxRequestBytes?: number
  /** Most checks decided at once (default 1024); more are denied with `statusOnError`. */
  readonly maxConcurrent?: number
  /** Envoy's `http_service.path_prefix`, removed in the HTTP service mode. */
  readonly httpPathPrefix?: string
  /**
   * On `stop()`, how long the server keeps serving as before once `/readyz` and gRPC health say
   * NOT_SERVING (default 0), so that Envoy's health checks see it and send no more checks here.
   * Only then does it stop accepting connections and close the open ones gracefully.
   */
  readonly drainDelayMs?: number
  /** After the drain delay, how long `stop()` waits for checks in flight before closing connections (default 10 s). */
  readonly drainTimeoutMs?: number
  /**
   * Longest wait from a check's headers to the end of its request (the gRPC CheckRequest message
   * and end of stream, the HTTP body), default 5000 ms. Past it the check is denied with 408, code
   * `timeout`, and the gRPC stream is reset / the HTTP connection closed.
   */
  readonly receiveTimeoutMs?: number
  /**
   * A new connection to any listener that sends nothing for this long before its first request
   * (HTTP) or first byte (gRPC) is closed (default 10 000 ms). A gRPC connection the server has
   * closed its side of is destroyed if the peer has not closed it this long after.
   */
  readonly firstByteTimeoutMs?: number
  /** Most open connections on the gRPC listener and on the HTTP listener, each (default 4096). */
  readonly maxConnections?: number
  /** Most concurrent HTTP/2 streams (calls) per gRPC connection (default 100). */
  readonly grpcMaxConcurrentStreams?: number
  /** A gRPC connection is sent GOAWAY after this long, ±10 % (default 300 000 ms). */
  readonly grpcMaxConnectionAgeMs?: number
  /**
   * How long calls may finish after the age GOAWAY before the connection is closed (default
   * 10 000 ms, or `decisionTimeoutMs` + 1000 if that is longer).
   */
  readonly grpcMaxConnectionAgeGraceMs?: number
  /** A gRPC connection without calls for this long is closed (default 60 000 ms). */
  readonly grpcMaxConnectionIdleMs?: number
  /** Interval of HTTP/2 PINGs the server sends on each gRPC connection (default 60 000 ms). */
  readonly grpcKeepaliveTimeMs?: number
  /** A gRPC connection whose PING is not answered within this is closed (default 20 000 ms). */
  readonly grpcKeepaliveTimeoutMs?: number
  /**
   * An HTTP connection answered before its request was read (413, 408, a 431 or 400 from the
   * listener) is closed by lingering: the answer is sent with `connection: close`, the write side
   * ended, and what the client still sends is read and dropped for up to this long (default 2000 ms)
   * or `lingerMaxBytes`, whichever comes first; then the connection is destroyed. Destroying it at
   * once with unread bytes makes the kernel send a reset, which can discard the answer.
   */
  readonly lingerTimeoutMs?: number
  /** Bytes a lingering close reads and drops before it destroys the connection (default 16 MiB). */
  readonly lingerMaxBytes?: number
}

/** The `host:port` each listener is bound to (IPv6 hosts in brackets). */
export interface BoundAddresses {
  readonly grpc?: string
  readonly http?: string
  readonly ops?: string
}

export interface ExtAuthzServer {
  /** Bind every configured listener. Rejects (and closes what was bound) if one cannot bind. */
  start(): Promise<BoundAddresses>
  /** Stop taking checks, finish those in flight within the drain timeout, then close. */
  stop(): Promise<void>
  /** True between `start()` and `stop()`. */
  readonly serving: boolean
  readonly telemetry: Telemetry
}

/** `options[name]`, or `fallback` when absent; a present value must be a positive integer. */
function positive(
  options: ExtAuthzServerOptions,
  name: keyof ExtAuthzServerOptions,
  fallback: number,
): number {
  const v = options[name]
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)
    throw new VerdictUsageError(name, `${name} must be a positive integer, not ${String(v)}`)
  return v
}

/**
 * Create the sidecar. Nothing listens until `start()`.
 *
 * @example
 * ```ts
 * const telemetry = createTelemetry()
 * const engine = await createEngineFromFile('policy.yaml', { onDecision: telemetry.onDecision })
 * const server = createExtAuthzServer({ engine, telemetry, grpc: { port: 9000 }, ops: { port: 9464 } })
 * console.log(await server.start()) // { grpc: '127.0.0.1:9000', ops: '127.0.0.1:9464' }
 * process.once('SIGTERM', () => void server.stop())
 * ```
 */
export function createExtAuthzServer(options: ExtAuthzServerOptions): ExtAuthzServer {
  const engine = options?.engine
  if (typeof engine?.decide !== 'function')
    throw new VerdictUsageError(
      'engine',
      'engine must be an Engine (from createEngine or createEngineFromFile)',
    )
  const telemetry = options.telemetry ?? createTelemetry()
  const statusOnError = options.statusOnError ?? 403
  if (!isValidHttpStatus(statusOnError) || statusOnError < 300)
    throw new VerdictUsageError(
      'statusOnError',
      `statusOnError ${statusOnError} is not a denial status Envoy accepts`,
    )
  const failure: FailurePolicy = { statusOnError, timeoutMs: positive(options, 'decisionTimeoutMs', 2000) }
  const decisionDeadlines = new DeadlineQueue(failure.timeoutMs)
  const maxRequestBytes = positive(options, 'maxRequestBytes', 5 * 1024 * 1024)
  const limiter = createLimiter(positive(options, 'maxConcurrent', 1024), telemetry.inflight)
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000
  const drainDelayMs = options.drainDelayMs ?? 0
  if (!Number.isSafeInteger(drainDelayMs) || drainDelayMs < 0)
    throw new VerdictUsageError('drainDelayMs', `drainDelayMs must be 0 or more, not ${String(drainDelayMs)}`)
  const receiveTimeoutMs = positive(options, 'receiveTimeoutMs', 5000)
  const firstByteTimeoutMs = positive(options, 'firstByteTimeoutMs', 10_000)
  const maxConnections = positive(options, 'maxConnections', 4096)
  const linger: LingerLimits = {
    timeoutMs: positive(options, 'lingerTimeoutMs', LINGER_TIMEOUT_MS),
    maxBytes: positive(options, 'lingerMaxBytes', LINGER_MAX_BYTES),
  }
  const grpcLimits = {
    maxRequestBytes,
    receiveTimeoutMs,
    maxConcurrentStreams: positive(options, 'grpcMaxConcurrentStreams', 100),
    maxConnectionAgeMs: positive(options, 'grpcMaxConnectionAgeMs', 300_000),
    maxConnectionAgeGraceMs: positive(
      options,
      'grpcMaxConnectionAgeGraceMs',
      Math.max(10_000, failure.timeoutMs + 1000),
    ),
    maxConnectionIdleMs: positive(options, 'grpcMaxConnectionIdleMs', 60_000),
    keepaliveTimeMs: positive(options, 'grpcKeepaliveTimeMs', 60_000),
    keepaliveTimeoutMs: positive(options, 'grpcKeepaliveTimeoutMs', 20_000),
  }
  const tls = options.tls
  if (tls !== undefined && (tls.cert === undefined || tls.key === undefined))
    throw new VerdictUsageError('tls', 'tls needs both cert and key')
  const tlsServerOptions =
    tls === undefined
      ? undefined
      : {
          cert: tls.cert,
          key: tls.key,
          ...(tls.clientCa !== undefined
            ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }
            : {}),
          // A TLS handshake that has not finished counts as silence.
          handshakeTimeout: firstByteTimeoutMs,
        }
  const health = createHealthService()
  let serving = false
  /** Set once `stop()` began: HTTP answers close their connection, so clients open new ones elsewhere. */
  let draining = false
  let stopping: Promise<void> | undefined

  /** An answer (framed for gRPC) that never fails to encode: an encoding problem becomes a denial. */
  const encode = (d: Decision, id: string): Buffer => {
    try {
      return encodeCheckResponseFrame(d, id)
    } catch {
      return encodeCheckResponseFrame(
        hostDenial(statusOnError, 'internal', 'response could not be encoded'),
        id,
      )
    }
  }
  const hostAnswer = (d: Decision, started: number): Buffer =>
    encode(d, telemetry.hostDecision(d, performance.now() - started, engine.info.name))
  const answer = ({ decision, id }: IdentifiedDecision): Buffer => {
    limiter.release()
    return encode(decision, id)
  }

  const check = (
    request: Uint8Array | 'too_large' | 'compressed',
    started: number,
  ): Buffer | Promise<Buffer> => {
    if (request === 'too_large') return hostAnswer(bodyTooLarge(maxRequestBytes, 'CheckRequest'), started)
    if (request === 'compressed')
      return hostAnswer(
        malformed(
          'malformed input: not one uncompressed CheckRequest message (grpc-encoding is not supported)',
        ),
        started,
      )
    const input = decodeCheckRequest(request)
    if ('allowed' in input) return hostAnswer(input as Decision, started)
    if (!limiter.tryAcquire())
      return hostAnswer(hostDenial(statusOnError, 'overloaded', 'too many checks in progress'), started)
    // evaluateCheck never rejects, so `answer` always runs and releases the slot.
    const r = evaluateCheck(engine, telemetry, input, failure, decisionDeadlines)
    return isThenable(r) ? r.then(answer) : answer(r)
  }

  let grpcServer: GrpcServer | undefined
  let grpcListener: ConnectionListener | undefined
  let httpServer: HttpServer | undefined
  let opsServer: HttpServer | undefined

  const newHttpServer = (
    handler: Parameters<typeof createServer>[1],
    secure: typeof tlsServerOptions,
  ): HttpServer => {
    const base: HttpServerOptions = {
      maxHeaderSize: 64 * 1024,
      requestTimeout: Math.max(30_000, receiveTimeoutMs + 10_000),
      headersTimeout: 10_000,
      // How often the two timeouts above are checked (Node's default is 30 s).
      connectionsCheckingInterval: 1000,
    }
    const server =
      secure === undefined
        ? createServer(base, handler)
        : (createHttpsServer({ ...base, ...secure }, handler) as unknown as HttpServer)
    // Longer than Envoy's pool keeps idle connections racing a close less often.
    server.keepAliveTimeout = 60_000
    // Over TLS the silence before the first request is bounded by the handshake timeout and
    // Node's headersTimeout; the raw socket under a TLS one sees no reads to reset a timer.
    if (secure === undefined) closeSilentHttpConnections(server, firstByteTimeoutMs)
    return server
  }

  /**
   * Stop accepting, then close the connections: idle ones at once (every answer since the drain
   * began closed its connection, so what is still open is idle or finishing a request), the rest
   * by `deadline`.
   */
  const closeHttp = (server: HttpServer | undefined, deadline: number): Promise<void> =>
    new Promise((resolve) => {
      if (server === undefined || !server.listening) return resolve()
      const poll = setInterval(() => server.closeIdleConnections(), 50)
      const force = setTimeout(() => server.closeAllConnections(), Math.max(0, deadline - Date.now()))
      server.close(() => {
        clearInterval(poll)
        clearTimeout(force)
        resolve()
      })
    })

  const closeGrpc = (deadline: number): Promise<void> =>
    new Promise((resolve) => {
      if (grpcServer === undefined) return resolve()
      const s = grpcServer
      const l = grpcListener
      l?.stopAccepting()
      health.endWatches()
      s.closeAll()
      const force = setTimeout(
        () => {
          s.destroyAll()
          l?.destroyAll()
        },
        Math.max(0, deadline - Date.now()),
      )
      void s.idle().then(() => {
        clearTimeout(force)
        resolve()
      })
    })

  const server: ExtAuthzServer = {
    telemetry,
    get serving() {
      return serving
    },
    async start() {
      const bound: { grpc?: string; http?: string; ops?: string } = {}
      try {
        if (options.grpc !== undefined) {
          const g = createGrpcServer(
            {
              check,
              checkUnreceived(waitedMs) {
                // A denial, not a gRPC error that `failure_mode_allow` could turn into an allow.
                const d = hostDenial(
                  408,
                  'timeout',
                  `CheckRequest not received within ${receiveTimeoutMs} ms`,
                )
                return encode(d, telemetry.hostDecision(d, waitedMs, engine.info.name))
              },
              checkFailed(waitedMs) {
                const d = hostDenial(403, 'internal', 'the check failed internally')
                return encode(d, telemetry.hostDecision(d, waitedMs, engine.info.name))
              },
              healthCheck: (request) => health.check(request),
              healthWatch: (request, call) => health.watch(request, call),
            },
            grpcLimits,
            tlsServerOptions,
          )
          grpcServer = g
          // The sidecar owns the sockets (see connection-guards.ts); node:http2 serves what it is given.
          grpcListener = new ConnectionListener((socket) => g.accept(socket), {
            firstByteTimeoutMs,
            maxConnections,
          })
          bound.grpc = await grpcListener.listen(options.grpc)
        }
        if (options.http !== undefined) {
          httpServer = newHttpServer(
            createHttpAuthzHandler({
              engine,
              telemetry,
              failure,
              limiter,
              maxRequestBytes,
              receiveTimeoutMs,
              linger,
              closeConnections: () => draining,
              // The client certificate's URI SAN, with the rule every verdict host uses.
              ...(tls !== undefined ? { principal: tlsPeerPrincipal } : {}),
              ...(options.httpPathPrefix !== undefined ? { pathPrefix: options.httpPathPrefix } : {}),
            }),
            tlsServerOptions,
          )
          httpServer.maxConnections = maxConnections
          // The policy, not Node, decides about large headers; what Node still refuses is a denial.
          followPolicyHeaderLimit(httpServer, engine)
          httpServer.on('clientError', createClientErrorHandler({ engine, telemetry, linger }))
          bound.http = await listenOn(httpServer as unknown as NetServer, options.http)
        }
        if (options.ops !== undefined) {
          opsServer = newHttpServer(
            createOpsHandler({
              registry: telemetry.registry,
              ready: () => serving,
              ...(options.opsReadiness !== undefined ? { readiness: options.opsReadiness } : {}),
              ...(options.opsStatus !== undefined ? { status: options.opsStatus } : {}),
            }),
            undefined,
          )
          bound.ops = await listenOn(opsServer as unknown as NetServer, options.ops)
        }
      } catch (e) {
        grpcListener?.stopAccepting()
        grpcServer?.destroyAll()
        httpServer?.close()
        opsServer?.close()
        throw e
      }
      serving = true
      health.set(true)
      return bound
    },
    stop() {
      stopping ??= (async () => {
        // Not ready: /readyz answers 503 and gRPC health NOT_SERVING; checks are served as before.
        serving = false
        draining = true
        health.set(false)
        if (drainDelayMs > 0) await new Promise((r) => setTimeout(r, drainDelayMs))
        const deadline = Date.now() + drainTimeoutMs
        await Promise.all([closeGrpc(deadline), closeHttp(httpServer, deadline)])
        await closeHttp(opsServer, Date.now())
      })()
      return stopping
    },
  }
  return server
}
