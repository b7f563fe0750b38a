/**
 * The answer of `decide()`: allowed or not, and with which response.
 */

import type { DetailCode } from './codes.js'

/** How a header is applied, as Envoy's `HeaderValueOption.append_action`. */
export type HeaderAppend = 'append' | 'add_if_absent' | 'overwrite'

/** One header to add. `append` defaults to `overwrite` (replace any existing value). */
export interface HeaderEntry {
  readonly key: string
  readonly value: string
  readonly append?: HeaderAppend
}

export interface QueryParameter {
  readonly key: string
  readonly value: string
}

/**
 * Stable codes saying why a decision came out as it did. `reason` is for humans; `code` is for code.
 * A closed set: `DECISION_CODES` lists it at run time.
 */
export type DecisionCode =
  /** An allow rule matched, or the policy allows by default. */
  | 'allowed'
  /** A deny rule matched, a require rule did not, or an external decision denied. */
  | 'denied'
  /** Allow rules exist and none matched. */
  | 'no_match'
  /** Authentication failed (missing or invalid credential). */
  | 'unauthenticated'
  /** The input is not a well-formed request (400). */
  | 'malformed_input'
  /** The body is larger than the policy allows (413). */
  | 'body_too_large'
  /** Too many or too large headers (431). */
  | 'headers_too_large'
  /** An evaluator failed or returned something other than a decision; the rule failed closed. */
  | 'evaluator_error'
  /** The decision did not finish within the policy's deadline. */
  | 'timeout'
  /** A bug in verdict itself; still a deny. */
  | 'internal'
  /** The host refused the check before deciding: too many in flight (`@verdict/envoy`'s `maxConcurrent`). */
  | 'overloaded'

/** Who the request was established to come from. */
export interface Identity {
  /**
   * `jwt` when a token verified, `apiKey` / `basicAuth` when one of those verified (and no JWT),
   * `peer` when only the TLS peer principal is known.
   */
  readonly kind: 'jwt' | 'peer' | 'apiKey' | 'basicAuth'
  /** JWT `sub`, the API key's metadata `name` / `user` / `sub`, the basic-auth user, or the peer principal. */
  readonly subject: string | undefined
  /** JWT issuer (kind `jwt`). */
  readonly issuer?: string
  /** Provider name from the policy (kind `jwt`). */
  readonly provider?: string
  /** The verified claims (kind `jwt`). */
  readonly claims?: Readonly<Record<string, unknown>>
  /** The peer principal (SPIFFE ID or certificate subject), when known. */
  readonly principal?: string
  /** A verified API key: the metadata the policy gives it (never the key). CEL `apiKey`. */
  readonly apiKey?: { readonly metadata: Readonly<Record<string, unknown>> }
  /** Verified basic-auth credentials: the user name (never the password). CEL `basicAuth`. */
  readonly basicAuth?: { readonly username: string }
}

/** What a rule marked `shadow: true` would have done, recorded instead of enforced. */
export interface ShadowRecord {
  readonly rule: string
  /** `match`: the rule's condition was true; `no_match`; `error`: it failed. */
  readonly outcome: 'match' | 'no_match' | 'error'
  /** What the rule would have decided on its own: `deny`, `allow` or `none`. */
  readonly wouldDecide: 'allow' | 'deny' | 'none'
  readonly error?: string
}

/**
 * A complete, explainable answer.
 *
 * On allow, `headers` go upstream (to the protected service). On deny, `headers` and `body` go to
 * the client with `status`. This follows the OPA-Envoy decision convention.
 */
export interface Decision {
  readonly allowed: boolean
  /** 200 on allow; on deny one of Envoy's valid `StatusCode`s (403 by default). */
  readonly status: number
  /** Stable code for why. */
  readonly code: DecisionCode
  /** Human-readable reason; names the rule and the error. Never contains a token or a body. */
  readonly reason: string
  /** The specific stable code under `code` when there is one, e.g. `jwt_expired` under `unauthenticated`. */
  readonly detailCode?: DetailCode
  /** Id of the rule that decided, when one did. */
  readonly rule?: string
  /** The identity established for the request, if any. */
  readonly identity?: Identity
  /** Allow: headers to add upstream. Deny: headers for the client. */
  readonly headers: readonly HeaderEntry[]
  /** Allow only: request headers to remove before forwarding (e.g. the credential). */
  readonly headersToRemove: readonly string[]
  /** Allow only: headers to add to the response sent back to the client. */
  readonly responseHeadersToAdd: readonly HeaderEntry[]
  readonly queryParametersToSet: readonly QueryParameter[]
  readonly queryParametersToRemove: readonly string[]
  /** Deny only: the body sent to the client. */
  readonly body?: string
  /** Emitted as the CheckResponse's dynamic metadata. */
  readonly dynamicMetadata: Readonly<Record<string, unknown>>
  /** What shadow rules would have decided. */
  readonly shadow?: readonly ShadowRecord[]
}

const EMPTY: readonly never[] = Object.freeze([])
const EMPTY_OBJECT: Readonly<Record<string, unknown>> = Object.freeze({})

/** Fields a deny can carry beyond status and reason. */
export interface DenyOptions {
  readonly code?: DecisionCode
  readonly detailCode?: DetailCode
  readonly rule?: string
  readonly headers?: readonly HeaderEntry[]
  readonly body?: string
  readonly identity?: Identity
  readonly dynamicMetadata?: Readonly<Record<string, unknown>>
}

/** Build a deny decision. */
export function deny(status: number, reason: string, options: DenyOptions = {}): Decision {
  const d: {
    -readonly [K in keyof Decision]: Decision[K]
  } = {
    allowed: false,
    status,
    code: options.code ?? 'denied',
    reason,
    headers: options.headers ?? EMPTY,
    headersToRemove: EMPTY,
    responseHeadersToAdd: EMPTY,
    queryParametersToSet: EMPTY,
    queryParametersToRemove: EMPTY,
    dynamicMetadata: options.dynamicMetadata ?? EMPTY_OBJECT,
  }
  if (options.rule !== undefined) d.rule = options.rule
  if (options.detailCode !== undefined) d.detailCode = options.detailCode
  if (options.body !== undefined) d.body = options.body
  if (options.identity !== undefined) d.identity = options.identity
  return d
}

/** A request that is not well-formed: 400, code `malformed_input`. */
export function malformed(reason: string, code: DecisionCode = 'malformed_input', status = 400): Decision {
  return deny(status, reason, { code })
}

export { EMPTY as EMPTY_LIST, EMPTY_OBJECT }

/**
 * `d.reason` fit for logs, decision events and the CheckResponse status message: what an evaluator
 * or an exception said is left out, since it may quote request values (a CEL conversion error
 * quotes the header it read, a token included). `d.reason` keeps it for the host and for
 * `verdict test`.
 */
export function loggableReason(d: Pick<Decision, 'code' | 'reason'>): string {
  const r = d.reason
  const before = (marker: string, then: string): string => {
    const cut = r.indexOf(marker)
    return cut === -1 ? r : r.slice(0, cut) + then
  }
  if (d.code === 'evaluator_error')
    return before(' failed: ', " failed (the evaluator's message is not logged)")
  if (d.code === 'no_match') return before(' (failed: ', ' (rules failed; their messages are not logged)')
  if (d.code === 'internal') return before(': ', '')
  return r
}
