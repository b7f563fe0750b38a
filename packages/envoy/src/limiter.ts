/**
 * A counter of checks in progress shared by the gRPC and HTTP listeners; past the limit new checks
 * are denied at once instead of queueing without bound.
 */
import type { Gauge } from 'prom-client'

export interface Limiter {
  /** False when the limit is reached; the caller must then deny without calling `release`. */
  tryAcquire(): boolean
  release(): void
  readonly active: number
}

/** A limiter of `max` concurrent checks, mirrored into `gauge`. */
export function createLimiter(max: number, gauge?: Gauge): Limiter {
  let active = 0
  return {
    tryAcquire() {
      if (active >= max) return false
      active++
      gauge?.inc()
      return true
    },
    release() {
      if (active === 0) return
      active--
      gauge?.dec()
    },
    get active() {
      return active
    },
  }
}
