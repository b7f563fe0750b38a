/**
 * The input model's entry: an Envoy v3 CheckRequest (protobuf JSON camelCase or proto snake_case)
 * or a plain HTTP-shaped object, normalized once into a `CheckInput`.
 *
 * Everything in input/ treats the input as hostile: wrong types are reported with their path,
 * header names and values are checked, maps are built on null-prototype objects, and nothing
 * recurses into caller-controlled depth.
 */

import { type Decision, malformed } from '../decision.js'
import { fromCheckRequest } from './check-request.js'
import { InputProblem, isObject } from './fields.js'
import { fromHttpShape } from './http-shape.js'
import { type CheckInput, DEFAULT_INPUT_OPTIONS, type ResolvedInputOptions } from './types.js'

/**
 * Normalize a CheckRequest (either JSON dialect) or a plain HTTP-shaped object.
 * Returns a deny Decision (400, 413 or 431) instead of throwing when the input is malformed.
 */
export function normalizeInput(
  raw: unknown,
  options: ResolvedInputOptions = DEFAULT_INPUT_OPTIONS,
): CheckInput | Decision {
  if (!isObject(raw)) return malformed('malformed input: a CheckRequest must be an object')
  try {
    return Object.hasOwn(raw, 'attributes') ? fromCheckRequest(raw, options) : fromHttpShape(raw, options)
  } catch (e) {
    if (e instanceof InputProblem) return e.decision
    if (e instanceof RangeError) return malformed('malformed input: too deeply nested')
    throw e
  }
}

/** True when `normalizeInput` returned a decision (the input was rejected). */
export function isDecision(v: CheckInput | Decision): v is Decision {
  return 'allowed' in v
}
