/**
 * Values as a Go template sees them (`template.ts`): truth, fmt's printing, JSON numbers as
 * json.Number, comparison, and the builtin functions (`len`, `index`, `printf`, `html`, ...).
 */
import { compareUtf8, fromUtf8, utf8 } from './bytes.js'
import { goJson, isObj, isStr } from './scope.js'
import { GoString, goSprintf } from './sdk.js'
import { fail } from './template-parse.js'

/** A JSON number as a template sees it: Go's json.Number, a string kind holding the number's text. */
class Num {
  constructor(readonly text: string) {}
}
const NO_VALUE = Symbol('no value')

export function truth(v: unknown): boolean {
  if (v === null || v === undefined || v === NO_VALUE) return false
  if (v instanceof Num) return true
  if (typeof v === 'number') return v !== 0
  if (typeof v === 'boolean') return v
  if (typeof v === 'string') return v !== ''
  if (Array.isArray(v)) return v.length > 0
  if (isObj(v)) return Object.keys(v).length > 0
  return true
}

/** A value as fmt's %v writes it. */
export function show(v: unknown, top = true): string {
  if (v === NO_VALUE) return '<no value>'
  if (v === null || v === undefined) return top ? '<no value>' : '<nil>'
  if (v instanceof Num) return v.text
  if (typeof v === 'string') return v
  if (typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) return `[${v.map((x) => show(x, false)).join(' ')}]`
  if (isObj(v))
    return `map[${Object.keys(v)
      .sort(compareUtf8)
      .map((k) => `${k}:${show(v[k], false)}`)
      .join(' ')}]`
  return String(v)
}

/** JSON from the host: numbers become Go's json.Number. */
export function fromJson(v: unknown): unknown {
  if (typeof v === 'number') return new Num(goJson(v))
  if (Array.isArray(v)) return v.map(fromJson)
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromJson(x)]))
  return v
}

type Kind = 'bool' | 'string' | 'int' | 'float' | 'other'
function kind(v: unknown): Kind {
  if (typeof v === 'boolean') return 'bool'
  if (typeof v === 'string' || v instanceof Num) return 'string'
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float'
  return 'other'
}
const text = (v: unknown) => (v instanceof Num ? v.text : v)

function compare(a: unknown, b: unknown): number {
  const [ka, kb] = [kind(a), kind(b)]
  if (ka !== kb || ka === 'other') fail('incompatible types for comparison')
  if (ka === 'string') return compareUtf8(text(a) as string, text(b) as string)
  return Number(a) - Number(b)
}

function goHtml(s: string): string {
  return s.replace(
    /[&'<>"\0]/g,
    (c) => ({ '&': '&amp;', "'": '&#39;', '<': '&lt;', '>': '&gt;', '"': '&#34;', '\0': '\uFFFD' })[c]!,
  )
}

function goJs(s: string): string {
  let out = ''
  for (const ch of s) {
    const c = ch.codePointAt(0)!
    if (ch === '\\') out += '\\\\'
    else if (ch === "'") out += "\\'"
    else if (ch === '"') out += '\\"'
    else if (ch === '<') out += '\\u003C'
    else if (ch === '>') out += '\\u003E'
    else if (ch === '&') out += '\\u0026'
    else if (ch === '=') out += '\\u003D'
    else if (c < 0x20) out += `\\u${c.toString(16).toUpperCase().padStart(4, '0')}`
    else out += ch
  }
  return out
}

const evalArgs = (args: unknown[]) => args.map((a) => show(a, false))

/** fmt.Sprint: spaces only between operands when neither is a string. */
function sprint(args: unknown[]): string {
  let out = ''
  args.forEach((a, i) => {
    const isString = typeof a === 'string' || a instanceof Num
    const prevString = i > 0 && (typeof args[i - 1] === 'string' || args[i - 1] instanceof Num)
    if (i > 0 && !isString && !prevString) out += ' '
    out += show(a, false)
  })
  return out
}

export const FUNCS: Record<string, (args: unknown[]) => unknown> = {
  not: (a) => (a.length === 1 ? !truth(a[0]) : fail('not: one argument')),
  len: ([x]) => {
    const v = text(x)
    if (typeof v === 'string') return utf8(v).length
    if (Array.isArray(v)) return v.length
    if (isObj(v)) return Object.keys(v).length
    return fail('len of a non-collection')
  },
  index: ([x, ...keys]) => {
    let v = x
    for (const k of keys) {
      if (Array.isArray(v)) {
        const i = k instanceof Num ? Number(k.text) : typeof k === 'number' ? k : fail('index type')
        if (!Number.isInteger(i) || i < 0 || i >= v.length) fail('index out of range')
        v = v[i as number]
      } else if (isObj(v)) v = isStr(k) ? (Object.hasOwn(v, k) ? v[k] : null) : fail('index type')
      else fail('index of a non-collection')
    }
    return v
  },
  print: (a) => sprint(a),
  println: (a) => `${evalArgs(a).join(' ')}\n`,
  printf: ([f, ...a]) =>
    isStr(f)
      ? goSprintf(
          f,
          a.map((x) => (x instanceof Num ? new GoString(x.text, 'json.Number') : x)),
        )
      : fail('printf format'),
  slice: ([x, ...idx]) => {
    if (idx.length > 3 || !idx.every((i) => typeof i === 'number' && Number.isInteger(i) && i >= 0))
      fail('slice: bad indexes')
    const v = text(x)
    const seq = typeof v === 'string' ? utf8(v) : Array.isArray(v) ? v : fail('slice of a non-sequence')
    if (typeof v === 'string' && idx.length === 3) fail('slice: 3-index slice of a string')
    const [i = 0, j = seq.length, k = seq.length] = idx as number[]
    if (!(i <= j && j <= k && k <= seq.length)) fail('slice: index out of range')
    return typeof v === 'string'
      ? fromUtf8((seq as Uint8Array).subarray(i, j))
      : (seq as unknown[]).slice(i, j)
  },
  html: (a) => goHtml(sprint(a)),
  js: (a) => goJs(sprint(a)),
  urlquery: (a) =>
    encodeURIComponent(sprint(a))
      .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
      .replace(/%20/g, '+'),
  eq: ([a, ...bs]) => (bs.length === 0 ? fail('eq: missing argument') : bs.some((b) => compare(a, b) === 0)),
  ne: ([a, b]) => compare(a, b) !== 0,
  lt: ([a, b]) => compare(a, b) < 0,
  le: ([a, b]) => compare(a, b) <= 0,
  gt: ([a, b]) => compare(a, b) > 0,
  ge: ([a, b]) => compare(a, b) >= 0,
}
