/**
 * The ext_authz sidecar: Envoy's gRPC `Authorization/Check` and `grpc.health.v1.Health` on one
 * listener, the HTTP service mode on another, and `/healthz`, `/readyz`, `/metrics` on a third.
 * All three bind to 127.0.0.1 unless told otherwise.
 */
import { createServer, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  Server as GrpcServer,
  ServerCredentials,
  type ServerUnaryCall,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js'
import { type Decision, type Engine, isValidHttpStatus, malformed } from '@verdict/core'
import { checkRequestToJson } from './check-request-to-json.js'
import { evaluateCheck, type FailurePolicy, hostDenial } from './evaluate-check.js'
import { createHealthService } from './health-service.js'
import { createHttpAuthzHandler } from './http-authz-handler.js'
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
      if (bytes.length > maxRequestBytes)
        return new WireProblem(
          malformed('CheckRequest larger than the sidecar accepts', 'body_too_large', 413),
        )
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
  const engine = options.engine
  const telemetry = options.telemetry ?? createTelemetry()
  const statusOnError = options.statusOnError ?? 403
  if (!isValidHttpStatus(statusOnError) || statusOnError < 300)
    throw new RangeError(`statusOnError ${statusOnError} is not a denial status Envoy accepts`)
  const failure: FailurePolicy = { statusOnError, timeoutMs: options.decisionTimeoutMs ?? 2000 }
  const maxRequestBytes = options.maxRequestBytes ?? 5 * 1024 * 1024
  const limiter = createLimiter(options.maxConcurrent ?? 1024, telemetry.inflight)
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000
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
      { maxHeaderSize: 64 * 1024, requestTimeout: 30_000, headersTimeout: 10_000 },
      handler,
    )
    // Longer than Envoy's pool keeps idle connections racing a close less often.
    server.keepAliveTimeout = 60_000
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
      const force = setTimeout(() => s.forceShutdown(), Math.max(0, deadline - Date.now()))
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
            // Past this grpc-js itself refuses the message; below it, oversize checks get a 413 denial.
            'grpc.max_receive_message_length': maxRequestBytes + 1024 * 1024,
          })
          grpcServer.addService({ Check: guardedCheck(maxRequestBytes, statusOnError) }, {
            Check: check,
          } as UntypedServiceImplementation)
          grpcServer.addService(
            { Check: healthCheckMethod(), Watch: healthWatchMethod() },
            health.implementation as UntypedServiceImplementation,
          )
          const host = options.grpc.host ?? DEFAULT_HOST
          const g = grpcServer
          const port = await new Promise<number>((resolve, reject) =>
            g.bindAsync(
              formatAddress(host, options.grpc!.port),
              ServerCredentials.createInsecure(),
              (err, p) => (err ? reject(err) : resolve(p)),
            ),
          )
          bound.grpc = formatAddress(host, port)
        }
        if (options.http !== undefined) {
          httpServer = newHttpServer(
            createHttpAuthzHandler({
              engine,
              telemetry,
              failure,
              limiter,
              maxRequestBytes,
              ...(options.httpPathPrefix !== undefined ? { pathPrefix: options.httpPathPrefix } : {}),
            }),
          )
          bound.http = await listenHttp(httpServer, options.http)
        }
        if (options.ops !== undefined) {
          opsServer = newHttpServer(createOpsHandler({ registry: telemetry.registry, ready: () => serving }))
          bound.ops = await listenHttp(opsServer, options.ops)
        }
      } catch (e) {
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
