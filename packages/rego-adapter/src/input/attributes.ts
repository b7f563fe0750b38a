/**
 * The CheckRequest's `attributes` as the OPA-Envoy plugin puts them in its input document, rebuilt
 * from the request as given to `decide()`; both input dialects start from them.
 *
 * The plugin walks the CheckRequest message and keeps every field that is set, under its protobuf
 * JSON name: scalars at their zero value ("", 0, false), empty maps and empty lists are left out,
 * a message that is present stays (even empty), 64-bit integers are numbers, enums are their
 * numbers, bytes are standard base64, a Timestamp is `{seconds, nanos}` and a Struct plain JSON.
 * verdict rebuilds that shape from the request as given to `decide()` (either JSON spelling, or
 * what the gRPC server decoded), then puts in what the canonical request fixes (docs/rego.md):
 * lower-case header names with Envoy's joined values, the canonical host, the upper-case method.
 */
import type { CheckInput, McpCall, PeerInfo } from '@verdict/core/internal'
import { fromBase64, toBase64 } from './bytes.js'

export type Obj = Record<string, unknown>

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

/** One field of a message, spelled either way (the normalizer refused both at once). */
export function pick(o: Obj, camel: string, snake: string): unknown {
  const a = Object.hasOwn(o, camel) ? o[camel] : undefined
  if (a !== undefined && a !== null) return a
  const b = Object.hasOwn(o, snake) ? o[snake] : undefined
  return b === null ? undefined : b
}

export function setKey(o: Obj, k: string, v: unknown): void {
  if (k === '__proto__')
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
  else o[k] = v
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

/** int64/uint32/int32 fields: numbers (proto-loader gives 64-bit values as strings). */
export function num(v: unknown): number | undefined {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : typeof v === 'number' ? v : Number.NaN
  return Number.isFinite(n) && n !== 0 ? n : undefined
}

export function bytesOf(v: unknown): Uint8Array | undefined {
  if (v instanceof Uint8Array) return v
  if (typeof v === 'string') return fromBase64(v)
  return undefined
}

/** Bytes as the plugin shows them: standard base64 with padding; empty is unset. */
export function b64(v: unknown): string | undefined {
  const b = bytesOf(v)
  return b === undefined || b.length === 0 ? undefined : toBase64(b)
}

export function stringMap(v: unknown): Obj | undefined {
  if (!isObj(v)) return undefined
  const keys = Object.keys(v)
  if (keys.length === 0) return undefined
  const out: Obj = {}
  for (const k of keys) if (typeof v[k] === 'string') setKey(out, k, v[k])
  return out
}

const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/i

/** A Timestamp (an RFC 3339 string in protobuf JSON, or `{seconds, nanos}`) as the plugin shows it. */
export function timestamp(v: unknown): Obj | undefined {
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

export function headerMapEntries(i: CheckInput, hm: Obj): Obj | undefined {
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

/**
 * `attributes` of a CheckRequest given to `decide()`, in the plugin's shape. Without
 * `withRequest`, `request` is left out (the text writer writes it itself).
 */
export function attributesFromCheckRequest(i: CheckInput, a: Obj, withRequest = true): Obj {
  const out: Obj = {}
  if (isObj(a.source)) out.source = peer(a.source)
  if (isObj(a.destination)) out.destination = peer(a.destination)
  if (withRequest && isObj(a.request)) {
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

export function peerFromInfo(p: PeerInfo): Obj | undefined {
  const out: Obj = {}
  if (p.address !== undefined || p.port !== undefined) {
    const sa: Obj = {}
    if (p.address !== undefined && p.address !== '') sa.address = p.address
    if (p.port !== undefined && p.port !== 0) sa.portValue = p.port
    out.address = { socketAddress: sa }
  }
  if (p.service !== undefined && p.service !== '') out.service = p.service
  if (hasAny(p.labels)) out.labels = { ...p.labels }
  if (p.principal !== undefined && p.principal !== '') out.principal = p.principal
  if (p.certificate !== undefined && p.certificate !== '') out.certificate = p.certificate
  return Object.keys(out).length > 0 ? out : undefined
}

/**
 * A plain HTTP-shaped request has no CheckRequest: the attributes are those Envoy would send for
 * it (set fields only; `size` from a numeric `content-length`).
 */
export function attributesFromHttp(i: CheckInput): Obj {
  const http: Obj = {}
  if (i.id !== undefined && i.id !== '') http.id = i.id
  if (i.method !== '') http.method = i.method
  if (hasAny(i.headers)) http.headers = { ...i.headers }
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
  if (hasAny(i.contextExtensions)) out.contextExtensions = { ...i.contextExtensions }
  if (hasAny(i.filterMetadata)) out.metadataContext = { filterMetadata: i.filterMetadata }
  if (hasAny(i.routeMetadata)) out.routeMetadataContext = { filterMetadata: i.routeMetadata }
  if (i.tlsSni !== undefined) out.tlsSession = { sni: i.tlsSni }
  return out
}

/** The raw `http` message of a CheckRequest input, when there is one. */
export function rawHttp(i: CheckInput): Obj | undefined {
  if (i.dialect === 'http') return undefined
  const a = i.raw.attributes
  if (!isObj(a) || !isObj(a.request) || !isObj(a.request.http)) return undefined
  return a.request.http
}

/** An object with at least one own key (a map field that is set), without copying it. */
export function hasKeys(v: unknown): boolean {
  return isObj(v) && hasAny(v)
}

/** True when `o` has an own enumerable key; no array of keys is made (most maps checked are empty or large). */
export function hasAny(o: Readonly<Record<string, unknown>>): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true
  return false
}

export function mcpView(m: McpCall | undefined): Record<string, unknown> | undefined {
  if (m === undefined) return undefined
  const v: Record<string, unknown> = { method: m.method, params: m.params }
  if (m.id !== undefined) v.id = m.id
  if (m.tool !== undefined) v.tool = m.tool
  if (m.prompt !== undefined) v.prompt = m.prompt
  if (m.resource !== undefined) v.resource = m.resource
  return v
}
