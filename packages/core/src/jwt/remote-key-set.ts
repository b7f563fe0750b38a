/**
 * A remote JWKS (a URL, or OIDC discovery's `jwks_uri`) kept fresh through the host's injected
 * fetch: one request in flight per key set, a timeout, Cache-Control honoured within bounds, stale
 * keys served through an outage up to a maximum staleness, one rate-limited refetch when a token
 * names an unknown `kid`, and a malformed answer never replaces the last good set.
 */
import { readLimited } from '../read-limited.js'
import { buildKeySet, type KeySet } from './key-set.js'

/** Tuning of remote key sets (policy `authentication.jwt.remote`). */
export interface RemoteSettings {
  /** Abort a fetch after this long (default 5000). */
  readonly timeoutMs: number
  /** Shortest cache lifetime whatever Cache-Control says (default 60). */
  readonly minTtlSeconds: number
  /** Longest cache lifetime (default 86400). */
  readonly maxTtlSeconds: number
  /** Lifetime when the answer has no usable Cache-Control max-age (default 900). */
  readonly defaultTtlSeconds: number
  /** How long past its lifetime a set keeps serving while refreshes fail (default 3600). */
  readonly maxStaleSeconds: number
  /** At most one refetch for an unknown `kid` per this many seconds (default 30). */
  readonly unknownKidCooldownSeconds: number
  /** After a failed fetch, wait this long before the next attempt (default 5). */
  readonly retrySeconds: number
  /** Largest JWKS or discovery document accepted, in bytes (default 512 KiB). */
  readonly maxBytes: number
  /** Allow plain `http:` URLs to hosts other than loopback (default false). */
  readonly allowInsecureHttp: boolean
}

export const DEFAULT_REMOTE_SETTINGS: RemoteSettings = Object.freeze({
  timeoutMs: 5000,
  minTtlSeconds: 60,
  maxTtlSeconds: 86400,
  defaultTtlSeconds: 900,
  maxStaleSeconds: 3600,
  unknownKidCooldownSeconds: 30,
  retrySeconds: 5,
  maxBytes: 512 * 1024,
  allowInsecureHttp: false,
})

/** Where the keys come from: a JWKS URL, or the issuer's OIDC discovery document. */
export type RemoteSource = { readonly url: string } | { readonly discovery: string }

const LOOPBACK = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i

/** Null when `raw` is an acceptable key URL, else why not. */
export function urlProblem(raw: string, allowInsecureHttp: boolean): string | null {
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    return 'is not a URL'
  }
  if (u.protocol === 'https:') return null
  if (u.protocol === 'http:' && (allowInsecureHttp || LOOPBACK.test(u.hostname))) return null
  return 'must be https (plain http only to loopback, or with remote.allowInsecureHttp)'
}

/** Seconds of `max-age` in a Cache-Control header, 0 for no-store/no-cache, undefined when absent. */
export function cacheControlMaxAge(header: string | null): number | undefined {
  if (header === null) return undefined
  let maxAge: number | undefined
  for (const part of header.split(',')) {
    const d = part.trim().toLowerCase()
    if (d === 'no-store' || d === 'no-cache') return 0
    const m = /^max-age\s*=\s*"?(\d{1,10})"?$/.exec(d)
    if (m !== null) maxAge = Number(m[1])
  }
  return maxAge
}

/** Read at most `max` bytes of a response body as text; more is an error. */
async function readText(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? Number.NaN)
  if (declared > max) throw new Error(`answer larger than ${max} bytes`)
  const bytes = await readLimited(res.body, max)
  if (bytes === 'too_large') throw new Error(`answer larger than ${max} bytes`)
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
}

/** A key set fetched over the network through an injected fetch. */
export class RemoteKeySet {
  private current: KeySet | undefined
  private freshUntil = 0
  private usableUntil = 0
  private nextAttemptAt = 0
  private lastKidRefetch = Number.NEGATIVE_INFINITY
  private inflight: Promise<void> | undefined
  private jwksUri: string | undefined
  private jwksUriUntil = 0
  private disposed = false
  /** Why the last fetch failed (for reasons and tests); undefined after a success. */
  lastError: string | undefined
  /**
   * Keys the last successful fetch left out and why (a key carrying private members, an
   * encryption key, an unsupported type, ...), without any key material; empty when none.
   */
  skippedKeys: readonly string[] = []
  /** Number of fetches started (JWKS and discovery), for tests and metrics. */
  fetches = 0

  constructor(
    private readonly source: RemoteSource,
    private readonly fetch: typeof globalThis.fetch,
    private readonly now: () => number,
    private readonly settings: RemoteSettings,
    private readonly algorithms: ReadonlySet<string>,
  ) {}

  /** True while a fetch is in flight. */
  get refreshing(): boolean {
    return this.inflight !== undefined
  }

  /** The set to verify with right now, without waiting; undefined when none is usable. */
  peek(now: number): KeySet | undefined {
    if (this.current === undefined || now >= this.usableUntil) return undefined
    if (now >= this.freshUntil) this.refreshInBackground(now)
    return this.current
  }

  /**
   * The set to verify with: fresh or stale-but-usable at once (a stale one triggers a background
   * refresh), otherwise after one fetch. Undefined when no usable set can be had.
   */
  async keys(): Promise<KeySet | undefined> {
    const now = this.now()
    const set = this.peek(now)
    if (set !== undefined) return set
    if (this.inflight !== undefined || now >= this.nextAttemptAt) await this.refresh()
    return this.peek(this.now())
  }

  /**
   * A token named a `kid` the set lacks: refetch once, unless a refetch for that reason happened
   * within the cooldown. Returns the set after the refetch, or undefined when none was allowed.
   */
  async refetchForUnknownKid(): Promise<KeySet | undefined> {
    const now = this.now()
    if (now - this.lastKidRefetch < this.settings.unknownKidCooldownSeconds * 1000) return undefined
    this.lastKidRefetch = now
    await this.refresh()
    return this.peek(this.now())
  }

  /** Fetch now, joining a fetch already in flight. Never rejects. */
  refresh(): Promise<void> {
    this.inflight ??= this.load().finally(() => {
      this.inflight = undefined
    })
    return this.inflight
  }

  dispose(): void {
    this.disposed = true
  }

  private refreshInBackground(now: number): void {
    if (this.inflight !== undefined || now < this.nextAttemptAt || this.disposed) return
    void this.refresh()
  }

  private async get(url: string): Promise<Response> {
    this.fetches++
    return this.fetch(url, {
      signal: AbortSignal.timeout(this.settings.timeoutMs),
      headers: { accept: 'application/json' },
      // A redirect would take the keys from a URL that never passed urlProblem (plain http, another
      // host): a 3xx answer is a failed fetch.
      redirect: 'manual',
    })
  }

  private async getJson(url: string): Promise<{ value: unknown; res: Response }> {
    const res = await this.get(url)
    if (!res.ok) {
      await res.body?.cancel().catch(() => {})
      const redirect = res.status >= 300 && res.status < 400 ? ' (redirects are not followed)' : ''
      throw new Error(`GET ${url} answered ${res.status}${redirect}`)
    }
    const text = await readText(res, this.settings.maxBytes)
    try {
      return { value: JSON.parse(text), res }
    } catch {
      throw new Error(`GET ${url} did not answer JSON`)
    }
  }

  private async resolveUrl(): Promise<string> {
    if ('url' in this.source) return this.source.url
    if (this.jwksUri !== undefined && this.now() < this.jwksUriUntil) return this.jwksUri
    const issuer = this.source.discovery
    const { value } = await this.getJson(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`)
    const doc = value as Record<string, unknown> | null
    if (typeof doc !== 'object' || doc === null || typeof doc.jwks_uri !== 'string')
      throw new Error('discovery document has no "jwks_uri"')
    // OIDC Discovery §4.3: the document must name the issuer it was fetched for.
    if (doc.issuer !== issuer) throw new Error('discovery document names a different issuer')
    const bad = urlProblem(doc.jwks_uri, this.settings.allowInsecureHttp)
    if (bad !== null) throw new Error(`discovery "jwks_uri" ${bad}`)
    this.jwksUri = doc.jwks_uri
    this.jwksUriUntil = this.now() + this.settings.maxTtlSeconds * 1000
    return doc.jwks_uri
  }

  private async load(): Promise<void> {
    const s = this.settings
    try {
      const url = await this.resolveUrl()
      const { value, res } = await this.getJson(url)
      const built = await buildKeySet(value, this.algorithms, false)
      if (!built.ok) throw new Error(`malformed JWKS: ${built.error}`)
      this.skippedKeys = built.skipped
      const maxAge = cacheControlMaxAge(res.headers.get('cache-control')) ?? s.defaultTtlSeconds
      const ttl = Math.min(s.maxTtlSeconds, Math.max(s.minTtlSeconds, maxAge))
      const now = this.now()
      // Same keys as before: keep the old object, so verified tokens cached against it stay valid.
      if (this.current === undefined || this.current.fingerprint !== built.set.fingerprint)
        this.current = built.set
      this.freshUntil = now + ttl * 1000
      this.usableUntil = this.freshUntil + s.maxStaleSeconds * 1000
      this.nextAttemptAt = 0
      this.lastError = undefined
    } catch (e) {
      const err = e as Error
      this.lastError = err.name === 'TimeoutError' ? `timed out after ${s.timeoutMs} ms` : err.message
      this.nextAttemptAt = this.now() + s.retrySeconds * 1000
      // A failed discovery may mean the jwks_uri moved: look it up again next time.
      this.jwksUriUntil = 0
    }
  }
}
