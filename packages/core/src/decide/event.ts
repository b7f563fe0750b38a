/**
 * The decision event: one record per decision for logs and metrics, never a token or a body.
 */
import { type Decision, type DecisionCode, loggableReason, type ShadowRecord } from '../decision.js'
import { isoTime } from '../iso-time.js'
import type { RequestRecord } from '../request-record.js'

/** One record per decision, for logs and metrics. Never contains a token or a body. */
export interface DecisionEvent {
  readonly id: string
  /** ISO time the decision started. */
  readonly time: string
  readonly policy: string
  readonly allowed: boolean
  readonly status: number
  readonly code: DecisionCode
  readonly detailCode: string | undefined
  readonly rule: string | undefined
  readonly reason: string
  readonly durationMs: number
  /** A redacted summary: no headers, no query values, no body. */
  readonly input: {
    readonly method: string | undefined
    readonly path: string | undefined
    readonly host: string | undefined
    readonly principal: string | undefined
    readonly subject: string | undefined
    readonly mcpMethod: string | undefined
    readonly mcpTool: string | undefined
  }
  readonly shadow: readonly ShadowRecord[] | undefined
  /**
   * The request as a decision log records it (OPA-Envoy's input shape, credentials erased), built
   * on call; undefined when the input was refused before it could be read (docs/fleet.md).
   */
  readonly request: (() => RequestRecord) | undefined
}

const NO_INPUT: DecisionEvent['input'] = Object.freeze({
  method: undefined,
  path: undefined,
  host: undefined,
  principal: undefined,
  subject: undefined,
  mcpMethod: undefined,
  mcpTool: undefined,
})

/**
 * The event of decision `d`, which took `durationMs` and is logged as `id`. Hosts that answer
 * without the engine (a timeout, an overload) record their own denials with it too.
 */
export function decisionEvent(
  d: Decision,
  id: string,
  policy: string,
  durationMs: number,
  input: DecisionEvent['input'] = NO_INPUT,
  request?: () => RequestRecord,
): DecisionEvent {
  return {
    id,
    time: isoTime(Date.now() - durationMs),
    policy,
    allowed: d.allowed,
    status: d.status,
    code: d.code,
    detailCode: d.detailCode,
    rule: d.rule,
    reason: loggableReason(d),
    durationMs,
    input,
    shadow: d.shadow,
    request,
  }
}
