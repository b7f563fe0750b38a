/** The limits a CEL expression is held to, when it loads and when it runs. */

/** Load-time and run-time limits of CEL expressions. */
export interface CelLimits {
  /** Longest expression accepted, in UTF-16 code units (default 16,384). */
  readonly maxExpressionLength: number
  /** Deepest syntax tree accepted (default 64). */
  readonly maxDepth: number
  /** Most comprehensions (`all`, `exists`, `map`, ...) nested inside each other (default 3). */
  readonly maxComprehensionDepth: number
  /** Most input elements one evaluation may iterate over, summed over comprehensions (default 1,000,000). */
  readonly maxIterations: number
  /** Compiled regular expressions kept (default 256). */
  readonly regexCacheSize: number
  /** Longest regular expression accepted (default 1,024). */
  readonly maxRegexLength: number
  /** Longest text a regular expression is run on (default 262,144 characters). */
  readonly maxRegexTextLength: number
}

export const DEFAULT_CEL_LIMITS: CelLimits = Object.freeze({
  maxExpressionLength: 16_384,
  maxDepth: 64,
  maxComprehensionDepth: 3,
  maxIterations: 1_000_000,
  regexCacheSize: 256,
  maxRegexLength: 1_024,
  maxRegexTextLength: 262_144,
})
