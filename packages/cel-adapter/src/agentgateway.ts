/**
 * agentgateway's CEL library (its `cel-functions.md` reference): JSON, maps, hashing, URL and form
 * encoding, the `math` extension, Kubernetes' IP and CIDR methods, header views and query
 * accessors, registered as ordinary `@bufbuild/cel` functions.
 *
 * The functions that take an expression rather than a value (`with`, `mapValues`, `filterKeys`,
 * `coalesce`) are macros: compile-cel.ts rewrites them when the expression loads, into
 * comprehensions over the internal functions at the end of this file.
 */

import {
  type CelFunc,
  type CelMap,
  CelScalar,
  type CelValue,
  celFunc,
  celList,
  celMap,
  celMethod,
  celUint,
  isCelList,
  isCelMap,
  isCelUint,
  listType,
  mapType,
} from '@bufbuild/cel'
import { md5, sha1 } from '@noble/hashes/legacy.js'
import { sha256 } from '@noble/hashes/sha2.js'
import {
  base64Decode,
  base64Encode,
  type CheckInput,
  headerValues,
  isJsonContentType,
  parseJsonLimited,
  type RequestContext,
  toHex,
  utf8Decode,
  utf8Encode,
} from '@verdict/core/internal'
import { ipFamily as family } from './ip.js'
import { toPlainValue } from './plain.js'
import { regexReplace } from './regex-replace.js'
import { celView } from './value-view.js'

const { STRING, BYTES, BOOL, INT, UINT, DOUBLE, DYN } = CelScalar
const MAP = mapType(DYN, DYN)
const LIST = listType(DYN)

/** Deepest JSON `json()` accepts (as core's `input.maxJsonDepth` default). */
const JSON_DEPTH = 64

// ---------------------------------------------------------------------------------------------
// JSON

/**
 * The request body as bytes (`request.body`), remembering its request: `json(request.body)` of a
 * JSON request reads core's parsed body, so its refusals (a key twice, a number no double holds)
 * are the same as for `request.json`.
 */
export class RequestBodyBytes extends Uint8Array {
  #ctx: RequestContext | undefined
  static forRequest(ctx: RequestContext, text: string): RequestBodyBytes {
    const buf = utf8Encode(text)
    const b = new RequestBodyBytes(buf.buffer, buf.byteOffset, buf.byteLength)
    b.#ctx = ctx
    return b
  }
  /** The parsed body when the request's content type is JSON; undefined to parse the bytes. */
  parsed(): { value: unknown } | undefined {
    const ctx = this.#ctx
    if (ctx === undefined) return undefined
    const ct = ctx.input.headers['content-type']
    if (ct === undefined || !isJsonContentType(ct) || ctx.input.bodyTruncated) return undefined
    const v = ctx.parsedBody
    if (v === undefined) throw new Error('the request body is not valid JSON')
    return { value: v }
  }
}

function text(v: string | Uint8Array): string {
  return typeof v === 'string' ? v : utf8Decode(v)
}

function parseJson(v: string | Uint8Array): unknown {
  if (v instanceof RequestBodyBytes) {
    const p = v.parsed()
    if (p !== undefined) return p.value
  }
  const r = parseJsonLimited(text(v), JSON_DEPTH)
  if (!('value' in r)) throw new Error(r.error)
  return r.value
}

function json(v: string | Uint8Array): CelValue {
  return celView(parseJson(v)) ?? null
}

function jsonField(v: string | Uint8Array, key: string): CelValue {
  const parsed = parseJson(v)
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('jsonField: the JSON value is not an object')
  }
  if (!Object.hasOwn(parsed, key)) throw new Error(`no such key: ${key}`)
  return celView((parsed as Record<string, unknown>)[key]) ?? null
}

function toJson(v: CelValue): string {
  return JSON.stringify(toPlainValue(v))
}

function base64UrlDecode(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(s) || s.replace(/=+$/, '').length % 4 === 1) {
    throw new Error('invalid base64url')
  }
  return base64Decode(s)
}

function unvalidatedJwtPayload(token: string): CelValue {
  const parts = token.split('.')
  if (parts.length !== 3) throw new Error(`invalid JWT: expected 3 segments, got ${parts.length}`)
  return json(new Uint8Array(base64UrlDecode(parts[1]!)))
}

// ---------------------------------------------------------------------------------------------
// Maps

function merge(a: CelMap, b: CelMap): CelMap {
  const out = new Map<bigint | string | boolean, CelValue>()
  for (const m of [a, b]) for (const [k, v] of m) out.set(isCelUint(k) ? k.value : (k as string), v)
  return celMap(out)
}

/** Maps under construction by the `mapValues`/`filterKeys` rewrites, by the CEL map handed out. */
const building = new WeakMap<object, Map<bigint | string | boolean, CelValue>>()

function newMap(): CelMap {
  const m = new Map<bigint | string | boolean, CelValue>()
  const cm = celMap(m)
  building.set(cm, m)
  return cm
}

function mapPut(target: CelMap, key: CelValue, value: CelValue): CelMap {
  const m = building.get(target)
  if (m === undefined) throw new Error('internal: not a map under construction')
  m.set(isCelUint(key) ? key.value : (key as string), value)
  return target
}

function flatten(v: CelValue): CelValue {
  if (!isCelMap(v) && !isCelList(v)) throw new Error('flatten only works on a map or a list')
  return v
}

// ---------------------------------------------------------------------------------------------
// Encodings and hashes

const HASHES = { sha1, sha256, md5 }

function digest(algorithm: 'sha1' | 'sha256' | 'md5') {
  const hash = HASHES[algorithm]
  return (v: string | Uint8Array): string => toHex(hash(typeof v === 'string' ? utf8Encode(v) : v))
}

/** Standard base64 with or without padding; anything else is an error, never a partial decode. */
export function decodeBase64(s: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || (s.includes('=') && s.length % 4 !== 0) || s.length % 4 === 1) {
    throw new Error('invalid base64')
  }
  return base64Decode(s)
}

/** Percent-encoding of everything but RFC 3986's unreserved characters. */
function urlEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

function urlDecode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    throw new Error('invalid percent-encoding')
  }
}

function formScalar(v: CelValue): string {
  switch (typeof v) {
    case 'string':
      return v
    case 'bigint':
    case 'boolean':
    case 'number':
      return String(v)
    default:
      if (isCelUint(v)) return String(v.value)
      throw new Error('form.encode takes a map of strings, numbers and booleans')
  }
}

function formEncode(m: CelMap): string {
  const p = new URLSearchParams()
  for (const [k, v] of m) p.append(formScalar(k as CelValue), formScalar(v))
  return p.toString()
}

/** `application/x-www-form-urlencoded` text as a map; a name given twice keeps the last value. */
function formDecode(s: string): CelValue {
  const out = new Map<string, string>()
  for (const [k, v] of new URLSearchParams(s)) out.set(k, v)
  return celMap(out)
}

// ---------------------------------------------------------------------------------------------
// math extension (cel-go `ext.Math`)

const INT_MIN = -(2n ** 63n)
const celUintOf = (v: bigint): CelValue => celUint(v)

function asNumber(v: CelValue): number | bigint {
  if (typeof v === 'bigint' || typeof v === 'number') return v
  if (isCelUint(v)) return v.value
  throw new Error('math: no such overload (not a number)')
}

/** Compare two CEL numbers of any type exactly. */
function compareNumbers(a: CelValue, b: CelValue): number {
  const x = asNumber(a)
  const y = asNumber(b)
  if (typeof x === 'number' && Number.isNaN(x)) return Number.NaN
  if (typeof y === 'number' && Number.isNaN(y)) return Number.NaN
  if (typeof x === 'bigint' && typeof y === 'bigint') return x < y ? -1 : x > y ? 1 : 0
  if (typeof x === 'number' && typeof y === 'number') return x < y ? -1 : x > y ? 1 : 0
  // Mixed: compare the double with the integer without rounding the integer.
  const [d, i, flip] = typeof x === 'number' ? [x, y as bigint, 1] : [y as number, x as bigint, -1]
  if (d === Number.POSITIVE_INFINITY) return flip
  if (d === Number.NEGATIVE_INFINITY) return -flip
  const fl = BigInt(Math.floor(d))
  if (fl < i) return -flip
  if (fl > i) return flip
  return d > Math.floor(d) ? flip : 0
}

function extreme(sign: 1 | -1, name: string) {
  return (...args: CelValue[]): CelValue => {
    const values: CelValue[] =
      args.length === 1 && isCelList(args[0]) ? Array.from(args[0] as Iterable<CelValue>) : args
    if (values.length === 0) throw new Error(`math.@${name}(list) argument must not be empty`)
    let best: unknown = values[0]!
    asNumber(best as CelValue)
    for (const v of values.slice(1)) {
      const c = compareNumbers(v, best as CelValue)
      if (Number.isNaN(c)) {
        // NaN wins, as in cel-go (a comparison with NaN is never false there).
        if (typeof v === 'number' && Number.isNaN(v)) best = v
        continue
      }
      if (c * sign > 0) best = v
    }
    return best as CelValue
  }
}

function roundHalfAway(d: number): number {
  if (!Number.isFinite(d)) return d
  return d < 0 ? -Math.round(-d) : Math.round(d)
}

function bitOperands(a: CelValue, b: CelValue): [bigint, bigint, 'int' | 'uint'] {
  if (typeof a === 'bigint' && typeof b === 'bigint') return [a, b, 'int']
  if (isCelUint(a) && isCelUint(b)) return [a.value, b.value, 'uint']
  throw new Error('math: no such overload')
}

function shift(left: boolean) {
  return (v: CelValue, n: CelValue): CelValue => {
    if (typeof n !== 'bigint') throw new Error('math: no such overload')
    if (n < 0n) throw new Error(`math.bitShift${left ? 'Left' : 'Right'}() negative offset: ${n}`)
    if (typeof v === 'bigint') {
      if (n > 63n) return 0n
      const u = BigInt.asUintN(64, v)
      return BigInt.asIntN(64, left ? u << n : u >> n)
    }
    if (isCelUint(v)) {
      if (n > 63n) return celUintOf(0n)
      return celUintOf(BigInt.asUintN(64, left ? v.value << n : v.value >> n))
    }
    throw new Error('math: no such overload')
  }
}

function mathFunctions(): CelFunc[] {
  const out: CelFunc[] = []
  const greatest = extreme(1, 'greatest')
  const least = extreme(-1, 'least')
  for (let n = 1; n <= 16; n++) {
    const args = Array.from({ length: n }, () => DYN)
    out.push(celFunc('math.greatest', args, DYN, greatest as never))
    out.push(celFunc('math.least', args, DYN, least as never))
  }
  out.push(
    celFunc('math.ceil', [DOUBLE], DOUBLE, Math.ceil),
    celFunc('math.floor', [DOUBLE], DOUBLE, Math.floor),
    celFunc('math.round', [DOUBLE], DOUBLE, roundHalfAway),
    celFunc('math.trunc', [DOUBLE], DOUBLE, Math.trunc),
    celFunc(
      'math.isInf',
      [DOUBLE],
      BOOL,
      (d) => d === Number.POSITIVE_INFINITY || d === Number.NEGATIVE_INFINITY,
    ),
    celFunc('math.isNaN', [DOUBLE], BOOL, Number.isNaN),
    celFunc('math.isFinite', [DOUBLE], BOOL, Number.isFinite),
    celFunc('math.abs', [INT], INT, (i) => {
      if (i === INT_MIN) throw new Error('integer overflow')
      return i < 0n ? -i : i
    }),
    celFunc('math.abs', [UINT], UINT, (u) => u),
    celFunc('math.abs', [DOUBLE], DOUBLE, Math.abs),
    celFunc('math.sign', [INT], INT, (i) => (i > 0n ? 1n : i < 0n ? -1n : 0n)),
    celFunc('math.sign', [UINT], UINT, (u) => celUintOf(u.value > 0n ? 1n : 0n) as never),
    celFunc('math.sign', [DOUBLE], DOUBLE, (d) => (Number.isNaN(d) ? d : d > 0 ? 1 : d < 0 ? -1 : 0)),
    celFunc('math.sqrt', [DOUBLE], DOUBLE, Math.sqrt),
    celFunc('math.sqrt', [INT], DOUBLE, (i) => Math.sqrt(Number(i))),
    celFunc('math.sqrt', [UINT], DOUBLE, (u) => Math.sqrt(Number(u.value))),
    celFunc('math.bitNot', [INT], INT, (i) => BigInt.asIntN(64, ~i)),
    celFunc('math.bitNot', [UINT], UINT, (u) => celUintOf(BigInt.asUintN(64, ~u.value)) as never),
    celFunc('math.bitShiftLeft', [DYN, DYN], DYN, shift(true) as never),
    celFunc('math.bitShiftRight', [DYN, DYN], DYN, shift(false) as never),
  )
  const bit = (name: string, op: (a: bigint, b: bigint) => bigint) =>
    celFunc(name, [DYN, DYN], DYN, ((a: CelValue, b: CelValue) => {
      const [x, y, kind] = bitOperands(a, b)
      return kind === 'int' ? BigInt.asIntN(64, op(x, y)) : celUintOf(BigInt.asUintN(64, op(x, y)))
    }) as never)
  out.push(
    bit('math.bitAnd', (a, b) => a & b),
    bit('math.bitOr', (a, b) => a | b),
    bit('math.bitXor', (a, b) => a ^ b),
  )
  return out
}

// ---------------------------------------------------------------------------------------------
// IP addresses and CIDR ranges (Kubernetes' library, on strings)

function ipFamily(s: string): 0 | 4 | 6 {
  return family(s)
}

/** The 4 or 16 bytes of a valid textual address. */
function ipBytes(s: string): Uint8Array {
  const fam = ipFamily(s)
  if (fam === 4) return Uint8Array.from(s.split('.').map(Number))
  if (fam !== 6) throw new Error(`invalid IP address "${s.slice(0, 64)}"`)
  // An embedded IPv4 tail (`::ffff:1.2.3.4`) becomes two hexadecimal groups.
  let text = s
  const lastColon = text.lastIndexOf(':')
  if (text.slice(lastColon + 1).includes('.')) {
    const v4 = text
      .slice(lastColon + 1)
      .split('.')
      .map(Number)
    const hi = ((v4[0]! << 8) | v4[1]!).toString(16)
    const lo = ((v4[2]! << 8) | v4[3]!).toString(16)
    text = `${text.slice(0, lastColon + 1)}${hi}:${lo}`
  }
  const parse = (p: string): number[] => (p === '' ? [] : p.split(':').map((x) => Number.parseInt(x, 16)))
  const double = text.indexOf('::')
  const head = parse(double === -1 ? text : text.slice(0, double))
  const rest = double === -1 ? [] : parse(text.slice(double + 2))
  const groups = [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest]
  const out = new Uint8Array(16)
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8
    out[2 * i + 1] = g & 0xff
  })
  return out
}

function bytesToIp(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join('.')
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16))
  // Compress the longest run of zero groups (of two or more), as RFC 5952 says.
  let best = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLen && j - i >= 2) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  if (best === -1) return groups.join(':')
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`
}

interface Cidr {
  readonly addr: Uint8Array
  readonly bits: number
}

function parseCidr(s: string): Cidr {
  const slash = s.indexOf('/')
  const addr = slash === -1 ? '' : s.slice(0, slash)
  const bits = slash === -1 ? '' : s.slice(slash + 1)
  const fam = ipFamily(addr)
  if (fam === 0 || !/^\d{1,3}$/.test(bits) || Number(bits) > (fam === 4 ? 32 : 128)) {
    throw new Error(`invalid CIDR "${s.slice(0, 64)}"`)
  }
  return { addr: ipBytes(addr), bits: Number(bits) }
}

function masked(addr: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(addr)
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i))
    out[i] = out[i]! & ((0xff << (8 - keep)) & 0xff)
  }
  return out
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

function inRange(c: Cidr, addr: Uint8Array): boolean {
  return c.addr.length === addr.length && sameBytes(masked(c.addr, c.bits), masked(addr, c.bits))
}

const range = (s: string): Cidr => parseCidr(s)

const IPV4_RANGES = {
  unspecified: range('0.0.0.0/32'),
  loopback: range('127.0.0.0/8'),
  linkLocalMulticast: range('224.0.0.0/24'),
  linkLocalUnicast: range('169.254.0.0/16'),
  multicast: range('224.0.0.0/4'),
  broadcast: range('255.255.255.255/32'),
}
const IPV6_RANGES = {
  unspecified: range('::/128'),
  loopback: range('::1/128'),
  linkLocalUnicast: range('fe80::/10'),
  multicast: range('ff00::/8'),
}

/** An IPv4-mapped IPv6 address as its IPv4 address, as Go's netip unmaps it. */
function unmapped(s: string): Uint8Array {
  const b = ipBytes(s)
  if (b.length === 16 && b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return b.slice(12)
  }
  return b
}

type IpClass = 'unspecified' | 'loopback' | 'linkLocalMulticast' | 'linkLocalUnicast'

function isClass(s: string, cls: IpClass): boolean {
  const b = unmapped(s)
  if (b.length === 4) return inRange(IPV4_RANGES[cls], b)
  // ff02::/16 and its scope variants: ffX2 (Go: the low nibble of the second byte is 2).
  if (cls === 'linkLocalMulticast') return b[0] === 0xff && (b[1]! & 0x0f) === 0x02
  return inRange(IPV6_RANGES[cls], b)
}

function isGlobalUnicast(s: string): boolean {
  const b = unmapped(s)
  if (b.length === 4) {
    const r = IPV4_RANGES
    return ![r.unspecified, r.loopback, r.multicast, r.linkLocalUnicast, r.broadcast].some((c) =>
      inRange(c, b),
    )
  }
  const r = IPV6_RANGES
  return ![r.unspecified, r.loopback, r.multicast, r.linkLocalUnicast].some((c) => inRange(c, b))
}

function containsCidr(outer: string, inner: string): boolean {
  const o = parseCidr(outer)
  const i = parseCidr(inner)
  return o.addr.length === i.addr.length && o.bits <= i.bits && inRange(o, i.addr)
}

// ---------------------------------------------------------------------------------------------
// Header views (`request.headers.join()`, `.split()`, `.raw()`, `.redacted()`, `.cookie(name)`)

const CEL_MAP = Symbol.for('@bufbuild/cel/map')

/** Headers whose values `redacted()` hides. */
const SENSITIVE = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key'])

type HeaderForm = 'value' | 'split' | 'raw'

/**
 * `request.headers` as a CEL map with agentgateway's view methods. The default (and `join()`) form
 * is the joined value, as `request.headers` always was; `split()` is `request.headerValues`
 * (every value: every line, split on commas, trimmed); `raw()` one entry per field line as far as
 * the input keeps lines apart; `redacted()` hides credentials in any form.
 */
export class HeaderView implements ReadonlyMap<string, CelValue> {
  readonly [CEL_MAP] = true

  constructor(
    readonly input: CheckInput,
    readonly form: HeaderForm = 'value',
    readonly redact = false,
  ) {}

  private value(name: string): CelValue | undefined {
    const input = this.input
    const v = input.headers[name]
    if (v === undefined) return undefined
    if (this.redact && SENSITIVE.has(name)) {
      if (this.form === 'value') return '<redacted>'
      return celList(headerValues(input, name).map(() => '<redacted>'))
    }
    switch (this.form) {
      case 'value':
        return v
      case 'split':
        return celList(headerValues(input, name))
      case 'raw':
        return celList(input.repeatedHeaders.includes(name) ? headerValues(input, name) : [v])
    }
  }

  with(form: HeaderForm | undefined, redact: boolean): HeaderView {
    return new HeaderView(this.input, form ?? this.form, redact || this.redact)
  }

  get size(): number {
    return Object.keys(this.input.headers).length
  }
  get(key: unknown): CelValue | undefined {
    return typeof key === 'string' && Object.hasOwn(this.input.headers, key) ? this.value(key) : undefined
  }
  has(key: unknown): boolean {
    return typeof key === 'string' && Object.hasOwn(this.input.headers, key)
  }
  keys(): MapIterator<string> {
    return Object.keys(this.input.headers).values()
  }
  *values(): MapIterator<CelValue> {
    for (const k of this.keys()) yield this.value(k)!
  }
  *entries(): MapIterator<[string, CelValue]> {
    for (const k of this.keys()) yield [k, this.value(k)!]
  }
  forEach(cb: (value: CelValue, key: string, map: ReadonlyMap<string, CelValue>) => void): void {
    for (const [k, v] of this.entries()) cb(v, k, this)
  }
  [Symbol.iterator](): MapIterator<[string, CelValue]> {
    return this.entries()
  }
}

function headerView(m: CelValue, method: string): HeaderView {
  if (!(m instanceof HeaderView))
    throw new Error(`no such overload: ${method}() is a method of request.headers`)
  return m
}

function cookie(m: CelValue, name: string): string {
  const v = headerView(m, 'cookie').input.headers.cookie
  if (v !== undefined) {
    for (const part of v.split(';')) {
      const eq = part.indexOf('=')
      if (eq === -1) continue
      if (part.slice(0, eq).trim() === name) {
        const value = part.slice(eq + 1).trim()
        return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value
      }
    }
  }
  throw new Error(`no such key: ${name}`)
}

// ---------------------------------------------------------------------------------------------
// Query accessors on `request.pathAndQuery` / `request.uri` (any string holding a query)

function splitTarget(s: string): { base: string; query: string | undefined; fragment: string } {
  const hash = s.indexOf('#')
  const fragment = hash === -1 ? '' : s.slice(hash)
  const noFrag = hash === -1 ? s : s.slice(0, hash)
  const q = noFrag.indexOf('?')
  return q === -1
    ? { base: noFrag, query: undefined, fragment }
    : { base: noFrag.slice(0, q), query: noFrag.slice(q + 1), fragment }
}

function query(s: string, name: string): CelValue {
  const { query } = splitTarget(s)
  const values = new URLSearchParams(query ?? '').getAll(name)
  if (values.length === 0) throw new Error(`no such key: ${name}`)
  return celList(values)
}

function withQuery(s: string, name: string, value: string, replace: boolean): string {
  const { base, query, fragment } = splitTarget(s)
  const p = new URLSearchParams(query ?? '')
  if (replace) p.set(name, value)
  else p.append(name, value)
  return `${base}?${p.toString()}${fragment}`
}

/** Go's `strings.SplitN`: n < 0 all parts, 0 none, else at most n with the rest in the last. */
function splitN(s: string, sep: string, n: bigint): string[] {
  if (n === 0n) return []
  const all = sep === '' ? Array.from(s) : s.split(sep)
  if (n < 0n || BigInt(all.length) <= n) return all
  const k = Number(n)
  const head = all.slice(0, k - 1)
  return [...head, all.slice(k - 1).join(sep)]
}

// ---------------------------------------------------------------------------------------------

function contains(container: CelValue, x: CelValue): boolean {
  if (isCelMap(container)) return container.has(x as never)
  for (const v of container as Iterable<CelValue>) if (sameValue(v, x)) return true
  return false
}

function sameValue(a: CelValue, b: CelValue): boolean {
  if (typeof a === typeof b && (typeof a !== 'object' || a === null)) return a === b
  try {
    return compareNumbers(a, b) === 0
  } catch {
    return toJsonSafe(a) === toJsonSafe(b)
  }
}

function toJsonSafe(v: CelValue): string {
  try {
    return JSON.stringify(toPlainValue(v))
  } catch {
    return String(Math.random())
  }
}

/** Internal names of the functions the macro rewrites use; `@` makes them unwritable. */
export const NEW_MAP = '@verdict_map_new'
export const MAP_PUT = '@verdict_map_put'

/** agentgateway's functions, documented in docs/cel.md. */
export function agentgatewayFunctions(): CelFunc[] {
  return [
    // JSON
    celFunc('json', [STRING], DYN, json),
    celFunc('json', [BYTES], DYN, json),
    celFunc('jsonField', [STRING, STRING], DYN, jsonField),
    celFunc('jsonField', [BYTES, STRING], DYN, jsonField),
    celFunc('toJson', [DYN], STRING, toJson),
    celFunc('to_json', [DYN], STRING, toJson),
    celFunc('unvalidatedJwtPayload', [STRING], DYN, unvalidatedJwtPayload),
    // Maps
    celMethod('merge', MAP, [MAP], MAP, function (this: CelMap, other: CelMap) {
      return merge(this, other)
    }),
    celFunc('flatten', [DYN], DYN, flatten),
    celFunc('flattenRecursive', [DYN], DYN, flatten),
    celFunc('flatten_recursive', [DYN], DYN, flatten),
    celFunc(NEW_MAP, [], MAP, newMap),
    celFunc(MAP_PUT, [MAP, DYN, DYN], MAP, mapPut),
    celMethod('contains', LIST, [DYN], BOOL, function (this: CelValue, x: CelValue) {
      return contains(this, x)
    }),
    celMethod('contains', MAP, [DYN], BOOL, function (this: CelValue, x: CelValue) {
      return contains(this, x)
    }),
    // Misc
    celFunc('fail', [STRING], DYN, (msg) => {
      throw new Error(`fail() called: ${msg}`)
    }),
    celFunc('fail', [], DYN, () => {
      throw new Error('fail() called')
    }),
    celFunc('uuid', [], STRING, () => globalThis.crypto.randomUUID()),
    celFunc('random', [], DOUBLE, () => Math.random()),
    // Encodings and hashes
    ...(['base64Encode', 'base64.encode'] as const).flatMap((name) => [
      celFunc(name, [BYTES], STRING, (b) => base64Encode(b)),
      celFunc(name, [STRING], STRING, (s) => base64Encode(utf8Encode(s))),
    ]),
    celMethod('base64Encode', BYTES, [], STRING, function (this: Uint8Array) {
      return base64Encode(this)
    }),
    celMethod('base64Encode', STRING, [], STRING, function (this: string) {
      return base64Encode(utf8Encode(this))
    }),
    celFunc('base64.decode', [STRING], BYTES, decodeBase64),
    celFunc('base64.decode', [BYTES], BYTES, (b) => decodeBase64(text(b))),
    celFunc('base64Decode', [STRING], BYTES, decodeBase64),
    celFunc('base64Decode', [BYTES], BYTES, (b) => decodeBase64(text(b))),
    celMethod('base64Decode', STRING, [], BYTES, function (this: string) {
      return decodeBase64(this)
    }),
    ...(['sha1', 'sha256', 'md5'] as const).flatMap((alg) => [
      celFunc(`${alg}.encode`, [STRING], STRING, digest(alg)),
      celFunc(`${alg}.encode`, [BYTES], STRING, digest(alg)),
    ]),
    celFunc('url.encode', [STRING], STRING, urlEncode),
    celFunc('url.decode', [STRING], STRING, urlDecode),
    celFunc('form.encode', [MAP], STRING, formEncode),
    celFunc('form.decode', [STRING], MAP, formDecode as never),
    // Strings
    celMethod('stripPrefix', STRING, [STRING], STRING, function (this: string, p: string) {
      return this.startsWith(p) ? this.slice(p.length) : this
    }),
    celMethod('stripSuffix', STRING, [STRING], STRING, function (this: string, s: string) {
      return s !== '' && this.endsWith(s) ? this.slice(0, this.length - s.length) : this
    }),
    celMethod(
      'regexReplace',
      STRING,
      [STRING, STRING],
      STRING,
      function (this: string, re: string, to: string) {
        return regexReplace(this, re, to)
      },
    ),
    // `s.split(sep, n)` as cel-go and agentgateway: at most n parts, the last one the rest
    // (@bufbuild/cel 0.6.1 drops the rest).
    celMethod('split', STRING, [STRING, INT], LIST, function (this: string, sep: string, n: bigint) {
      return celList(splitN(this, sep, n)) as never
    }),
    // `jwt.rawToken.unredacted()`: verdict does not redact values a rule reads.
    celMethod('unredacted', STRING, [], STRING, function (this: string) {
      return this
    }),
    // IP and CIDR
    celMethod('family', STRING, [], INT, function (this: string) {
      const f = ipFamily(this)
      if (f === 0) throw new Error(`invalid IP address "${this.slice(0, 64)}"`)
      return BigInt(f)
    }),
    ...(['unspecified', 'loopback', 'linkLocalMulticast', 'linkLocalUnicast'] as const).map((cls) =>
      celMethod(`is${cls[0]!.toUpperCase()}${cls.slice(1)}`, STRING, [], BOOL, function (this: string) {
        return isClass(this, cls)
      }),
    ),
    celMethod('isGlobalUnicast', STRING, [], BOOL, function (this: string) {
      return isGlobalUnicast(this)
    }),
    celMethod('containsCIDR', STRING, [STRING], BOOL, function (this: string, other: string) {
      return containsCidr(this, other)
    }),
    celMethod('masked', STRING, [], STRING, function (this: string) {
      const c = parseCidr(this)
      return `${bytesToIp(masked(c.addr, c.bits))}/${c.bits}`
    }),
    celMethod('prefixLength', STRING, [], INT, function (this: string) {
      return BigInt(parseCidr(this).bits)
    }),
    celMethod('ip', STRING, [], STRING, function (this: string) {
      parseCidr(this)
      return this.slice(0, this.indexOf('/'))
    }),
    // Header views
    celMethod('join', MAP, [], MAP, function (this: CelValue) {
      return headerView(this, 'join').with('value', false) as never
    }),
    celMethod('split', MAP, [], MAP, function (this: CelValue) {
      return headerView(this, 'split').with('split', false) as never
    }),
    celMethod('raw', MAP, [], MAP, function (this: CelValue) {
      return headerView(this, 'raw').with('raw', false) as never
    }),
    celMethod('redacted', MAP, [], MAP, function (this: CelValue) {
      return headerView(this, 'redacted').with(undefined, true) as never
    }),
    celMethod('cookie', MAP, [STRING], STRING, function (this: CelValue, name: string) {
      return cookie(this, name)
    }),
    // Query accessors
    celMethod('query', STRING, [STRING], LIST, function (this: string, name: string) {
      return query(this, name) as never
    }),
    celMethod('addQuery', STRING, [STRING, STRING], STRING, function (this: string, n: string, v: string) {
      return withQuery(this, n, v, false)
    }),
    celMethod('setQuery', STRING, [STRING, STRING], STRING, function (this: string, n: string, v: string) {
      return withQuery(this, n, v, true)
    }),
    ...mathFunctions(),
  ]
}

/** Parsed client certificates, by PEM text (policies see few distinct ones). */
const certificates = new Map<string, CertificateFields | null>()

export interface CertificateFields {
  readonly subjectAltNames: readonly string[]
  readonly issuer: string
  readonly subject: string
  readonly subjectCn: string | undefined
}

/** The part of node:crypto's X509Certificate read here. */
type X509 = new (
  pem: string,
) => { readonly subject: string; readonly issuer: string; readonly subjectAltName: string | undefined }

/**
 * node:crypto's X509Certificate where the runtime has it (Node, Bun and Deno through
 * `process.getBuiltinModule`), found when first needed; undefined in browsers and workers.
 */
let x509: X509 | null | undefined
function x509Certificate(): X509 | undefined {
  if (x509 === undefined) {
    const process = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
    let m: { X509Certificate?: X509 } | undefined
    try {
      m = process?.getBuiltinModule?.('node:crypto') as { X509Certificate?: X509 } | undefined
    } catch {
      m = undefined
    }
    x509 = m?.X509Certificate ?? null
  }
  return x509 ?? undefined
}

/**
 * The fields agentgateway shows of a peer certificate (Envoy sends it URL-encoded PEM). X.509 is
 * parsed by node:crypto; in a runtime without it, reading a certificate field is an evaluation
 * error (so the rule fails closed), never a silent "no certificate".
 */
export function certificateFields(pem: string | undefined): CertificateFields | undefined {
  if (pem === undefined || pem === '') return undefined
  const hit = certificates.get(pem)
  if (hit !== undefined) return hit ?? undefined
  const X509Certificate = x509Certificate()
  if (X509Certificate === undefined)
    throw new Error(
      'reading the client certificate needs node:crypto (process.getBuiltinModule), not in this runtime',
    )
  let fields: CertificateFields | null = null
  try {
    const text = pem.includes('%') ? decodeURIComponent(pem) : pem
    const cert = new X509Certificate(text)
    const dn = (s: string) => s.split('\n').filter((x) => x !== '')
    const subject = dn(cert.subject)
    fields = {
      subjectAltNames: (cert.subjectAltName ?? '')
        .split(', ')
        .filter((x) => x !== '')
        .map((x) => x.slice(x.indexOf(':') + 1)),
      issuer: dn(cert.issuer).join(','),
      subject: subject.join(','),
      subjectCn: subject.find((x) => x.startsWith('CN='))?.slice(3),
    }
  } catch {
    fields = null
  }
  if (certificates.size >= 64) certificates.delete(certificates.keys().next().value as string)
  certificates.set(pem, fields)
  return fields ?? undefined
}

/** The identity fields of `jwt.rawToken`: the bearer token of the Authorization header. */
export function bearerToken(input: CheckInput): string | undefined {
  const h = input.headers.authorization
  if (h === undefined) return undefined
  const m = /^bearer[ \t]+(\S+)$/i.exec(h.trim())
  return m?.[1]
}
