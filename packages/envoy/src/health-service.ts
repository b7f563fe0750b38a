/**
 * `grpc.health.v1.Health`: Check and Watch for the whole server (`""`) and the Authorization
 * service. SERVING while the policy is loaded and the server is not draining.
 */
import { type ServerUnaryCall, type ServerWritableStream, type sendUnaryData, status } from '@grpc/grpc-js'

/** Service names the health service answers for. */
export const HEALTH_SERVICES: ReadonlySet<string> = new Set(['', 'envoy.service.auth.v3.Authorization'])

type ServingStatus = 'SERVING' | 'NOT_SERVING'

export interface HealthService {
  readonly implementation: {
    Check: (call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => void
    Watch: (call: ServerWritableStream<unknown, unknown>) => void
  }
  /** Change the status and tell every watcher. */
  set(serving: boolean): void
  /** End every Watch stream (before a graceful shutdown, which waits for open calls). */
  endWatches(): void
}

function serviceOf(request: unknown): string {
  const s = (request as { service?: unknown } | null)?.service
  return typeof s === 'string' ? s : ''
}

/** The health service implementation, initially SERVING. */
export function createHealthService(): HealthService {
  let current: ServingStatus = 'SERVING'
  const watchers = new Set<ServerWritableStream<unknown, unknown>>()
  return {
    implementation: {
      Check(call, cb) {
        if (!HEALTH_SERVICES.has(serviceOf(call.request))) {
          cb({ code: status.NOT_FOUND, details: 'unknown service' })
          return
        }
        cb(null, { status: current })
      },
      Watch(call) {
        if (!HEALTH_SERVICES.has(serviceOf(call.request))) {
          call.write({ status: 'SERVICE_UNKNOWN' })
          call.end()
          return
        }
        watchers.add(call)
        call.on('cancelled', () => watchers.delete(call))
        call.write({ status: current })
      },
    },
    set(serving) {
      const next: ServingStatus = serving ? 'SERVING' : 'NOT_SERVING'
      if (next === current) return
      current = next
      for (const w of watchers) w.write({ status: current })
    },
    endWatches() {
      for (const w of watchers) w.end()
      watchers.clear()
    },
  }
}
