/**
 * Reading hostile input: refusals (a 400 with its `detailCode`), null-prototype maps, typed fields
 * with their path in the message, and byte decoding.
 */
import { base64Decode } from '../bytes.js'
import { type Decision, deny, malformed } from '../decision.js'

/**
 * Maps built from request data: no `Object.prototype` in the chain (so `__proto__`, `constructor`
 * are plain keys), yet fast-mode objects, unlike `Object.create(null)` which V8 keeps as
 * dictionaries.
 */
const NullProto = function (this: object) {} as unknown as new () => Record<string, never>
NullProto.prototype = Object.create(null)

/** A new empty map with no inherited keys. */
export function nullMap<T>(): Record<string, T> {
  return new NullProto() as Record<string, T>
}

// Shared empty maps for the parts most requests lack; frozen, so nothing can fill them in.
export const EMPTY_STRINGS: Readonly<Record<string, string>> = Object.freeze(nullMap<string>())

const EMPTY_JSON: Readonly<Record<string, unknown>> = Object.freeze(nullMap<unknown>())

export const EMPTY_QUERY: Readonly<Record<string, readonly string[]>> = Object.freeze(nullMap<string[]>())

/** Raised inside normalization; turned into a Decision at the boundary, never escapes. */
export class InputProblem {
  constructor(readonly decision: Decision) {}
}

export function bad(path: string, what: string): never {
  throw new InputProblem(malformed(`malformed input: ${path} ${what}`))
}

/**
 * The `detailCode` of a request refused because two readers could understand it differently (code
 * `malformed_input`, status 400). docs/input.md lists each.
 */
export type InputRefusal =
  /** A header a rule reads as one value has several (field lines or a comma list). */
  | 'ambiguous_header'
  /** A header name with `_` under `headersWithUnderscores: 'reject'`. */
  | 'underscore_header'
  /** A host that is not a valid authority, or `http.host`, `:authority` and `host` that disagree. */
  | 'invalid_host'
  /** A path still percent-encoded after one decoding, or with raw control or non-ASCII bytes, or `*` for a method other than OPTIONS. */
  | 'invalid_path'
  /** A method that is not an RFC 9110 token. */
  | 'invalid_method'
  /** `x-http-method-override` and its kin: the upstream could act on another method than the rules saw. */
  | 'method_override'
  /** `:method`, `:path`, `:authority` or `:scheme` in the headers disagreeing with the request's fields. */
  | 'pseudo_header_mismatch'
  /** `content-length` or `size` disagreeing with the body received (a cut-short body), or both `content-length` and `transfer-encoding`. */
  | 'body_length_mismatch'
  /** A number JSON cannot hold (`1e400` parses to Infinity) in a body a rule read. */
  | 'non_finite_number'
  /** An object with the same key twice in a JSON body a rule read. */
  | 'duplicate_json_key'
  /** A body given by the host as a value JSON cannot represent (a function, a symbol, `undefined` in a list, a BigInt, NaN). */
  | 'unserializable_body'

/** A 400 with `detailCode`. */
export function refusal(detail: InputRefusal, reason: string): Decision {
  return deny(400, `malformed input: ${reason}`, { code: 'malformed_input', detailCode: detail })
}

export function refuse(detail: InputRefusal, reason: string): never {
  throw new InputProblem(refusal(detail, reason))
}

export type Obj = Record<string, unknown>

export function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Read a field that may be spelled camelCase (protobuf JSON) or snake_case (proto names).
 * Both spellings at once is ambiguous and rejected: two parsers could read different values.
 */
export function field(o: Obj, camel: string, snake: string, at: string): unknown {
  const a = Object.hasOwn(o, camel) ? o[camel] : undefined
  if (camel === snake) return a
  const b = Object.hasOwn(o, snake) ? o[snake] : undefined
  if (a !== undefined && b !== undefined) bad(`${at}.${snake}`, `is given as both ${camel} and ${snake}`)
  return a ?? b
}

export function optObject(v: unknown, at: string): Obj | undefined {
  if (v === undefined || v === null) return undefined
  if (!isObject(v)) bad(at, 'must be an object')
  return v
}

export function optString(v: unknown, at: string): string | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') bad(at, 'must be a string')
  return v
}

export function stringMap(v: unknown, at: string): Readonly<Record<string, string>> {
  if (v === undefined || v === null) return EMPTY_STRINGS
  const out = nullMap<string>()
  if (!isObject(v)) bad(at, 'must be an object of strings')
  for (const k of Object.keys(v)) {
    const s = v[k]
    if (typeof s !== 'string') bad(`${at}.${k}`, 'must be a string')
    out[k] = s
  }
  return out
}

/** Filter metadata: namespace -> JSON object. Kept by reference (it is plain JSON already). */
export function jsonObjectMap(v: unknown, at: string): Readonly<Record<string, unknown>> {
  if (v === undefined || v === null) return EMPTY_JSON
  const out = nullMap<unknown>()
  if (!isObject(v)) bad(at, 'must be an object')
  for (const k of Object.keys(v)) {
    const s = v[k]
    if (!isObject(s)) bad(`${at}.${k}`, 'must be an object')
    out[k] = s
  }
  return out
}

export function bytesOf(v: unknown, at: string): Uint8Array {
  if (v instanceof Uint8Array) return v
  if (typeof v === 'string') {
    // protobuf JSON encodes bytes as base64 (standard or URL-safe alphabet).
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) bad(at, 'must be base64')
    return base64Decode(v)
  }
  return bad(at, 'must be bytes (base64 in JSON)')
}

// ignoreBOM keeps a leading byte order mark in the text: the body is what was sent (its length
// is checked against content-length), and JSON parsing skips the mark itself.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Bytes as ISO-8859-1 (one character per byte: not TextDecoder's 'latin1', which is windows-1252). */
export function latin1(b: Uint8Array): string {
  let s = ''
  for (let i = 0; i < b.length; i += 4096)
    s += String.fromCharCode.apply(null, b.subarray(i, i + 4096) as unknown as number[])
  return s
}

export function decodeUtf8(b: Uint8Array, at: string): string {
  try {
    return utf8.decode(b)
  } catch {
    return bad(at, 'is not valid UTF-8')
  }
}

/** A decimal of at most 15 digits, or -1. */
export function decimal(s: string): number {
  const n = s.length
  if (n === 0 || n > 15) return -1
  let v = 0
  for (let i = 0; i < n; i++) {
    const d = s.charCodeAt(i) - 48
    if (d < 0 || d > 9) return -1
    v = v * 10 + d
  }
  return v
}
