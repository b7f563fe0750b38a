/**
 * A bounded LRU of verified tokens. A hit skips the signature check; entries leave at the token's
 * expiry, when the provider's key set changes, or when the cache is full (least recently used).
 */

/** One verified token. `keySet` is the set it verified against, compared by identity on a hit. */
export interface CacheEntry<P, K, V> {
  readonly provider: P
  readonly keySet: K
  readonly notBeforeMs: number
  readonly expiresAtMs: number
  readonly value: V
}

/** A Map keeps insertion order; re-inserting on a hit makes the first key the least recently used. */
export class TokenCache<P, K, V> {
  private readonly map = new Map<string, CacheEntry<P, K, V>>()

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.map.size
  }

  /** The entry for `token` if still valid at `nowMs` against `currentKeySet(provider)`. */
  get(
    token: string,
    nowMs: number,
    currentKeySet: (provider: P, nowMs: number) => K | undefined,
  ): CacheEntry<P, K, V> | undefined {
    const e = this.map.get(token)
    if (e === undefined) return undefined
    if (nowMs >= e.expiresAtMs || currentKeySet(e.provider, nowMs) !== e.keySet) {
      this.map.delete(token)
      return undefined
    }
    if (nowMs < e.notBeforeMs) return undefined
    this.map.delete(token)
    this.map.set(token, e)
    return e
  }

  set(token: string, entry: CacheEntry<P, K, V>): void {
    if (this.maxEntries === 0) return
    this.map.delete(token)
    this.map.set(token, entry)
    if (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next()
      if (!oldest.done) this.map.delete(oldest.value)
    }
  }

  clear(): void {
    this.map.clear()
  }
}
