/**
 * What an evaluator sees for one request: the normalized input, the verified identity, the MCP
 * call, and the two Rego input dialects of protocols.md §3, each built only when first asked for.
 */
import { type Decision, deny, type Identity } from './decision.js'
import type { CheckInput, PeerInfo } from './input.js'
import { hasNonFinite, nullMap, parseJsonBody, parseJsonLimited, refusal } from './input.js'
import { hasDuplicateMember } from './jwt/json-members.js'

/** One JSON-RPC message of the Model Context Protocol, as seen by policies. */
export interface McpCall {
  /** JSON-RPC method, e.g. `tools/call`, `tools/list`, `initialize`. */
  readonly method: string
  /** Request id with its JSON type kept (string or integer); undefined for notifications. */
  readonly id: string | number | undefined
  /** The raw `params` object (empty object when absent). */
  readonly params: Readonly<Record<string, unknown>>
  /** `tools/call`: the tool name and arguments (arguments `{}` when absent). */
  readonly tool?: { readonly name: string; readonly arguments: Readonly<Record<string, unknown>> }
  /** `prompts/get`: the prompt name and arguments. */
  readonly prompt?: { readonly name: string; readonly arguments: Readonly<Record<string, unknown>> }
  /** `resources/read|subscribe|unsubscribe`: the resource URI. */
  readonly resource?: { readonly uri: string }
  /** Where the call was read from. */
  readonly from: 'metadata' | 'body' | 'metadata+body'
}

/** The per-request view handed to evaluators. Read-only for them. */
export interface RequestContext {
  readonly input: CheckInput
  /** Verified JWT claims; undefined when no token verified (so CEL `has(jwt.sub)` is false). */
  readonly jwt: Readonly<Record<string, unknown>> | undefined
  /** The JWT that verified, wherever the provider found it (CEL `jwt.rawToken`); never logged. */
  readonly jwtToken: string | undefined
  /** The identity established so far (JWT, else peer principal). */
  readonly identity: Identity | undefined
  /** The MCP message being authorized (one element at a time for a batch), if this is MCP traffic. */
  readonly mcp: McpCall | undefined
  /** The body parsed as JSON when the content type says JSON and it parses; else undefined. */
  readonly parsedBody: unknown
  /** The decision's clock, in milliseconds since the epoch. */
  readonly now: number
  /**
   * OPA-Envoy plugin input, as the plugin builds it from the same CheckRequest:
   * `{attributes, parsed_path, parsed_query, parsed_body, truncated_body, version, source_principal?}`
   * (docs/rego.md, "Input dialects"). Building it applies the plugin's body reading: a body the
   * plugin cannot read refuses the request with 400 `request_parse_error`.
   */
  opaEnvoyInput(): Readonly<Record<string, unknown>>
  /** Authorino well-known attributes: `{request, source, destination, metadata, auth}`. */
  authorinoInput(): Readonly<Record<string, unknown>>
  /**
   * A per-decision cache for evaluators (e.g. serialize the Rego input once for several rules).
   * `key` is any object the evaluator owns.
   */
  memo<T>(key: object, make: () => T): T
}

const NOT_PARSED = Symbol('not-parsed')

/** The engine's implementation of `RequestContext`. Not exported from the package. */
export class DecisionContext implements RequestContext {
  jwt: Readonly<Record<string, unknown>> | undefined = undefined
  jwtToken: string | undefined = undefined
  identity: Identity | undefined = undefined
  mcp: McpCall | undefined = undefined
  private body: unknown = NOT_PARSED
  private opa: Readonly<Record<string, unknown>> | undefined
  private authorino: Readonly<Record<string, unknown>> | undefined
  private cache: Map<object, unknown> | undefined

  constructor(
    readonly input: CheckInput,
    readonly now: number,
    private readonly maxJsonDepth: number,
  ) {}

  /**
   * Set when a rule read a body that must refuse the request whatever the rules decide (a number
   * JSON cannot hold): the engine answers with it instead of the rules' outcome.
   */
  refused: Decision | undefined = undefined

  get parsedBody(): unknown {
    if (this.body === NOT_PARSED) {
      const r = parseJsonBody(this.input, this.maxJsonDepth)
      this.body = r !== undefined && 'value' in r ? r.value : undefined
      if (r !== undefined && 'refusal' in r && r.refusal !== undefined)
        this.refused = refusal(r.refusal, r.error)
    }
    return this.body
  }

  memo<T>(key: object, make: () => T): T {
    this.cache ??= new Map()
    if (this.cache.has(key)) return this.cache.get(key) as T
    const v = make()
    this.cache.set(key, v)
    return v
  }

  opaEnvoyInput(): Readonly<Record<string, unknown>> {
    this.opa ??= buildOpaEnvoyInput(this, this.maxJsonDepth)
    return this.opa
  }

  authorinoInput(): Readonly<Record<string, unknown>> {
    this.authorino ??= buildAuthorinoInput(this)
    return this.authorino
  }

  /** Views depend on identity and the MCP element; drop them when either changes. */
  resetViews(): void {
    this.opa = undefined
    this.authorino = undefined
    this.cache = undefined
  }
}

// ---------------------------------------------------------------------------------------------
// OPA-Envoy dialect: the input document the opa-envoy plugin builds from a CheckRequest.
//
// The plugin walks the CheckRequest message and keeps every field that is set, under its protobuf
// JSON name: scalars at their zero value ("", 0, false), empty maps and empty lists are left out,
// a message that is present stays (even empty), 64-bit integers are numbers, enums are their
// numbers, bytes are standard base64, a Timestamp is `{seconds, nanos}` and a Struct plain JSON.
// verdict rebuilds that shape from the request as given to `decide()` (either JSON spelling, or
// what the gRPC server decoded), then puts in what the canonical request fixes (docs/rego.md):
// lower-case header names with Envoy's joined values, the canonical host, the upper-case method.
// ---------------------------------------------------------------------------------------------

type Obj = Record<string, unknown>

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

/** One field of a message, spelled either way (the normalizer refused both at once). */
function pick(o: Obj, camel: string, snake: string): unknown {
  const a = Object.hasOwn(o, camel) ? o[camel] : undefined
  if (a !== undefined && a !== null) return a
  const b = Object.hasOwn(o, snake) ? o[snake] : undefined
  return b === null ? undefined : b
}

function setKey(o: Obj, k: string, v: unknown): void {
  if (k === '__proto__')
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
  else o[k] = v
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

/** int64/uint32/int32 fields: numbers (proto-loader gives 64-bit values as strings). */
function num(v: unknown): number | undefined {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : typeof v === 'number' ? v : Number.NaN
  return Number.isFinite(n) && n !== 0 ? n : undefined
}

function bytesOf(v: unknown): Uint8Array | undefined {
  if (v instanceof Uint8Array) return v
  if (typeof v === 'string') return Buffer.from(v, 'base64')
  return undefined
}

/** Bytes as the plugin shows them: standard base64 with padding; empty is unset. */
function b64(v: unknown): string | undefined {
  const b = bytesOf(v)
  return b === undefined || b.length === 0
    ? undefined
    : Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64')
}

function stringMap(v: unknown): Obj | undefined {
  if (!isObj(v)) return undefined
  const keys = Object.keys(v)
  if (keys.length === 0) return undefined
  const out: Obj = {}
  for (const k of keys) if (typeof v[k] === 'string') setKey(out, k, v[k])
  return out
}

const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/i

/** A Timestamp (an RFC 3339 string in protobuf JSON, or `{seconds, nanos}`) as the plugin shows it. */
function timestamp(v: unknown): Obj | undefined {
  let seconds: number | undefined
  let nanos: number | undefined
  if (typeof v === 'string') {
    const m = RFC3339.exec(v)
    if (m === null) return undefined
    const ms = Date.parse(`${m[1]}${m[3]}`)
    if (Number.isNaN(ms)) return undefined
    seconds = ms / 1000
    nanos = m[2] === undefined ? 0 : Number(m[2].padEnd(9, '0'))
  } else if (isObj(v)) {
    seconds = num(v.seconds) ?? 0
    nanos = num(v.nanos) ?? 0
  } else return undefined
  const out: Obj = {}
  if (seconds !== 0) out.seconds = seconds
  if (nanos !== 0) out.nanos = nanos
  return out
}

function socketAddress(v: Obj): Obj {
  const out: Obj = {}
  const protocol = v.protocol
  if (protocol === 'UDP' || protocol === 1) out.protocol = 1
  const address = str(v.address)
  if (address !== undefined) out.address = address
  // `port_value` and `named_port` are a oneof: set means present, zero included.
  const port = pick(v, 'portValue', 'port_value')
  if (port !== undefined) out.portValue = num(port) ?? 0
  const named = pick(v, 'namedPort', 'named_port')
  if (typeof named === 'string') out.namedPort = named
  const resolver = str(pick(v, 'resolverName', 'resolver_name'))
  if (resolver !== undefined) out.resolverName = resolver
  if (pick(v, 'ipv4Compat', 'ipv4_compat') === true) out.ipv4Compat = true
  const netns = str(pick(v, 'networkNamespaceFilepath', 'network_namespace_filepath'))
  if (netns !== undefined) out.networkNamespaceFilepath = netns
  return out
}

function address(v: Obj): Obj {
  const out: Obj = {}
  const sa = pick(v, 'socketAddress', 'socket_address')
  if (isObj(sa)) out.socketAddress = socketAddress(sa)
  const pipe = v.pipe
  if (isObj(pipe)) {
    const p: Obj = {}
    const path = str(pipe.path)
    if (path !== undefined) p.path = path
    const mode = num(pipe.mode)
    if (mode !== undefined) p.mode = mode
    out.pipe = p
  }
  const internal = pick(v, 'envoyInternalAddress', 'envoy_internal_address')
  if (isObj(internal)) {
    const e: Obj = {}
    const listener = pick(internal, 'serverListenerName', 'server_listener_name')
    if (typeof listener === 'string') e.serverListenerName = listener
    const endpoint = str(pick(internal, 'endpointId', 'endpoint_id'))
    if (endpoint !== undefined) e.endpointId = endpoint
    out.envoyInternalAddress = e
  }
  return out
}

function peer(v: Obj): Obj {
  const out: Obj = {}
  if (isObj(v.address)) out.address = address(v.address)
  for (const k of ['service', 'principal', 'certificate']) {
    const s = str(v[k])
    if (s !== undefined) out[k] = s
  }
  const labels = stringMap(v.labels)
  if (labels !== undefined) out.labels = labels
  return out
}

function metadata(v: Obj): Obj {
  const out: Obj = {}
  const fm = pick(v, 'filterMetadata', 'filter_metadata')
  if (isObj(fm) && Object.keys(fm).length > 0) {
    const m: Obj = {}
    for (const k of Object.keys(fm)) setKey(m, k, fm[k])
    out.filterMetadata = m
  }
  const typed = pick(v, 'typedFilterMetadata', 'typed_filter_metadata')
  if (isObj(typed)) {
    const m: Obj = {}
    for (const k of Object.keys(typed)) {
      const any = typed[k]
      if (!isObj(any)) continue
      const a: Obj = {}
      const url = str(pick(any, 'typeUrl', 'type_url'))
      if (url !== undefined) a.typeUrl = url
      const value = b64(any.value)
      if (value !== undefined) a.value = value
      setKey(m, k, a)
    }
    if (Object.keys(m).length > 0) out.typedFilterMetadata = m
  }
  return out
}

function headerMapEntries(i: CheckInput, hm: Obj): Obj | undefined {
  const list = hm.headers
  const out: Obj = {}
  if (!Array.isArray(list)) return out
  const entries: Obj[] = []
  for (const hv of list) {
    if (!isObj(hv) || typeof hv.key !== 'string') continue
    const key = hv.key.toLowerCase()
    if (i.droppedHeaders.includes(key)) continue
    const e: Obj = { key }
    if (key === 'host' || key === ':authority') {
      if (i.host !== '') e.value = i.host
    } else {
      const value = str(hv.value)
      if (value !== undefined) e.value = value
      const raw = b64(pick(hv, 'rawValue', 'raw_value'))
      if (raw !== undefined) e.rawValue = raw
    }
    entries.push(e)
  }
  if (entries.length > 0) out.headers = entries
  return out
}

function httpRequest(i: CheckInput, h: Obj): Obj {
  const out: Obj = {}
  const id = str(h.id)
  if (id !== undefined) out.id = id
  if (str(h.method) !== undefined) out.method = i.method
  // Canonical: lower-case names, Envoy's joined values, the canonical host (docs/rego.md).
  if (hasKeys(h.headers)) out.headers = { ...i.headers }
  const path = str(h.path)
  if (path !== undefined) out.path = path
  if (str(h.host) !== undefined && i.host !== '') out.host = i.host
  for (const k of ['scheme', 'query', 'fragment']) {
    const s = str(h[k])
    if (s !== undefined) out[k] = s
  }
  const size = num(h.size)
  if (size !== undefined) out.size = size
  const protocol = str(h.protocol)
  if (protocol !== undefined) out.protocol = protocol
  const body = str(h.body)
  if (body !== undefined) out.body = body
  const rawBody = b64(pick(h, 'rawBody', 'raw_body'))
  if (rawBody !== undefined) out.rawBody = rawBody
  const hm = pick(h, 'headerMap', 'header_map')
  if (isObj(hm)) out.headerMap = headerMapEntries(i, hm)
  return out
}

/** `attributes` of a CheckRequest given to `decide()`, in the plugin's shape. */
function attributesFromCheckRequest(i: CheckInput, a: Obj): Obj {
  const out: Obj = {}
  if (isObj(a.source)) out.source = peer(a.source)
  if (isObj(a.destination)) out.destination = peer(a.destination)
  if (isObj(a.request)) {
    const r: Obj = {}
    const time = timestamp(a.request.time)
    if (time !== undefined) r.time = time
    if (isObj(a.request.http)) r.http = httpRequest(i, a.request.http)
    out.request = r
  }
  const ext = stringMap(pick(a, 'contextExtensions', 'context_extensions'))
  if (ext !== undefined) out.contextExtensions = ext
  const md = pick(a, 'metadataContext', 'metadata_context')
  if (isObj(md)) out.metadataContext = metadata(md)
  const rmd = pick(a, 'routeMetadataContext', 'route_metadata_context')
  if (isObj(rmd)) out.routeMetadataContext = metadata(rmd)
  const tls = pick(a, 'tlsSession', 'tls_session')
  if (isObj(tls)) {
    const sni = str(tls.sni)
    out.tlsSession = sni === undefined ? {} : { sni }
  }
  return out
}

function peerFromInfo(p: PeerInfo): Obj | undefined {
  const out: Obj = {}
  if (p.address !== undefined || p.port !== undefined) {
    const sa: Obj = {}
    if (p.address !== undefined && p.address !== '') sa.address = p.address
    if (p.port !== undefined && p.port !== 0) sa.portValue = p.port
    out.address = { socketAddress: sa }
  }
  if (p.service !== undefined && p.service !== '') out.service = p.service
  if (Object.keys(p.labels).length > 0) out.labels = { ...p.labels }
  if (p.principal !== undefined && p.principal !== '') out.principal = p.principal
  if (p.certificate !== undefined && p.certificate !== '') out.certificate = p.certificate
  return Object.keys(out).length > 0 ? out : undefined
}

/**
 * A plain HTTP-shaped request has no CheckRequest: the attributes are those Envoy would send for
 * it (set fields only; `size` from a numeric `content-length`).
 */
function attributesFromHttp(i: CheckInput): Obj {
  const http: Obj = {}
  if (i.id !== undefined && i.id !== '') http.id = i.id
  if (i.method !== '') http.method = i.method
  if (Object.keys(i.headers).length > 0) http.headers = { ...i.headers }
  if (i.rawPath !== '') http.path = i.rawPath
  if (i.host !== '') http.host = i.host
  if (i.scheme !== '') http.scheme = i.scheme
  const cl = i.headers['content-length']
  if (cl !== undefined && /^\d+$/.test(cl) && Number(cl) > 0) http.size = Number(cl)
  if (i.protocol !== '') http.protocol = i.protocol
  if (i.body !== undefined && i.body !== '') http.body = i.body
  const out: Obj = { request: { http } }
  const source = peerFromInfo(i.source)
  if (source !== undefined) out.source = source
  const destination = peerFromInfo(i.destination)
  if (destination !== undefined) out.destination = destination
  if (Object.keys(i.contextExtensions).length > 0) out.contextExtensions = { ...i.contextExtensions }
  if (Object.keys(i.filterMetadata).length > 0) out.metadataContext = { filterMetadata: i.filterMetadata }
  if (Object.keys(i.routeMetadata).length > 0) out.routeMetadataContext = { filterMetadata: i.routeMetadata }
  if (i.tlsSni !== undefined) out.tlsSession = { sni: i.tlsSni }
  return out
}

/** What the plugin makes of the body: `parsed_body`, `truncated_body`, or a parse error (400). */
interface PluginBody {
  readonly parsed: unknown
  readonly truncated: boolean
  /** `request_parse_error: <error>` answers the request (400) before the policy's answer counts. */
  readonly error?: string
  /** A canonical-request refusal (duplicate keys, a number no double holds). */
  readonly refusal?: Decision
}

const NO_BODY: PluginBody = Object.freeze({ parsed: null, truncated: false })

/** The raw `http` message of a CheckRequest input, when there is one. */
function rawHttp(i: CheckInput): Obj | undefined {
  if (i.dialect === 'http') return undefined
  const a = i.raw.attributes
  if (!isObj(a) || !isObj(a.request) || !isObj(a.request.http)) return undefined
  return a.request.http
}

/** An object with at least one own key (a map field that is set), without copying it. */
function hasKeys(v: unknown): boolean {
  return isObj(v) && Object.keys(v).length > 0
}

/**
 * The body the plugin reads (`body`, else `raw_body`), as the string or bytes given (not copied),
 * and the headers it looks in: only the `headers` map (a CheckRequest that carries `header_map`
 * alone is never parsed).
 */
function pluginBodySource(
  i: CheckInput,
): { body: string | Uint8Array; headers: Readonly<Record<string, string>> } | undefined {
  const h = rawHttp(i)
  if (h === undefined) return { body: i.body ?? '', headers: i.headers }
  if (!hasKeys(h.headers)) return undefined
  const body = str(h.body)
  if (body !== undefined) return { body, headers: i.headers }
  return { body: bytesOf(pick(h, 'rawBody', 'raw_body')) ?? EMPTY_BYTES, headers: i.headers }
}

const EMPTY_BYTES = new Uint8Array(0)

/** Go's `strconv.ParseInt(s, 10, 64)`: the value, or its error text. */
function parseGoInt(s: string): bigint | string {
  if (!/^[+-]?\d+$/.test(s)) return `strconv.ParseInt: parsing ${goQuote(s)}: invalid syntax`
  const v = BigInt(s)
  if (v > 9223372036854775807n || v < -9223372036854775808n)
    return `strconv.ParseInt: parsing ${goQuote(s)}: value out of range`
  return v
}

const SHORT_DIGITS = /^\d{1,15}$/

/** `content-length` against the body: the plugin's truncation test, or a parse error. */
function cutShort(headers: Readonly<Record<string, string>>, length: number): boolean | string {
  const cl = headers['content-length']
  if (cl === undefined) return false
  // The common case, digits only: exact as a double up to 15 digits.
  if (SHORT_DIGITS.test(cl)) return Number(cl) > length
  const v = parseGoInt(cl)
  if (typeof v === 'string') return v
  return v !== -1n && v > BigInt(length)
}

/** UTF-8 that must be valid (a body given as bytes is read as text without a second copy). */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * The body as well-formed text with no byte order mark, when it is one: then its UTF-8 bytes are
 * exactly the bytes the plugin reads, and JSON.parse accepting the whole text means Go's decoder
 * accepts it too, with the same value (the two grammars agree on a complete document). Else
 * undefined: the body takes the byte-by-byte reading of Go's scanner.
 */
function plainText(body: string | Uint8Array): string | undefined {
  let text: string
  if (typeof body === 'string') {
    if (!(body as unknown as { isWellFormed(): boolean }).isWellFormed()) return undefined
    text = body
  } else {
    try {
      text = strictUtf8.decode(body)
    } catch {
      return undefined
    }
  }
  return text.charCodeAt(0) === 0xfeff ? undefined : text
}

/** The parsed JSON value of a complete body, or the canonical request's refusal of it. */
function parsedJson(r: { value: unknown }, text: string): PluginBody {
  if (typeof r.value === 'object' && r.value !== null && hasDuplicateMember(text))
    return {
      parsed: null,
      truncated: false,
      refusal: refusal(
        'duplicate_json_key',
        'an object in the JSON body has the same key twice (parsers disagree on which one counts)',
      ),
    }
  return { parsed: r.value, truncated: false }
}

/**
 * A complete JSON body in one pass over the text (nesting, numbers that may overflow, member
 * count) and one JSON.parse. Undefined for anything that is not plainly valid, which the full
 * reading then answers: too deep, not JSON, a number no double holds.
 *
 * Duplicate names: every `:` outside strings ends one member name, so the text has as many members
 * as colons; JSON.parse keeps one key per name (after unescaping), so the parsed objects hold
 * fewer keys exactly when some object names a member twice.
 */
function quickJson(text: string, maxDepth: number): PluginBody | undefined {
  let depth = 0
  let members = 0
  let maybeHuge = false
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      // Jump to the closing quote: the next `"` after an even run of backslashes.
      let j = i
      for (;;) {
        j = text.indexOf('"', j + 1)
        if (j === -1) return undefined
        let k = j - 1
        while (text.charCodeAt(k) === 92) k--
        if ((j - 1 - k) % 2 === 0) break
      }
      i = j
    } else if (c === 58) members++
    else if (c === 123 || c === 91) {
      if (++depth > maxDepth) return undefined
    } else if (c === 125 || c === 93) depth--
    else if (c === 101 || c === 69) {
      // An exponent (not the `e` of true or false).
      const p = text.charCodeAt(i - 1)
      if ((p >= 48 && p <= 57) || p === 46) maybeHuge = true
    } else if (c >= 48 && c <= 57 && !maybeHuge) {
      // More than 308 digits in a row can overflow a double too.
      let k = i
      while (k < n && text.charCodeAt(k) >= 48 && text.charCodeAt(k) <= 57) k++
      if (k - i > 308) maybeHuge = true
      i = k - 1
    }
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (maybeHuge && hasNonFinite(value)) return undefined
  if (typeof value === 'object' && value !== null && countKeys(value) !== members)
    return {
      parsed: null,
      truncated: false,
      refusal: refusal(
        'duplicate_json_key',
        'an object in the JSON body has the same key twice (parsers disagree on which one counts)',
      ),
    }
  return { parsed: value, truncated: false }
}

/** Keys of every object in a parsed JSON value (iterative). */
function countKeys(root: object): number {
  let count = 0
  const stack: unknown[] = [root]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v !== 'object' || v === null) continue
    if (Array.isArray(v)) {
      for (const x of v) if (typeof x === 'object' && x !== null) stack.push(x)
    } else {
      const keys = Object.keys(v)
      count += keys.length
      for (const k of keys) {
        const x = (v as Obj)[k]
        if (typeof x === 'object' && x !== null) stack.push(x)
      }
    }
  }
  return count
}

function pluginBody(i: CheckInput, maxDepth: number): PluginBody {
  const src = pluginBodySource(i)
  if (src === undefined) return NO_BODY
  const ct = src.headers['content-type']
  if (ct === undefined) return NO_BODY
  const json = ct.includes('application/json')
  if (!json && !ct.includes('application/x-www-form-urlencoded')) return NO_BODY
  const body = src.body
  const length = typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.length
  if (length === 0) return NO_BODY
  const cut = cutShort(src.headers, length)
  if (typeof cut === 'string') return { parsed: null, truncated: false, error: cut }
  // Deliberate: Envoy's partial-body header also marks the body cut (docs/rego.md).
  if (cut || i.bodyTruncated) return { parsed: null, truncated: true }
  if (json) {
    // Most bodies are valid JSON: one scan and one parse answer, and only a body they refuse is
    // read again by Go's rules below, for the error text the plugin would send.
    const text = plainText(body)
    const fast = text === undefined ? undefined : quickJson(text, maxDepth)
    if (fast !== undefined) return fast
  }
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body
  if (!json) {
    const form = parseGoForm(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1'))
    return typeof form === 'string'
      ? { parsed: null, truncated: false, error: form }
      : { parsed: form, truncated: false }
  }
  const syntax = goJsonError(bytes)
  if ('error' in syntax) return { parsed: null, truncated: false, error: syntax.error }
  // Valid for Go, which reads the first value only (a trailing `null` token passes); invalid
  // UTF-8 reads as U+FFFD, as Go's decoder reads it.
  const text = new TextDecoder('utf-8').decode(bytes.subarray(0, syntax.end))
  const r = parseJsonLimited(text, maxDepth)
  if ('error' in r) {
    if (r.refusal !== undefined)
      return { parsed: null, truncated: false, refusal: refusal(r.refusal, r.error) }
    return { parsed: null, truncated: false, error: r.error }
  }
  // parseJsonLimited refused a number no double holds (non_finite_number) already.
  return parsedJson(r, text)
}

/** The plugin's 400 for a body it cannot read: gRPC 7, status BadRequest, `request_parse_error: ...`. */
export function requestParseError(error: string): Decision {
  const body = `request_parse_error: ${error}`
  return deny(400, `malformed input: ${body}`, {
    code: 'malformed_input',
    detailCode: 'request_parse_error',
    body,
  })
}

/** Go's `strconv.Quote` of a string of bytes given as Latin-1 characters. */
function goQuote(s: string): string {
  let out = '"'
  for (const ch of s) out += ch === '"' ? '\\"' : goEscape(ch.charCodeAt(0))
  return `${out}"`
}

/** One rune as `strconv.Quote` writes it inside quotes (runes up to U+00FF only). */
function goEscape(c: number): string {
  switch (c) {
    case 7:
      return '\\a'
    case 8:
      return '\\b'
    case 9:
      return '\\t'
    case 10:
      return '\\n'
    case 11:
      return '\\v'
    case 12:
      return '\\f'
    case 13:
      return '\\r'
    case 92:
      return '\\\\'
  }
  if (c < 0x20 || c === 0x7f) return `\\x${c.toString(16).padStart(2, '0')}`
  if ((c >= 0x80 && c <= 0xa0) || c === 0xad) return `\\u${c.toString(16).padStart(4, '0')}`
  if (c > 0xff) return String.fromCharCode(c)
  return String.fromCharCode(c)
}

/** encoding/json's `quoteChar`: the byte that stopped the scanner, as its error shows it. */
function quoteChar(c: number): string {
  if (c === 0x27) return "'\\''"
  if (c === 0x22) return `'"'`
  return `'${goEscape(c)}'`
}

enum P {
  ObjectKey,
  ObjectValue,
  ArrayValue,
}

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)
}

type Scan = { end: number } | { error: string }

/**
 * One JSON value from `at`, as Go's encoding/json scanner reads it (iterative): where it ends, or
 * the scanner's error text. A value that stops at the end of the bytes is `unexpected EOF`.
 */
function scanGoValue(b: Uint8Array, at: number): Scan {
  const n = b.length
  const stack: P[] = []
  let i = at
  const err = (c: number, ctx: string): Scan => ({ error: `invalid character ${quoteChar(c)} ${ctx}` })
  const EOF: Scan = { error: 'unexpected EOF' }
  for (;;) {
    // Begin a value at i (whitespace allowed).
    while (i < n && isWs(b[i]!)) i++
    if (i >= n) return EOF
    let c = b[i]!
    let scalarEnd = -1
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      i++
      while (i < n && isWs(b[i]!)) i++
      if (i >= n) return EOF
      const close = c === 0x7b ? 0x7d : 0x5d
      if (b[i] === close) {
        i++
        scalarEnd = i
      } else if (c === 0x7b) {
        if (b[i] !== 0x22) return err(b[i]!, 'looking for beginning of object key string')
        stack.push(P.ObjectKey)
        const s = scanGoString(b, i)
        if ('error' in s) return s
        i = s.end
        // After a key: `:`.
        while (i < n && isWs(b[i]!)) i++
        if (i >= n) return EOF
        if (b[i] !== 0x3a) return err(b[i]!, 'after object key')
        i++
        stack[stack.length - 1] = P.ObjectValue
        continue
      } else {
        stack.push(P.ArrayValue)
        continue
      }
    } else if (c === 0x22) {
      const s = scanGoString(b, i)
      if ('error' in s) return s
      scalarEnd = s.end
    } else if (c === 0x2d || isDigit(c)) {
      const s = scanGoNumber(b, i)
      if ('error' in s) return s
      scalarEnd = s.end
    } else if (c === 0x74 || c === 0x66 || c === 0x6e) {
      const word = c === 0x74 ? 'true' : c === 0x66 ? 'false' : 'null'
      for (let k = 1; k < word.length; k++) {
        if (i + k >= n) return EOF
        if (b[i + k] !== word.charCodeAt(k))
          return err(b[i + k]!, `in literal ${word} (expecting '${word[k]}')`)
      }
      scalarEnd = i + word.length
    } else return err(c, 'looking for beginning of value')
    i = scalarEnd
    // End of a value: close containers or go on with the next element.
    for (;;) {
      if (stack.length === 0) return { end: i }
      while (i < n && isWs(b[i]!)) i++
      if (i >= n) return EOF
      c = b[i]!
      const top = stack[stack.length - 1]!
      if (top === P.ObjectValue) {
        if (c === 0x2c) {
          i++
          while (i < n && isWs(b[i]!)) i++
          if (i >= n) return EOF
          if (b[i] !== 0x22) return err(b[i]!, 'looking for beginning of object key string')
          const s = scanGoString(b, i)
          if ('error' in s) return s
          i = s.end
          while (i < n && isWs(b[i]!)) i++
          if (i >= n) return EOF
          if (b[i] !== 0x3a) return err(b[i]!, 'after object key')
          i++
          break
        }
        if (c === 0x7d) {
          stack.pop()
          i++
          continue
        }
        return err(c, 'after object key:value pair')
      }
      if (c === 0x2c) {
        i++
        break
      }
      if (c === 0x5d) {
        stack.pop()
        i++
        continue
      }
      return err(c, 'after array element')
    }
  }
}

function scanGoString(b: Uint8Array, at: number): Scan & { text?: string } {
  const n = b.length
  let i = at + 1
  while (i < n) {
    const c = b[i]!
    if (c === 0x22) return { end: i + 1 }
    if (c === 0x5c) {
      i++
      if (i >= n) return { error: 'unexpected EOF' }
      const e = b[i]!
      if (e === 0x75) {
        for (let k = 1; k <= 4; k++) {
          if (i + k >= n) return { error: 'unexpected EOF' }
          if (!isHex(b[i + k]!))
            return { error: `invalid character ${quoteChar(b[i + k]!)} in \\u hexadecimal character escape` }
        }
        i += 5
        continue
      }
      if (!'bfnrt\\/"'.includes(String.fromCharCode(e)))
        return { error: `invalid character ${quoteChar(e)} in string escape code` }
      i++
      continue
    }
    if (c < 0x20) return { error: `invalid character ${quoteChar(c)} in string literal` }
    i++
  }
  return { error: 'unexpected EOF' }
}

/** A number from `at`; it ends at the first byte that cannot continue it. */
function scanGoNumber(b: Uint8Array, at: number): Scan {
  const n = b.length
  let i = at
  const EOF: Scan = { error: 'unexpected EOF' }
  if (b[i] === 0x2d) {
    i++
    if (i >= n) return EOF
    if (!isDigit(b[i]!)) return { error: `invalid character ${quoteChar(b[i]!)} in numeric literal` }
  }
  if (b[i] === 0x30) i++
  else while (i < n && isDigit(b[i]!)) i++
  if (i < n && b[i] === 0x2e) {
    i++
    if (i >= n) return EOF
    if (!isDigit(b[i]!))
      return { error: `invalid character ${quoteChar(b[i]!)} after decimal point in numeric literal` }
    while (i < n && isDigit(b[i]!)) i++
  }
  if (i < n && (b[i] === 0x65 || b[i] === 0x45)) {
    i++
    if (i < n && (b[i] === 0x2b || b[i] === 0x2d)) i++
    if (i >= n) return EOF
    if (!isDigit(b[i]!))
      return { error: `invalid character ${quoteChar(b[i]!)} in exponent of numeric literal` }
    while (i < n && isDigit(b[i]!)) i++
  }
  return { end: i }
}

/**
 * The error the plugin reports for a JSON body, or where its value ends when it reads it: OPA
 * decodes one value with Go's decoder, then reads one more token and refuses anything but the end
 * of the text (or a `null`, which Go's tokenizer reports as no token).
 */
function goJsonError(b: Uint8Array): { error: string } | { end: number } {
  let i = 0
  while (i < b.length && isWs(b[i]!)) i++
  if (i >= b.length) return { error: 'EOF' }
  const first = scanGoValue(b, i)
  if ('error' in first) return first
  const end = first.end
  i = end
  while (i < b.length && isWs(b[i]!)) i++
  if (i >= b.length) return { end }
  const c = b[i]!
  if (c === 0x5d || c === 0x7d || c === 0x3a || c === 0x2c)
    return { error: `invalid character ${quoteChar(c)} looking for beginning of value` }
  if (c === 0x5b || c === 0x7b)
    return { error: `error: invalid character '${String.fromCharCode(c)}' after top-level value` }
  const next = scanGoValue(b, i)
  if ('error' in next) return next
  const token = Buffer.from(b.subarray(i, next.end)).toString('utf8')
  if (token === 'null') return { end }
  // OPA names the token as Go prints it: a string unquoted, a number or literal as written.
  const text = c === 0x22 ? (JSON.parse(token) as string) : token
  return { error: `error: invalid character '${text}' after top-level value` }
}

/** Go's `url.QueryUnescape`: the text (bytes as UTF-8, invalid sequences U+FFFD) or the error. */
function goUnescape(s: string): string | { error: string } {
  const bytes: number[] = []
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0x25) {
      if (i + 2 >= s.length || !isHex(s.charCodeAt(i + 1)) || !isHex(s.charCodeAt(i + 2)))
        return { error: `invalid URL escape ${goQuote(s.slice(i, i + 3))}` }
      bytes.push(Number.parseInt(s.slice(i + 1, i + 3), 16))
      i += 2
    } else if (c === 0x2b) bytes.push(0x20)
    else bytes.push(c)
  }
  return new TextDecoder('utf-8').decode(Uint8Array.from(bytes))
}

/** Go's `url.ParseQuery` on a form body (bytes as Latin-1 characters): name -> values, or the first error. */
function parseGoForm(text: string): Record<string, string[]> | string {
  const out = nullMap<string[]>()
  let first: string | undefined
  for (const part of text.split('&')) {
    if (part.includes(';')) {
      // Go sets this one whatever error came before.
      first = 'invalid semicolon separator in query'
      continue
    }
    if (part === '') continue
    const eq = part.indexOf('=')
    const k = goUnescape(eq === -1 ? part : part.slice(0, eq))
    if (typeof k !== 'string') {
      first ??= k.error
      continue
    }
    const v = goUnescape(eq === -1 ? '' : part.slice(eq + 1))
    if (typeof v !== 'string') {
      first ??= v.error
      continue
    }
    const list = out[k]
    if (list === undefined) out[k] = [v]
    else list.push(v)
  }
  return first ?? out
}

function mcpView(m: McpCall | undefined): Record<string, unknown> | undefined {
  if (m === undefined) return undefined
  const v: Record<string, unknown> = { method: m.method, params: m.params }
  if (m.id !== undefined) v.id = m.id
  if (m.tool !== undefined) v.tool = m.tool
  if (m.prompt !== undefined) v.prompt = m.prompt
  if (m.resource !== undefined) v.resource = m.resource
  return v
}

/**
 * OPA-Envoy input, field for field as the plugin builds it (docs/rego.md lists each field and the
 * deliberate differences). verdict adds `jwt` (verified claims) and `mcp` (the MCP message being
 * authorized). A body the plugin cannot read sets the decision's refusal: 400
 * `request_parse_error`, whatever the rules answer.
 */
function buildOpaEnvoyInput(ctx: DecisionContext, maxJsonDepth: number): Record<string, unknown> {
  const i = ctx.input
  const a = i.dialect === 'http' ? undefined : i.raw.attributes
  const attributes = isObj(a) ? attributesFromCheckRequest(i, a) : attributesFromHttp(i)
  const trimmed = i.path.replace(/^\/+/, '')
  const body = pluginBody(i, maxJsonDepth)
  if (body.error !== undefined) ctx.refused ??= requestParseError(body.error)
  else if (body.refusal !== undefined) ctx.refused ??= body.refusal
  const out: Record<string, unknown> = {
    attributes,
    parsed_path: trimmed.split('/'),
    parsed_query: i.query,
    parsed_body: body.parsed,
    truncated_body: body.truncated,
    version: { encoding: 'protojson', ext_authz: 'v3' },
  }
  if (i.source.principal !== undefined && i.source.principal !== '') out.source_principal = i.source.principal
  if (ctx.jwt !== undefined) out.jwt = ctx.jwt
  const mcp = mcpView(ctx.mcp)
  if (mcp !== undefined) out.mcp = mcp
  return out
}

// ---------------------------------------------------------------------------------------------
// Authorino dialect: Authorino's Authorization JSON. Its well-known attributes (`request`, `source`,
// `destination`, `metadata`, `auth`; Kuadrant's well-known attributes RFC 0002 and Authorino's
// pkg/service/well_known_attributes.go) and the older `context`, the CheckRequest's
// AttributeContext as Go's encoding/json writes it. Both are derived from the same attributes the
// OPA-Envoy dialect builds (set fields only), so what the canonical request fixes is fixed here too.
// ---------------------------------------------------------------------------------------------

/** Go's `omitempty` for the string, number and map fields of Authorino's attribute structs. */
function putSet(o: Obj, k: string, v: unknown): void {
  if (v === undefined || v === '' || v === 0) return
  if (isObj(v) && Object.keys(v).length === 0) return
  o[k] = v
}

/** A well-known `source` / `destination`: address, port, service, labels, principal, certificate. */
function wellKnownPeer(p: unknown): Obj {
  const out: Obj = {}
  if (!isObj(p)) return out
  const sa = isObj(p.address) && isObj(p.address.socketAddress) ? p.address.socketAddress : {}
  putSet(out, 'address', sa.address)
  putSet(out, 'port', sa.portValue)
  putSet(out, 'service', p.service)
  putSet(out, 'labels', p.labels)
  putSet(out, 'principal', p.principal)
  putSet(out, 'certificate', p.certificate)
  return out
}

/** `request.grpc` (newer Authorino): a gRPC content type and a `/Service/Method` path. */
function grpcAttributes(headers: Readonly<Record<string, string>>, path: string): Obj | undefined {
  if (!(headers['content-type'] ?? '').startsWith('application/grpc')) return undefined
  const m = /^\/([^/]+)\/([^/]+)$/.exec(path)
  return m === null ? undefined : { service: m[1], method: m[2] }
}

/** A protobuf Struct as Go's encoding/json writes the generated type: `fields` and `Kind` wrappers. */
function goStruct(v: unknown): Obj {
  const out: Obj = {}
  if (!isObj(v)) return out
  const keys = Object.keys(v)
  if (keys.length === 0) return out
  const fields: Obj = {}
  for (const k of keys) setKey(fields, k, goValue(v[k]))
  out.fields = fields
  return out
}

function goValue(v: unknown): Obj {
  if (v === null || v === undefined) return { Kind: { NullValue: 0 } }
  if (typeof v === 'number') return { Kind: { NumberValue: v } }
  if (typeof v === 'string') return { Kind: { StringValue: v } }
  if (typeof v === 'boolean') return { Kind: { BoolValue: v } }
  if (Array.isArray(v)) return { Kind: { ListValue: v.length === 0 ? {} : { values: v.map(goValue) } } }
  return { Kind: { StructValue: goStruct(v) } }
}

/** An Address message as Go's encoding/json writes it: the oneof under its Go field names. */
function goAddress(a: Obj): Obj {
  const inner: Obj = {}
  if (isObj(a.socketAddress)) {
    const sa = a.socketAddress
    const s: Obj = {}
    putSet(s, 'protocol', sa.protocol)
    putSet(s, 'address', sa.address)
    if (sa.portValue !== undefined) s.PortSpecifier = { PortValue: sa.portValue }
    else if (sa.namedPort !== undefined) s.PortSpecifier = { NamedPort: sa.namedPort }
    putSet(s, 'resolver_name', sa.resolverName)
    if (sa.ipv4Compat === true) s.ipv4_compat = true
    inner.SocketAddress = s
  } else if (isObj(a.pipe)) {
    const pipe: Obj = {}
    putSet(pipe, 'path', a.pipe.path)
    putSet(pipe, 'mode', a.pipe.mode)
    inner.Pipe = pipe
  } else if (isObj(a.envoyInternalAddress)) {
    const e = a.envoyInternalAddress
    const internal: Obj = {}
    if (e.serverListenerName !== undefined)
      internal.AddressNameSpecifier = { ServerListenerName: e.serverListenerName }
    putSet(internal, 'endpoint_id', e.endpointId)
    inner.EnvoyInternalAddress = internal
  }
  return Object.keys(inner).length === 0 ? {} : { Address: inner }
}

function goPeer(p: Obj): Obj {
  const out: Obj = {}
  if (isObj(p.address)) out.address = goAddress(p.address)
  putSet(out, 'service', p.service)
  putSet(out, 'labels', p.labels)
  putSet(out, 'principal', p.principal)
  putSet(out, 'certificate', p.certificate)
  return out
}

function goMetadata(m: Obj): Obj {
  const out: Obj = {}
  if (isObj(m.filterMetadata)) {
    const fm: Obj = {}
    for (const k of Object.keys(m.filterMetadata)) setKey(fm, k, goStruct(m.filterMetadata[k]))
    out.filter_metadata = fm
  }
  if (isObj(m.typedFilterMetadata)) {
    const tm: Obj = {}
    for (const k of Object.keys(m.typedFilterMetadata)) {
      const any = m.typedFilterMetadata[k] as Obj
      const a: Obj = {}
      putSet(a, 'type_url', any.typeUrl)
      putSet(a, 'value', any.value)
      setKey(tm, k, a)
    }
    out.typed_filter_metadata = tm
  }
  return out
}

/** The HttpRequest message under the Go field tags (snake_case). */
function goHttp(h: Obj): Obj {
  const out: Obj = {}
  for (const k of [
    'id',
    'method',
    'headers',
    'path',
    'host',
    'scheme',
    'query',
    'fragment',
    'size',
    'protocol',
    'body',
  ])
    putSet(out, k, h[k])
  putSet(out, 'raw_body', h.rawBody)
  if (isObj(h.headerMap)) {
    const list = Array.isArray(h.headerMap.headers) ? (h.headerMap.headers as Obj[]) : []
    const headers = list.map((e) => {
      const o: Obj = {}
      putSet(o, 'key', e.key)
      putSet(o, 'value', e.value)
      putSet(o, 'raw_value', e.rawValue)
      return o
    })
    out.header_map = headers.length === 0 ? {} : { headers }
  }
  return out
}

/** `context`: the AttributeContext as Authorino's Go code marshals it (encoding/json of the proto types). */
function goAttributeContext(a: Obj): Obj {
  const out: Obj = {}
  if (isObj(a.source)) out.source = goPeer(a.source)
  if (isObj(a.destination)) out.destination = goPeer(a.destination)
  if (isObj(a.request)) {
    const r: Obj = {}
    if (isObj(a.request.time)) r.time = a.request.time
    if (isObj(a.request.http)) r.http = goHttp(a.request.http)
    out.request = r
  }
  putSet(out, 'context_extensions', a.contextExtensions)
  if (isObj(a.metadataContext)) out.metadata_context = goMetadata(a.metadataContext)
  if (isObj(a.routeMetadataContext)) out.route_metadata_context = goMetadata(a.routeMetadataContext)
  if (isObj(a.tlsSession)) out.tls_session = { ...a.tlsSession }
  return out
}

/**
 * Authorino's Authorization JSON (docs/rego.md lists each field and where it comes from): the
 * well-known attributes `request`, `source`, `destination`, `metadata`, `auth`, and the older
 * `context`. verdict adds `mcp` (the MCP message being authorized) and, when the MCP call's
 * arguments were read from the body and the filter metadata lacks them, puts them under
 * `metadata.filter_metadata.mcp_proxy.params` so policies written against the metadata (seed 001)
 * see them.
 */
function buildAuthorinoInput(ctx: DecisionContext): Record<string, unknown> {
  const i = ctx.input
  const raw = i.dialect === 'http' ? undefined : i.raw.attributes
  const attributes = isObj(raw) ? attributesFromCheckRequest(i, raw) : attributesFromHttp(i)
  const r = isObj(attributes.request) ? attributes.request : {}
  const h = isObj(r.http) ? r.http : {}
  const request: Obj = {}
  putSet(request, 'id', h.id)
  if (isObj(r.time)) request.time = r.time
  putSet(request, 'protocol', h.protocol)
  putSet(request, 'scheme', h.scheme)
  putSet(request, 'host', h.host)
  putSet(request, 'method', h.method)
  putSet(request, 'path', h.path)
  if (h.path !== undefined) {
    putSet(request, 'url_path', i.path)
    putSet(request, 'query', i.rawQuery)
  }
  if (Object.keys(i.headers).length > 0) request.headers = { ...i.headers }
  const referer = i.headers.referer
  putSet(request, 'referer', referer)
  const userAgent = i.headers['user-agent']
  putSet(request, 'user_agent', userAgent)
  putSet(request, 'useragent', userAgent)
  putSet(request, 'size', h.size)
  putSet(request, 'body', h.body)
  putSet(request, 'raw_body', h.rawBody)
  putSet(request, 'context_extensions', attributes.contextExtensions)
  const grpc = grpcAttributes(i.headers, i.path)
  if (grpc !== undefined) request.grpc = grpc

  const out: Record<string, unknown> = {
    context: goAttributeContext(attributes),
    request,
    source: wellKnownPeer(attributes.source),
    destination: wellKnownPeer(attributes.destination),
  }
  let filterMetadata: Readonly<Record<string, unknown>> = i.filterMetadata
  const m = ctx.mcp
  if (m !== undefined && m.from !== 'metadata') filterMetadata = withMcpArguments(filterMetadata, m)
  if (isObj(attributes.metadataContext) || Object.keys(filterMetadata).length > 0)
    out.metadata = Object.keys(filterMetadata).length > 0 ? { filter_metadata: filterMetadata } : {}
  const auth: Record<string, unknown> = { metadata: {}, authorization: {}, response: {} }
  if (ctx.jwt !== undefined) auth.identity = ctx.jwt
  else if (ctx.identity !== undefined)
    auth.identity = { principal: ctx.identity.principal, sub: ctx.identity.subject }
  out.auth = auth
  const mcp = mcpView(m)
  if (mcp !== undefined) out.mcp = mcp
  return out
}

function withMcpArguments(
  fm: Readonly<Record<string, unknown>>,
  m: McpCall,
): Readonly<Record<string, unknown>> {
  const key =
    fm['envoy.filters.http.mcp'] !== undefined && fm.mcp_proxy === undefined
      ? 'envoy.filters.http.mcp'
      : 'mcp_proxy'
  const existing = (fm[key] ?? {}) as Record<string, unknown>
  const params = (existing.params ?? {}) as Record<string, unknown>
  const args = m.tool?.arguments ?? m.prompt?.arguments
  const merged: Record<string, unknown> = { ...existing, jsonrpc: '2.0', method: m.method }
  if (m.id !== undefined) merged.id = m.id
  // The body is what the upstream executes (extraction checked that name and arguments agree),
  // so its params win; the metadata only fills in what the body lacks.
  merged.params = { ...params, ...m.params, ...(args !== undefined ? { arguments: args } : {}) }
  const out = nullMap<unknown>()
  for (const k of Object.keys(fm)) out[k] = fm[k]
  out[key] = merged
  return out
}
