/**
 * The input model (input/): what the rest of core and the sibling packages import from it.
 */

export { type InputRefusal, refusal } from './fields.js'
export { allHeaderValues, ambiguousHeader, headerValues } from './header-values.js'
export {
  hasNonFinite,
  isJsonContentType,
  jsonSyntaxError,
  parseJsonBody,
  parseJsonLimited,
  withoutBom,
} from './json.js'
export { isDecision, normalizeInput } from './normalize.js'
export { splitPath } from './path.js'
export { canonicalHost } from './request-line.js'
export { parseSpiffeId } from './spiffe.js'
export {
  type CheckInput,
  DEFAULT_INPUT_OPTIONS,
  type InputDialect,
  type InputOptions,
  PARTIAL_BODY_HEADER,
  type PeerInfo,
  type ResolvedInputOptions,
  resolveInputOptions,
  type SpiffeId,
  type UnderscoreAction,
} from './types.js'
