/**
 * The authentication step that runs before rules. JWT (./jwt) implements it; the engine only
 * knows this contract.
 */

import type { RequestContext } from './context.js'
import type { HeaderEntry, Identity } from './decision.js'
import type { Problem } from './errors.js'
import type { ResourceLoader } from './evaluator.js'

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
  /** Verified: identity and claims, plus what to change upstream. */
  | {
      readonly kind: 'authenticated'
      readonly identity: Identity
      readonly claims: Readonly<Record<string, unknown>>
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
      /** Stable code, e.g. `jwt_expired`. */
      readonly code: string
      /** True when a credential was presented (adds `error="invalid_token"` to the challenge). */
      readonly tokenPresent: boolean
      readonly status?: 401 | 403
    }

export interface Authenticator {
  authenticate(ctx: RequestContext): AuthOutcome | Promise<AuthOutcome>
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
