/**
 * Verifying one compact JWS token for one provider: structure and header checks before any
 * cryptography, the signature through jose with keys chosen by the provider (never by the token),
 * then the claims, each failure with a stable code and a reason that never quotes the token.
 */
import { compactVerify, errors } from 'jose'
import { base64Decode } from '../bytes.js'
import type { ProviderConfig } from './config.js'
import { hasDuplicateMember } from './json-members.js'
import { candidateKeys, type KeyEntry, type KeySet } from './key-set.js'

/** Every stable code a JWT failure can carry (the decision's `detailCode`), as listed in docs/jwt.md. */
export const JWT_FAILURE_CODES = Object.freeze([
  'jwt_missing',
  'jwt_multiple_tokens',
  'jwt_too_large',
  'jwt_malformed',
  'jwt_unknown_issuer',
  'jwt_wrong_location',
  'jwt_bad_algorithm',
  'jwt_crit',
  'jwt_bad_type',
  'jwt_missing_kid',
  'jwt_keys_unavailable',
  'jwt_unknown_key',
  'jwt_bad_signature',
  'jwt_invalid_claim',
  'jwt_missing_claim',
  'jwt_expired',
  'jwt_not_yet_valid',
  'jwt_issued_in_future',
  'jwt_lifetime_too_long',
  'jwt_bad_audience',
  'jwt_internal',
] as const)

/** A stable JWT failure code. */
export type JwtFailureCode = (typeof JWT_FAILURE_CODES)[number]

/** Why a token was rejected: a stable code and a short human reason. */
export interface TokenFailure {
  readonly code: JwtFailureCode
  readonly reason: string
}

/** Failure codes and their reasons. */
export const FAILURES = {
  missing: { code: 'jwt_missing', reason: 'no token' },
  multiple: { code: 'jwt_multiple_tokens', reason: 'more than one token' },
  tooLarge: { code: 'jwt_too_large', reason: 'token too large' },
  malformed: { code: 'jwt_malformed', reason: 'malformed token' },
  encrypted: { code: 'jwt_malformed', reason: 'malformed token: encrypted tokens (JWE) are not accepted' },
  duplicateMember: {
    code: 'jwt_malformed',
    reason: 'malformed token: a member name appears twice in the header or the claims',
  },
  byteOrderMark: {
    code: 'jwt_malformed',
    reason: 'malformed token: byte order mark before the header or the claims',
  },
  unknownIssuer: { code: 'jwt_unknown_issuer', reason: 'unknown issuer' },
  wrongLocation: { code: 'jwt_wrong_location', reason: 'token not accepted in this location for its issuer' },
  badAlgorithm: { code: 'jwt_bad_algorithm', reason: 'algorithm not allowed' },
  crit: { code: 'jwt_crit', reason: 'unsupported critical header' },
  badType: { code: 'jwt_bad_type', reason: 'token type (typ) not accepted' },
  missingKid: { code: 'jwt_missing_kid', reason: 'token names no key (kid) and the provider requires one' },
  unknownKey: { code: 'jwt_unknown_key', reason: 'unknown key' },
  keysUnavailable: { code: 'jwt_keys_unavailable', reason: 'signing keys unavailable' },
  badSignature: { code: 'jwt_bad_signature', reason: 'bad signature' },
  expired: { code: 'jwt_expired', reason: 'expired' },
  notYetValid: { code: 'jwt_not_yet_valid', reason: 'not yet valid' },
  issuedInFuture: { code: 'jwt_issued_in_future', reason: 'issued in the future' },
  lifetimeTooLong: { code: 'jwt_lifetime_too_long', reason: 'token lifetime too long' },
  badAudience: { code: 'jwt_bad_audience', reason: 'bad audience' },
  internal: { code: 'jwt_internal', reason: 'verification failed internally' },
} as const satisfies Record<string, TokenFailure>

const invalidClaim = (claim: string, why: string): TokenFailure => ({
  code: 'jwt_invalid_claim',
  reason: `invalid claim "${claim}": ${why}`,
})

const B64URL = /^[A-Za-z0-9_-]+$/

type Obj = Record<string, unknown>

/** A compact token split and decoded without trusting anything in it. */
export interface ParsedToken {
  readonly header: Obj
  readonly payload: Obj
}

// ignoreBOM: keep a leading U+FEFF in the text so it can be refused (the default decoder, which
// jose uses, drops it silently).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * One base64url part as a JSON object. A byte order mark before the JSON and a member name given
 * twice are refused: parsers disagree on both (some skip the mark or refuse it, some keep the first
 * duplicate, JSON.parse the last), so the claims verdict checks might not be the claims the
 * upstream reads.
 */
function decodePart(part: string): { readonly value: Obj } | { readonly failure: TokenFailure } {
  if (!B64URL.test(part)) return { failure: FAILURES.malformed }
  let text: string
  let v: unknown
  try {
    text = utf8.decode(base64Decode(part))
    if (text.charCodeAt(0) === 0xfeff) return { failure: FAILURES.byteOrderMark }
    v = JSON.parse(text)
  } catch {
    return { failure: FAILURES.malformed }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { failure: FAILURES.malformed }
  if (hasDuplicateMember(text)) return { failure: FAILURES.duplicateMember }
  return { value: v as Obj }
}

/**
 * Split and decode a compact JWS; the signature part is only checked for its alphabet. Runs only
 * when the verified-token cache misses, so the duplicate scan costs nothing on a hit.
 */
export function parseToken(token: string): ParsedToken | TokenFailure {
  const parts = token.split('.')
  if (parts.length === 5) return FAILURES.encrypted
  if (parts.length !== 3) return FAILURES.malformed
  const header = decodePart(parts[0]!)
  if ('failure' in header) return header.failure
  const payload = decodePart(parts[1]!)
  if ('failure' in payload) return payload.failure
  return { header: header.value, payload: payload.value }
}

/**
 * A `typ` value as compared: lower case, without an `application/` prefix when the rest has no
 * `/` (RFC 7515 §4.1.9: `at+jwt` means `application/at+jwt`; media types are case-insensitive).
 */
export function normalizeType(typ: string): string {
  const t = typ.toLowerCase()
  return t.startsWith('application/') && t.indexOf('/', 12) === -1 ? t.slice(12) : t
}

/**
 * Header checks before any key is looked up. `types`: the normalized `typ` values the provider
 * accepts (`tokenTypes`), empty when any or none is fine.
 */
export function checkHeader(
  header: Obj,
  allowed: ReadonlySet<string>,
  signature: string,
  types: ReadonlySet<string> = NO_TYPES,
): TokenFailure | undefined {
  const alg = header.alg
  if (typeof alg !== 'string' || !allowed.has(alg)) return FAILURES.badAlgorithm
  if (header.crit !== undefined) return FAILURES.crit
  // b64 (RFC 7797) and zip change how the payload is read; neither belongs in a JWT.
  if (header.b64 !== undefined || header.zip !== undefined) return FAILURES.malformed
  if (header.kid !== undefined && typeof header.kid !== 'string') return FAILURES.malformed
  if (!B64URL.test(signature)) return FAILURES.malformed
  if (types.size > 0) {
    const typ = header.typ
    if (typeof typ !== 'string' || !types.has(normalizeType(typ))) return FAILURES.badType
  }
  return undefined
}

const NO_TYPES: ReadonlySet<string> = new Set()

/**
 * Try the candidate keys; the first that verifies wins (undefined), else `jwt_bad_signature`.
 * The payload jose verified is the exact text `parseToken` decoded, so the parsed claims stand.
 */
export async function verifySignature(
  token: string,
  alg: string,
  keys: readonly KeyEntry[],
): Promise<TokenFailure | undefined> {
  for (const k of keys) {
    try {
      await compactVerify(token, await k.key(alg), { algorithms: [alg] })
      return undefined
    } catch (e) {
      if (e instanceof errors.JWSSignatureVerificationFailed) continue
      // A key jose refuses for this algorithm (e.g. RSA under 2048 bits) cannot vouch for the token.
      if (e instanceof errors.JOSEError || e instanceof TypeError) continue
      throw e
    }
  }
  return FAILURES.badSignature
}

/**
 * Keys to try for a token, or undefined when the set has none for its `kid` and `alg`. With
 * `requireKid` only keys carrying the token's `kid` count (never a key without one).
 */
export function keysFor(set: KeySet, header: Obj, requireKid = false): KeyEntry[] | undefined {
  const kid = header.kid as string | undefined
  const c = candidateKeys(set, header.alg as string, kid)
  const keys = requireKid ? c.filter((k) => k.kid !== undefined && k.kid === kid) : c
  return keys.length > 0 ? keys : undefined
}

const isNumericDate = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v)

/** Validity window of verified claims, in milliseconds, for the token cache. */
export interface Window {
  readonly notBeforeMs: number
  readonly expiresAtMs: number
}

/**
 * Check verified claims at `nowMs`. `exp` is required; `exp`, `nbf`, `iat` must be integers;
 * `iss` and `sub` strings; the audience must intersect the provider's when it lists any. With
 * `maxLifetimeSeconds`, `iat` is required, `exp - iat` may not exceed it, and neither may what is
 * left of the token (`exp - now`, with the clock skew allowed for).
 */
export function checkClaims(claims: Obj, p: ProviderConfig, nowMs: number): Window | TokenFailure {
  const now = Math.floor(nowMs / 1000)
  const skew = p.clockSkewSeconds
  if (claims.iss !== p.issuer) return FAILURES.unknownIssuer
  if (claims.sub !== undefined && typeof claims.sub !== 'string') return invalidClaim('sub', 'not a string')
  for (const c of ['exp', 'nbf', 'iat']) {
    const v = claims[c]
    if (v !== undefined && !isNumericDate(v)) return invalidClaim(c, 'not an integer NumericDate')
  }
  const exp = claims.exp as number | undefined
  const nbf = claims.nbf as number | undefined
  const iat = claims.iat as number | undefined
  if (exp === undefined) return { code: 'jwt_missing_claim', reason: 'missing required claim "exp"' }
  if (exp <= now - skew) return FAILURES.expired
  if (nbf !== undefined && nbf > now + skew) return FAILURES.notYetValid
  if (iat !== undefined && iat > now + skew) return FAILURES.issuedInFuture
  const maxLifetime = p.maxLifetimeSeconds
  if (maxLifetime !== undefined) {
    if (iat === undefined) return { code: 'jwt_missing_claim', reason: 'missing required claim "iat"' }
    if (exp - iat > maxLifetime || exp - now > maxLifetime + skew) return FAILURES.lifetimeTooLong
  }
  if (p.audiences.length > 0) {
    const aud = claims.aud
    const list = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : []
    if (!list.some((a) => typeof a === 'string' && p.audiences.includes(a))) return FAILURES.badAudience
  }
  for (const c of p.requiredClaims) {
    if (!Object.hasOwn(claims, c))
      return { code: 'jwt_missing_claim', reason: `missing required claim "${c}"` }
  }
  const start = Math.max(nbf ?? Number.NEGATIVE_INFINITY, iat ?? Number.NEGATIVE_INFINITY)
  return { notBeforeMs: (start - skew) * 1000, expiresAtMs: (exp + skew) * 1000 }
}

export const isFailure = (v: unknown): v is TokenFailure =>
  typeof v === 'object' && v !== null && typeof (v as TokenFailure).code === 'string' && 'reason' in v
