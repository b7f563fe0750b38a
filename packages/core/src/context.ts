/**
 * What an evaluator sees for one request: the normalized input, the verified identity, the MCP
 * call, and the two Rego input dialects of protocols.md §3, each built only when first asked for.
 */
import type { Decision, Identity } from './decision.js'
import type { CheckInput, PeerInfo } from './input.js'
import { nullMap, parseJsonBody, refusal } from './input.js'

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
  /** The identity established so far (JWT, else peer principal). */
  readonly identity: Identity | undefined
  /** The MCP message being authorized (one element at a time for a batch), if this is MCP traffic. */
  readonly mcp: McpCall | undefined
  /** The body parsed as JSON when the content type says JSON and it parses; else undefined. */
  readonly parsedBody: unknown
  /** The decision's clock, in milliseconds since the epoch. */
  readonly now: number
  /** OPA-Envoy plugin input: `{attributes, parsed_path, parsed_query, parsed_body, truncated_body, version}`. */
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
    this.opa ??= buildOpaEnvoyInput(this)
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

function peerProtoJson(p: PeerInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (p.address !== undefined || p.port !== undefined) {
    const sa: Record<string, unknown> = {}
    if (p.address !== undefined) sa.address = p.address
    if (p.port !== undefined) sa.portValue = p.port
    out.address = { socketAddress: sa }
  }
  if (p.service !== undefined) out.service = p.service
  if (Object.keys(p.labels).length > 0) out.labels = p.labels
  if (p.principal !== undefined) out.principal = p.principal
  if (p.certificate !== undefined) out.certificate = p.certificate
  return out
}

/** The CheckRequest attributes in protobuf JSON names, rebuilt from the normalized input. */
function attributesProtoJson(i: CheckInput): Record<string, unknown> {
  const http: Record<string, unknown> = {
    method: i.method,
    headers: i.headers,
    path: i.rawPath,
    host: i.host,
    scheme: i.scheme,
    protocol: i.protocol,
  }
  if (i.id !== undefined) http.id = i.id
  if (i.size !== -1) http.size = String(i.size)
  if (i.body !== undefined) http.body = i.body
  const request: Record<string, unknown> = { http }
  if (i.time !== undefined) request.time = i.time
  const attrs: Record<string, unknown> = {
    source: peerProtoJson(i.source),
    destination: peerProtoJson(i.destination),
    request,
    contextExtensions: i.contextExtensions,
    metadataContext: { filterMetadata: i.filterMetadata },
  }
  if (Object.keys(i.routeMetadata).length > 0)
    attrs.routeMetadataContext = { filterMetadata: i.routeMetadata }
  if (i.tlsSni !== undefined) attrs.tlsSession = { sni: i.tlsSni }
  return attrs
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
 * OPA-Envoy input. Additions alongside the plugin's fields (documented in docs/input.md):
 * `jwt` (verified claims) and `mcp` (the MCP message being authorized).
 */
function buildOpaEnvoyInput(ctx: DecisionContext): Record<string, unknown> {
  const i = ctx.input
  const parsedPath = i.path === '/' ? [''] : i.path.split('/').slice(1)
  const out: Record<string, unknown> = {
    attributes: attributesProtoJson(i),
    parsed_path: parsedPath,
    parsed_query: i.query,
    truncated_body: i.bodyTruncated,
    version: { encoding: 'protojson', ext_authz: 'v3' },
  }
  const body = ctx.parsedBody
  if (body !== undefined) out.parsed_body = body
  if (ctx.jwt !== undefined) out.jwt = ctx.jwt
  const mcp = mcpView(ctx.mcp)
  if (mcp !== undefined) out.mcp = mcp
  return out
}

function peerSnake(p: PeerInfo): Record<string, unknown> {
  const out: Record<string, unknown> = { labels: p.labels }
  if (p.address !== undefined) out.address = p.address
  if (p.port !== undefined) out.port = p.port
  if (p.service !== undefined) out.service = p.service
  if (p.principal !== undefined) out.principal = p.principal
  if (p.certificate !== undefined) out.certificate = p.certificate
  return out
}

/**
 * Authorino's well-known attributes. When the MCP call's arguments came from the body and the
 * filter metadata lacks them, they are added under `metadata.filter_metadata.mcp_proxy.params`
 * so policies written against the metadata (seed 001) see them.
 */
function buildAuthorinoInput(ctx: DecisionContext): Record<string, unknown> {
  const i = ctx.input
  const request: Record<string, unknown> = {
    protocol: i.protocol,
    scheme: i.scheme,
    host: i.host,
    method: i.method,
    path: i.rawPath,
    url_path: i.path,
    query: i.rawQuery,
    headers: i.headers,
    size: i.size,
    context_extensions: i.contextExtensions,
  }
  if (i.id !== undefined) request.id = i.id
  if (i.time !== undefined) request.time = i.time
  if (i.headers.referer !== undefined) request.referer = i.headers.referer
  if (i.headers['user-agent'] !== undefined) request.user_agent = i.headers['user-agent']
  if (i.body !== undefined) request.body = i.body
  let filterMetadata: Readonly<Record<string, unknown>> = i.filterMetadata
  const m = ctx.mcp
  if (m !== undefined && m.from !== 'metadata') filterMetadata = withMcpArguments(filterMetadata, m)
  const auth: Record<string, unknown> = { metadata: {}, authorization: {}, response: {} }
  if (ctx.jwt !== undefined) auth.identity = ctx.jwt
  else if (ctx.identity !== undefined)
    auth.identity = { principal: ctx.identity.principal, sub: ctx.identity.subject }
  return {
    request,
    source: peerSnake(i.source),
    destination: peerSnake(i.destination),
    metadata: { filter_metadata: filterMetadata },
    auth,
  }
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
