/**
 * `regex.globs_match`: whether two glob-like patterns (literal characters, `.`, `[...]` sets with
 * ranges, each optionally followed by `*` or `+`; `\` escapes) match a common non-empty string, by
 * the token-matching walk of the library OPA uses (yashtewari/glob-intersection), so the answers,
 * including its approximations, are OPA's. No JavaScript library implements this walk.
 */
import type { RegoBuiltin } from '../rego-policy.js'
import { isStr } from './scope.js'

type Flag = '' | '+' | '*'
interface Token {
  readonly kind: 'char' | 'dot' | 'set'
  /** The character, or the set's characters (code points). */
  readonly chars: ReadonlySet<number>
  flag: Flag
}

class GlobError extends Error {}

/** The characters of a pattern, each with whether it was escaped. */
function runes(s: string): Array<[number, boolean]> {
  const cps = [...s].map((c) => c.codePointAt(0)!)
  const out: Array<[number, boolean]> = []
  for (let i = 0; i < cps.length; i++) {
    if (cps[i] === 0x5c) {
      if (i === cps.length - 1) throw new GlobError('input ends with an escape')
      out.push([cps[++i]!, true])
    } else out.push([cps[i]!, false])
  }
  return out
}

const ch = (c: string) => c.codePointAt(0)!

function tokenize(pattern: string): Token[] {
  const rs = runes(pattern)
  const out: Token[] = []
  let i = 0
  while (i < rs.length) {
    const [r, escaped] = rs[i++]!
    let t: Token
    if (!escaped && r === ch('.')) t = { kind: 'dot', chars: new Set(), flag: '' }
    else if (!escaped && r === ch(']')) throw new GlobError("']' without '['")
    else if (!escaped && (r === ch('*') || r === ch('+'))) throw new GlobError('flag without a token')
    else if (!escaped && r === ch('[')) {
      const set = new Set<number>()
      let prev: number | undefined
      let complete = false
      while (i < rs.length && !complete) {
        const [x, esc] = rs[i++]!
        if (!esc && x === ch('-')) {
          if (prev === undefined) throw new GlobError("'-' without a start")
          if (i >= rs.length) throw new GlobError("'-' without an end")
          const [end, endEsc] = rs[i++]!
          if (!endEsc && (end === ch(']') || end === ch('-'))) throw new GlobError("'-' before a symbol")
          if (end < prev) throw new GlobError('range out of order')
          for (let c = prev; c <= end; c++) set.add(c)
          prev = undefined
        } else if (!esc && x === ch(']')) complete = true
        else {
          set.add(x)
          prev = x
        }
      }
      if (!complete) throw new GlobError("'[' without ']'")
      t = { kind: 'set', chars: set, flag: '' }
    } else t = { kind: 'char', chars: new Set([r]), flag: '' }
    const next = rs[i]
    if (next !== undefined && !next[1] && (next[0] === ch('*') || next[0] === ch('+'))) {
      t.flag = next[0] === ch('*') ? '*' : '+'
      i++
    }
    out.push(t)
  }
  return out
}

function equal(a: Token, b: Token): boolean {
  return a.kind === b.kind && a.chars.size === b.chars.size && [...a.chars].every((c) => b.chars.has(c))
}

/** Adjacent equal flagged tokens merge (`t+t*` is `t+`). */
function simplify(ts: Token[]): Token[] {
  const out: Token[] = []
  for (const t of ts) {
    const last = out[out.length - 1]
    if (last !== undefined && t.flag !== '' && last.flag !== '' && equal(t, last))
      last.flag = t.flag === '+' || last.flag === '+' ? '+' : '*'
    else out.push(t)
  }
  return out
}

/** Token comparisons one call may make; past it the call is an error rather than a long walk. */
const BUDGET = 1_000_000
let steps = 0

function match(a: Token, b: Token): boolean {
  if (++steps > BUDGET) throw new GlobError('pattern too complex')
  if (a.kind === 'dot' || b.kind === 'dot') return true
  for (const c of a.chars) if (b.chars.has(c)) return true
  return false
}

/** Matching unflagged prefixes and suffixes removed (one of each kept), or undefined on a mismatch. */
function trim(g1: Token[], g2: Token[]): [Token[], Token[]] | undefined {
  let l = 0
  for (; l < g1.length && l < g2.length && g1[l]!.flag === '' && g2[l]!.flag === ''; l++)
    if (!match(g1[l]!, g2[l]!)) return undefined
  if (l > 0) l--
  let r1 = g1.length - 1
  let r2 = g2.length - 1
  for (; r1 >= 0 && r1 >= l && r2 >= 0 && r2 >= l && g1[r1]!.flag === '' && g2[r2]!.flag === ''; r1--, r2--)
    if (!match(g1[r1]!, g2[r2]!)) return undefined
  if (r1 < g1.length - 1) {
    r1++
    r2++
  }
  return [g1.slice(l, r1 + 1), g2.slice(l, r2 + 1)]
}

function normal(g1: Token[], g2: Token[]): boolean {
  let i = 0
  let j = 0
  for (; i < g1.length && j < g2.length; i++, j++) {
    if (g1[i]!.flag === '' && g2[j]!.flag === '') {
      if (!match(g1[i]!, g2[j]!)) return false
    } else return special(g1.slice(i), g2.slice(j))
  }
  return i === g1.length && j === g2.length
}

function special(g1: Token[], g2: Token[]): boolean {
  const [flagged, other] = g1[0]!.flag !== '' ? [g1, g2] : [g2, g1]
  return flagged[0]!.flag === '+' ? plus(flagged, other) : star(flagged, other)
}

function plus(plussed: Token[], other: Token[]): boolean {
  if (other[0] === undefined || !match(plussed[0]!, other[0])) return false
  if (star(plussed, other.slice(1))) return true
  return other[0].flag !== '' && normal(plussed.slice(1), other)
}

function star(starred: Token[], other: Token[]): boolean {
  const starToken = starred[0]!
  const next = starred[1]
  for (let i = 0; i < other.length; i++) {
    const t = other[i]!
    if (next !== undefined && match(t, next)) {
      if (normal(starred.slice(1), other.slice(i))) return true
      if (!match(t, starToken)) return false
    } else if (!match(t, starToken)) return false
  }
  return next === undefined
}

function globsMatch(a: unknown, b: unknown): boolean | undefined {
  if (!isStr(a) || !isStr(b)) return undefined
  let g1: Token[]
  let g2: Token[]
  try {
    g1 = simplify(tokenize(a))
    g2 = simplify(tokenize(b))
  } catch (e) {
    if (e instanceof GlobError) return undefined
    throw e
  }
  steps = 0
  try {
    const t = trim(g1, g2)
    return t !== undefined && normal(t[0], t[1])
  } catch (e) {
    if (e instanceof GlobError) return undefined
    throw e
  }
}

export const globBuiltins: Record<string, RegoBuiltin> = {
  'regex.globs_match': globsMatch,
}
