/**
 * `@verdict/core/internal`: what verdict's own packages share beyond the public entry (input
 * normalization pieces, decision builders, MCP extraction, status tables). No semver promise:
 * names here change with any release. Applications import `@verdict/core`.
 */

export type { AuthCompileResult, AuthEnvironment, Authenticator, AuthOutcome } from './auth.js'
export { base64Decode, base64Encode, toHex, utf8Decode, utf8Encode, utf8Length } from './bytes.js'
export { REQUEST_PARSE_ERROR } from './codes.js'
export { DecisionContext } from './context.js'
export { isThenable } from './decide/combine.js'
export { type DenyOptions, deny, malformed } from './decision.js'
export { type Locator, nodeAt, parsePolicyText, type SourceDocument, sourceFromValue } from './document.js'
export { decideEager } from './engine.js'
export { type ExternalDecision, toExternalDecision } from './external.js'
export * from './index.js'
export {
  allHeaderValues,
  canonicalHost,
  DEFAULT_INPUT_OPTIONS,
  hasNonFinite,
  headerValues,
  isDecision,
  isJsonContentType,
  normalizeInput,
  PARTIAL_BODY_HEADER,
  parseJsonLimited,
  parseSpiffeId,
  refusal,
  resolveInputOptions,
  type UnderscoreAction,
} from './input/index.js'
export { isoTime } from './iso-time.js'
export { hasDuplicateMember } from './jwt/json-members.js'
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
} from './mcp/index.js'
export {
  celMcpScope,
  isBaseProtocolMethod,
  MCP_RESOURCE_KINDS,
  type McpMessageKind,
  mcpMessageKind,
  NOT_BASE_PROTOCOL,
} from './mcp/scope.js'
export { readLimited } from './read-limited.js'
export { httpStatusFromName, httpStatusName, isValidHttpStatus, VALID_HTTP_STATUSES } from './status.js'
