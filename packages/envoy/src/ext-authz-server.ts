/**
 * The ext_authz sidecar: Envoy's gRPC `Authorization/Check` and `grpc.health.v1.Health` on one
 * listener, the HTTP service mode on another, and `/healthz`, `/readyz`, `/metrics` on a third.
 * All three bind to 127.0.0.1 unless told otherwise.
 */
import { createServer, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  Server as GrpcServer,
  status as grpcStatus,
  ServerCredentials,
  type ServerInterceptingCallInterface,
  type ServerMethodDefinition,
  type ServerOptions,
  type ServerUnaryCall,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js'
import {
  type Decision,
  type Engine,
  isValidHttpStatus,
  malformed,
  VerdictUsageError,
} from '@verdict/core/internal'
import { checkRequestToJson } from './check-request-to-json.js'
import {
  closeSilentHttpConnections,
  followPolicyHeaderLimit,
  GrpcListener,
  LINGER_MAX_BYTES,
  LINGER_TIMEOUT_MS,
  type LingerLimits,
  receiveDeadline,
} from './connection-guards.js'
import { evaluateCheck, type FailurePolicy, hostDenial } from './evaluate-check.js'
import { createHealthService } from './health-service.js'
import { bodyTooLarge, createClientErrorHandler, createHttpAuthzHandler } from './http-authz-handler.js'
import { createLimiter } from './limiter.js'
import { createOpsHandler } from './ops-handler.js'
import { checkMethod, healthCheckMethod, healthWatchMethod, type Method } from './proto.js'
import { createTelemetry, type Telemetry } from './telemetry.js'
import { toCheckResponseMessage } from './to-check-response-message.js'

/** Where a listener binds. `host` defaults to 127.0.0.1; port 0 picks a free port. */
export interface ListenAddress {
  readonly host?: string
  readonly port: number
}

export interface ExtAuthzServerOptions {
  readonly engine: Engine
  /** gRPC listener (Authorization and Health). */
  readonly grpc?: ListenAddress
  /** HTTP service-mode listener. */
  readonly http?: ListenAddress
  /** Operations listener: /healthz, /readyz, /metrics. */
  readonly ops?: ListenAddress
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
  /** How long a graceful stop waits for in-flight checks before closing connections (default 10 s). */
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

/** A request that could not be read off the wire; answered with its denial. */
class WireProblem {
  constructor(readonly decision: Decision) {}
}

const DEFAULT_HOST = '127.0.0.1'

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

function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/** Check's definition with a deserializer that never throws and a serializer with a safe fallback. */
function guardedCheck(maxRequestBytes: number, statusOnError: number): Method {
  const m = checkMethod()
  const fallback = m.responseSerialize(
    toCheckResponseMessage(hostDenial(statusOnError, 'internal', 'response could not be encoded'), ''),
  )
  return {
    ...m,
    requestDeserialize(bytes: Buffer): unknown {
      // The same denial as the HTTP listener's, so both log lines read alike.
      if (bytes.length > maxRequestBytes)
        return new WireProblem(bodyTooLarge(maxRequestBytes, 'CheckRequest'))
      try {
        return m.requestDeserialize(bytes)
      } catch (e) {
        return new WireProblem(
          malformed(`malformed input: CheckRequest does not decode (${(e as Error).message})`),
        )
      }
    },
    responseSerialize(value: unknown): Buffer {
      try {
        return m.responseSerialize(value)
      } catch {
        return fallback
      }
    },
  }
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
  const maxRequestBytes = positive(options, 'maxRequestBytes', 5 * 1024 * 1024)
  const limiter = createLimiter(positive(options, 'maxConcurrent', 1024), telemetry.inflight)
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000
  const receiveTimeoutMs = positive(options, 'receiveTimeoutMs', 5000)
  const checkPath = checkMethod().path
  const firstByteTimeoutMs = positive(options, 'firstByteTimeoutMs', 10_000)
  const maxConnections = positive(options, 'maxConnections', 4096)
  const linger: LingerLimits = {
    timeoutMs: positive(options, 'lingerTimeoutMs', LINGER_TIMEOUT_MS),
    maxBytes: positive(options, 'lingerMaxBytes', LINGER_MAX_BYTES),
  }
  const grpcOptions: ServerOptions = {
    // Past this grpc-js itself refuses the message; below it, oversize checks get a 413 denial.
    'grpc.max_receive_message_length': maxRequestBytes + 1024 * 1024,
    'grpc.max_concurrent_streams': positive(options, 'grpcMaxConcurrentStreams', 100),
    'grpc.max_connection_age_ms': positive(options, 'grpcMaxConnectionAgeMs', 300_000),
    'grpc.max_connection_age_grace_ms': positive(
      options,
      'grpcMaxConnectionAgeGraceMs',
      Math.max(10_000, failure.timeoutMs + 1000),
    ),
    'grpc.max_connection_idle_ms': positive(options, 'grpcMaxConnectionIdleMs', 60_000),
    'grpc.keepalive_time_ms': positive(options, 'grpcKeepaliveTimeMs', 60_000),
    'grpc.keepalive_timeout_ms': positive(options, 'grpcKeepaliveTimeoutMs', 20_000),
  }
  const health = createHealthService()
  let serving = false
  let stopping: Promise<void> | undefined

  const answer = (cb: sendUnaryData<unknown>, d: Decision, id: string): void => {
    try {
      cb(null, toCheckResponseMessage(d, id))
    } catch {
      cb(null, toCheckResponseMessage(hostDenial(statusOnError, 'internal', 'internal error'), id))
    }
  }
  const hostAnswer = (cb: sendUnaryData<unknown>, d: Decision, started: number): void =>
    answer(cb, d, telemetry.hostDecision(d, performance.now() - started, engine.info.name))

  /** A call whose request message did not arrive within `receiveTimeoutMs`. */
  const answerUnreceived = (
    method: ServerMethodDefinition<unknown, unknown>,
    call: ServerInterceptingCallInterface,
    waitedMs: number,
  ): void => {
    if (method.path !== checkPath) {
      call.sendStatus({ code: grpcStatus.DEADLINE_EXCEEDED, details: 'request not received in time' })
      return
    }
    // A denial, not a gRPC error that `failure_mode_allow` could turn into an allow.
    const d = hostDenial(408, 'timeout', `CheckRequest not received within ${receiveTimeoutMs} ms`)
    const id = telemetry.hostDecision(d, waitedMs, engine.info.name)
    call.sendMessage(toCheckResponseMessage(d, id), () =>
      call.sendStatus({ code: grpcStatus.OK, details: 'OK' }),
    )
  }

  const check = (call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>): void => {
    const started = performance.now()
    const request = call.request
    if (request instanceof WireProblem) {
      hostAnswer(cb, request.decision, started)
      return
    }
    const input = checkRequestToJson(request)
    if ('allowed' in input) {
      hostAnswer(cb, input as Decision, started)
      return
    }
    if (!limiter.tryAcquire()) {
      hostAnswer(cb, hostDenial(statusOnError, 'overloaded', 'too many checks in progress'), started)
      return
    }
    evaluateCheck(engine, telemetry, input, failure)
      .then(({ decision, id }) => answer(cb, decision, id))
      .finally(() => limiter.release())
  }

  let grpcServer: GrpcServer | undefined
  let grpcListener: GrpcListener | undefined
  let httpServer: HttpServer | undefined
  let opsServer: HttpServer | undefined

  const listenHttp = (server: HttpServer, at: ListenAddress): Promise<string> =>
    new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(at.port, at.host ?? DEFAULT_HOST, () => {
        server.off('error', reject)
        const a = server.address() as AddressInfo
        resolve(formatAddress(a.address, a.port))
      })
    })

  const newHttpServer = (handler: Parameters<typeof createServer>[1]): HttpServer => {
    const server = createServer(
      {
        maxHeaderSize: 64 * 1024,
        requestTimeout: Math.max(30_000, receiveTimeoutMs + 10_000),
        headersTimeout: 10_000,
        // How often the two timeouts above are checked (Node's default is 30 s).
        connectionsCheckingInterval: 1000,
      },
      handler,
    )
    // Longer than Envoy's pool keeps idle connections racing a close less often.
    server.keepAliveTimeout = 60_000
    closeSilentHttpConnections(server, firstByteTimeoutMs)
    return server
  }

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
      const force = setTimeout(
        () => {
          s.forceShutdown()
          l?.destroyAll()
        },
        Math.max(0, deadline - Date.now()),
      )
      s.tryShutdown(() => {
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
          grpcServer = new GrpcServer({
            ...grpcOptions,
            interceptors: [receiveDeadline(receiveTimeoutMs, answerUnreceived)],
          })
          grpcServer.addService({ Check: guardedCheck(maxRequestBytes, statusOnError) }, {
            Check: check,
          } as UntypedServiceImplementation)
          grpcServer.addService(
            { Check: healthCheckMethod(), Watch: healthWatchMethod() },
            health.implementation as UntypedServiceImplementation,
          )
          // The sidecar owns the sockets (see connection-guards.ts); grpc-js serves what it is given.
          grpcListener = new GrpcListener(
            grpcServer.createConnectionInjector(ServerCredentials.createInsecure()),
            { firstByteTimeoutMs, maxConnections },
          )
          const a = await grpcListener.listen(options.grpc.port, options.grpc.host ?? DEFAULT_HOST)
          bound.grpc = formatAddress(a.address, a.port)
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
              ...(options.httpPathPrefix !== undefined ? { pathPrefix: options.httpPathPrefix } : {}),
            }),
          )
          httpServer.maxConnections = maxConnections
          // The policy, not Node, decides about large headers; what Node still refuses is a denial.
          followPolicyHeaderLimit(httpServer, engine)
          httpServer.on('clientError', createClientErrorHandler({ engine, telemetry, linger }))
          bound.http = await listenHttp(httpServer, options.http)
        }
        if (options.ops !== undefined) {
          opsServer = newHttpServer(createOpsHandler({ registry: telemetry.registry, ready: () => serving }))
          bound.ops = await listenHttp(opsServer, options.ops)
        }
      } catch (e) {
        grpcListener?.stopAccepting()
        grpcServer?.forceShutdown()
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
        serving = false
        health.set(false)
        health.endWatches()
        const deadline = Date.now() + drainTimeoutMs
        await Promise.all([closeGrpc(deadline), closeHttp(httpServer, deadline)])
        await closeHttp(opsServer, Date.now())
      })()
      return stopping
    },
  }
  return server
}
