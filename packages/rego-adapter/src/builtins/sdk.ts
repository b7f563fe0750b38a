/**
 * `sprintf` and `yaml.*` as OPA computes them. `@open-policy-agent/opa-wasm` implements these
 * itself (sprintf-js and yaml 1.x), and its own builtins win over any a host registers, but its
 * results differ from OPA's: `sprintf("%v", [{"a": 1}])` is `[object Object]`, `%q` and a `null`
 * argument throw, `yaml.marshal` of a null value writes `? key`, `yaml.unmarshal` reads YAML 1.2
 * where OPA reads 1.1 (`yes` is true). `patchSdkBuiltins` replaces the SDK's entries in its shared
 * table (the same object every loaded policy dispatches through) with these.
 */
import { Document, parse, visit } from 'yaml'
import type { RegoBuiltin } from '../rego-policy.js'
import { toHex, utf8 } from './bytes.js'
import { nodeModule } from './host.js'
import { isObj, isStr, sortKeys } from './scope.js'

/** Go's `strconv.Quote`. */
export function goQuote(s: string): string {
  let out = '"'
  for (const ch of s) {
    const c = ch.codePointAt(0)!
    const named: Record<number, string> = { 7: 'a', 8: 'b', 9: 't', 10: 'n', 11: 'v', 12: 'f', 13: 'r' }
    if (ch === '"' || ch === '\\') out += `\\${ch}`
    else if (named[c] !== undefined) out += `\\${named[c]}`
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`
    else if ((c >= 0x80 && c < 0xa0) || c === 0x2028 || c === 0x2029 || c === 0xfeff || c === 0xad)
      out += `\\u${c.toString(16).padStart(4, '0')}`
    else out += ch
  }
  return `${out}"`
}

/** A Rego value as OPA's `String()` writes it (how sprintf sees anything not a number or string). */
function regoString(v: unknown): string {
  if (v === null) return 'null'
  if (typeof v === 'string') return goQuote(v)
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) return `[${v.map(regoString).join(', ')}]`
  if (isObj(v))
    return `{${sortKeys(v)
      .map((k) => `${goQuote(k)}: ${regoString(v[k])}`)
      .join(', ')}}`
  return String(v)
}

type Arg =
  | { kind: 'int'; v: bigint }
  | { kind: 'float'; v: number }
  | { kind: 'string'; v: string; type?: string }

/** A value of a Go string type other than `string` (`json.Number` in templates), for `%!d(T=...)`. */
export class GoString {
  constructor(
    readonly text: string,
    readonly type: string,
  ) {}
}

function toArg(v: unknown): Arg {
  // OPA passes an integer literal as an int, anything else as float64; past 2^53 the literal is
  // gone, so integers below 1e21 (JSON's fixed-notation range) count as integers.
  if (typeof v === 'number')
    return Number.isInteger(v) && Math.abs(v) < 1e21 ? { kind: 'int', v: BigInt(v) } : { kind: 'float', v }
  if (typeof v === 'string') return { kind: 'string', v }
  if (v instanceof GoString) return { kind: 'string', v: v.text, type: v.type }
  return { kind: 'string', v: regoString(v) }
}

const typeName = (a: Arg) =>
  a.kind === 'int' ? 'int' : a.kind === 'float' ? 'float64' : (a.type ?? 'string')

/** Go's exponent form: at least two exponent digits (`1e+06`). */
function goExp(s: string): string {
  return s.replace(/e([+-])(\d)$/, 'e$10$2')
}

/** Go's %e with a precision. */
function fmtE(x: number, prec: number, upper: boolean): string {
  const s = goExp(x.toExponential(prec))
  return upper ? s.toUpperCase() : s
}

/**
 * The exact decimal expansion of a double rounded to `prec` fraction digits, half to even as Go's
 * strconv does (JavaScript's toFixed rounds a tie up: 2.25 -> "2.3", Go "2.2").
 */
function toFixedEven(x: number, prec: number): string {
  if (x >= 1e21) return x.toFixed(prec)
  const exact = x.toFixed(Math.min(100, prec + 40))
  const [int, frac = ''] = exact.split('.')
  const keep = frac.slice(0, prec)
  const rest = frac.slice(prec)
  const half = rest[0] === '5' && /^50*$/.test(rest)
  const up = rest !== '' && (rest[0]! > '5' || (rest[0] === '5' && !half))
  let digits = BigInt(`${int}${keep}`)
  if (up || (half && digits % 2n === 1n)) digits += 1n
  const str = digits.toString().padStart(prec + 1, '0')
  return prec === 0 ? str : `${str.slice(0, -prec)}.${str.slice(-prec)}`
}

/** Go's %g / %v (shortest when prec < 0: %e when the exponent is < -4 or >= 6, as strconv). */
function fmtG(x: number, prec: number, upper: boolean): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'NaN' : x > 0 ? '+Inf' : '-Inf'
  if (x === 0) return Object.is(x, -0) ? '-0' : '0'
  const shortest = prec < 0
  const p = shortest ? 0 : prec || 1
  const [mant, e] = (shortest ? x.toExponential() : x.toExponential(p - 1)).split('e')
  const exp = Number(e)
  const nd = mant!.replace(/^-/, '').replace('.', '').replace(/0+$/, '').length || 1
  let eprec = shortest ? 6 : p
  if (!shortest && eprec > nd && nd >= exp + 1) eprec = nd
  let s: string
  if (exp < -4 || exp >= eprec) {
    const m = mant!.includes('.') ? mant!.replace(/0+$/, '').replace(/\.$/, '') : mant!
    s = goExp(`${m}e${exp < 0 ? '-' : '+'}${Math.abs(exp)}`)
  } else {
    s = shortest ? String(x) : toFixedEven(Math.abs(x), Math.max(nd - exp - 1, 0))
    if (!shortest && x < 0) s = `-${s}`
  }
  return upper ? s.toUpperCase() : s
}

function pad(s: string, width: number, left: boolean, zero: boolean): string {
  if (s.length >= width) return s
  if (left) return s.padEnd(width, ' ')
  if (zero) {
    const sign = /^[+-]/.test(s) ? s[0]! : ''
    return sign + s.slice(sign.length).padStart(width - sign.length, '0')
  }
  return s.padStart(width, ' ')
}

/** Go's `fmt.Sprintf` for the argument kinds OPA passes (int, float64, string). */
export function goSprintf(format: string, values: readonly unknown[]): string {
  const args = values.map(toArg)
  let used = 0
  let out = ''
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!
    if (c !== '%') {
      out += c
      continue
    }
    const m = /^([-+# 0]*)(\d+)?(?:\.(\d*))?([a-zA-Z%])?/.exec(format.slice(i + 1))!
    i += m[0].length
    const flags = m[1]!
    const width = m[2] === undefined ? 0 : Number(m[2])
    const prec = m[3] === undefined ? -1 : Number(m[3] || '0')
    const verb = m[4]
    if (verb === undefined) {
      out += '%!(NOVERB)'
      continue
    }
    if (verb === '%') {
      out += '%'
      continue
    }
    const a = args[used++]
    if (a === undefined) {
      out += `%!${verb}(MISSING)`
      continue
    }
    const plus = flags.includes('+')
    const space = flags.includes(' ')
    const left = flags.includes('-')
    const zero = flags.includes('0') && !left
    const sign = (neg: boolean, s: string) => (neg ? `-${s}` : plus ? `+${s}` : space ? ` ${s}` : s)
    // Go writes a wrong verb's operand as %v with the same flags, width and precision, inside.
    let wrong = false
    const bad = () => {
      wrong = true
      const spec = `%${flags}${m[2] ?? ''}${m[3] === undefined ? '' : `.${m[3]}`}v`
      return `%!${verb}(${typeName(a)}=${goSprintf(spec, [values[used - 1]])})`
    }
    let s: string
    if (a.kind === 'int') {
      const neg = a.v < 0n
      const abs = neg ? -a.v : a.v
      const radix: Record<string, number> = { d: 10, v: 10, b: 2, o: 8, O: 8, x: 16, X: 16 }
      if (radix[verb] !== undefined) {
        let digits = abs.toString(radix[verb])
        if (verb === 'X') digits = digits.toUpperCase()
        if (prec >= 0) digits = digits.padStart(prec, '0')
        if (verb === 'O') digits = `0o${digits}`
        else if (flags.includes('#') && verb !== 'd' && verb !== 'v')
          digits = (verb === 'o' ? '0' : verb === 'b' ? '0b' : verb === 'x' ? '0x' : '0X') + digits
        s = sign(neg, digits)
      } else if (verb === 'c') s = String.fromCodePoint(Number(a.v))
      else if (verb === 'q') s = `'${String.fromCodePoint(Number(a.v))}'`
      else if (verb === 'U') s = `U+${abs.toString(16).toUpperCase().padStart(4, '0')}`
      else if (verb === 'T') s = 'int'
      else s = bad()
    } else if (a.kind === 'float') {
      const neg = a.v < 0 || Object.is(a.v, -0)
      const x = Math.abs(a.v)
      if (verb === 'f' || verb === 'F') s = sign(neg, toFixedEven(x, prec < 0 ? 6 : prec))
      else if (verb === 'e' || verb === 'E') s = sign(neg, fmtE(x, prec < 0 ? 6 : prec, verb === 'E'))
      else if (verb === 'g' || verb === 'G') s = sign(neg, fmtG(x, prec, verb === 'G'))
      else if (verb === 'v') s = sign(neg, fmtG(x, prec, false))
      else if (verb === 'T') s = 'float64'
      else s = bad()
    } else {
      let v = a.v
      if (verb === 's' || verb === 'v') s = prec >= 0 ? [...v].slice(0, prec).join('') : v
      else if (verb === 'q') s = goQuote(prec >= 0 ? [...v].slice(0, prec).join('') : v)
      else if (verb === 'x' || verb === 'X') {
        if (prec >= 0) v = String.fromCharCode(...utf8(v).subarray(0, prec))
        s = toHex(utf8(a.v))
        if (verb === 'X') s = s.toUpperCase()
      } else if (verb === 'T') s = 'string'
      else s = bad()
    }
    out += wrong ? s : pad(s, width, left, zero && a.kind !== 'string')
  }
  if (used < args.length)
    out += `%!(EXTRA ${args
      .slice(used)
      .map((a) => `${typeName(a)}=${a.kind === 'float' ? fmtG(a.v, -1, false) : a.v}`)
      .join(', ')})`
  return out
}

const YAML_1_1 = { version: '1.1' } as const

/** YAML as OPA reads it (sigs.k8s.io/yaml over yaml.v2: YAML 1.1, timestamps stay strings). */
function yamlParse(s: string): unknown {
  return parse(s, {
    ...YAML_1_1,
    customTags: (tags) =>
      tags.filter((t) => typeof t === 'string' || t.tag !== 'tag:yaml.org,2002:timestamp'),
    uniqueKeys: false,
  })
}

/** Plain scalars that are not strings: YAML 1.1's tests (null, bool, int, float, timestamp) and Go's 0o. */
const NON_STRING = [
  ...new Document(null, YAML_1_1).schema.tags.flatMap((t) =>
    typeof t !== 'string' && t.test !== undefined && t.tag !== 'tag:yaml.org,2002:str' ? [t.test] : [],
  ),
  // yaml.v2 reads integers with Go's ParseInt(s, 0, 64), which also knows 0o17.
  /^[-+]?0o[0-7_]+$/,
]

/** Whether yaml.v2 would read this plain scalar as something other than a string. */
function readsAsNonString(s: string): boolean {
  return s === '' || NON_STRING.some((re) => re.test(s))
}

/**
 * YAML as OPA writes it (yaml.v2): keys sorted, sequences not indented, a string that would read
 * back as another type (`yes`, `1.5`, ``) double-quoted, other strings plain or single-quoted.
 */
function yamlMarshal(v: unknown): string {
  const doc = new Document(v, { ...YAML_1_1, sortMapEntries: true })
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && readsAsNonString(node.value)) node.type = 'QUOTE_DOUBLE'
    },
  })
  return doc.toString({ indentSeq: false, lineWidth: 0, minContentWidth: 0, singleQuote: true })
}

export const sdkBuiltins: Record<string, RegoBuiltin> = {
  sprintf: (format, values) =>
    isStr(format) && Array.isArray(values) ? goSprintf(format, values) : undefined,
  'yaml.marshal': yamlMarshal,
  'yaml.unmarshal': (s) => {
    if (!isStr(s)) return undefined
    try {
      return yamlParse(s) ?? null
    } catch {
      return undefined
    }
  },
  'yaml.is_valid': (s) => {
    if (!isStr(s)) return false
    try {
      yamlParse(s)
      return true
    } catch {
      return false
    }
  },
}

let patched = false

/**
 * Put these into the SDK's builtin table, which it consults before the host's (a deep require of
 * the SDK's `src/builtins/index.js`, the module its dispatcher requires). Idempotent.
 */
export function patchSdkBuiltins(): void {
  if (patched) return
  patched = true
  try {
    // Node only (the table is not among the SDK's exports); elsewhere the SDK keeps its own.
    const mod = nodeModule()
    if (mod === undefined) return
    const require = mod.createRequire(import.meta.url)
    const main = require.resolve('@open-policy-agent/opa-wasm')
    const dir = main.slice(0, Math.max(main.lastIndexOf('/'), main.lastIndexOf('\\')))
    const table = require(`${dir}/builtins/index.js`) as Record<string, unknown>
    for (const [k, f] of Object.entries(sdkBuiltins)) if (Object.hasOwn(table, k)) table[k] = f
  } catch {
    // A differently laid out SDK keeps its own; the parity test reports the difference.
  }
}
