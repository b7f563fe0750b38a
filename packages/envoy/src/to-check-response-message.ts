/**
 * Response: a Decision -> the CheckResponse message gRPC serializes, with the decision id in
 * `dynamic_metadata` so Envoy's access log can name the decision that let a request through.
 */
import { type Decision, toCheckResponse } from '@verdict/core'
import { jsonToStruct } from './struct.js'

/** Key of the decision id in `dynamic_metadata` (the name the OPA-Envoy plugin uses too). */
export const DECISION_ID_KEY = 'decision_id'

/**
 * The CheckResponse for a decision as a proto-loader message object (protobuf JSON names, enum
 * names, Structs as `{fields}`).
 *
 * @example
 * ```ts
 * callback(null, toCheckResponseMessage(decision, eventId))
 * ```
 */
export function toCheckResponseMessage(decision: Decision, decisionId: string): Record<string, unknown> {
  const json = toCheckResponse(decision)
  const metadata = { ...json.dynamicMetadata, [DECISION_ID_KEY]: decisionId }
  return { ...json, dynamicMetadata: jsonToStruct(metadata) }
}
