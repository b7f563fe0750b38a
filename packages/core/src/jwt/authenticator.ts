/**
 * The JWT authenticator: finds the token, picks the provider by the token's unverified `iss`,
 * verifies it (or finds it in the verified-token cache), and maps the result to an outcome
 * according to the mode (protocols.md §5).
 */
import type { Authenticator, AuthOutcome } from '../auth.js'
import type { RequestContext } from '../context.js'
import type { HeaderEntry, Identity } from '../decision.js'
import type { JwtConfig, JwtMode, ProviderConfig, TokenLocation } from './config.js'
import type { KeySet } from './key-set.js'
import type { RemoteKeySet } from './remote-key-set.js'
import { TokenCache } from './token-cache.js'
import {
  cookieRemoval,
  extractToken,
  type FoundToken,
  NO_REMOVAL,
  type Removal,
  type SearchLocation,
  searchLocation,
} from './token-location.js'
import {
  checkClaims,
  checkHeader,
  FAILURES,
  isFailure,
  keysFor,
  type ParsedToken,
  parseToken,
  type TokenFailure,
  verifySignature,
} from './verify-token.js'

/** A provider ready to verify: its configuration and its keys (fixed or remote). */
export interface Provider {
  readonly config: ProviderConfig
  readonly locationKey: string
  /** Algorithms a token may name: the keys' algorithms (fixed keys) or the policy's (remote). */
  readonly algorithms: ReadonlySet<string>
  readonly fixed: KeySet | undefined
  readonly remote: RemoteKeySet | undefined
  /** Credential removal when it does not depend on the request (header, query). */
  readonly removal: Removal | undefined
}

/** What a verified token yields, computed once and shared by cache hits. */
interface Verified {
  /** The token that verified (CEL `jwt.rawToken`). */
  readonly token: string
  readonly identity: Identity
  readonly claims: Readonly<Record<string, unknown>>
  /** Claim headers to add upstream. */
  readonly headers: readonly HeaderEntry[]
  /** Claim headers whose claim is absent: stripped so a client cannot supply them. */
  readonly strip: readonly string[]
  /** The full outcome when the removal is static (header, query), so a hit allocates nothing. */
  readonly outcome: AuthOutcome | undefined
}

const MAX_HEADER_VALUE = 4096

function freeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v)
    for (const k of Object.keys(v)) freeze((v as Record<string, unknown>)[k])
  }
  return v
}

/** A claim by exact name, else by a dotted path (`realm_access.roles`). */
function claimValue(claims: Readonly<Record<string, unknown>>, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name]
  let v: unknown = claims
  for (const part of name.split('.')) {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.hasOwn(v, part)) return undefined
    v = (v as Record<string, unknown>)[part]
  }
  return v
}

/** A header-safe rendering of a claim: strings as they are, lists joined by `,`, objects as JSON. */
function headerValue(v: unknown): string {
  const s =
    typeof v === 'string'
      ? v
      : Array.isArray(v) && v.every((x) => typeof x === 'string')
        ? v.join(',')
        : JSON.stringify(v)
  // Control characters would split or smuggle headers; drop them.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
  return s.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, '').slice(0, MAX_HEADER_VALUE)
}

/** The outcome of a verified token; its lists are frozen, so a decision can take them as they are. */
function outcomeOf(v: Verified, removal: Removal): AuthOutcome {
  return {
    kind: 'authenticated',
    identity: v.identity,
    claims: v.claims,
    token: v.token,
    headersToRemove: Object.freeze(
      v.strip.length > 0 ? [...removal.headersToRemove, ...v.strip] : removal.headersToRemove,
    ),
    queryParametersToRemove: Object.freeze(removal.queryParametersToRemove),
    headers: Object.freeze(removal.headers.length > 0 ? [...removal.headers, ...v.headers] : v.headers),
  }
}

/**
 * `foreign`: the claim headers of the other providers, which this token does not set. They are
 * stripped too: a token of one issuer must not let the client supply another issuer's claims.
 */
function verified(
  p: Provider,
  claims: Record<string, unknown>,
  foreign: readonly string[],
  token: string,
): Verified {
  freeze(claims)
  const headers: HeaderEntry[] = []
  const strip: string[] = [...foreign]
  for (const m of p.config.claimsToHeaders) {
    const v = claimValue(claims, m.claim)
    if (v === undefined || v === null) strip.push(m.header)
    else headers.push({ key: m.header, value: headerValue(v), append: 'overwrite' })
  }
  const identity: Identity = {
    kind: 'jwt',
    subject: claims.sub as string | undefined,
    issuer: p.config.issuer,
    provider: p.config.name,
    claims,
  }
  const base: Verified = { token, identity, claims, headers, strip, outcome: undefined }
  const removal = p.config.forwardToken ? NO_REMOVAL : p.removal
  return removal === undefined ? base : { ...base, outcome: outcomeOf(base, removal) }
}

/** Reason text for the decision: the human reason and the stable code, never the token. */
const describe = (f: TokenFailure): string => `${f.reason} (${f.code})`

/** What `within` answers when the deadline came first. */
const TIMED_OUT: unique symbol = Symbol('timed-out')

/** Options of the authenticator that do not come from the policy's `authentication.jwt`. */
export interface AuthenticatorOptions {
  /**
   * Longest a verification waits for remote keys (a first fetch, or the refetch for an unknown
   * `kid`), in milliseconds, so that the answer is a 401 before the decision's deadline turns it
   * into a timeout. The fetch itself goes on with its own timeout (`remote.timeoutMs`) and serves
   * later decisions. Default: no bound.
   */
  readonly maxWaitMs?: number
}

export class JwtAuthenticator implements Authenticator {
  /** Providers by issuer, in policy order: several may share one (other keys or audiences). */
  private readonly byIssuer = new Map<string, Provider[]>()
  private readonly locations: SearchLocation[] = []
  get credentialLocations(): readonly TokenLocation[] {
    return this.locations.map((l) => l.location)
  }
  private readonly maxTokenBytes: number
  private readonly cache: TokenCache<Provider, KeySet, Verified>
  private readonly mode: JwtMode
  /** Every provider's claim header names: stripped when no token verified, so none can be forged. */
  private readonly anonymous: AuthOutcome

  private readonly maxWaitMs: number

  constructor(
    config: JwtConfig,
    readonly providers: readonly Provider[],
    options: AuthenticatorOptions = {},
  ) {
    this.maxWaitMs = options.maxWaitMs ?? Number.POSITIVE_INFINITY
    this.mode = config.mode
    this.cache = new TokenCache(config.cacheMaxEntries)
    const seen = new Set<string>()
    for (const p of providers) {
      const list = this.byIssuer.get(p.config.issuer)
      if (list === undefined) this.byIssuer.set(p.config.issuer, [p])
      else list.push(p)
      if (!seen.has(p.locationKey)) {
        seen.add(p.locationKey)
        this.locations.push(searchLocation(p.config.location))
      }
    }
    this.maxTokenBytes = Math.max(...providers.map((p) => p.config.maxTokenBytes))
    this.claimHeaders = [...new Set(providers.flatMap((p) => p.config.claimsToHeaders.map((m) => m.header)))]
    for (const p of providers) {
      const own = new Set(p.config.claimsToHeaders.map((m) => m.header.toLowerCase()))
      this.foreignClaimHeaders.set(
        p,
        this.claimHeaders.filter((h) => !own.has(h.toLowerCase())),
      )
    }
    this.anonymous =
      this.claimHeaders.length > 0
        ? { kind: 'anonymous', headersToRemove: this.claimHeaders }
        : { kind: 'anonymous' }
  }

  private readonly claimHeaders: readonly string[]
  /** Per provider: the other providers' claim headers that it does not set itself. */
  private readonly foreignClaimHeaders = new Map<Provider, readonly string[]>()

  /** Entries in the verified-token cache (for tests and metrics). */
  get cacheSize(): number {
    return this.cache.size
  }

  authenticate(ctx: RequestContext): AuthOutcome | Promise<AuthOutcome> {
    const ex = extractToken(ctx.input, this.locations)
    if (ex.kind === 'none')
      return this.mode === 'Strict'
        ? {
            kind: 'failed',
            reason: describe(FAILURES.missing),
            code: FAILURES.missing.code,
            tokenPresent: false,
          }
        : this.anonymous
    if (ex.kind === 'multiple') return this.invalid(FAILURES.multiple)
    const { token } = ex.found
    // Size first: nothing of an oversized token is decoded.
    if (token.length > this.maxTokenBytes) return this.invalid(FAILURES.tooLarge)
    const hit = this.cache.get(token, ctx.now, currentKeySet)
    if (hit !== undefined && hit.provider.locationKey === ex.found.key)
      return hit.value.outcome ?? this.success(hit.provider, hit.value, ctx)
    return this.verify(ex.found, ctx).then(
      (r) => (isFailure(r) ? this.invalid(r) : r),
      () => this.invalid(FAILURES.internal),
    )
  }

  dispose(): void {
    for (const p of this.providers) p.remote?.dispose()
    this.cache.clear()
  }

  private invalid(f: TokenFailure): AuthOutcome {
    if (this.mode === 'Permissive') {
      return this.claimHeaders.length > 0
        ? { kind: 'ignored', reason: describe(f), headersToRemove: this.claimHeaders }
        : { kind: 'ignored', reason: describe(f) }
    }
    return { kind: 'failed', reason: describe(f), code: f.code, tokenPresent: true }
  }

  private success(p: Provider, v: Verified, ctx: RequestContext): AuthOutcome {
    if (v.outcome !== undefined) return v.outcome
    const removal = p.config.forwardToken
      ? NO_REMOVAL
      : (p.removal ?? cookieRemoval(ctx.input, p.config.location.name))
    return outcomeOf(v, removal)
  }

  /** `work`, or TIMED_OUT when `deadline` (performance.now() time) comes first. */
  private within<T>(work: Promise<T>, deadline: number): Promise<T | typeof TIMED_OUT> {
    if (this.maxWaitMs === Number.POSITIVE_INFINITY) return work
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, deadline - performance.now()), TIMED_OUT)
    })
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
  }

  private waitedTooLong(): TokenFailure {
    return {
      ...FAILURES.keysUnavailable,
      reason: `${FAILURES.keysUnavailable.reason}: key fetch did not finish within ${this.maxWaitMs} ms`,
    }
  }

  /**
   * Every provider with the token's issuer is tried in policy order (those reading another location
   * are passed over); the first that verifies the token wins. When none does, the answer is the
   * first provider's failure other than `jwt_unknown_key` (a provider without the token's key is
   * not the one it was meant for, as agentgateway skips it), else `jwt_unknown_key`.
   */
  private async verify(found: FoundToken, ctx: RequestContext): Promise<AuthOutcome | TokenFailure> {
    const parsed = parseToken(found.token)
    if (isFailure(parsed)) return parsed
    const iss = parsed.payload.iss
    const candidates = typeof iss === 'string' ? this.byIssuer.get(iss) : undefined
    if (candidates === undefined) return FAILURES.unknownIssuer
    let first: TokenFailure | undefined
    let unknownKey: TokenFailure | undefined
    let located = false
    for (const p of candidates) {
      if (p.locationKey !== found.key) continue
      located = true
      const r = await this.verifyWith(p, parsed, found, ctx)
      if (!isFailure(r)) return r
      if (r.code === FAILURES.unknownKey.code) unknownKey ??= r
      else first ??= r
    }
    if (!located) return FAILURES.wrongLocation
    return first ?? unknownKey ?? FAILURES.unknownKey
  }

  private async verifyWith(
    p: Provider,
    parsed: ParsedToken,
    found: FoundToken,
    ctx: RequestContext,
  ): Promise<AuthOutcome | TokenFailure> {
    const { token } = found
    if (token.length > p.config.maxTokenBytes) return FAILURES.tooLarge
    const signature = token.slice(token.lastIndexOf('.') + 1)
    const bad = checkHeader(parsed.header, p.algorithms, signature, p.config.tokenTypes)
    if (bad !== undefined) return bad
    if (p.config.requireKid && parsed.header.kid === undefined) return FAILURES.missingKid
    // Waiting for remote keys ends by this time, whatever the fetch does.
    const deadline = performance.now() + this.maxWaitMs
    let set = p.fixed ?? p.remote!.peek(ctx.now)
    if (set === undefined) {
      const got = await this.within(p.remote!.keys(), deadline)
      if (got === TIMED_OUT) return this.waitedTooLong()
      set = got
    }
    if (set === undefined) {
      const why = p.remote?.lastError
      return why === undefined
        ? FAILURES.keysUnavailable
        : { ...FAILURES.keysUnavailable, reason: `${FAILURES.keysUnavailable.reason}: ${why}` }
    }
    const requireKid = p.config.requireKid
    let keys = keysFor(set, parsed.header, requireKid)
    if (keys === undefined && p.remote !== undefined && parsed.header.kid !== undefined) {
      // Key rotation: the issuer may have published a key we have not fetched yet.
      const fresh = await this.within(p.remote.refetchForUnknownKid(), deadline)
      if (fresh === TIMED_OUT) return this.waitedTooLong()
      if (fresh !== undefined) {
        set = fresh
        keys = keysFor(set, parsed.header, requireKid)
      }
    }
    if (keys === undefined) return FAILURES.unknownKey
    const sig = await verifySignature(token, parsed.header.alg as string, keys)
    if (sig !== undefined) return sig
    const window = checkClaims(parsed.payload, p.config, ctx.now)
    if (isFailure(window)) return window
    const v = verified(p, parsed.payload, this.foreignClaimHeaders.get(p) ?? [], token)
    this.cache.set(token, { provider: p, keySet: set, ...window, value: v })
    return this.success(p, v, ctx)
  }
}

/** The set a cached token must have verified against; a remote set past max staleness is none. */
function currentKeySet(p: Provider, nowMs: number): KeySet | undefined {
  return p.fixed ?? p.remote!.peek(nowMs)
}
