/**
 * Verifying one compact JWS token for one provider: structure and header checks before any
 * cryptography, the signature through jose with keys chosen by the provider (never by the token),
 * then the claims, each failure with a stable code and a reason that never quotes the token.
 */
import { compactVerify, errors } from 'jose'
import type { ProviderConfig } from './config.js'
import { candidateKeys, type KeyEntry, type KeySet } from './key-set.js'

/** Why a token was rejected: a stable code and a short human reason. */
export interface TokenFailure {
  readonly code: string
  readonly reason: string
}

/** Failure codes and their reasons. */
export const FAILURES = {
  missing: { code: 'jwt_missing', reason: 'no token' },
  multiple: { code: 'jwt_multiple_tokens', reason: 'more than one token' },
  tooLarge: { code: 'jwt_too_large', reason: 'token too large' },
  malformed: { code: 'jwt_malformed', reason: 'malformed token' },
  encrypted: { code: 'jwt_malformed', reason: 'malformed token: encrypted tokens (JWE) are not accepted' },
  unknownIssuer: { code: 'jwt_unknown_issuer', reason: 'unknown issuer' },
  wrongLocation: { code: 'jwt_wrong_location', reason: 'token not accepted in this location for its issuer' },
  badAlgorithm: { code: 'jwt_bad_algorithm', reason: 'algorithm not allowed' },
  crit: { code: 'jwt_crit', reason: 'unsupported critical header' },
  unknownKey: { code: 'jwt_unknown_key', reason: 'unknown key' },
  keysUnavailable: { code: 'jwt_keys_unavailable', reason: 'signing keys unavailable' },
  badSignature: { code: 'jwt_bad_signature', reason: 'bad signature' },
  expired: { code: 'jwt_expired', reason: 'expired' },
  notYetValid: { code: 'jwt_not_yet_valid', reason: 'not yet valid' },
  issuedInFuture: { code: 'jwt_issued_in_future', reason: 'issued in the future' },
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

const utf8 = new TextDecoder('utf-8', { fatal: true })

function decodePart(part: string): Obj | undefined {
  if (!B64URL.test(part)) return undefined
  try {
    const v: unknown = JSON.parse(utf8.decode(Buffer.from(part, 'base64url')))
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined
  } catch {
    return undefined
  }
}

/** Split and decode a compact JWS; the signature part is only checked for its alphabet. */
export function parseToken(token: string): ParsedToken | TokenFailure {
  const parts = token.split('.')
  if (parts.length === 5) return FAILURES.encrypted
  if (parts.length !== 3) return FAILURES.malformed
  const header = decodePart(parts[0]!)
  const payload = decodePart(parts[1]!)
  if (header === undefined || payload === undefined) return FAILURES.malformed
  return { header, payload }
}

/** Header checks before any key is looked up. */
export function checkHeader(
  header: Obj,
  allowed: ReadonlySet<string>,
  signature: string,
): TokenFailure | undefined {
  const alg = header.alg
  if (typeof alg !== 'string' || !allowed.has(alg)) return FAILURES.badAlgorithm
  if (header.crit !== undefined) return FAILURES.crit
  // b64 (RFC 7797) and zip change how the payload is read; neither belongs in a JWT.
  if (header.b64 !== undefined || header.zip !== undefined) return FAILURES.malformed
  if (header.kid !== undefined && typeof header.kid !== 'string') return FAILURES.malformed
  if (!B64URL.test(signature)) return FAILURES.malformed
  return undefined
}

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

/** Keys to try for a token, or undefined when the set has none for its `kid` and `alg`. */
export function keysFor(set: KeySet, header: Obj): KeyEntry[] | undefined {
  const c = candidateKeys(set, header.alg as string, header.kid as string | undefined)
  return c.length > 0 ? c : undefined
}

const isNumericDate = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v)

/** Validity window of verified claims, in milliseconds, for the token cache. */
export interface Window {
  readonly notBeforeMs: number
  readonly expiresAtMs: number
}

/**
 * Check verified claims at `nowMs`. `exp` is required; `exp`, `nbf`, `iat` must be integers;
 * `iss` and `sub` strings; the audience must intersect the provider's when it lists any.
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
