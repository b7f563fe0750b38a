/**
 * Header field lines into one map: names checked and lower-cased, values checked, repeats joined,
 * sizes and counts bounded; names already found valid are remembered.
 */
import { malformed } from '../decision.js'
import {
  bad,
  bytesOf,
  field,
  InputProblem,
  isObject,
  latin1,
  nullMap,
  type Obj,
  optObject,
  optString,
  refuse,
} from './fields.js'
import { hasControlChar } from './header-syntax.js'
import type { ResolvedInputOptions } from './types.js'

export interface HeaderAcc {
  readonly map: Record<string, string>
  count: number
  bytes: number
  /** Names seen on more than one field line (undefined until one is). */
  repeated: string[] | undefined
  /** Names dropped for an underscore. */
  dropped: string[] | undefined
}

const newAcc = (): HeaderAcc => ({
  map: nullMap<string>(),
  count: 0,
  bytes: 0,
  repeated: undefined,
  dropped: undefined,
})

/**
 * Validate a header name (RFC 9110 token; a leading ":" for Envoy's pseudo-headers) and return it
 * lower-cased, or undefined when invalid. One pass, no regular expression, no copy when the name is
 * already lower-case (the usual case: Envoy lower-cases them).
 */
function headerName(raw: string): string | undefined {
  const n = raw.length
  if (n === 0) return undefined
  let upper = false
  for (let i = raw.charCodeAt(0) === 58 && n > 1 ? 1 : 0; i < n; i++) {
    const c = raw.charCodeAt(i)
    if (c >= 97 && c <= 122) continue // a-z
    if (c >= 65 && c <= 90) {
      upper = true
      continue
    }
    if (TOKEN_PUNCT[c] !== 1) return undefined
  }
  return upper ? raw.toLowerCase() : raw
}

const OUTER_SPACE = /^[ \t]+|[ \t]+$/g

/** True when a value starts or ends with a space or a tab. */
function hasOuterSpace(v: string): boolean {
  const n = v.length
  if (n === 0) return false
  const a = v.charCodeAt(0)
  const z = v.charCodeAt(n - 1)
  return a === 32 || a === 9 || z === 32 || z === 9
}

/** Token characters other than letters: digits and !#$%&'*+-.^_`|~ */
export const TOKEN_PUNCT = new Uint8Array(128)
for (const ch of "0123456789!#$%&'*+-.^_`|~") TOKEN_PUNCT[ch.charCodeAt(0)] = 1

function addHeader(
  acc: HeaderAcc,
  rawName: string,
  value: string,
  at: string,
  o: ResolvedInputOptions,
): void {
  const name = headerName(rawName)
  if (name === undefined) bad(at, 'has an invalid header name')
  if (hasControlChar(value)) bad(`${at}.${name}`, 'has a control character in its value')
  // Whitespace around a field value is not part of it (RFC 9110 5.5): Envoy and Node strip it, so
  // the upstream reads `admin` where a rule would have seen ` admin`.
  if (hasOuterSpace(value)) value = value.replace(OUTER_SPACE, '')
  if (name.indexOf('_') !== -1 && o.headersWithUnderscores !== 'allow') {
    if (o.headersWithUnderscores === 'reject')
      refuse('underscore_header', `header name ${JSON.stringify(name)} has "_" (servers may read it as "-")`)
    acc.dropped ??= []
    if (!acc.dropped.includes(rawName)) acc.dropped.push(rawName)
    return
  }
  acc.bytes += name.length + value.length
  if (acc.bytes > o.maxHeaderBytes)
    throw new InputProblem(malformed('headers too large', 'headers_too_large', 431))
  const prev = acc.map[name]
  if (prev === undefined) {
    if (++acc.count > o.maxHeaders)
      throw new InputProblem(malformed('too many headers', 'headers_too_large', 431))
    acc.map[name] = value
  } else {
    // Same joining as Envoy: cookies with "; ", everything else with ",".
    acc.map[name] = prev + (name === 'cookie' ? '; ' : ',') + value
    acc.repeated ??= []
    if (!acc.repeated.includes(name)) acc.repeated.push(name)
  }
}

/**
 * Fast path for what Envoy sends: every name already a lower-case token, every value a string
 * without control characters. Then the map is one builtin copy (no per-key joins are possible,
 * since the names are distinct). Returns false, having changed nothing, when any entry needs the
 * general path.
 */
/**
 * Names already seen to be lower-case tokens. Property keys are interned strings with their hash
 * kept, so a lookup costs less than re-reading the characters. Bounded: past the bound, names are
 * checked every time, and so are names longer than 64 characters (the set stays small).
 */
const CANONICAL_NAMES = new Set<string>()

const MAX_CANONICAL_NAMES = 2048

function copyIfCanonical(acc: HeaderAcc, headers: Obj, keys: string[], o: ResolvedInputOptions): boolean {
  let bytes = 0
  const map = acc.map
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!
    const v = headers[k]
    if (typeof v !== 'string' || hasControlChar(v) || hasOuterSpace(v)) return false
    if (!CANONICAL_NAMES.has(k)) {
      // Names with "_" take the general path, which applies `headersWithUnderscores`.
      if (headerName(k) !== k || k.indexOf('_') !== -1) return false
      if (CANONICAL_NAMES.size < MAX_CANONICAL_NAMES && k.length <= 64) CANONICAL_NAMES.add(k)
    }
    bytes += k.length + v.length
    map[k] = v
  }
  if (bytes > o.maxHeaderBytes) return false
  acc.count = keys.length
  acc.bytes = bytes
  return true
}

const EMPTY_KEYS: readonly string[] = Object.freeze([])

export function normalizeHeaders(
  headers: unknown,
  headerMap: unknown,
  at: string,
  o: ResolvedInputOptions,
): HeaderAcc {
  let acc = newAcc()
  if (headers !== undefined && headers !== null) {
    if (!isObject(headers)) bad(at, 'must be an object')
    const keys = Object.keys(headers)
    if (keys.length > o.maxHeaders)
      throw new InputProblem(malformed('too many headers', 'headers_too_large', 431))
    // The fast path may have copied part of the headers before giving up: start again.
    const copied = copyIfCanonical(acc, headers, keys, o)
    if (!copied) acc = newAcc()
    for (const k of copied ? EMPTY_KEYS : keys) {
      const v = headers[k]
      if (typeof v === 'string') addHeader(acc, k, v, at, o)
      else if (Array.isArray(v)) {
        if (v.length > o.maxHeaders)
          throw new InputProblem(malformed('too many headers', 'headers_too_large', 431))
        for (const item of v) {
          if (typeof item !== 'string') bad(`${at}.${k}`, 'must be a string or a list of strings')
          addHeader(acc, k, item, at, o)
        }
      } else bad(`${at}.${k}`, 'must be a string or a list of strings')
    }
  }
  if (headerMap !== undefined && headerMap !== null) {
    // Envoy's field is `header_map` (`headerMap` in protobuf JSON).
    const mapAt = at.endsWith('headers') ? `${at.slice(0, -7)}header_map` : `${at}_map`
    const hm = optObject(headerMap, mapAt)!
    const list = hm.headers
    if (list !== undefined) {
      if (!Array.isArray(list)) bad(`${mapAt}.headers`, 'must be a list')
      if (list.length > o.maxHeaders)
        throw new InputProblem(malformed('too many headers', 'headers_too_large', 431))
      for (let i = 0; i < list.length; i++) {
        const hv = list[i]
        const here = `${mapAt}.headers[${i}]`
        if (!isObject(hv)) bad(here, 'must be an object')
        const key = optString(hv.key, `${here}.key`)
        if (key === undefined) bad(`${here}.key`, 'is required')
        let value = optString(hv.value, `${here}.value`)
        const raw = field(hv, 'rawValue', 'raw_value', here)
        // Envoy sends header bytes as they came (obs-text included); they are read one byte per
        // character, as Node's HTTP parser reads them, so both transports see the same string.
        if (raw !== undefined && raw !== null && raw !== '') {
          const bytes = latin1(bytesOf(raw, `${here}.raw_value`))
          // Envoy sends one or the other; two that differ would be two readings of one header.
          if (value !== undefined && value !== '' && value !== bytes)
            bad(here, 'has a value and a raw_value that differ')
          value = bytes
        }
        addHeader(acc, key, value ?? '', at, o)
      }
    }
  }
  return acc
}
