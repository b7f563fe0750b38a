/** A throwaway JWT issuer for tests: one key pair, its public JWKS, and `sign(claims)`. */
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose'

export interface TestIssuerOptions {
  /** `iss` of the tokens (default `https://issuer.test`). */
  readonly issuer?: string
  /** Default `aud` (default none). */
  readonly audience?: string | string[]
  /** Signing algorithm (default ES256). */
  readonly alg?: 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA'
  readonly kid?: string
}

export interface TestIssuer {
  readonly issuer: string
  /** Public keys as a JWKS document (for an inline provider). */
  readonly jwks: { keys: JWK[] }
  /**
   * Sign claims. `iss`, `iat`, `exp` (+1 h) and the default `aud` are filled in unless given;
   * pass `exp: undefined` explicitly to omit it.
   */
  sign(claims?: Record<string, unknown>): Promise<string>
}

/**
 * @example
 * ```ts
 * const idp = await createTestIssuer()
 * const token = await idp.sign({ sub: 'alice', roles: ['admin'] })
 * ```
 */
export async function createTestIssuer(o: TestIssuerOptions = {}): Promise<TestIssuer> {
  const alg = o.alg ?? 'ES256'
  const kid = o.kid ?? `test-${alg.toLowerCase()}`
  const issuer = o.issuer ?? 'https://issuer.test'
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
  const pub = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  return {
    issuer,
    jwks: { keys: [pub] },
    async sign(claims = {}) {
      const now = Math.floor(Date.now() / 1000)
      const body: Record<string, unknown> = { iss: issuer, iat: now, exp: now + 3600, ...claims }
      if (o.audience !== undefined && !('aud' in claims)) body.aud = o.audience
      for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k]
      return new SignJWT(body).setProtectedHeader({ alg, kid, typ: 'JWT' }).sign(privateKey)
    },
  }
}
