/**
 * One error base with stable codes. Callers switch on `code`, never on `message`.
 */

import type { ErrorCode, ProblemCode, UsageErrorCode } from './codes.js'

export type { ErrorCode } from './codes.js'

/** A single load-time problem with where it was found. */
export interface Problem {
  /**
   * Stable code, e.g. `schema` or `compile`; one of `PROBLEM_CODES`. (Still open to any string until
   * the Rego adapter's `problem()` helper takes a `ProblemCode`; test/codes.test.ts refuses strays.)
   */
  readonly code: ProblemCode | (string & {})
  /** Human-readable description; never contains secrets. */
  readonly message: string
  /** JSON pointer into the policy document (`/rules/2/cel`), `''` for the root. */
  readonly path: string
  /** 1-based line and column in the source text, when the document came from text. */
  readonly line?: number
  readonly column?: number
  /** The rule the problem belongs to, if any. */
  readonly ruleId?: string
}

/**
 * Base class of every error verdict throws.
 *
 * @example
 * ```ts
 * try { await createEngine(doc) } catch (e) {
 *   if (e instanceof VerdictError && e.code === 'policy_invalid') console.error(e.problems)
 * }
 * ```
 */
export class VerdictError extends Error {
  readonly code: ErrorCode
  override readonly name: string = 'VerdictError'
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/**
 * A programmer error: a bad option passed to a factory (`createEngine`, `createCelEvaluator`,
 * `createRegoEvaluator`, `createExtAuthzServer`, ...). Thrown synchronously by the factory or
 * rejected by its promise, never at decision time. `option` names the offending option.
 *
 * @example
 * ```ts
 * try { createExtAuthzServer({ engine, statusOnError: 200 }) } catch (e) {
 *   if (e instanceof VerdictUsageError) console.error(e.code, e.option) // invalid_option statusOnError
 * }
 * ```
 */
export class VerdictUsageError extends VerdictError {
  override readonly name = 'VerdictUsageError'
  declare readonly code: UsageErrorCode
  /** The option that was wrong, e.g. `statusOnError` or `memory.maxPages`. */
  readonly option: string
  constructor(option: string, message: string, options?: { cause?: unknown }) {
    super('invalid_option', message, options)
    this.option = option
  }
}

/** A policy that failed to load: every problem at once, each with its location. */
export class PolicyError extends VerdictError {
  override readonly name = 'PolicyError'
  readonly problems: readonly Problem[]
  constructor(problems: readonly Problem[]) {
    super('policy_invalid', formatProblems(problems))
    this.problems = problems
  }
}

/** `path:line:col: message` lines, one per problem. */
export function formatProblems(problems: readonly Problem[]): string {
  const lines = problems.map((p) => {
    const at = p.line !== undefined ? `${p.line}:${p.column ?? 1} ` : ''
    return `${at}${p.path || '/'}: ${p.message} [${p.code}]`
  })
  return `policy has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${lines.join('\n')}`
}
