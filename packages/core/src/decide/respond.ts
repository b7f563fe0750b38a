/**
 * The decisions core answers itself: the allow (with what the rules and the policy add), an
 * authentication failure (with its `WWW-Authenticate` challenge), an internal error, a timeout.
 */
import type { AuthOutcome } from '../auth.js'
import type { CompiledPolicy } from '../compile.js'
import {
  type Decision,
  deny,
  EMPTY_LIST,
  EMPTY_OBJECT,
  type HeaderEntry,
  type Identity,
} from '../decision.js'
import type { CheckInput } from '../input/index.js'
import { type Acc, appended, dedupeHeaders, errorText } from './combine.js'

function challenge(policy: CompiledPolicy, input: CheckInput, tokenPresent: boolean): string {
  const realm =
    policy.realm ??
    (input.host !== '' ? `${input.scheme || 'https'}://${input.host}${input.path}` : 'verdict')
  const safe = realm.replace(/["\\\r\n]/g, '')
  return tokenPresent ? `Bearer realm="${safe}", error="invalid_token"` : `Bearer realm="${safe}"`
}

export function authDenial(
  policy: CompiledPolicy,
  input: CheckInput,
  o: Extract<AuthOutcome, { kind: 'failed' }>,
): Decision {
  const spec = policy.responses.unauthenticated
  const status = o.status ?? 401
  const headers: HeaderEntry[] = []
  if (status === 401)
    headers.push({ key: 'www-authenticate', value: o.challenge ?? challenge(policy, input, o.tokenPresent) })
  for (const h of spec?.headers ?? EMPTY_LIST) headers.push(h)
  return deny(spec?.status ?? status, `unauthenticated: ${o.reason}`, {
    code: 'unauthenticated',
    detailCode: o.code,
    headers: dedupeHeaders(headers),
    body: spec?.body ?? (status === 401 ? 'unauthenticated' : 'access denied'),
  })
}

/** `allowed by rule <id>`, kept per rule id (a bounded cache) so an allow builds no string. */
const ALLOW_REASONS = new Map<string, string>()
const MAX_ALLOW_REASONS = 1024

function allowReason(rule: string | undefined): string {
  if (rule === undefined) return 'allowed: no rule denied'
  let r = ALLOW_REASONS.get(rule)
  if (r === undefined) {
    r = `allowed by rule ${rule}`
    if (ALLOW_REASONS.size < MAX_ALLOW_REASONS) ALLOW_REASONS.set(rule, r)
  }
  return r
}

/** The allow decision: what the allowing rules and the policy add upstream and downstream. */
export function allowDecision(policy: CompiledPolicy, acc: Acc, identity: Identity | undefined): Decision {
  const allHeaders = appended(acc.headers, policy.allowedHeaders)
  const headers = allHeaders.length > 1 ? dedupeHeaders(allHeaders) : allHeaders
  const responseHeadersToAdd = appended(acc.responseHeadersToAdd, policy.allowedResponseHeaders)
  const dynamicMetadata = acc.dynamicMetadata ?? EMPTY_OBJECT
  const rule = acc.rule
  if (rule !== undefined && identity !== undefined && acc.shadow === undefined) {
    // The usual allow (a rule allowed an identified caller), built as one literal.
    return {
      allowed: true,
      status: 200,
      code: 'allowed',
      reason: allowReason(rule),
      headers,
      headersToRemove: acc.headersToRemove,
      responseHeadersToAdd,
      queryParametersToSet: acc.queryParametersToSet,
      queryParametersToRemove: acc.queryParametersToRemove,
      dynamicMetadata,
      rule,
      identity,
    }
  }
  const d: { -readonly [K in keyof Decision]: Decision[K] } = {
    allowed: true,
    status: 200,
    code: 'allowed',
    reason: allowReason(rule),
    headers,
    headersToRemove: acc.headersToRemove,
    responseHeadersToAdd,
    queryParametersToSet: acc.queryParametersToSet,
    queryParametersToRemove: acc.queryParametersToRemove,
    dynamicMetadata,
  }
  if (rule !== undefined) d.rule = rule
  if (identity !== undefined) d.identity = identity
  if (acc.shadow !== undefined) d.shadow = acc.shadow
  return d
}

export function internal(e: unknown): Decision {
  return deny(403, `internal error: ${errorText(e)}`, { code: 'internal', body: 'access denied' })
}

export function timedOut(policy: CompiledPolicy): Decision {
  return deny(policy.responses.error?.status ?? 403, `decision timed out after ${policy.timeoutMs} ms`, {
    code: 'timeout',
    body: policy.responses.error?.body ?? 'access denied',
  })
}
