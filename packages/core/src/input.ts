/**
 * The input model: an Envoy v3 CheckRequest (protobuf JSON camelCase or proto snake_case) or a plain
 * HTTP-shaped object, normalized once into a `CheckInput`.
 *
 * Everything here treats the input as hostile: wrong types are reported with their path, header
 * names and values are checked, maps are built on null-prototype objects, and nothing recurses
 * into caller-controlled depth.
 */

import { base64Decode, utf8Length } from './bytes.js'
import { type Decision, deny, malformed } from './decision.js'
import { hasControlChar } from './header-syntax.js'
import { hasDuplicateMember } from './jwt/json-members.js'

/**
 * The header Envoy sets when it cut the body (`with_request_body.allow_partial_message`). Only
 * Envoy may set it: hosts that take requests from clients directly drop it.
 */
export const PARTIAL_BODY_HEADER = 'x-envoy-auth-partial-body'

/** Parsed SPIFFE ID (`spiffe://<trust-domain>/<path>`). */
export interface SpiffeId {
  readonly id: string
  readonly trustDomain: string
  readonly path: string
  /** From a Kubernetes-style path `/ns/<namespace>/sa/<service-account>`. */
  readonly namespace?: string
  readonly serviceAccount?: string
}

/** One side of the connection (`source` is the downstream client, `destination` the local proxy). */
export interface PeerInfo {
  readonly address: string | undefined
  readonly port: number | undefined
  readonly service: string | undefined
  readonly principal: string | undefined
  readonly certificate: string | undefined
  readonly labels: Readonly<Record<string, string>>
  /** Present when `principal` is a valid SPIFFE ID. */
  readonly spiffe: SpiffeId | undefined
}

/** Which shape the caller used. */
export type InputDialect = 'protojson' | 'proto' | 'http'

/** A normalized request. Built once per decision; policies never see the raw input directly. */
export interface CheckInput {
  readonly dialect: InputDialect
  readonly id: string | undefined
  readonly time: string | undefined
  readonly method: string
  /** Percent-decoded path without query or fragment (see `docs/input.md` for the rule). */
  readonly path: string
  /** The request target exactly as received, with query. */
  readonly rawPath: string
  /** The raw query string without `?` (empty when none). */
  readonly rawQuery: string
  /** Decoded query parameters, name -> values in order. */
  readonly query: Readonly<Record<string, readonly string[]>>
  /**
   * The canonical host: lower case, no trailing dot, no port when it is the scheme's default (both
   * 80 and 443 when the scheme is unknown). `http.host`, `:authority` and `host` must agree.
   */
  readonly host: string
  readonly scheme: string
  readonly protocol: string
  /**
   * Header names lower-cased; repeated headers joined as Envoy joins them (`,`; `; ` for cookie).
   * `host` and `:authority` hold the canonical host (see `host`).
   */
  readonly headers: Readonly<Record<string, string>>
  /** Number of header entries in `headers`. */
  readonly headerCount: number
  /**
   * Names that arrived as more than one field line (repeated entries, a list value, or keys that
   * differ only in case), in first-seen order. With a comma inside one value, these are the
   * headers `headerValues` splits (see docs/semantics.md, "Headers with several values").
   */
  readonly repeatedHeaders: readonly string[]
  /** Names dropped by `headersWithUnderscores: 'drop'`: removed before the request goes upstream. */
  readonly droppedHeaders: readonly string[]
  /** Body as text (`raw_body` decoded as UTF-8 when only bytes were sent). */
  readonly body: string | undefined
  /** True when Envoy cut the body (`x-envoy-auth-partial-body: true`). */
  readonly bodyTruncated: boolean
  /** Declared request size in bytes, -1 when unknown. */
  readonly size: number
  readonly source: PeerInfo
  readonly destination: PeerInfo
  readonly contextExtensions: Readonly<Record<string, string>>
  /** `metadata_context.filter_metadata` as plain JSON (namespace -> object). */
  readonly filterMetadata: Readonly<Record<string, unknown>>
  /** `route_metadata_context.filter_metadata` as plain JSON. */
  readonly routeMetadata: Readonly<Record<string, unknown>>
  readonly tlsSni: string | undefined
  /** The object given to `decide()`, for dialects that pass it through (OPA-Envoy's `attributes`). */
  readonly raw: Readonly<Record<string, unknown>>
}

/** Limits and path handling applied while normalizing. */
export interface InputOptions {
  /** Largest body accepted, in bytes of UTF-8 (default 4 MiB). Larger: 413. */
  readonly maxBodyBytes?: number
  /** Most header entries accepted (default 200). More: 431. */
  readonly maxHeaders?: number
  /** Largest total size of header names and values (default 64 KiB). Larger: 431. */
  readonly maxHeaderBytes?: number
  /** Deepest JSON body accepted when parsed (default 64). Deeper: treated as malformed. */
  readonly maxJsonDepth?: number
  /**
   * Reject paths that proxies and servers may interpret differently (default true): empty segments
   * (`//`), dot segments (`.`, `..`, also percent-encoded), encoded `/` or `\`, and a literal `\`.
   */
  readonly rejectAmbiguousPaths?: boolean
  /**
   * Header names with `_` (`x_role` next to `x-role`; CGI-style servers read both as one): `reject`
   * (default, 400), `drop` (rules do not see them and an allow removes them upstream) or `allow`.
   * As Envoy's `headers_with_underscores_action`.
   */
  readonly headersWithUnderscores?: UnderscoreAction
}

export type UnderscoreAction = 'reject' | 'drop' | 'allow'

export interface ResolvedInputOptions {
  readonly maxBodyBytes: number
  readonly maxHeaders: number
  readonly maxHeaderBytes: number
  readonly maxJsonDepth: number
  readonly rejectAmbiguousPaths: boolean
  readonly headersWithUnderscores: UnderscoreAction
}

export const DEFAULT_INPUT_OPTIONS: ResolvedInputOptions = Object.freeze({
  maxBodyBytes: 4 * 1024 * 1024,
  maxHeaders: 200,
  maxHeaderBytes: 64 * 1024,
  maxJsonDepth: 64,
  rejectAmbiguousPaths: true,
  headersWithUnderscores: 'reject',
})

export function resolveInputOptions(o: InputOptions | undefined): ResolvedInputOptions {
  if (o === undefined) return DEFAULT_INPUT_OPTIONS
  return {
    maxBodyBytes: o.maxBodyBytes ?? DEFAULT_INPUT_OPTIONS.maxBodyBytes,
    maxHeaders: o.maxHeaders ?? DEFAULT_INPUT_OPTIONS.maxHeaders,
    maxHeaderBytes: o.maxHeaderBytes ?? DEFAULT_INPUT_OPTIONS.maxHeaderBytes,
    maxJsonDepth: o.maxJsonDepth ?? DEFAULT_INPUT_OPTIONS.maxJsonDepth,
    rejectAmbiguousPaths: o.rejectAmbiguousPaths ?? DEFAULT_INPUT_OPTIONS.rejectAmbiguousPaths,
    headersWithUnderscores: o.headersWithUnderscores ?? DEFAULT_INPUT_OPTIONS.headersWithUnderscores,
  }
}

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
const EMPTY_STRINGS: Readonly<Record<string, string>> = Object.freeze(nullMap<string>())
const EMPTY_JSON: Readonly<Record<string, unknown>> = Object.freeze(nullMap<unknown>())
const EMPTY_QUERY: Readonly<Record<string, readonly string[]>> = Object.freeze(nullMap<string[]>())

/** Raised inside normalization; turned into a Decision at the boundary, never escapes. */
class InputProblem {
  constructor(readonly decision: Decision) {}
}

function bad(path: string, what: string): never {
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

function refuse(detail: InputRefusal, reason: string): never {
  throw new InputProblem(refusal(detail, reason))
}

type Obj = Record<string, unknown>

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Read a field that may be spelled camelCase (protobuf JSON) or snake_case (proto names).
 * Both spellings at once is ambiguous and rejected: two parsers could read different values.
 */
function field(o: Obj, camel: string, snake: string, at: string): unknown {
  const a = Object.hasOwn(o, camel) ? o[camel] : undefined
  if (camel === snake) return a
  const b = Object.hasOwn(o, snake) ? o[snake] : undefined
  if (a !== undefined && b !== undefined) bad(`${at}.${snake}`, `is given as both ${camel} and ${snake}`)
  return a ?? b
}

function optObject(v: unknown, at: string): Obj | undefined {
  if (v === undefined || v === null) return undefined
  if (!isObject(v)) bad(at, 'must be an object')
  return v
}

function optString(v: unknown, at: string): string | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') bad(at, 'must be a string')
  return v
}

function stringMap(v: unknown, at: string): Readonly<Record<string, string>> {
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
function jsonObjectMap(v: unknown, at: string): Readonly<Record<string, unknown>> {
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

interface HeaderAcc {
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
const TOKEN_PUNCT = new Uint8Array(128)
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

function normalizeHeaders(
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
    if (!copyIfCanonical(acc, headers, keys, o)) acc = newAcc()
    else keys.length = 0
    for (const k of keys) {
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

function bytesOf(v: unknown, at: string): Uint8Array {
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
function latin1(b: Uint8Array): string {
  let s = ''
  for (let i = 0; i < b.length; i += 4096)
    s += String.fromCharCode.apply(null, b.subarray(i, i + 4096) as unknown as number[])
  return s
}

function decodeUtf8(b: Uint8Array, at: string): string {
  try {
    return utf8.decode(b)
  } catch {
    return bad(at, 'is not valid UTF-8')
  }
}

/** Percent-decode a path segment or query component; invalid encodings and invalid UTF-8 reject. */
function percentDecode(s: string, at: string): string {
  if (s.indexOf('%') === -1) return s
  try {
    return decodeURIComponent(s)
  } catch {
    return bad(at, 'has invalid percent-encoding or invalid UTF-8')
  }
}

const AMBIGUOUS_ENCODED = /%(?:2f|5c)/i
const TARGET_CHARS = /^[\x21-\x7e]*$/
const STILL_ENCODED = /%[0-9a-f]{2}/i
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const DECODED_CONTROL = /[\x00-\x1f\x7f]/
const NUL = /%00|\0/
/** Cheap pre-filter: a path without any of these cannot be ambiguous. */
const MAYBE_AMBIGUOUS = /\/\/|\/\.|\/;|\/%2e|%2f|%5c|\\|%00|\0/i

interface SplitPath {
  readonly path: string
  readonly rawQuery: string
  readonly query: Readonly<Record<string, readonly string[]>>
}

/**
 * Split the request target into path and query. The path is percent-decoded as a whole, after
 * the ambiguity checks ran on the raw form; the query is split on `&`, `+` means space, and both
 * names and values are percent-decoded. A fragment is dropped.
 */
export function splitPath(target: string, rejectAmbiguous: boolean): SplitPath | Decision {
  try {
    return splitPathOrThrow(target, rejectAmbiguous)
  } catch (e) {
    if (e instanceof InputProblem) return e.decision
    throw e
  }
}

function splitPathOrThrow(target: string, rejectAmbiguous: boolean): SplitPath {
  let end = target.length
  const hash = target.indexOf('#')
  if (hash !== -1) end = hash
  const q = target.indexOf('?')
  const rawPathPart = q !== -1 && q < end ? target.slice(0, q) : target.slice(0, end)
  const rawQuery = q !== -1 && q < end ? target.slice(q + 1, end) : ''
  if (rawPathPart.length === 0 || (rawPathPart.charCodeAt(0) !== 47 && rawPathPart !== '*')) {
    bad('path', 'must start with "/"')
  }
  // A request target is visible ASCII (RFC 9112 3.2): a space, a control or a raw non-ASCII byte
  // is read differently by different servers.
  if (!TARGET_CHARS.test(target)) {
    if (target.indexOf('\0') !== -1) bad('path', 'contains a NUL byte')
    refuse('invalid_path', 'the request target has a space, a control or a non-ASCII character')
  }
  const suspicious = MAYBE_AMBIGUOUS.test(rawPathPart)
  if (suspicious && NUL.test(rawPathPart)) bad('path', 'contains a NUL byte')
  if (rejectAmbiguous && suspicious) {
    if (rawPathPart.includes('\\')) bad('path', 'contains "\\" (ambiguous path)')
    if (AMBIGUOUS_ENCODED.test(rawPathPart)) bad('path', 'contains an encoded "/" or "\\" (ambiguous path)')
    // Check segments after decoding dots only, so %2e%2e counts as "..".
    const segs = rawPathPart.split('/')
    for (let i = 1; i < segs.length; i++) {
      const seg = segs[i]!
      // A path parameter does not hide a dot segment or an empty one: servlet containers resolve
      // "/..;x/" as ".." and "/;x/admin" as "//admin", that is "/admin".
      const semi = seg.indexOf(';')
      const bare = semi === -1 ? seg : seg.slice(0, semi)
      if (bare === '' && (i < segs.length - 1 || semi !== -1))
        bad('path', 'contains an empty segment "//" or "/;" (ambiguous path)')
      const dots = bare.indexOf('%') === -1 ? bare : bare.replace(/%2e/gi, '.')
      if (dots === '.' || dots === '..') bad('path', 'contains a dot segment (ambiguous path)')
    }
  }
  const path = percentDecode(rawPathPart, 'path')
  if (path !== rawPathPart) {
    // Decoded once, the path must be final: `%252e` is `%2e` to this reader and `.` to the next.
    if (rejectAmbiguous && rawPathPart.indexOf('%25') !== -1 && STILL_ENCODED.test(path))
      refuse('invalid_path', 'the path is still percent-encoded after one decoding')
    if (DECODED_CONTROL.test(path)) refuse('invalid_path', 'the path decodes to a control character')
  }
  if (rawQuery.length === 0) return { path, rawQuery, query: EMPTY_QUERY }
  const query = nullMap<string[]>()
  for (const part of rawQuery.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const k = decodeQueryPart(eq === -1 ? part : part.slice(0, eq))
    const v = eq === -1 ? '' : decodeQueryPart(part.slice(eq + 1))
    const list = query[k]
    if (list === undefined) query[k] = [v]
    else list.push(v)
  }
  return { path, rawQuery, query }
}

/**
 * The request target counts against `maxHeaderBytes` with the headers, as Envoy counts `:path` in
 * `max_request_headers_kb` (once: not again when the headers already carry `:path`). A huge query
 * would otherwise be split and decoded in full.
 */
function checkTargetSize(target: string, acc: HeaderAcc, o: ResolvedInputOptions): void {
  if (acc.map[':path'] === undefined && acc.bytes + target.length > o.maxHeaderBytes)
    throw new InputProblem(malformed('request target and headers too large', 'headers_too_large', 431))
}

/** Form decoding of one query name or value: `+` is a space, then percent-decoding. */
function decodeQueryPart(s: string): string {
  return percentDecode(s.indexOf('+') === -1 ? s : s.replace(/\+/g, ' '), 'query')
}

/** A decimal of at most 15 digits, or -1. */
function decimal(s: string): number {
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

/** A method: an RFC 9110 token, upper-cased (rules compare upper case; `delete` is DELETE). */
function canonicalMethod(m: string): string {
  const n = m.length
  // A CheckRequest without a method (hand-written, in a case file) stays without one; Envoy always
  // sends one.
  if (n === 0) return m
  let upper = true
  for (let i = 0; i < n; i++) {
    const c = m.charCodeAt(i)
    if (c >= 65 && c <= 90) continue
    if (c >= 97 && c <= 122) upper = false
    else if (c >= 128 || TOKEN_PUNCT[c] !== 1)
      refuse('invalid_method', `the method ${JSON.stringify(m.slice(0, 32))} is not a token`)
  }
  return upper ? m : m.toUpperCase()
}

/**
 * The canonical form of an authority: lower case, no trailing dot, no port when it is the
 * scheme's default (80 and 443 both when the scheme is unknown). Anything that is not a host name,
 * an IPv4 address or a bracketed IPv6 address, with an optional port, is refused.
 */
export function canonicalHost(raw: string, scheme: string): string {
  // Most traffic names few hosts: a one-entry cache (only valid hosts reach it).
  if (raw === lastHost && scheme === lastScheme) return lastCanonical
  const c = canonicalHostUncached(raw, scheme)
  lastHost = raw
  lastScheme = scheme
  lastCanonical = c
  return c
}

let lastHost: string | undefined
let lastScheme = ''
let lastCanonical = ''

function canonicalHostUncached(raw: string, scheme: string): string {
  const n = raw.length
  let i = 0
  let upper = false
  if (raw.charCodeAt(0) === 91) {
    const close = raw.indexOf(']')
    if (close === -1 || !IPV6.test(raw.slice(1, close))) badHost(raw)
    i = close + 1
    upper = /[A-F]/.test(raw.slice(0, i))
  } else {
    for (; i < n; i++) {
      const c = raw.charCodeAt(i)
      if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95 || c === 126)
        continue
      if (c >= 65 && c <= 90) upper = true
      else if (c === 58) break
      else badHost(raw)
    }
  }
  let name = i === n ? raw : raw.slice(0, i)
  if (upper) name = name.toLowerCase()
  if (name.charCodeAt(name.length - 1) === 46) name = name.slice(0, -1)
  if (name === '' || name.charCodeAt(0) === 46 || name.indexOf('..') !== -1) badHost(raw)
  if (i === n) return name
  if (raw.charCodeAt(i) !== 58) badHost(raw)
  const portText = raw.slice(i + 1)
  if (portText === '') return name
  if (!/^\d{1,5}$/.test(portText)) badHost(raw)
  const port = Number(portText)
  if (port > 65535) badHost(raw)
  if ((port === 443 && scheme !== 'http') || (port === 80 && scheme !== 'https')) return name
  return `${name}:${port}`
}

const IPV6 = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$/

function badHost(raw: string): never {
  return refuse('invalid_host', `the host ${JSON.stringify(raw.slice(0, 64))} is not a valid authority`)
}

/**
 * One host from the request's field and its `:authority` / `host` headers, which must agree once
 * canonical. The headers are rewritten to the canonical host, so every reader sees one spelling.
 */
function resolveHost(field: string | undefined, acc: HeaderAcc, scheme: string): string {
  const map = acc.map
  const authority = map[':authority']
  const hostHeader = map.host
  const from =
    field !== undefined && field !== ''
      ? field
      : authority !== undefined && authority !== ''
        ? authority
        : hostHeader
  if (from === undefined || from === '') return ''
  const host = canonicalHost(from, scheme)
  // Usually the field and `:authority` are the same string: compared, not canonicalized again.
  if (authority !== undefined && authority !== '' && authority !== from)
    sameHost(authority, host, scheme, ':authority')
  if (hostHeader !== undefined && hostHeader !== '' && hostHeader !== from)
    sameHost(hostHeader, host, scheme, 'the host header')
  if (authority !== undefined && authority !== host) map[':authority'] = host
  if (hostHeader !== undefined && hostHeader !== host) map.host = host
  return host
}

function sameHost(v: string, host: string, scheme: string, what: string): void {
  const c = canonicalHost(v, scheme)
  if (c !== host)
    refuse('invalid_host', `${what} ${JSON.stringify(c)} is not the request's host ${JSON.stringify(host)}`)
}

/** `:method`, `:path` and `:scheme` in the headers must say what the request's fields say. */
function checkPseudoHeaders(
  map: Record<string, string>,
  method: string,
  target: string,
  scheme: string,
): void {
  const m = map[':method']
  if (m !== undefined && m !== method && canonicalMethod(m) !== method)
    refuse('pseudo_header_mismatch', `:method ${JSON.stringify(m.slice(0, 32))} is not the request's method`)
  const p = map[':path']
  if (p !== undefined && p !== target) refuse('pseudo_header_mismatch', ":path is not the request's path")
  const sc = map[':scheme']
  if (sc !== undefined && scheme !== '' && sc.toLowerCase() !== scheme)
    refuse('pseudo_header_mismatch', ":scheme is not the request's scheme")
  if (
    map['x-http-method-override'] !== undefined ||
    map['x-http-method'] !== undefined ||
    map['x-method-override'] !== undefined
  )
    refuse(
      'method_override',
      'a method-override header would make the upstream act on another method than the rules saw',
    )
}

/**
 * A body that is not the whole request must not be decided on as if it were: `content-length` (or
 * the CheckRequest's `size`) that disagrees with the body received, without Envoy's partial-body
 * header, is a cut-short body. Both `content-length` and `transfer-encoding` is request smuggling.
 */
function checkBodyLength(
  map: Readonly<Record<string, string>>,
  size: number,
  body: string | undefined,
  truncated: boolean,
): void {
  const cl = map['content-length']
  if (cl === undefined && size < 0) return
  if (cl !== undefined && map['transfer-encoding'] !== undefined)
    refuse('body_length_mismatch', 'both content-length and transfer-encoding are given')
  // No body received (Envoy was not asked to buffer it) is not a cut-short body.
  if (body === undefined || body === '' || truncated) return
  const bodyBytes = utf8Length(body)
  if (cl !== undefined && decimal(cl) !== bodyBytes)
    refuse('body_length_mismatch', `content-length is not the size of the body received (${bodyBytes} bytes)`)
  if (size >= 0 && size !== bodyBytes)
    refuse('body_length_mismatch', `size is not the size of the body received (${bodyBytes} bytes)`)
}

const SPIFFE_TD = /^[a-z0-9._-]+$/
const SPIFFE_SEG = /^[A-Za-z0-9._-]+$/

const spiffeCache = new Map<string, SpiffeId | undefined>()
// Most traffic comes from few callers: a one-entry cache in front of a bounded map.
let lastPrincipal: string | undefined
let lastSpiffe: SpiffeId | undefined

/** Parse a SPIFFE ID; undefined when `principal` is not one (it may be a certificate subject). */
export function parseSpiffeId(principal: string | undefined): SpiffeId | undefined {
  if (principal === undefined) return undefined
  if (principal === lastPrincipal) return lastSpiffe
  let parsed: SpiffeId | undefined
  if (spiffeCache.has(principal)) parsed = spiffeCache.get(principal)
  else {
    parsed = parseSpiffeUncached(principal)
    if (parsed !== undefined) Object.freeze(parsed)
    // Bounded: a caller cycling through principals only costs the parse again.
    if (spiffeCache.size >= 1024) spiffeCache.clear()
    spiffeCache.set(principal, parsed)
  }
  lastPrincipal = principal
  lastSpiffe = parsed
  return parsed
}

function parseSpiffeUncached(principal: string): SpiffeId | undefined {
  if (!principal.startsWith('spiffe://') || principal.length > 2048) return undefined
  const rest = principal.slice(9)
  const slash = rest.indexOf('/')
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash)
  const path = slash === -1 ? '' : rest.slice(slash)
  if (!SPIFFE_TD.test(trustDomain)) return undefined
  if (path !== '') {
    const segs = path.split('/')
    for (let i = 1; i < segs.length; i++) {
      const s = segs[i]!
      if (!SPIFFE_SEG.test(s) || s === '.' || s === '..') return undefined
    }
    if (segs.length === 5 && segs[1] === 'ns' && segs[3] === 'sa') {
      return { id: principal, trustDomain, path, namespace: segs[2]!, serviceAccount: segs[4]! }
    }
  }
  return { id: principal, trustDomain, path }
}

function peerFromCheckRequest(v: unknown, at: string): PeerInfo {
  const p = optObject(v, at)
  if (p === undefined) return EMPTY_PEER
  let address: string | undefined
  let port: number | undefined
  const addr = optObject(p.address, `${at}.address`)
  if (addr !== undefined) {
    const sa = optObject(
      field(addr, 'socketAddress', 'socket_address', `${at}.address`),
      `${at}.address.socket_address`,
    )
    if (sa !== undefined) {
      address = optString(sa.address, `${at}.address.socket_address.address`)
      const pv = field(sa, 'portValue', 'port_value', `${at}.address.socket_address`)
      if (pv !== undefined && pv !== null) {
        // protobuf JSON may encode uint32 as a number or a decimal string.
        const n = typeof pv === 'string' && /^\d{1,5}$/.test(pv) ? Number(pv) : pv
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
          bad(`${at}.address.socket_address.port_value`, 'must be a port number')
        }
        port = n
      }
    }
  }
  const principal = optString(p.principal, `${at}.principal`)
  return {
    address,
    port,
    service: optString(p.service, `${at}.service`),
    principal,
    certificate: optString(p.certificate, `${at}.certificate`),
    labels: p.labels === undefined ? EMPTY_STRINGS : stringMap(p.labels, `${at}.labels`),
    spiffe: parseSpiffeId(principal),
  }
}

/** The peer of a request that names none (shared: frozen). */
const EMPTY_PEER: PeerInfo = Object.freeze({
  address: undefined,
  port: undefined,
  service: undefined,
  principal: undefined,
  certificate: undefined,
  labels: EMPTY_STRINGS,
  spiffe: undefined,
})

function bodyFrom(body: unknown, rawBody: unknown, at: string, o: ResolvedInputOptions): string | undefined {
  let text: string | undefined
  if (body !== undefined && body !== null && body !== '') {
    if (typeof body !== 'string') bad(`${at}.body`, 'must be a string')
    // A string's UTF-8 size is at most 3x its length; only measure when it could be over.
    if (body.length * 3 > o.maxBodyBytes && utf8Length(body) > o.maxBodyBytes) {
      throw new InputProblem(malformed('body too large', 'body_too_large', 413))
    }
    text = body
  } else if (rawBody !== undefined && rawBody !== null && rawBody !== '') {
    if (typeof rawBody === 'string' && (rawBody.length * 3) / 4 > o.maxBodyBytes + 3) {
      throw new InputProblem(malformed('body too large', 'body_too_large', 413))
    }
    const bytes = bytesOf(rawBody, `${at}.raw_body`)
    if (bytes.length > o.maxBodyBytes)
      throw new InputProblem(malformed('body too large', 'body_too_large', 413))
    text = decodeUtf8(bytes, `${at}.raw_body`)
  }
  return text
}

function sizeOf(v: unknown, at: string): number {
  if (v === undefined || v === null) return -1
  const n = typeof v === 'string' && /^-?\d{1,15}$/.test(v) ? Number(v) : v
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < -1) bad(at, 'must be an integer')
  return n
}

const EMPTY_NAMES: readonly string[] = Object.freeze([])

/**
 * Method, host and scheme of the request, canonical, with the headers that restate them checked
 * against them: the one request line every rule kind reads.
 */
function requestLine(
  acc: HeaderAcc,
  rawMethod: string,
  target: string,
  hostField: string | undefined,
  schemeField: string | undefined,
): { method: string; host: string; scheme: string } {
  const method = canonicalMethod(rawMethod)
  if (target === '*' && method !== 'OPTIONS') refuse('invalid_path', 'the target "*" is only for OPTIONS')
  const scheme = schemeField === undefined || schemeField === '' ? '' : schemeField.toLowerCase()
  checkPseudoHeaders(acc.map, method, target, scheme)
  const host = resolveHost(hostField, acc, scheme === '' ? (acc.map[':scheme'] ?? '').toLowerCase() : scheme)
  return { method, host, scheme }
}

/**
 * A body the host gives as a parsed value must be one JSON can carry: JSON.stringify would drop a
 * function or a symbol, turn `undefined` in a list or NaN into null, and throw on a BigInt, so the
 * text the rules see would not be the value the host holds. Iterative, depth-limited.
 */
function checkJsonValue(root: object, maxDepth: number): void {
  const stack: Array<[unknown, number]> = [[root, 0]]
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!
    switch (typeof v) {
      case 'string':
      case 'boolean':
        continue
      case 'number':
        if (!Number.isFinite(v)) refuse('unserializable_body', `the body holds ${v}, which JSON cannot`)
        continue
      case 'object': {
        if (v === null) continue
        if (depth >= maxDepth) refuse('unserializable_body', `the body is nested deeper than ${maxDepth}`)
        if (Array.isArray(v)) {
          for (let i = 0; i < v.length; i++) {
            if (!(i in v) || v[i] === undefined)
              refuse('unserializable_body', 'the body has undefined in a list, which JSON cannot hold')
            stack.push([v[i], depth + 1])
          }
          continue
        }
        const proto = Object.getPrototypeOf(v)
        if (proto !== Object.prototype && proto !== null)
          refuse('unserializable_body', 'the body must be a string, bytes or a parsed JSON value')
        for (const k of Object.keys(v)) {
          const x = (v as Obj)[k]
          // An absent property and one set to undefined are the same JSON object.
          if (x !== undefined) stack.push([x, depth + 1])
        }
        continue
      }
      default:
        refuse('unserializable_body', `the body holds a ${typeof v}, which JSON cannot`)
    }
  }
}

function fromCheckRequest(raw: Obj, o: ResolvedInputOptions): CheckInput {
  const attrs = optObject(raw.attributes, 'attributes')
  if (attrs === undefined) bad('attributes', 'must be an object')
  const snake =
    Object.hasOwn(attrs, 'metadata_context') ||
    Object.hasOwn(attrs, 'context_extensions') ||
    Object.hasOwn(attrs, 'route_metadata_context') ||
    Object.hasOwn(attrs, 'tls_session')
  const req = optObject(attrs.request, 'attributes.request')
  const http = optObject(req?.http, 'attributes.request.http') ?? {}
  const at = 'attributes.request.http'
  const target = optString(http.path, `${at}.path`) ?? ''
  if (target === '') bad(`${at}.path`, 'is required')
  const acc = normalizeHeaders(http.headers, field(http, 'headerMap', 'header_map', at), `${at}.headers`, o)
  checkTargetSize(target, acc, o)
  const split = splitPathOrThrow(target, o.rejectAmbiguousPaths)
  const line = requestLine(
    acc,
    optString(http.method, `${at}.method`) ?? acc.map[':method'] ?? '',
    target,
    optString(http.host, `${at}.host`),
    optString(http.scheme, `${at}.scheme`),
  )
  const body = bodyFrom(http.body, field(http, 'rawBody', 'raw_body', at), at, o)
  const size = sizeOf(http.size, `${at}.size`)
  const bodyTruncated = acc.map[PARTIAL_BODY_HEADER] === 'true'
  checkBodyLength(acc.map, size, body, bodyTruncated)
  const md = optObject(
    field(attrs, 'metadataContext', 'metadata_context', 'attributes'),
    'attributes.metadata_context',
  )
  const rmd = optObject(
    field(attrs, 'routeMetadataContext', 'route_metadata_context', 'attributes'),
    'attributes.route_metadata_context',
  )
  const tls = optObject(field(attrs, 'tlsSession', 'tls_session', 'attributes'), 'attributes.tls_session')
  const time = req?.time
  return {
    dialect: snake ? 'proto' : 'protojson',
    id: optString(http.id, `${at}.id`),
    time: typeof time === 'string' ? time : undefined,
    method: line.method,
    path: split.path,
    rawPath: target,
    rawQuery: split.rawQuery,
    query: split.query,
    host: line.host,
    scheme: line.scheme,
    protocol: optString(http.protocol, `${at}.protocol`) ?? '',
    headers: acc.map,
    headerCount: acc.count,
    repeatedHeaders: acc.repeated ?? EMPTY_NAMES,
    droppedHeaders: acc.dropped ?? EMPTY_NAMES,
    body,
    bodyTruncated,
    size,
    source: peerFromCheckRequest(attrs.source, 'attributes.source'),
    destination: peerFromCheckRequest(attrs.destination, 'attributes.destination'),
    contextExtensions: stringMap(
      field(attrs, 'contextExtensions', 'context_extensions', 'attributes'),
      'attributes.context_extensions',
    ),
    filterMetadata: jsonObjectMap(
      md === undefined
        ? undefined
        : field(md, 'filterMetadata', 'filter_metadata', 'attributes.metadata_context'),
      'attributes.metadata_context.filter_metadata',
    ),
    routeMetadata: jsonObjectMap(
      rmd === undefined
        ? undefined
        : field(rmd, 'filterMetadata', 'filter_metadata', 'attributes.route_metadata_context'),
      'attributes.route_metadata_context.filter_metadata',
    ),
    tlsSni: tls === undefined ? undefined : optString(tls.sni, 'attributes.tls_session.sni'),
    raw,
  }
}

function plainPeer(v: unknown, at: string): PeerInfo {
  const p = optObject(v, at)
  if (p === undefined) return EMPTY_PEER
  const port = p.port
  if (
    port !== undefined &&
    (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535)
  ) {
    bad(`${at}.port`, 'must be a port number')
  }
  const principal = optString(p.principal, `${at}.principal`)
  return {
    address: optString(p.address, `${at}.address`),
    port: port as number | undefined,
    service: optString(p.service, `${at}.service`),
    principal,
    certificate: optString(p.certificate, `${at}.certificate`),
    labels: p.labels === undefined ? EMPTY_STRINGS : stringMap(p.labels, `${at}.labels`),
    spiffe: parseSpiffeId(principal),
  }
}

/** A body given as bytes: a Uint8Array (Node's Buffer too), any other ArrayBuffer view, or an ArrayBuffer. */
function bodyBytes(b: unknown): Uint8Array | undefined {
  if (b instanceof Uint8Array) return b
  if (ArrayBuffer.isView(b)) return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
  if (b instanceof ArrayBuffer) return new Uint8Array(b)
  // SharedArrayBuffer is undefined in pages that are not cross-origin isolated.
  if (typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer) return new Uint8Array(b)
  return undefined
}

function fromHttpShape(raw: Obj, o: ResolvedInputOptions): CheckInput {
  const target = optString(raw.path, 'path') ?? optString(raw.url, 'url')
  if (target === undefined) bad('path', 'is required')
  const acc = normalizeHeaders(raw.headers, undefined, 'headers', o)
  checkTargetSize(target, acc, o)
  const split = splitPathOrThrow(target, o.rejectAmbiguousPaths)
  const line = requestLine(
    acc,
    optString(raw.method, 'method') ?? acc.map[':method'] ?? 'GET',
    target,
    optString(raw.host, 'host'),
    optString(raw.scheme, 'scheme'),
  )
  let body: string | undefined
  const b = raw.body
  const bytes = bodyBytes(b)
  const bodyTruncated = acc.map[PARTIAL_BODY_HEADER] === 'true'
  if (bytes !== undefined) {
    if (bytes.length > o.maxBodyBytes)
      throw new InputProblem(malformed('body too large', 'body_too_large', 413))
    body = decodeUtf8(bytes, 'body')
    checkBodyLength(acc.map, -1, body, bodyTruncated)
  } else if (typeof b === 'object' && b !== null) {
    // A service author may pass an already-parsed JSON body; keep its text form for dialects.
    // Anything else (a Blob, a stream, a class instance) would stringify to something other than
    // what the upstream reads, so it is refused, and so is a value JSON cannot hold.
    checkJsonValue(b, o.maxJsonDepth)
    let text: string
    try {
      text = JSON.stringify(b)
    } catch {
      return refuse('unserializable_body', 'the body is not JSON-serializable')
    }
    body = bodyFrom(text, undefined, '', o)
  } else {
    body = bodyFrom(b, undefined, '', o)
    checkBodyLength(acc.map, -1, body, bodyTruncated)
  }
  const md = optObject(raw.metadata, 'metadata')
  return {
    dialect: 'http',
    id: optString(raw.id, 'id'),
    time: undefined,
    method: line.method,
    path: split.path,
    rawPath: target,
    rawQuery: split.rawQuery,
    query: split.query,
    host: line.host,
    scheme: line.scheme,
    protocol: optString(raw.protocol, 'protocol') ?? '',
    headers: acc.map,
    headerCount: acc.count,
    repeatedHeaders: acc.repeated ?? EMPTY_NAMES,
    droppedHeaders: acc.dropped ?? EMPTY_NAMES,
    body,
    bodyTruncated,
    size: body === undefined ? 0 : -1,
    source: plainPeer(raw.source, 'source'),
    destination: plainPeer(raw.destination, 'destination'),
    contextExtensions: stringMap(raw.contextExtensions, 'contextExtensions'),
    filterMetadata: jsonObjectMap(md === undefined ? undefined : (md.filterMetadata ?? md), 'metadata'),
    routeMetadata: jsonObjectMap(undefined, 'routeMetadata'),
    tlsSni: undefined,
    raw,
  }
}

/**
 * Normalize a CheckRequest (either JSON dialect) or a plain HTTP-shaped object.
 * Returns a deny Decision (400, 413 or 431) instead of throwing when the input is malformed.
 */
export function normalizeInput(
  raw: unknown,
  options: ResolvedInputOptions = DEFAULT_INPUT_OPTIONS,
): CheckInput | Decision {
  if (!isObject(raw)) return malformed('malformed input: a CheckRequest must be an object')
  try {
    return Object.hasOwn(raw, 'attributes') ? fromCheckRequest(raw, options) : fromHttpShape(raw, options)
  } catch (e) {
    if (e instanceof InputProblem) return e.decision
    if (e instanceof RangeError) return malformed('malformed input: too deeply nested')
    throw e
  }
}

/**
 * Headers whose grammar puts commas inside one value (a date, a product comment, credentials), so a
 * comma there is not a second value; a second field line still is. `cookie` lines are joined with
 * `; ` and are one cookie list.
 */
const COMMA_IN_VALUE = new Set([
  'authorization',
  'content-disposition',
  'content-type',
  'cookie',
  'date',
  'expires',
  'if-modified-since',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'proxy-authorization',
  'referer',
  'retry-after',
  'user-agent',
])

/**
 * The values of a header, as a server that reads it as a list would: every field line, each split
 * on `,` (RFC 9110 5.6.1), trimmed, empty elements dropped. Headers whose grammar allows a comma in
 * one value give one value per field line. Absent: an empty list.
 */
export function headerValues(input: CheckInput, name: string): string[] {
  const v = input.headers[name]
  if (v === undefined) return []
  if (name === 'cookie') return [v]
  if (COMMA_IN_VALUE.has(name) && !input.repeatedHeaders.includes(name)) return [v]
  const out: string[] = []
  for (const part of v.split(',')) {
    const t = part.trim()
    if (t !== '') out.push(t)
  }
  return out
}

/** Every header's values (`headerValues`), by name. */
export function allHeaderValues(input: CheckInput): Readonly<Record<string, readonly string[]>> {
  const out = nullMap<readonly string[]>()
  for (const name of Object.keys(input.headers)) out[name] = headerValues(input, name)
  return out
}

/** True when the header has more than one value in the sense of `headerValues`. */
export function isMultiValued(input: CheckInput, name: string): boolean {
  const v = input.headers[name]
  if (v === undefined || v.indexOf(',') === -1 || name === 'cookie') return false
  return !COMMA_IN_VALUE.has(name) || input.repeatedHeaders.includes(name)
}

/**
 * A 400 when a header that rules read as one value has several: a deny rule on `x-role == "admin"`
 * must not be passed by `x-role: user,admin`, and an allow rule must not be met by one value while
 * another says otherwise. `reads` is what the policy's rules read (`'all'`: every header).
 */
export function ambiguousHeader(input: CheckInput, reads: ReadonlySet<string> | 'all'): Decision | undefined {
  if (reads === 'all') {
    for (const name of Object.keys(input.headers))
      if (isMultiValued(input, name)) return ambiguous(input, name)
    return undefined
  }
  for (const name of reads) if (isMultiValued(input, name)) return ambiguous(input, name)
  return undefined
}

function ambiguous(input: CheckInput, name: string): Decision {
  const lines = input.repeatedHeaders.includes(name) ? 'arrived on several lines' : 'has a comma list'
  return refusal(
    'ambiguous_header',
    `header ${name} ${lines} and a rule reads it as one value (read every value with headerValues)`,
  )
}

/** True when `normalizeInput` returned a decision (the input was rejected). */
export function isDecision(v: CheckInput | Decision): v is Decision {
  return 'allowed' in v
}

/** Parse the body as JSON when the content type says JSON; undefined otherwise or when invalid. */
export function parseJsonBody(input: CheckInput, maxDepth: number): JsonParse | undefined {
  const body = input.body
  if (body === undefined || input.bodyTruncated) return undefined
  const ct = input.headers['content-type']
  if (ct === undefined || !isJsonContentType(ct)) return undefined
  const r = parseJsonLimited(body, maxDepth)
  // `{"amount": 5000, "amount": 1}`: JSON.parse keeps the last, other parsers the first.
  if ('value' in r && typeof r.value === 'object' && r.value !== null && hasDuplicateMember(body))
    return DUPLICATE_KEY
  return r
}

const DUPLICATE_KEY: JsonParse = Object.freeze({
  error: 'an object in the JSON body has the same key twice (parsers disagree on which one counts)',
  refusal: 'duplicate_json_key',
})

/** `application/json`, `application/*+json`, with or without parameters. */
export function isJsonContentType(ct: string): boolean {
  const semi = ct.indexOf(';')
  const mt = (semi === -1 ? ct : ct.slice(0, semi)).trim().toLowerCase()
  return mt === 'application/json' || (mt.startsWith('application/') && mt.endsWith('+json'))
}

/**
 * "invalid JSON", with the position when JSON.parse gives one. Its message also quotes the text
 * around the error, which may be a secret from the body, so that part is left out.
 */
export function jsonSyntaxError(e: unknown): string {
  const m = e instanceof Error ? e.message : ''
  const at = /position (\d+)/.exec(m)
  if (at !== null) return `invalid JSON at position ${at[1]}`
  const token = /^Unexpected token '(.)'/.exec(m)
  if (token !== null) return `invalid JSON: unexpected ${JSON.stringify(token[1])}`
  return m.startsWith('Unexpected end') ? 'invalid JSON: unexpected end' : 'invalid JSON'
}

/** `text` without a leading byte order mark, which decoders skip (TextDecoder, most servers). */
export function withoutBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

/** The outcome of `parseJsonLimited`: a value, or why there is none. */
export type JsonParse =
  | { readonly value: unknown }
  | { readonly error: string; readonly refusal?: InputRefusal }

/**
 * JSON.parse with a nesting limit checked on the text before parsing (an iterative scan, so deep
 * documents never reach a recursive walker). A leading byte order mark is skipped, as the
 * upstream's decoder would. A number JSON.parse turns into Infinity (`1e400`, 400 digits) is an
 * error with `refusal: 'non_finite_number'`: the text says a number no double holds, and a rule
 * comparing Infinity (`amount <= 1000` with `-1e400`) would decide on something the sender did not
 * write.
 */
export function parseJsonLimited(raw: string, maxDepth: number): JsonParse {
  const text = withoutBom(raw)
  let depth = 0
  let run = 0
  let maybeHuge = false
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c >= 48 && c <= 57) {
      // Only a literal with an exponent or more than 308 digits can overflow a double.
      if (++run > 308) maybeHuge = true
      continue
    }
    run = 0
    if (c === 34) {
      // Jump over the string: find the closing quote that is not escaped (an even run of
      // backslashes before it), without looking at every character in between.
      let j = i
      for (;;) {
        j = text.indexOf('"', j + 1)
        if (j === -1) return { error: 'invalid JSON: unterminated string' }
        let k = j - 1
        while (text.charCodeAt(k) === 92) k--
        if ((j - 1 - k) % 2 === 0) break
      }
      i = j
    } else if (c === 123 || c === 91) {
      if (++depth > maxDepth) return { error: `JSON nested deeper than ${maxDepth}` }
    } else if (c === 125 || c === 93) depth--
    else if (c === 101 || c === 69) {
      const p = text.charCodeAt(i - 1)
      if ((p >= 48 && p <= 57) || p === 46) maybeHuge = true
    }
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    return { error: jsonSyntaxError(e) }
  }
  if (maybeHuge && hasNonFinite(value)) return NON_FINITE
  return { value }
}

const NON_FINITE: JsonParse = Object.freeze({
  error: 'a number in the JSON body is too large for a double (it would read as Infinity)',
  refusal: 'non_finite_number',
})

/** True when a parsed JSON value holds a number that is not finite (iterative). */
export function hasNonFinite(root: unknown): boolean {
  const stack: unknown[] = [root]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return true
    } else if (typeof v === 'object' && v !== null) {
      if (Array.isArray(v)) for (const x of v) stack.push(x)
      else for (const k of Object.keys(v)) stack.push((v as Obj)[k])
    }
  }
  return false
}
