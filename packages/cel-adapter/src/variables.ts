/**
 * The CEL variables, with agentgateway's names, built from core's `RequestContext`.
 *
 * Each variable is built the first time an expression reads it, once per decision (shared by all
 * CEL rules through `ctx.memo`), and wraps the request's own objects in lazy views instead of
 * copying them: a 100k-key argument object costs nothing until a key is looked up.
 */
import type { CelValue } from '@bufbuild/cel'
import {
  allHeaderValues,
  type CheckInput,
  type McpCall,
  type PeerInfo,
  type RequestContext,
  type SpiffeId,
} from '@verdict/core/internal'
import { bearerToken } from './agentgateway/bearer-token.js'
import { certificateFields } from './agentgateway/certificate.js'
import { HeaderView } from './agentgateway/header-views.js'
import { RequestBodyBytes } from './agentgateway/json.js'
import { timestampValue } from './functions.js'
import { celView, fieldsView } from './value-view.js'

/** Every variable an expression may use. */
export const VARIABLE_NAMES = [
  'request',
  'jwt',
  'source',
  'destination',
  'mcp',
  'metadata',
  'context',
  'apiKey',
  'basicAuth',
] as const

export type VariableName = (typeof VARIABLE_NAMES)[number]

/** The binding `variables()` is rewritten to: not a name an expression can write. */
export const VARIABLES_BINDING = '@variables'

/** How a field of a record-like variable is read from the request. */
type Reader<T, A extends unknown[] = []> = (from: T, ...rest: A) => unknown

/**
 * A frozen table of readers without a prototype, so that looking up an expression's field name
 * (`request.constructor`) finds only the table's own fields.
 */
/** The memo key of `request.headerValues`. */
const HEADER_VALUES = {}
/** The memo key of `request.body` as bytes. */
const BODY = {}

function readers<T, A extends unknown[] = []>(
  table: Record<string, Reader<T, A>>,
): Readonly<Record<string, Reader<T, A>>> {
  return Object.freeze(Object.assign(Object.create(null) as Record<string, Reader<T, A>>, table))
}

/** Which peer a peer reader reads. */
export type Side = 'source' | 'destination'

/** Fields of `source` and `destination`; `identity` is itself a record (see `IDENTITY_READERS`). */
export const PEER_READERS = readers<PeerInfo, [RequestContext, Side]>({
  address: (p) => p.address,
  port: (p) => p.port,
  // No PROXY protocol in front of Envoy's peer: the raw peer is the peer.
  rawAddress: (p) => p.address,
  rawPort: (p) => p.port,
  principal: (p) => p.principal,
  spiffeId: (p) => p.spiffe?.id,
  identity: (p) => p.spiffe,
  service: (p) => p.service,
  labels: (p) => p.labels,
  certificate: (p) => (p.certificate === undefined || p.certificate === '' ? undefined : p.certificate),
  subjectAltNames: (p) => certificateFields(p.certificate)?.subjectAltNames,
  issuer: (p) => certificateFields(p.certificate)?.issuer,
  subject: (p) => certificateFields(p.certificate)?.subject,
  subjectCn: (p) => certificateFields(p.certificate)?.subjectCn,
  // The name the client asked for: the TLS server name, else the request's host.
  hostname: (_p, ctx, side) =>
    side === 'destination' ? (ctx.input.tlsSni ?? hostWithoutPort(ctx.input.host)) : undefined,
})

function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1)
  const colon = host.lastIndexOf(':')
  return colon === -1 || host.indexOf(':') !== colon ? host : host.slice(0, colon)
}

/** Fields of `source.identity`, read from the parsed SPIFFE ID. */
export const IDENTITY_READERS = readers<SpiffeId>({
  trustDomain: (s) => s.trustDomain,
  namespace: (s) => s.namespace,
  serviceAccount: (s) => s.serviceAccount,
})

/** `pathAndQuery`: the target in origin form (an absolute-form target loses scheme and host). */
function pathAndQuery(input: CheckInput): string {
  const t = input.rawPath
  if (t.startsWith('/') || t === '*') return t
  try {
    const u = new URL(t)
    return `${u.pathname}${u.search}`
  } catch {
    return t
  }
}

/** agentgateway's `request.uri`: the complete URI, scheme and host included. */
function fullUri(input: CheckInput): string {
  const t = input.rawPath
  if (!t.startsWith('/')) return t
  return `${input.scheme === '' ? 'http' : input.scheme}://${input.host}${t}`
}

/** `HTTP/1.1`, `HTTP/2.0`, `HTTP/3.0` as agentgateway writes them (Envoy says `HTTP/2`). */
function version(protocol: string): string | undefined {
  if (protocol === '') return undefined
  return /^HTTP\/[23]$/.test(protocol) ? `${protocol}.0` : protocol
}

/** When the request started: Envoy's request time, else the decision's clock. */
function startTime(ctx: RequestContext): CelValue {
  const ms = ctx.input.time !== undefined ? Date.parse(ctx.input.time) : Number.NaN
  const at = Number.isNaN(ms) ? ctx.now : ms
  const seconds = Math.floor(at / 1000)
  return timestampValue(BigInt(seconds), (at - seconds * 1000) * 1e6)
}

/** Fields of `request`. */
export const REQUEST_READERS = readers<RequestContext>({
  method: (c) => c.input.method,
  path: (c) => c.input.path,
  pathAndQuery: (c) => pathAndQuery(c.input),
  uri: (c) => fullUri(c.input),
  host: (c) => c.input.host,
  scheme: (c) => c.input.scheme,
  protocol: (c) => c.input.protocol,
  version: (c) => version(c.input.protocol),
  headers: (c) => c.input.headers,
  // Every value of every header (`headerValues` in core): what a rule reads to decide on a list.
  headerValues: (c) => c.memo(HEADER_VALUES, () => allHeaderValues(c.input)),
  query: (c) => c.input.query,
  // The body as bytes, as agentgateway has it (`json(request.body).x`); absent when Envoy cut it.
  body: (c) =>
    c.input.bodyTruncated
      ? undefined
      : c.memo(BODY, () => RequestBodyBytes.forRequest(c, c.input.body ?? '')),
  bodyPrefix: (c) => c.memo(BODY, () => RequestBodyBytes.forRequest(c, c.input.body ?? '')),
  // verdict's own: the parsed JSON body, only when the content type is JSON and the body parses.
  json: (c) => c.parsedBody,
  startTime: (c) => startTime(c),
})

/**
 * Fields the direct evaluator (fast-path.ts) leaves to the engine: their values are bytes,
 * timestamps or views it does not model.
 */
export const ENGINE_ONLY_REQUEST_FIELDS: ReadonlySet<string> = new Set(['body', 'bodyPrefix', 'startTime'])

/** The part of a message `mcp.tool`, `mcp.prompt` and `mcp.resource` show. */
export type McpShapeKind = 'tool' | 'prompt' | 'resource'

/** The fields of each shape, in the order the record has them. */
const SHAPE_FIELDS: Readonly<Record<McpShapeKind, readonly string[]>> = {
  tool: ['name', 'arguments', 'target'],
  prompt: ['name', 'arguments', 'target'],
  resource: ['uri', 'name', 'target'],
}

/**
 * One field of `mcp.tool`, `mcp.prompt` or `mcp.resource` as agentgateway shows them (undefined
 * when absent), read straight from the message: the direct evaluator reads `mcp.tool.name` this
 * way without building the record. `m[kind]` must be present.
 */
export function mcpShapeField(m: McpCall, ctx: RequestContext, kind: McpShapeKind, field: string): unknown {
  if (kind === 'resource') {
    const uri = m.resource!.uri
    if (field === 'uri' || field === 'name') return uri
  } else {
    const s = m[kind]!
    if (field === 'name') return s.name
    // Absent when the call sends none, so `has(mcp.tool.arguments)` tells.
    if (field === 'arguments') return Object.hasOwn(m.params, 'arguments') ? s.arguments : undefined
  }
  // The upstream target, when the route names it (Envoy: a context extension `mcp_target`).
  if (field === 'target') return ctx.input.contextExtensions.mcp_target
  return undefined
}

/** The memo keys of the three shapes: built once per decision (and per message of a batch). */
const SHAPE_KEYS: Readonly<Record<McpShapeKind, object>> = { tool: {}, prompt: {}, resource: {} }

/**
 * `mcp.tool`, `mcp.prompt`, `mcp.resource` as agentgateway shows them, made once per message in
 * the decision's memo (a WeakMap keyed by the message's part would cost far more: its entries are
 * ephemerons the garbage collector must trace for every decision).
 */
function shaped(m: McpCall, ctx: RequestContext, kind: McpShapeKind): unknown {
  if (m[kind] === undefined) return undefined
  return ctx.memo(SHAPE_KEYS[kind], () => {
    const out = Object.create(null) as Record<string, unknown>
    for (const f of SHAPE_FIELDS[kind]) {
      const v = mcpShapeField(m, ctx, kind, f)
      if (v !== undefined) out[f] = v
    }
    return out
  })
}

/** Fields of `mcp` (the message's `from` is not one of them). */
export const MCP_READERS = readers<McpCall, [RequestContext]>({
  method: (m) => m.method,
  methodName: (m) => m.method,
  id: (m) => m.id,
  params: (m) => m.params,
  sessionId: (_m, ctx) => ctx.input.headers['mcp-session-id'],
  tool: (m, ctx) => shaped(m, ctx, 'tool'),
  prompt: (m, ctx) => shaped(m, ctx, 'prompt'),
  resource: (m, ctx) => shaped(m, ctx, 'resource'),
})

const NAMES = new Map<object, readonly string[]>(
  [PEER_READERS, IDENTITY_READERS, REQUEST_READERS, MCP_READERS].map((r) => [r, Object.keys(r)]),
)

function peer(p: PeerInfo, ctx: RequestContext, side: Side): CelValue {
  return fieldsView(NAMES.get(PEER_READERS)!, (k) => {
    if (k !== 'identity') return PEER_READERS[k]!(p, ctx, side)
    const s = p.spiffe
    return s === undefined
      ? undefined
      : fieldsView(NAMES.get(IDENTITY_READERS)!, (f) => IDENTITY_READERS[f]!(s))
  })
}

const request = (ctx: RequestContext): CelValue =>
  fieldsView(NAMES.get(REQUEST_READERS)!, (k) =>
    // The header map with agentgateway's view methods (`join()`, `split()`, ...).
    k === 'headers' ? new HeaderView(ctx.input) : REQUEST_READERS[k]!(ctx),
  )

function mcp(ctx: RequestContext): CelValue | undefined {
  const m = ctx.mcp
  return m === undefined ? undefined : fieldsView(NAMES.get(MCP_READERS)!, (k) => MCP_READERS[k]!(m, ctx))
}

const JWT = {}

/** The verified claims with `rawToken`, the token itself (agentgateway's `jwt.rawToken`). */
export function jwtClaims(ctx: RequestContext): Readonly<Record<string, unknown>> | undefined {
  const claims = ctx.jwt
  if (claims === undefined) return undefined
  return ctx.memo(JWT, () => {
    // The token the provider verified, wherever it was (header, query, cookie).
    const token = ctx.jwtToken ?? bearerToken(ctx.input)
    if (token === undefined) return claims
    return Object.freeze(
      Object.assign(Object.create(null) as Record<string, unknown>, claims, { rawToken: token }),
    )
  })
}

/**
 * The activation of one decision. `@bufbuild/cel` reads `activation[name]` for each variable an
 * expression references, so the getters run only for referenced variables.
 */
export class RequestVariables {
  // ES private fields: the engine reads `activation[name]`, which must never reach these.
  readonly #cache: Partial<Record<VariableName, CelValue | undefined>> = Object.create(null)
  readonly #ctx: RequestContext

  constructor(ctx: RequestContext) {
    this.#ctx = ctx
  }

  #view(name: VariableName, make: () => unknown): CelValue | undefined {
    if (name in this.#cache) return this.#cache[name]
    const v = make()
    const view = v === undefined ? undefined : celView(v)
    this.#cache[name] = view
    return view
  }

  get request(): CelValue | undefined {
    return this.#view('request', () => request(this.#ctx))
  }
  get jwt(): CelValue | undefined {
    return this.#view('jwt', () => jwtClaims(this.#ctx))
  }
  get source(): CelValue | undefined {
    return this.#view('source', () => peer(this.#ctx.input.source, this.#ctx, 'source'))
  }
  get destination(): CelValue | undefined {
    return this.#view('destination', () => peer(this.#ctx.input.destination, this.#ctx, 'destination'))
  }
  get mcp(): CelValue | undefined {
    return this.#view('mcp', () => mcp(this.#ctx))
  }
  get metadata(): CelValue | undefined {
    return this.#view('metadata', () => this.#ctx.input.filterMetadata)
  }
  get context(): CelValue | undefined {
    return this.#view('context', () => this.#ctx.input.contextExtensions)
  }
  /** The verified API key's metadata (agentgateway's `apiKey`, the key itself left out); absent without one. */
  get apiKey(): CelValue | undefined {
    return this.#view('apiKey', () => this.#ctx.identity?.apiKey?.metadata)
  }
  /** Verified basic-auth credentials: `{username}`; absent without them. */
  get basicAuth(): CelValue | undefined {
    return this.#view('basicAuth', () => this.#ctx.identity?.basicAuth)
  }
  /** `variables()`: every variable the request has, by name (compile/rewrites.ts rewrites the call). */
  get [VARIABLES_BINDING](): CelValue | undefined {
    const present = VARIABLE_NAMES.filter((n) => this[n] !== undefined)
    return fieldsView(present, (n) => this[n as VariableName])
  }
}

const MEMO_KEY = {}

/** The variables of `ctx`'s decision, shared by every CEL rule evaluated in it. */
export function requestVariables(ctx: RequestContext): RequestVariables {
  return ctx.memo(MEMO_KEY, () => new RequestVariables(ctx))
}
