/**
 * agentgateway's `regexReplace`: the first (leftmost-first) match of an RE2 pattern replaced, with
 * Rust regex's replacement syntax (`$1`, `${1}`, `$name`, `${name}`, `$$`).
 *
 * `@bufbuild/re2` compiles RE2 programs but only answers whether a text matches, so the match and
 * its groups are found here by running its compiled program on a Pike VM (Thompson's simulation
 * with capture slots, as RE2 and Go's regexp do): linear in the text, every thread in priority
 * order, so the result is Perl's leftmost-first match.
 */
import { RE2JS } from '@bufbuild/re2'

/** What this file reads of `@bufbuild/re2`'s compiled program (`RE2JS#re2().prog`). */
interface Inst {
  readonly op: number
  readonly out: number
  readonly arg: number
  matchRune(r: number): boolean
}
interface Prog {
  readonly inst: readonly Inst[]
  readonly start: number
  readonly numCap: number
}

// Instruction codes and empty-width flags of @bufbuild/re2 (its Inst and Utils modules, as RE2).
const ALT = 1
const ALT_MATCH = 2
const CAPTURE = 3
const EMPTY_WIDTH = 4
const MATCH = 6
const NOP = 7
const RUNE = 8
const RUNE_ANY_NOT_NL = 11
const BEGIN_LINE = 1
const END_LINE = 2
const BEGIN_TEXT = 4
const END_TEXT = 8
const WORD_BOUNDARY = 16
const NO_WORD_BOUNDARY = 32

const isWord = (r: number): boolean =>
  (r >= 48 && r <= 57) || (r >= 65 && r <= 90) || (r >= 97 && r <= 122) || r === 95

function context(before: number, after: number): number {
  let op = 0
  if (before < 0) op |= BEGIN_TEXT | BEGIN_LINE
  if (before === 10) op |= BEGIN_LINE
  if (after < 0) op |= END_TEXT | END_LINE
  if (after === 10) op |= END_LINE
  op |= isWord(before) !== isWord(after) ? WORD_BOUNDARY : NO_WORD_BOUNDARY
  return op
}

interface Thread {
  readonly pc: number
  readonly caps: number[]
}

/**
 * The capture positions (UTF-16 offsets, -1 when a group did not take part) of the leftmost-first
 * match of `prog` in `text`, or undefined.
 */
function pikeMatch(prog: Prog, text: string): number[] | undefined {
  const ncap = Math.max(2, prog.numCap)
  let current: Thread[] = []
  let next: Thread[] = []
  let onList = new Set<number>()
  let matched: number[] | undefined
  const add = (list: Thread[], seen: Set<number>, pc: number, caps: number[], pos: number, ctx: number) => {
    if (seen.has(pc)) return
    seen.add(pc)
    const inst = prog.inst[pc]!
    switch (inst.op) {
      case ALT:
      case ALT_MATCH:
        add(list, seen, inst.out, caps, pos, ctx)
        add(list, seen, inst.arg, caps, pos, ctx)
        return
      case NOP:
        add(list, seen, inst.out, caps, pos, ctx)
        return
      case CAPTURE: {
        if (inst.arg < ncap) {
          const copy = caps.slice()
          copy[inst.arg] = pos
          add(list, seen, inst.out, copy, pos, ctx)
        } else add(list, seen, inst.out, caps, pos, ctx)
        return
      }
      case EMPTY_WIDTH:
        if ((inst.arg & ~ctx) === 0) add(list, seen, inst.out, caps, pos, ctx)
        return
      default:
        list.push({ pc, caps })
    }
  }
  let before = -1
  for (let pos = 0; ; ) {
    const after = pos < text.length ? text.codePointAt(pos)! : -1
    const width = after > 0xffff ? 2 : 1
    const ctx = context(before, after)
    if (matched === undefined) {
      // A new thread starting here, with the lowest priority (leftmost wins).
      // Group 0 starts here (the compiled program has no instruction for it).
      const caps = new Array<number>(ncap).fill(-1)
      caps[0] = pos
      add(current, onList, prog.start, caps, pos, ctx)
    }
    next = []
    const nextSeen = new Set<number>()
    const afterNext = pos + width < text.length ? text.codePointAt(pos + width)! : -1
    const nextCtx = context(after, afterNext)
    for (const t of current) {
      const inst = prog.inst[t.pc]!
      if (inst.op === MATCH) {
        const caps = t.caps.slice()
        caps[1] = pos
        matched = caps
        // Lower-priority threads cannot win any more.
        break
      }
      if (after >= 0 && inst.op >= RUNE && inst.op <= RUNE_ANY_NOT_NL && inst.matchRune(after)) {
        add(next, nextSeen, inst.out, t.caps, pos + width, nextCtx)
      }
    }
    if (after < 0 || (next.length === 0 && matched !== undefined)) break
    ;[current, next] = [next, current]
    onList = nextSeen
    before = after
    pos += width
  }
  return matched
}

/** Rust regex's replacement syntax, expanded for one match. */
function expand(
  template: string,
  text: string,
  caps: readonly number[],
  names: ReadonlyMap<string, number>,
): string {
  const group = (ref: string): string => {
    const n = /^\d+$/.test(ref) ? Number(ref) : names.get(ref)
    if (n === undefined || 2 * n + 1 >= caps.length) return ''
    const start = caps[2 * n]!
    const end = caps[2 * n + 1]!
    return start < 0 || end < 0 ? '' : text.slice(start, end)
  }
  return template.replace(
    /\$(\$|\{([^}]*)\}|[_0-9A-Za-z]+)/g,
    (_all, ref: string, braced: string | undefined) => {
      if (ref === '$') return '$'
      if (braced !== undefined) return group(braced)
      return group(ref)
    },
  )
}

const CACHE_MAX = 256
const cache = new Map<string, { prog: Prog; names: ReadonlyMap<string, number> }>()

/** The longest pattern and text `regexReplace` takes (as `matches` by default). */
const MAX_REPLACE_PATTERN = 1_024
const MAX_REPLACE_TEXT = 262_144

function compile(pattern: string): { prog: Prog; names: ReadonlyMap<string, number> } {
  const hit = cache.get(pattern)
  if (hit !== undefined) return hit
  if (pattern.length > MAX_REPLACE_PATTERN) {
    throw new Error(`regular expression longer than ${MAX_REPLACE_PATTERN} characters`)
  }
  let re: RE2JS
  try {
    re = RE2JS.compile(pattern)
  } catch (err) {
    throw new Error(`'${pattern.slice(0, 64)}' not a valid regex: ${(err as Error).message}`)
  }
  const compiled = { prog: (re.re2() as unknown as { prog: Prog }).prog, names: re.namedGroups() }
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string)
  cache.set(pattern, compiled)
  return compiled
}

/** `text` with the first match of `pattern` replaced by `replacement` (groups expanded). */
export function regexReplace(text: string, pattern: string, replacement: string): string {
  const { prog, names } = compile(pattern)
  if (text.length > MAX_REPLACE_TEXT) {
    throw new Error(`text longer than ${MAX_REPLACE_TEXT} characters for a regular expression`)
  }
  const caps = pikeMatch(prog, text)
  if (caps === undefined) return text
  return text.slice(0, caps[0]) + expand(replacement, text, caps, names) + text.slice(caps[1])
}
