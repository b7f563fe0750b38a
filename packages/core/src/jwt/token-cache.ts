/**
 * A bounded cache of verified tokens. A hit skips the signature check; entries leave at the token's
 * expiry, when the provider's key set changes, or when the cache is full (least recently used
 * first, approximated CLOCK-style so that a hit writes nothing to the map).
 */

/** One verified token. `keySet` is the set it verified against, compared by identity on a hit. */
export interface CacheEntry<P, K, V> {
  readonly provider: P
  readonly keySet: K
  readonly notBeforeMs: number
  readonly expiresAtMs: number
  readonly value: V
}

interface Slot<P, K, V> extends CacheEntry<P, K, V> {
  /** The exact token: a hit requires equality with it. */
  readonly token: string
  /** Set on a hit; eviction gives a used entry a second chance instead of removing it. */
  used: boolean
}

/**
 * Map key: a 32-bit number from the token's length and its last 16 characters, inside its
 * signature, which is effectively random. Hashing a whole token costs about a microsecond, and
 * even a slice of it as a string key costs more than these 16 reads; a collision only replaces an
 * entry (or misses), because a hit also compares the exact token.
 */
function slotKey(token: string): number {
  const n = token.length
  let h = n
  for (let i = Math.max(0, n - 16); i < n; i++) h = (Math.imul(h, 31) + token.charCodeAt(i)) | 0
  return h
}

export class TokenCache<P, K, V> {
  private readonly map = new Map<number, Slot<P, K, V>>()

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.map.size
  }

  /** The entry for exactly `token` if still valid at `nowMs` against `currentKeySet(provider)`. */
  get(
    token: string,
    nowMs: number,
    currentKeySet: (provider: P, nowMs: number) => K | undefined,
  ): CacheEntry<P, K, V> | undefined {
    const key = slotKey(token)
    const e = this.map.get(key)
    if (e === undefined || e.token !== token) return undefined
    if (nowMs >= e.expiresAtMs || currentKeySet(e.provider, nowMs) !== e.keySet) {
      this.map.delete(key)
      return undefined
    }
    if (nowMs < e.notBeforeMs) return undefined
    e.used = true
    return e
  }

  set(token: string, entry: CacheEntry<P, K, V>): void {
    if (this.maxEntries === 0) return
    const key = slotKey(token)
    this.map.delete(key)
    this.map.set(key, { ...entry, token, used: false })
    while (this.map.size > this.maxEntries) this.evictOne()
  }

  clear(): void {
    this.map.clear()
  }

  /** Remove the oldest entry not used since it was last passed over (terminates: flags are cleared). */
  private evictOne(): void {
    for (const [key, e] of this.map) {
      this.map.delete(key)
      if (!e.used) return
      e.used = false
      this.map.set(key, e)
    }
  }
}
