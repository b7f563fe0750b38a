/**
 * Strings, encodings, URL queries, units, semver, UUIDs (parsing, and `uuid.rfc4122` / `rand.intn`
 * per decision), regex variants, `trace`.
 */
import type { RegoBuiltin } from '../rego-policy.js'
import { compareUtf8, fromHex, fromUtf8, randomBelow, toBase64, toHex, utf8 } from './bytes.js'
import { currentScope, isInt, isObj, isStr, type Obj, strings } from './scope.js'

/** Go's `regexp.QuoteMeta`. */
export function quoteMeta(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&')
}

const POSIX: Record<string, string> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7F',
  blank: '\\t ',
  cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-/:-@[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
}

/** A Go (RE2) pattern as a JavaScript RegExp, or undefined when it does not compile. */
export function goRegex(pattern: string, flags = ''): RegExp | undefined {
  // RE2 flag groups (?i) at the start are common; JS has no inline flags before Node 23.
  let p = pattern
  let f = `${flags}u`
  const m = /^\(\?([imsU]+)\)/.exec(p)
  if (m !== null) {
    if (m[1]!.includes('U')) return undefined
    p = p.slice(m[0].length)
    for (const c of m[1]!) if (!f.includes(c)) f += c
  }
  // RE2 named groups (?P<name>...) are JS (?<name>...); ASCII classes [[:alpha:]] are spelled out.
  p = p.replace(/\(\?P</g, '(?<').replace(/\[:(\^?)([a-z]+):\]/g, (all, neg: string, name: string) => {
    const set = POSIX[name]
    return set === undefined || neg !== '' ? all : set
  })
  try {
    return new RegExp(p, f)
  } catch {
    return undefined
  }
}

/** Go's FindAll: successive non-overlapping matches; an empty match next to the previous one is skipped. */
function goMatches(re: RegExp, s: string): RegExpExecArray[] {
  const out: RegExpExecArray[] = []
  let prevEnd = -1
  for (const m of s.matchAll(re)) {
    if (m[0] === '' && m.index === prevEnd) continue
    out.push(m as RegExpExecArray)
    prevEnd = m.index + m[0].length
  }
  return out
}

/** Go's `Regexp.Expand` template: `$1`, `${1}`, `$name`, `${name}`, `$$`. */
function expand(template: string, m: RegExpExecArray): string {
  return template.replace(/\$(\$|\{([A-Za-z0-9_]*)\}|([A-Za-z0-9_]+))?/g, (all, _x, braced, bare) => {
    if (all === '$$') return '$'
    const name: string | undefined = braced ?? bare
    if (name === undefined || name === '') return all === '$' ? '$' : ''
    if (/^[0-9]+$/.test(name)) return m[Number(name)] ?? ''
    return m.groups?.[name] ?? ''
  })
}

function hexDecode(s: string): string | undefined {
  const b = fromHex(s)
  return b === undefined ? undefined : fromUtf8(b)
}

/** Go's `url.QueryEscape`. */
function queryEscape(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+')
}

/** Go's `url.QueryUnescape`; undefined on a bad escape. */
function queryUnescape(s: string): string | undefined {
  if (/%(?![0-9a-fA-F]{2})/.test(s)) return undefined
  const bytes: number[] = []
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!
    if (c === '%') {
      bytes.push(Number.parseInt(s.slice(i + 1, i + 3), 16))
      i += 2
    } else if (c === '+') bytes.push(0x20)
    else bytes.push(...utf8(c))
  }
  return fromUtf8(Uint8Array.from(bytes))
}

const K = 1e3
const KI = 2 ** 10
/** `units.parse` factors, by unit after lowercasing all but its first letter (OPA's table). */
const UNITS: Record<string, number> = {
  '': 1,
  m: 0.001,
  k: K,
  K: K,
  ki: KI,
  Ki: KI,
  M: K ** 2,
  mi: KI ** 2,
  Mi: KI ** 2,
  ...Object.fromEntries(
    ['g', 't', 'p', 'e'].flatMap((u, i) => {
      const [si, bin] = [K ** (i + 3), KI ** (i + 3)]
      const U = u.toUpperCase()
      return [
        [u, si],
        [U, si],
        [`${u}i`, bin],
        [`${U}i`, bin],
      ]
    }),
  ),
}
/** `units.parse_bytes` factors, by lowercased unit. */
const BYTE_UNITS: Record<string, number> = {
  '': 1,
  ...Object.fromEntries(
    ['k', 'm', 'g', 't', 'p', 'e'].flatMap((u, i) => [
      [u, K ** (i + 1)],
      [`${u}b`, K ** (i + 1)],
      [`${u}i`, KI ** (i + 1)],
      [`${u}ib`, KI ** (i + 1)],
    ]),
  ),
}

/**
 * OPA's `extractNumAndUnit`: the number runs over digits, '.', and an exponent (`e` followed by a
 * digit or sign); the rest is the unit. Quotes are removed; spaces are an error.
 */
function splitUnit(raw: string): [number, string] | undefined {
  const s = raw.replaceAll('"', '')
  if (s.includes(' ')) return undefined
  let end = s.length
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!
    if (/[0-9.+-]/.test(c)) continue
    if (c === 'e' || c === 'E') {
      const next = s[i + 1]
      if (next === undefined || !/[0-9+-]/.test(next)) {
        end = i
        break
      }
      if (next === '+' || next === '-') i++
      continue
    }
    end = i
    break
  }
  const num = s.slice(0, end)
  if (num === '') return undefined
  // Go's big.Float SetString: a decimal with optional sign, fraction and exponent.
  if (!/^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(num)) return undefined
  return [Number(num), s.slice(end)]
}

function unitsParse(x: unknown): number | undefined {
  if (!isStr(x)) return undefined
  const p = splitUnit(x)
  if (p === undefined) return undefined
  const [n, unit] = p
  const u = unit.length > 1 ? unit[0]! + unit.slice(1).toLowerCase() : unit
  const f = Object.hasOwn(UNITS, u) ? UNITS[u]! : undefined
  return f === undefined ? undefined : n * f
}

function unitsParseBytes(x: unknown): number | undefined {
  if (!isStr(x)) return undefined
  const p = splitUnit(x.toLowerCase())
  if (p === undefined) return undefined
  const [n, u] = p
  const f = Object.hasOwn(BYTE_UNITS, u) ? BYTE_UNITS[u]! : undefined
  return f === undefined ? undefined : Math.trunc(n * f)
}

/** RFC 4122 fields of a UUID, as `uuid.parse` returns them. */
function uuidParse(x: unknown): Obj | undefined {
  if (!isStr(x)) return undefined
  let s = x
  if (/^urn:uuid:/i.test(s)) s = s.slice(9)
  else if (/^\{.*\}$/.test(s)) s = s.slice(1, -1)
  if (/^[0-9a-fA-F]{32}$/.test(s))
    s = `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`
  if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(s))
    return undefined
  const b = fromHex(s.replaceAll('-', ''))!
  const u16 = (i: number) => (b[i]! << 8) | b[i + 1]!
  const u32 = (i: number) => u16(i) * 65536 + u16(i + 2)
  const version = b[6]! >> 4
  const v = b[8]!
  const variant =
    (v & 0xc0) === 0x80
      ? 'RFC4122'
      : (v & 0xe0) === 0xc0
        ? 'Microsoft'
        : (v & 0x80) === 0
          ? 'Reserved'
          : 'Future'
  const out: Obj = { version, variant }
  if (version === 1 || version === 2) {
    const t = (BigInt(u16(6) & 0x0fff) << 48n) | (BigInt(u16(4)) << 32n) | BigInt(u32(0))
    out.time = Number((t - 122192928000000000n) * 100n)
    out.clocksequence = u16(8) & 0x3fff
    out.nodeid = [...b.subarray(10)].map((c) => c.toString(16).padStart(2, '0')).join('-')
    out.macvariables = `${b[10]! & 2 ? 'local' : 'global'}:${b[10]! & 1 ? 'multicast' : 'unicast'}`
    if (version === 2) {
      out.id = u32(0)
      out.domain = ['Person', 'Group', 'Org'][b[9]!] ?? `Domain${b[9]}`
    }
  }
  return out
}

function templateMatch(tpl: unknown, value: unknown, open: unknown, close: unknown): boolean | undefined {
  if (
    !isStr(tpl) ||
    !isStr(value) ||
    !isStr(open) ||
    !isStr(close) ||
    open.length !== 1 ||
    close.length !== 1
  )
    return undefined
  let re = '^'
  let i = 0
  while (i < tpl.length) {
    const start = tpl.indexOf(open, i)
    if (start === -1) {
      re += quoteMeta(tpl.slice(i))
      break
    }
    re += quoteMeta(tpl.slice(i, start))
    let depth = 0
    let j = start
    for (; j < tpl.length; j++) {
      if (tpl[j] === open) depth++
      else if (tpl[j] === close && --depth === 0) break
    }
    if (j >= tpl.length) return undefined
    re += `(${tpl.slice(start + 1, j)})`
    i = j + 1
  }
  const r = goRegex(`${re}$`)
  return r === undefined ? undefined : r.test(value)
}

/** A version as OPA's vendored coreos/go-semver parses it (leading zeros and empty pre-release allowed). */
function parseSemver(v: unknown): { nums: bigint[]; pre: string } | undefined {
  if (!isStr(v)) return undefined
  const ident = /^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$/
  let rest = v
  const plus = rest.indexOf('+')
  const meta = plus === -1 ? '' : rest.slice(plus + 1)
  if (plus !== -1) rest = rest.slice(0, plus)
  const dash = rest.indexOf('-')
  const pre = dash === -1 ? '' : rest.slice(dash + 1)
  if (dash !== -1) rest = rest.slice(0, dash)
  const parts = rest.split('.')
  if (parts.length !== 3 || !parts.every((x) => /^[+-]?[0-9]+$/.test(x))) return undefined
  if ((pre !== '' && !ident.test(pre)) || (meta !== '' && !ident.test(meta))) return undefined
  const nums = parts.map((x) => BigInt(x))
  if (nums.some((n) => n > 2n ** 63n - 1n || n < -(2n ** 63n))) return undefined
  return { nums, pre }
}

function comparePre(a: string, b: string): number {
  if (a === b) return 0
  if (a === '') return 1
  if (b === '') return -1
  const xs = a.split('.')
  const ys = b.split('.')
  for (let i = 0; ; i++) {
    if (i >= xs.length) return i >= ys.length ? 0 : -1
    if (i >= ys.length) return 1
    const [x, y] = [xs[i]!, ys[i]!]
    const [xi, yi] = [/^[+-]?[0-9]+$/.test(x), /^[+-]?[0-9]+$/.test(y)]
    if (xi !== yi) return xi ? -1 : 1
    if (xi && BigInt(x) !== BigInt(y)) return BigInt(x) < BigInt(y) ? -1 : 1
    if (x !== y) return compareUtf8(x, y) < 0 ? -1 : 1
  }
}

function semverCompare(a: unknown, b: unknown): number | undefined {
  const x = parseSemver(a)
  const y = parseSemver(b)
  if (x === undefined || y === undefined) return undefined
  for (let i = 0; i < 3; i++) if (x.nums[i] !== y.nums[i]) return x.nums[i]! < y.nums[i]! ? -1 : 1
  return comparePre(x.pre, y.pre)
}

export const miscBuiltins: Record<string, RegoBuiltin> = {
  'base64url.encode_no_pad': (x) => (isStr(x) ? toBase64(utf8(x), true) : undefined),
  'hex.encode': (x) => (isStr(x) ? toHex(utf8(x)) : undefined),
  'hex.decode': (x) => (isStr(x) ? hexDecode(x) : undefined),
  'glob.quote_meta': (x) => (isStr(x) ? x.replace(/[*?\\[\]{}]/g, '\\$&') : undefined),
  indexof_n: (s, search) => {
    if (!isStr(s) || !isStr(search) || search === '') return undefined
    const a = [...s]
    const b = [...search]
    const out: number[] = []
    for (let i = 0; i + b.length <= a.length; i++) if (b.every((c, j) => a[i + j] === c)) out.push(i)
    return out
  },
  'numbers.range_step': (a, b, step) => {
    if (!isInt(a) || !isInt(b) || !isInt(step) || step <= 0) return undefined
    const out: number[] = []
    if (a <= b) for (let i = a; i <= b; i += step) out.push(i)
    else for (let i = a; i >= b; i -= step) out.push(i)
    return out
  },
  'strings.any_prefix_match': (search, base) => {
    const s = strings(search)
    const b = strings(base)
    return s === undefined || b === undefined ? undefined : s.some((x) => b.some((p) => x.startsWith(p)))
  },
  'strings.any_suffix_match': (search, base) => {
    const s = strings(search)
    const b = strings(base)
    return s === undefined || b === undefined ? undefined : s.some((x) => b.some((p) => x.endsWith(p)))
  },
  'strings.count': (s, sub) => {
    if (!isStr(s) || !isStr(sub)) return undefined
    if (sub === '') return [...s].length + 1
    return s.split(sub).length - 1
  },
  trace: (x) => (isStr(x) ? true : undefined),
  'units.parse': unitsParse,
  'units.parse_bytes': unitsParseBytes,
  'urlquery.encode': (x) => (isStr(x) ? queryEscape(x) : undefined),
  'urlquery.decode': (x) => (isStr(x) ? queryUnescape(x) : undefined),
  'urlquery.encode_object': (o) => {
    if (!isObj(o)) return undefined
    const parts: string[] = []
    for (const k of Object.keys(o).sort()) {
      const vs = strings(o[k])
      if (vs === undefined) return undefined
      for (const v of vs) parts.push(`${queryEscape(k)}=${queryEscape(v)}`)
    }
    return parts.join('&')
  },
  'urlquery.decode_object': (x) => {
    if (!isStr(x)) return undefined
    const out: Record<string, string[]> = Object.create(null)
    for (const part of x.split('&')) {
      if (part.includes(';')) return undefined
      if (part === '') continue
      const eq = part.indexOf('=')
      const k = queryUnescape(eq === -1 ? part : part.slice(0, eq))
      const v = queryUnescape(eq === -1 ? '' : part.slice(eq + 1))
      if (k === undefined || v === undefined) return undefined
      if (Object.hasOwn(out, k)) out[k]!.push(v)
      else out[k] = [v]
    }
    return out
  },
  'uuid.parse': uuidParse,
  'uuid.rfc4122': (k) => {
    if (!isStr(k)) return undefined
    const cache = currentScope().cache
    const key = `uuid\u0000${k}`
    if (!cache.has(key)) cache.set(key, globalThis.crypto.randomUUID())
    return cache.get(key)
  },
  'rand.intn': (k, n) => {
    if (!isStr(k) || !isInt(n)) return undefined
    if (n === 0) return 0
    const m = Math.abs(n)
    const cache = currentScope().cache
    const key = `rand\u0000${k}\u0000${m}`
    if (!cache.has(key)) cache.set(key, m > 2 ** 48 - 1 ? Math.floor(Math.random() * m) : randomBelow(m))
    return cache.get(key)
  },
  'regex.find_n': (pattern, value, n) => {
    if (!isStr(pattern) || !isStr(value) || !isInt(n)) return undefined
    const re = goRegex(pattern, 'g')
    if (re === undefined) return undefined
    const all = goMatches(re, value).map((m) => m[0])
    return n < 0 ? all : all.slice(0, n)
  },
  'regex.replace': (s, pattern, value) => {
    if (!isStr(s) || !isStr(pattern) || !isStr(value)) return undefined
    const re = goRegex(pattern, 'g')
    if (re === undefined) return undefined
    let out = ''
    let last = 0
    for (const m of goMatches(re, s)) {
      out += s.slice(last, m.index) + expand(value, m)
      last = m.index + m[0].length
    }
    return out + s.slice(last)
  },
  'regex.template_match': templateMatch,
  'semver.is_valid': (v) => parseSemver(v) !== undefined,
  'semver.compare': semverCompare,
}
