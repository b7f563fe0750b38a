/**
 * Every stable code verdict emits, as runtime arrays beside the closed unions they mirror.
 *
 * - `DECISION_CODES` / `DecisionCode`: `Decision.code`, why a decision came out as it did.
 * - `DETAIL_CODES` / `DetailCode`: `Decision.detailCode`, the specific code under `code`
 *   (`InputRefusal`, `JwtFailureCode`, `AuthFailureCode`, `request_parse_error`).
 * - `PROBLEM_CODES` / `ProblemCode`: `Problem.code`, a load-time problem (core, CEL, Rego, MCP, CLI).
 * - `ERROR_CODES` / `ErrorCode`: `VerdictError.code`, what verdict throws.
 *
 * The compile-time checks below fail the build when an array and its union disagree; a test runs
 * the decision corpora and the sources through the arrays, so a code emitted outside them fails it.
 */
import type { DecisionCode } from './decision.js'
import type { InputRefusal } from './input/index.js'
import { JWT_FAILURE_CODES, type JwtFailureCode } from './jwt/verify-token.js'

/** `true` when `A` and `B` are the same set of literals. */
type Same<A, B> = [Exclude<A, B>, Exclude<B, A>] extends [never, never] ? true : false
const same = <T extends true>(_: T): void => undefined

/** Every `DecisionCode`, in the order docs/semantics.md lists them. */
export const DECISION_CODES = Object.freeze([
  'allowed',
  'denied',
  'no_match',
  'unauthenticated',
  'malformed_input',
  'body_too_large',
  'headers_too_large',
  'evaluator_error',
  'timeout',
  'internal',
  'overloaded',
] as const)
same<Same<DecisionCode, (typeof DECISION_CODES)[number]>>(true)

/** Every `InputRefusal` (docs/input.md): the `detailCode` of a 400 `malformed_input`. */
export const INPUT_REFUSALS = Object.freeze([
  'ambiguous_header',
  'underscore_header',
  'invalid_host',
  'invalid_path',
  'invalid_method',
  'method_override',
  'pseudo_header_mismatch',
  'body_length_mismatch',
  'non_finite_number',
  'duplicate_json_key',
  'unserializable_body',
] as const)
same<Same<InputRefusal, (typeof INPUT_REFUSALS)[number]>>(true)

/** Failures of API-key and basic authentication (docs/policy.md): 401 `unauthenticated`. */
export const AUTH_FAILURE_CODES = Object.freeze([
  'apikey_missing',
  'apikey_multiple',
  'apikey_invalid',
  'basic_missing',
  'basic_multiple',
  'basic_invalid',
] as const)
/** A stable API-key or basic-auth failure code. */
export type AuthFailureCode = (typeof AUTH_FAILURE_CODES)[number]

/**
 * The Rego dialect's input could not be built from the request (a body OPA-Envoy cannot parse):
 * 400 `malformed_input`, as OPA-Envoy answers (docs/rego.md).
 */
export const REQUEST_PARSE_ERROR = 'request_parse_error'

/** Every `Decision.detailCode`. */
export const DETAIL_CODES = Object.freeze([
  ...INPUT_REFUSALS,
  ...JWT_FAILURE_CODES,
  ...AUTH_FAILURE_CODES,
  REQUEST_PARSE_ERROR,
] as const)
/** The specific stable code under `Decision.code`. */
export type DetailCode = InputRefusal | JwtFailureCode | AuthFailureCode | typeof REQUEST_PARSE_ERROR
same<Same<DetailCode, (typeof DETAIL_CODES)[number]>>(true)

/** Every `Problem.code`: a load-time problem, by the package that reports it. */
export const PROBLEM_CODES = Object.freeze([
  // core: the document, its rules and statuses
  'policy_parse',
  'schema',
  'duplicate_rule_id',
  'unknown_rule_kind',
  'ambiguous_rule_kind',
  'compile',
  'resource',
  'invalid_status',
  'no_rules',
  'internal',
  // core: authentication sections
  'jwt_config',
  'auth_config',
  // @verdict/cel-adapter
  'cel_syntax',
  'cel_unknown_variable',
  'cel_unknown_function',
  'cel_limit',
  'cel_regex',
  'cel_unavailable_variable',
  'cel_type',
  // @verdict/rego-adapter
  'rego_config',
  'rego_bundle',
  'rego_entrypoint',
  'rego_abi',
  'rego_builtin',
  'rego_module',
  // @verdict/mcp
  'mcp_source',
  'mcp_arguments',
  // @verdict/cli (`verdict test` / `check`)
  'not_found',
  'opa_build',
  // @verdict/import (`verdict convert`: Kubernetes resources as a policy)
  'import_invalid',
  'import_unsupported',
  'import_unsupported_field',
  'import_unsupported_kind',
  'import_not_a_resource',
  'import_empty',
  'import_mixed',
  'import_conflict',
  'import_target',
  'import_secret',
  'import_external_auth',
  'import_rego',
  'import_opa_unavailable',
] as const)
/** A stable load-time problem code. */
export type ProblemCode = (typeof PROBLEM_CODES)[number]

/** What a `VerdictUsageError` says was wrong: an option passed to a factory. */
const USAGE_ERROR_CODES = Object.freeze(['invalid_option'] as const)
/** A stable programmer-error code. */
export type UsageErrorCode = (typeof USAGE_ERROR_CODES)[number]

/** Every `VerdictError.code`. */
export const ERROR_CODES = Object.freeze(['policy_invalid', ...PROBLEM_CODES, ...USAGE_ERROR_CODES] as const)
/** A stable error code: a `PolicyError` (`policy_invalid`), a problem code, or a usage error code. */
export type ErrorCode = (typeof ERROR_CODES)[number]
