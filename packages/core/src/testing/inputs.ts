/** Request builders: every field optional, sensible defaults, the shapes `decide()` accepts. */

export interface CheckRequestOptions {
  readonly method?: string
  readonly path?: string
  readonly host?: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string | object
  /** Peer principal, e.g. `spiffe://cluster.local/ns/a/sa/b`. */
  readonly principal?: string
  readonly address?: string
  /** A bearer token for `Authorization`. */
  readonly token?: string
  /** `metadata_context.filter_metadata`. */
  readonly filterMetadata?: Readonly<Record<string, object>>
  readonly contextExtensions?: Readonly<Record<string, string>>
}

function headersOf(o: CheckRequestOptions): Record<string, string> {
  const h: Record<string, string> = {}
  for (const [k, v] of Object.entries(o.headers ?? {})) h[k.toLowerCase()] = v
  if (o.token !== undefined) h.authorization = `Bearer ${o.token}`
  if (o.body !== undefined && typeof o.body !== 'string' && h['content-type'] === undefined) {
    h['content-type'] = 'application/json'
  }
  return h
}

/**
 * An Envoy v3 CheckRequest in protobuf JSON.
 *
 * @example
 * ```ts
 * await engine.decide(checkRequest({ path: '/api', headers: { 'x-ext-authz': 'allow' } }))
 * ```
 */
export function checkRequest(o: CheckRequestOptions = {}): Record<string, unknown> {
  const http: Record<string, unknown> = {
    method: o.method ?? 'GET',
    path: o.path ?? '/',
    host: o.host ?? 'localhost',
    scheme: 'http',
    protocol: 'HTTP/1.1',
    headers: headersOf(o),
  }
  if (o.body !== undefined) http.body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body)
  const source: Record<string, unknown> = {
    address: { socketAddress: { address: o.address ?? '127.0.0.1', portValue: 40000 } },
  }
  if (o.principal !== undefined) source.principal = o.principal
  const attributes: Record<string, unknown> = { source, request: { http } }
  if (o.filterMetadata !== undefined) attributes.metadataContext = { filterMetadata: o.filterMetadata }
  if (o.contextExtensions !== undefined) attributes.contextExtensions = o.contextExtensions
  return { attributes }
}

/** A plain HTTP-shaped request (what service authors pass). */
export function httpRequest(o: CheckRequestOptions = {}): Record<string, unknown> {
  const r: Record<string, unknown> = { method: o.method ?? 'GET', path: o.path ?? '/', headers: headersOf(o) }
  if (o.body !== undefined) r.body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body)
  if (o.principal !== undefined || o.address !== undefined) {
    r.source = {
      ...(o.principal !== undefined ? { principal: o.principal } : {}),
      address: o.address ?? '127.0.0.1',
    }
  }
  if (o.filterMetadata !== undefined) r.metadata = o.filterMetadata
  return r
}

export interface McpRequestOptions extends Omit<CheckRequestOptions, 'body' | 'method'> {
  /** JSON-RPC method; default `tools/call` when `tool` is set, else `tools/list`. */
  readonly method?: string
  readonly tool?: string
  readonly arguments?: Readonly<Record<string, unknown>>
  /** Request id; default 1. `null` makes a notification. */
  readonly id?: string | number | null
  /** Also put the call in Envoy's MCP filter metadata (`mcp_proxy`). */
  readonly metadata?: boolean
}

/** A Streamable HTTP MCP POST (JSON-RPC body) as a CheckRequest. */
export function mcpRequest(o: McpRequestOptions = {}): Record<string, unknown> {
  const method = o.method ?? (o.tool !== undefined ? 'tools/call' : 'tools/list')
  const msg: Record<string, unknown> = { jsonrpc: '2.0', method }
  if (o.id !== null) msg.id = o.id ?? 1
  if (o.tool !== undefined) msg.params = { name: o.tool, arguments: o.arguments ?? {} }
  const meta = o.metadata
    ? {
        mcp_proxy: {
          jsonrpc: '2.0',
          method,
          ...(o.id !== null ? { id: o.id ?? 1 } : {}),
          ...(o.tool !== undefined ? { params: { name: o.tool } } : {}),
        },
      }
    : undefined
  return checkRequest({
    ...o,
    method: 'POST',
    path: o.path ?? '/mcp',
    headers: {
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      ...(o.headers ?? {}),
    },
    body: JSON.stringify(msg),
    ...(meta !== undefined ? { filterMetadata: { ...(o.filterMetadata ?? {}), ...meta } } : {}),
  })
}
