/**
 * A seeded pseudo-random source for generated test inputs: the same seed gives the same sequence,
 * so a failing generated case can be run again.
 */
export interface SeededRandom {
  /** The next number in [0, 1). */
  next(): number
  /** One element of a non-empty list. */
  pick<T>(xs: readonly T[]): T
}

/**
 * A linear congruential generator (Numerical Recipes constants): fast and reproducible, not
 * for anything secret.
 *
 * @example
 * ```ts
 * const { next, pick } = createSeededRandom(42)
 * const method = pick(['GET', 'POST'])
 * ```
 */
export function createSeededRandom(seed: number): SeededRandom {
  let s = seed >>> 0
  const next = (): number => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 2 ** 32
  }
  return { next, pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T }
}
