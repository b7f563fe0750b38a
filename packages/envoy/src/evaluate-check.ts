/**
 * Evaluation: one check through the engine, with a host-side deadline so that no call can hang
 * and no failure can turn into anything but a denial.
 */
import { type Decision, type DecisionCode, deny, type Engine } from '@verdict/core/internal'
import type { Telemetry } from './telemetry.js'

/** How the host answers when it cannot get a decision from the engine. */
export interface FailurePolicy {
  /** Status of denials caused by host failures (default 403, as Envoy's `status_on_error`). */
  readonly statusOnError: number
  /** Longest wait for the engine before denying with code `timeout`. */
  readonly timeoutMs: number
}

/** A decision and the id it is logged under. */
export interface IdentifiedDecision {
  readonly decision: Decision
  readonly id: string
}

/** A denial made by the host itself, with the configured status and a generic body. */
export function hostDenial(status: number, code: DecisionCode, reason: string): Decision {
  return deny(status, reason, { code, body: 'access denied' })
}

/**
 * Decide `input` with `engine`, never rejecting and never waiting past `failure.timeoutMs`.
 *
 * @example
 * ```ts
 * const { decision, id } = await evaluateCheck(engine, telemetry, input, { statusOnError: 403, timeoutMs: 2000 })
 * ```
 */
export function evaluateCheck(
  engine: Engine,
  telemetry: Telemetry,
  input: unknown,
  failure: FailurePolicy,
): Promise<IdentifiedDecision> {
  const started = performance.now()
  const fallback = (code: DecisionCode, reason: string): IdentifiedDecision => {
    const decision = hostDenial(failure.statusOnError, code, reason)
    return { decision, id: telemetry.hostDecision(decision, performance.now() - started, engine.info.name) }
  }
  return new Promise<IdentifiedDecision>((resolve) => {
    let done = false
    const timer = setTimeout(() => {
      if (done) return
      done = true
      resolve(fallback('timeout', `no decision within ${failure.timeoutMs} ms`))
    }, failure.timeoutMs)
    const settle = (r: IdentifiedDecision): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve(r)
    }
    let pending: Promise<IdentifiedDecision>
    try {
      pending = telemetry.decide((id) => engine.decide(input, { id }))
    } catch (e) {
      settle(fallback('internal', `internal error: ${(e as Error)?.message ?? String(e)}`))
      return
    }
    pending.then(settle, (e: unknown) =>
      settle(fallback('internal', `internal error: ${(e as Error)?.message ?? String(e)}`)),
    )
  })
}
