/**
 * `grpc.health.v1.Health`: Check and Watch for the whole server (`""`) and the Authorization
 * service. SERVING while the policy is loaded and the server is not draining.
 */
import { GRPC, type GrpcCall, type UnaryAnswer } from './grpc-server.js'
import { decodeHealthRequest, encodeHealthResponse, SERVING_STATUS } from './wire.js'

/** Service names the health service answers for. */
export const HEALTH_SERVICES: ReadonlySet<string> = new Set(['', 'envoy.service.auth.v3.Authorization'])

export interface HealthService {
  check(request: Uint8Array): UnaryAnswer
  watch(request: Uint8Array, call: GrpcCall): void
  /** Change the status and tell every watcher. */
  set(serving: boolean): void
  /** End every Watch stream (before a graceful shutdown, which waits for open calls). */
  endWatches(): void
}

function serviceOf(request: Uint8Array): string | undefined {
  try {
    return decodeHealthRequest(request)
  } catch {
    return undefined
  }
}

/** The health service, initially SERVING. */
export function createHealthService(): HealthService {
  let current: number = SERVING_STATUS.SERVING
  const watchers = new Set<GrpcCall>()
  return {
    check(request) {
      const service = serviceOf(request)
      if (service === undefined) return { code: GRPC.INTERNAL, message: 'request does not decode' }
      if (!HEALTH_SERVICES.has(service)) return { code: GRPC.NOT_FOUND, message: 'unknown service' }
      return encodeHealthResponse(current)
    },
    watch(request, call) {
      const service = serviceOf(request)
      if (service === undefined || !HEALTH_SERVICES.has(service)) {
        call.write(encodeHealthResponse(SERVING_STATUS.SERVICE_UNKNOWN))
        call.end()
        return
      }
      watchers.add(call)
      call.onEnd(() => watchers.delete(call))
      call.write(encodeHealthResponse(current))
    },
    set(serving) {
      const next = serving ? SERVING_STATUS.SERVING : SERVING_STATUS.NOT_SERVING
      if (next === current) return
      current = next
      for (const w of watchers) w.write(encodeHealthResponse(current))
    },
    endWatches() {
      for (const w of watchers) w.end()
      watchers.clear()
    },
  }
}
