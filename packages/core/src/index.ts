/**
 * @verdict/core — one pure call, `decide(input)`, answers "may this request pass, and with which
 * response?" for Envoy ext_authz CheckRequests (either JSON dialect) and plain HTTP-shaped objects.
 *
 * Core owns the input model, the Decision, the policy document and its JSON Schema, JWT
 * authentication, the rule combination, errors, and the evaluator interface that CEL, Rego and MCP
 * rules plug into. It knows nothing of hosts: no server, no global state, no network inside
 * `decide()`.
 *
 * This entry is the public contract (docs/architecture.md, "Public API and codes"). What sibling
 * packages share beyond it lives in `@verdict/core/internal`, which follows no semver promise.
 */

export {
  type CheckResponseJson,
  GRPC_OK,
  GRPC_PERMISSION_DENIED,
  GRPC_UNAUTHENTICATED,
  toCheckResponse,
} from './check-response.js'
// Codes and errors
export {
  AUTH_FAILURE_CODES,
  type AuthFailureCode,
  DECISION_CODES,
  DETAIL_CODES,
  type DetailCode,
  ERROR_CODES,
  INPUT_REFUSALS,
  PROBLEM_CODES,
  type ProblemCode,
  type UsageErrorCode,
} from './codes.js'
// Engines and decisions
export type { CompiledPolicy, PolicySource } from './compile.js'
export { compilePolicy, DEFAULT_TIMEOUT_MS } from './compile.js'
// Writing an evaluator
export type { McpCall, RequestContext } from './context.js'
export type {
  Decision,
  DecisionCode,
  HeaderAppend,
  HeaderEntry,
  Identity,
  QueryParameter,
  ShadowRecord,
} from './decision.js'
export { loggableReason } from './decision.js'
// The policy document
export { POLICY_SCHEMA, pointer } from './document.js'
export {
  createEngine,
  type DecideOptions,
  type DecisionEvent,
  decisionEvent,
  type Engine,
  type EngineOptions,
} from './engine.js'
export {
  type ErrorCode,
  formatProblems,
  PolicyError,
  type Problem,
  VerdictError,
  VerdictUsageError,
} from './errors.js'
export {
  type CompileResult,
  type CompileSite,
  type EvalResult,
  type Evaluator,
  fail,
  ok,
  type ResourceLoader,
  type RuleProgram,
} from './evaluator.js'
export type {
  CheckRequestHttp,
  CheckRequestInput,
  CheckRequestPeer,
  DecideInput,
  HeaderValue,
  HttpPeerInput,
  HttpRequestInput,
} from './input/decide-input.js'
export type {
  CheckInput,
  InputDialect,
  InputOptions,
  InputRefusal,
  PeerInfo,
  SpiffeId,
} from './input/index.js'
export { JWT_FAILURE_CODES, type JwtFailureCode } from './jwt/index.js'
export type { PolicyDocument } from './policy-document.js'
export type { RequestRecord } from './request-record.js'
