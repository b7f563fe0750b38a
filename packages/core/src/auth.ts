/**
 * The authentication step that runs before rules. JWT (./jwt) implements it; the engine only
 * knows this contract.
 */

import type { AuthFailureCode } from './codes.js'
import type { RequestContext } from './context.js'
import type { HeaderEntry, Identity } from './decision.js'
import type { Problem } from './errors.js'
import type { ResourceLoader } from './evaluator.js'
import type { TokenLocation } from './jwt/config.js'
import type { JwtFailureCode } from './jwt/verify-token.js'

/** What authentication concluded for one request. */
export type AuthOutcome =
  /** No credential and the mode lets the request through without identity. */
  | {
      readonly kind: 'anonymous'
      /** Headers to strip anyway, e.g. claim headers a client could forge without a token. */
      readonly headersToRemove?: readonly string[]
    }
  /** A credential was present but invalid, and the mode (Permissive) lets the request through. */
  | { readonly kind: 'ignored'; readonly reason: string; readonly headersToRemove?: readonly string[] }
  /** Verified: identity and claims (JWT only), plus what to change upstream. */
  | {
      readonly kind: 'authenticated'
      readonly identity: Identity
      /** Verified JWT claims (CEL `jwt`); absent for API keys and basic auth. */
      readonly claims?: Readonly<Record<string, unknown>>
      /** The JWT that verified, wherever it was found (CEL `jwt.rawToken`). Never logged. */
      readonly token?: string
      /** Request headers to strip before forwarding (the credential, unless forwardToken). */
      readonly headersToRemove: readonly string[]
      /** Query parameters to strip (a token passed in the query). */
      readonly queryParametersToRemove: readonly string[]
      /** Headers to add upstream (claimsToHeaders). */
      readonly headers: readonly HeaderEntry[]
    }
  /** Deny. `status` 401 unless the failure is an authorization one (403, e.g. bad audience in Envoy's model). */
  | {
      readonly kind: 'failed'
      /** Specific reason: `expired`, `not yet valid`, `bad audience`, `unknown key`, ... never the token. */
      readonly reason: string
      /** Stable code, e.g. `jwt_expired` or `apikey_invalid`: the decision's `detailCode`. */
      readonly code: JwtFailureCode | AuthFailureCode
      /** True when a credential was presented (adds `error="invalid_token"` to the challenge). */
      readonly tokenPresent: boolean
      readonly status?: 401 | 403
      /** The `WWW-Authenticate` value when it is not the Bearer one (`Basic realm="..."`). */
      readonly challenge?: string
    }

export interface Authenticator {
  authenticate(ctx: RequestContext): AuthOutcome | Promise<AuthOutcome>
  /** Where this authenticator reads credentials from: erased from decision logs. */
  readonly credentialLocations?: readonly TokenLocation[]
  /** Stop timers and background refreshes. */
  dispose?(): void
}

/** What the host gives authentication at load time. */
export interface AuthEnvironment {
  /** Fetch for remote JWKS and OIDC discovery; the only network access, injected by the host. */
  readonly fetch: typeof globalThis.fetch | undefined
  readonly resources: ResourceLoader | undefined
  /** Clock in milliseconds. */
  readonly now: () => number
}

export type AuthCompileResult =
  | { readonly ok: true; readonly authenticator: Authenticator }
  | { readonly ok: false; readonly problems: readonly Problem[] }

/**
 * Several authentications on one request (JWT, basic auth, API key, in that order), as agentgateway
 * runs its policies one after the other: the first failure denies; identities merge (a JWT identity
 * keeps its kind and carries the `apiKey` / `basicAuth` parts), and so do the upstream changes.
 */
export class CombinedAuthenticator implements Authenticator {
  readonly credentialLocations: readonly TokenLocation[]

  constructor(private readonly parts: readonly Authenticator[]) {
    this.credentialLocations = parts.flatMap((p) => p.credentialLocations ?? [])
  }

  authenticate(ctx: RequestContext): AuthOutcome | Promise<AuthOutcome> {
    const outcomes: AuthOutcome[] = []
    for (let i = 0; i < this.parts.length; i++) {
      const o = this.parts[i]!.authenticate(ctx)
      if (o instanceof Promise) return this.rest(ctx, outcomes, o, i)
      if (o.kind === 'failed') return o
      outcomes.push(o)
    }
    return merge(outcomes)
  }

  private async rest(
    ctx: RequestContext,
    outcomes: AuthOutcome[],
    pending: Promise<AuthOutcome>,
    i: number,
  ): Promise<AuthOutcome> {
    const first = await pending
    if (first.kind === 'failed') return first
    outcomes.push(first)
    for (let j = i + 1; j < this.parts.length; j++) {
      const o = await this.parts[j]!.authenticate(ctx)
      if (o.kind === 'failed') return o
      outcomes.push(o)
    }
    return merge(outcomes)
  }

  dispose(): void {
    for (const p of this.parts) p.dispose?.()
  }
}

function merge(outcomes: readonly AuthOutcome[]): AuthOutcome {
  const ok = outcomes.filter((o) => o.kind === 'authenticated')
  const strip = outcomes.flatMap((o) =>
    o.kind === 'anonymous' || o.kind === 'ignored' ? (o.headersToRemove ?? []) : [],
  )
  if (ok.length === 0) {
    const ignored = outcomes.find((o) => o.kind === 'ignored')
    if (ignored !== undefined) return { ...ignored, headersToRemove: strip }
    return strip.length > 0 ? { kind: 'anonymous', headersToRemove: strip } : { kind: 'anonymous' }
  }
  let identity: Identity = ok[0]!.identity
  for (const o of ok.slice(1)) {
    identity = {
      ...identity,
      ...(o.identity.apiKey !== undefined ? { apiKey: o.identity.apiKey } : {}),
      ...(o.identity.basicAuth !== undefined ? { basicAuth: o.identity.basicAuth } : {}),
    }
  }
  const claims = ok.find((o) => o.claims !== undefined)?.claims
  return {
    kind: 'authenticated',
    identity,
    ...(claims !== undefined ? { claims } : {}),
    headersToRemove: [...ok.flatMap((o) => o.headersToRemove), ...strip],
    queryParametersToRemove: ok.flatMap((o) => o.queryParametersToRemove),
    headers: ok.flatMap((o) => o.headers),
  }
}
