/**
 * @verdict/core — one pure call, `decide(input)`, answers "may this request pass, and with which
 * response?" for Envoy ext_authz CheckRequests (either JSON dialect) and plain HTTP-shaped objects.
 *
 * Core owns the input model, the Decision, the policy document and its JSON Schema, JWT
 * authentication, the rule combination, errors, and the evaluator interface that CEL, Rego and MCP
 * rules plug into. It knows nothing of hosts: no server, no global state, no network inside
 * `decide()`.
 */
export type { AuthCompileResult, AuthEnvironment, Authenticator, AuthOutcome } from './auth.js'
export {
  type CheckResponseJson,
  GRPC_OK,
  GRPC_PERMISSION_DENIED,
  GRPC_UNAUTHENTICATED,
  toCheckResponse,
} from './check-response.js'
export type { CompiledPolicy, PolicySource } from './compile.js'
export { compilePolicy, DEFAULT_TIMEOUT_MS } from './compile.js'
export type { McpCall, RequestContext } from './context.js'
export {
  type Decision,
  type DecisionCode,
  type DenyOptions,
  deny,
  type HeaderAppend,
  type HeaderEntry,
  type Identity,
  loggableReason,
  malformed,
  type QueryParameter,
  type ShadowRecord,
} from './decision.js'
export {
  type Locator,
  POLICY_SCHEMA,
  parsePolicyText,
  pointer,
  type SourceDocument,
  sourceFromValue,
} from './document.js'
export {
  createEngine,
  type DecideOptions,
  type DecisionEvent,
  decisionEvent,
  type Engine,
  type EngineOptions,
} from './engine.js'
export { type ErrorCode, formatProblems, PolicyError, type Problem, VerdictError } from './errors.js'
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
export { type ExternalDecision, toExternalDecision } from './external.js'
export {
  allHeaderValues,
  type CheckInput,
  canonicalHost,
  DEFAULT_INPUT_OPTIONS,
  headerValues,
  type InputDialect,
  type InputOptions,
  type InputRefusal,
  isDecision,
  isJsonContentType,
  normalizeInput,
  PARTIAL_BODY_HEADER,
  type PeerInfo,
  parseJsonLimited,
  parseSpiffeId,
  resolveInputOptions,
  type SpiffeId,
  type UnderscoreAction,
} from './input.js'
export { isoTime } from './iso-time.js'
export { JWT_FAILURE_CODES, type JwtFailureCode } from './jwt/index.js'
export { matchEvaluator } from './match.js'
export {
  DEFAULT_MCP_SETTINGS,
  extractMcp,
  findDuplicateGuardedKey,
  MCP_METADATA_NAMESPACES,
  MCP_RESPONSE_METHOD,
  type McpMessages,
  type McpSettings,
  mcpDenialBody,
} from './mcp-call.js'
export {
  celMcpScope,
  isBaseProtocolMethod,
  MCP_RESOURCE_KINDS,
  type McpMessageKind,
  mcpMessageKind,
  NOT_BASE_PROTOCOL,
} from './mcp-scope.js'
export {
  createEngineFromFile,
  loadPolicyFile,
  type PolicyFile,
  type PolicyWatch,
  readSourceFile,
  type WatchOptions,
  watchPolicyFile,
} from './policy-file.js'
export { readLimited } from './read-limited.js'
export { createFileResourceLoader, type FileResourceOptions } from './resources.js'
export { httpStatusFromName, httpStatusName, isValidHttpStatus, VALID_HTTP_STATUSES } from './status.js'
