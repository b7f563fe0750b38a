/**
 * Scanning JSON-RPC bodies for smuggling: one pass over the text that finds guarded keys repeated
 * in an object (in any spelling), keys that fold to a guarded one, and structural equality of
 * values, all bounded in depth.
 */
export type Obj = Record<string, unknown>

export function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Keys whose duplicates (exact or differing only in case) are a smuggling vector; each has the bit
 * `1 << index` in the per-object mask of keys seen.
 */
const GUARDED = ['jsonrpc', 'method', 'id', 'params', 'name', 'arguments', 'uri']

/** The keys that make an object JSON-RPC (see `isRpcObject`). */
const RPC_KEY_BITS = (1 << GUARDED.indexOf('jsonrpc')) | (1 << GUARDED.indexOf('method'))

/** Guarded keys by length, with their bits. */
const GUARDED_BY_LENGTH: Array<Array<readonly [string, number]> | undefined> = []
for (const [i, k] of GUARDED.entries()) {
  const same = GUARDED_BY_LENGTH[k.length] ?? []
  same.push([k, 1 << i])
  GUARDED_BY_LENGTH[k.length] = same
}

const GUARDED_MIN = Math.min(...GUARDED.map((k) => k.length))

/** The longest raw spelling of a guarded key: every character escaped as `\uXXXX`. */
const GUARDED_MAX_RAW = 6 * Math.max(...GUARDED.map((k) => k.length))

function hasBackslash(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (text.charCodeAt(i) === 92) return true
  return false
}

/**
 * The bit of the guarded key that `text[start, end)` (unescaped) is a case variant of, or 0, with
 * the folding lenient JSON decoders apply (Go's encoding/json matches field names with Unicode
 * simple folding: the long s `ſ` folds to `s`, the Kelvin sign to `k`). Only A-Z and the Kelvin
 * sign lower-case to ASCII letters (checked over all of Unicode in mcp-call.test.ts), and each is
 * one UTF-16 unit, so a variant has its key's length. Compared in place: nothing is sliced.
 */
function guardedBit(text: string, start = 0, end = text.length): number {
  const candidates = GUARDED_BY_LENGTH[end - start]
  if (candidates === undefined) return 0
  next: for (const [key, bit] of candidates) {
    for (let i = 0; i < key.length; i++) {
      let c = text.charCodeAt(start + i)
      if (c >= 65 && c <= 90) c += 32
      else if (c === 0x212a) c = 107
      else if (c === 0x17f) c = 115
      if (c !== key.charCodeAt(i)) continue next
    }
    return bit
  }
  return 0
}

/** What one pass over JSON text found. */
interface JsonScan {
  /** The first guarded key repeated in one object (exactly or as a case variant). */
  readonly duplicate: string | undefined
  /** True when objects and arrays nest deeper than the limit. */
  readonly tooDeep: boolean
  /**
   * True when a number literal may overflow a double: one with an exponent, or 309 digits in a
   * row (`-1e400` parses to -Infinity). Numbers only occur outside strings, where the scan reads
   * every character anyway.
   */
  readonly hugeNumber: boolean
}

/** Digits in a row from which a number literal may overflow a double (10^308 is near the largest). */
const OVERFLOW_DIGITS = 309

/**
 * One linear, iterative pass over JSON text: nesting depth and repeated guarded keys in any
 * object, compared case-insensitively. String contents are skipped with `indexOf`, so long
 * argument values cost little. Never recurses, whatever the nesting; safe on invalid JSON.
 */
export function scanJson(text: string, maxDepth: number): JsonScan {
  // Per open bracket: -1 for an array; for an object, the bits of the guarded keys seen in it.
  const stack: number[] = []
  let duplicate: string | undefined
  let i = 0
  const n = text.length
  // Expecting a key right after `{` or `,` inside an object.
  let expectKey = false
  // Most bodies have no escape at all: one search spares looking for one in every key.
  const escapes = text.indexOf('\\') !== -1
  let hugeNumber = false
  let digits = 0
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      let j = i + 1
      for (;;) {
        const q = text.indexOf('"', j)
        if (q === -1) {
          j = n
          break
        }
        let b = q - 1
        while (b > i && text.charCodeAt(b) === 92) b--
        // An even number of backslashes before the quote: it closes the string.
        if ((q - 1 - b) % 2 === 0) {
          j = q
          break
        }
        j = q + 1
      }
      const depth = stack.length - 1
      const raw = j - i - 1
      // Keys too short or too long to spell a guarded key, even escaped, are not looked at.
      if (expectKey && depth >= 0 && stack[depth] !== -1 && raw >= GUARDED_MIN && raw <= GUARDED_MAX_RAW) {
        let bit = 0
        let key: string | undefined
        if (!escapes || !hasBackslash(text, i + 1, j)) bit = guardedBit(text, i + 1, j)
        else {
          // Escapes: decode, then fold as a decoder would.
          key = text.slice(i + 1, j)
          try {
            key = JSON.parse(text.slice(i, j + 1)) as string
          } catch {
            duplicate ??= key
          }
          bit = guardedBit(key)
        }
        if (bit !== 0) {
          const seen = stack[depth]!
          if ((seen & bit) !== 0) duplicate ??= key ?? text.slice(i + 1, j)
          stack[depth] = seen | bit
        }
      }
      expectKey = false
      digits = 0
      i = j + 1
      continue
    }
    if (c >= 48 && c <= 57) {
      if (++digits >= OVERFLOW_DIGITS) hugeNumber = true
      i++
      continue
    }
    if (c === 123) {
      stack.push(0)
      if (stack.length > maxDepth) return { duplicate, tooDeep: true, hugeNumber }
      expectKey = true
    } else if (c === 91) {
      stack.push(-1)
      if (stack.length > maxDepth) return { duplicate, tooDeep: true, hugeNumber }
    } else if (c === 125 || c === 93) {
      stack.pop()
      expectKey = false
    } else if (c === 44) {
      expectKey = stack.length > 0 && stack[stack.length - 1] !== -1
    } else if ((c === 101 || c === 69) && (digits > 0 || text.charCodeAt(i - 1) === 46)) {
      // An exponent: `e` or `E` after a digit or a `.`.
      hugeNumber = true
    }
    digits = 0
    i++
  }
  return { duplicate, tooDeep: false, hugeNumber }
}

/** The first guarded key (`jsonrpc`, `method`, `id`, `params`, `name`, `arguments`, `uri`) repeated in one object, in any case. */
export function findDuplicateGuardedKey(text: string): string | undefined {
  return scanJson(text, Number.POSITIVE_INFINITY).duplicate
}

/** A key that may fold to another: an ASCII capital or any non-ASCII character. */
const FOLDABLE = /[A-Z\u0080-\uffff]/

/** How deep argument objects are searched for case variants (the body's depth is limited anyway). */
const MAX_FOLD_DEPTH = 64

/** A key as decoders that match names case-insensitively see it (Go's EqualFold, .NET's web defaults). */
const folded = (k: string): string => {
  const lower = k.toLowerCase()
  return lower.indexOf('\u017f') === -1 ? lower : lower.replaceAll('\u017f', 's')
}

/**
 * The first key of an object in `v` (`v` itself or nested) that another key of the same object
 * equals once case-folded: `{"repoName": "ok", "RepoName": "evil"}`. A policy reads the exact key;
 * a server decoding into a struct case-insensitively takes the last of them.
 */
export function caseVariantKey(v: unknown, depth: number): string | undefined {
  if (typeof v !== 'object' || v === null || depth > MAX_FOLD_DEPTH) return undefined
  if (Array.isArray(v)) {
    for (const x of v) {
      if (typeof x !== 'object' || x === null) continue
      const k = caseVariantKey(x, depth + 1)
      if (k !== undefined) return k
    }
    return undefined
  }
  const o = v as Obj
  // Two keys fold alike when one of them is already folded (then the other finds it in `o`), or
  // when neither is (then the second finds the first's folded form among those seen).
  let first: string | undefined
  let more: Set<string> | undefined
  for (const k of Object.keys(o)) {
    const x = o[k]
    if (typeof x === 'object' && x !== null) {
      const nested = caseVariantKey(x, depth + 1)
      if (nested !== undefined) return nested
    }
    if (!FOLDABLE.test(k)) continue
    const f = folded(k)
    if (f === k) continue
    if (Object.hasOwn(o, f)) return k
    if (first === undefined) first = f
    else if (f === first || more?.has(f)) return k
    else {
      more ??= new Set()
      more.add(f)
    }
  }
  return undefined
}

/** An object with a `jsonrpc` or `method` key in any case variant. */
function isRpcObject(v: unknown): boolean {
  if (!isObject(v)) return false
  for (const k of Object.keys(v)) if ((guardedBit(k) & RPC_KEY_BITS) !== 0) return true
  return false
}

/**
 * A JSON-RPC message or batch (an empty array counts: it is an empty batch), also nested in
 * arrays: `[[{...tools/call...}]]` is a (refused) nested batch, not some other JSON that the
 * other rules may let through to a server that flattens it.
 */
export function isRpcBody(v: unknown): boolean {
  if (Array.isArray(v)) return v.length === 0 || v.some(isRpcBody)
  return isRpcObject(v)
}

/** Structural equality of two JSON values, bounded in depth (deeper counts as different). */
export function jsonEqual(a: unknown, b: unknown, depth = 0): boolean {
  if (a === b) return true
  if (depth > 200 || typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  for (const k of ka) {
    if (!Object.hasOwn(b, k)) return false
    if (!jsonEqual((a as Obj)[k], (b as Obj)[k], depth + 1)) return false
  }
  return true
}
