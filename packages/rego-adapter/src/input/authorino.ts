/**
 * The Authorino dialect: Authorino's Authorization JSON. Its well-known attributes (`request`,
 * `source`, `destination`, `metadata`, `auth`; Kuadrant's well-known attributes RFC 0002 and
 * Authorino's pkg/service/well_known_attributes.go) and the older `context`, the CheckRequest's
 * AttributeContext as Go's encoding/json writes it. Both are derived from the same attributes the
 * OPA-Envoy dialect builds (set fields only), so what the canonical request fixes is fixed here too.
 */
import type { McpCall, RequestContext } from '@verdict/core'
import {
  attributesFromCheckRequest,
  attributesFromHttp,
  isObj,
  mcpView,
  type Obj,
  setKey,
} from './attributes.js'

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
function buildAuthorinoInput(ctx: RequestContext): Record<string, unknown> {
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
  const out: Record<string, unknown> = Object.create(null)
  for (const k of Object.keys(fm)) out[k] = fm[k]
  out[key] = merged
  return out
}

const KEY = {}

/**
 * Authorino's Authorization JSON for the request of `ctx` (docs/rego.md lists each field and where
 * it comes from), built once per decision (the context's memo).
 */
export function authorinoInput(ctx: RequestContext): Readonly<Record<string, unknown>> {
  return ctx.memo(KEY, () => buildAuthorinoInput(ctx))
}
