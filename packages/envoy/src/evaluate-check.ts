/**
 * Evaluation: one check through the engine, with a host-side deadline so that no call can hang
 * and no failure can turn into anything but a denial.
 */
import {
  type Decision,
  type DecisionCode,
  decideEager,
  deny,
  type Engine,
  isThenable,
} from '@verdict/core/internal'
import type { DeadlineQueue } from './deadline-queue.js'
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
 * Decide `input` with `engine`, never throwing or rejecting and never waiting past
 * `failure.timeoutMs` (`deadlines`: a queue of that length shared by the server's checks, so a
 * check sets no timer of its own). A decision that needed nothing asynchronous comes back at once,
 * not as a promise, so the host can answer in the same turn.
 *
 * @example
 * ```ts
 * const failure = { statusOnError: 403, timeoutMs: 2000 }
 * const deadlines = new DeadlineQueue(failure.timeoutMs)
 * const { decision, id } = await evaluateCheck(engine, telemetry, input, failure, deadlines)
 * ```
 */
export function evaluateCheck(
  engine: Engine,
  telemetry: Telemetry,
  input: unknown,
  failure: FailurePolicy,
  deadlines: DeadlineQueue,
): IdentifiedDecision | Promise<IdentifiedDecision> {
  const started = performance.now()
  const fallback = (code: DecisionCode, reason: string): IdentifiedDecision => {
    const decision = hostDenial(failure.statusOnError, code, reason)
    return { decision, id: telemetry.hostDecision(decision, performance.now() - started, engine.info.name) }
  }
  const internal = (e: unknown): IdentifiedDecision =>
    fallback('internal', `internal error: ${(e as Error)?.message ?? String(e)}`)
  const id = telemetry.decisionId()
  let result: Decision | Promise<Decision>
  try {
    result = decideEager(engine, input, { id })
  } catch (e) {
    return internal(e)
  }
  if (!isThenable(result)) return { decision: result, id }
  const pending = result
  return new Promise<IdentifiedDecision>((resolve) => {
    let done = false
    const deadline = deadlines.add(() => {
      if (done) return
      done = true
      resolve(fallback('timeout', `no decision within ${failure.timeoutMs} ms`))
    })
    pending.then(
      (decision) => {
        if (done) return
        done = true
        deadline.cancel()
        resolve({ decision, id })
      },
      (e: unknown) => {
        if (done) return
        done = true
        deadline.cancel()
        resolve(internal(e))
      },
    )
  })
}
