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
  type McpCall,
  type PeerInfo,
  type RequestContext,
  type SpiffeId,
} from '@verdict/core'
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

/** How a field of a record-like variable is read from the request. */
type Reader<T> = (from: T) => unknown

/**
 * A frozen table of readers without a prototype, so that looking up an expression's field name
 * (`request.constructor`) finds only the table's own fields.
 */
/** The memo key of `request.headerValues`. */
const HEADER_VALUES = {}

function readers<T>(table: Record<string, Reader<T>>): Readonly<Record<string, Reader<T>>> {
  return Object.freeze(Object.assign(Object.create(null) as Record<string, Reader<T>>, table))
}

/** Fields of `source` and `destination`; `identity` is itself a record (see `IDENTITY_READERS`). */
export const PEER_READERS = readers<PeerInfo>({
  address: (p) => p.address,
  port: (p) => p.port,
  principal: (p) => p.principal,
  spiffeId: (p) => p.spiffe?.id,
  identity: (p) => p.spiffe,
  service: (p) => p.service,
  labels: (p) => p.labels,
})

/** Fields of `source.identity`, read from the parsed SPIFFE ID. */
export const IDENTITY_READERS = readers<SpiffeId>({
  trustDomain: (s) => s.trustDomain,
  namespace: (s) => s.namespace,
  serviceAccount: (s) => s.serviceAccount,
})

/** Fields of `request`. */
export const REQUEST_READERS = readers<RequestContext>({
  method: (c) => c.input.method,
  path: (c) => c.input.path,
  uri: (c) => c.input.rawPath,
  host: (c) => c.input.host,
  scheme: (c) => c.input.scheme,
  protocol: (c) => c.input.protocol,
  headers: (c) => c.input.headers,
  // Every value of every header (`headerValues` in core): what a rule reads to decide on a list.
  headerValues: (c) => c.memo(HEADER_VALUES, () => allHeaderValues(c.input)),
  query: (c) => c.input.query,
  // Parsed only when an expression reads it; absent unless the body is JSON.
  body: (c) => c.parsedBody,
})

/** Fields of `mcp` (the message's `from` is not one of them). */
export const MCP_READERS = readers<McpCall>({
  method: (m) => m.method,
  id: (m) => m.id,
  params: (m) => m.params,
  tool: (m) => m.tool,
  prompt: (m) => m.prompt,
  resource: (m) => m.resource,
})

const NAMES = new Map<object, readonly string[]>(
  [PEER_READERS, IDENTITY_READERS, REQUEST_READERS, MCP_READERS].map((r) => [r, Object.keys(r)]),
)

function record<T>(readers: Readonly<Record<string, Reader<T>>>, from: T): CelValue {
  return fieldsView(NAMES.get(readers)!, (k) => readers[k]!(from))
}

function peer(p: PeerInfo): CelValue {
  return fieldsView(NAMES.get(PEER_READERS)!, (k) => {
    if (k !== 'identity') return PEER_READERS[k]!(p)
    const s = p.spiffe
    return s === undefined ? undefined : record(IDENTITY_READERS, s)
  })
}

const request = (ctx: RequestContext): CelValue => record(REQUEST_READERS, ctx)

function mcp(ctx: RequestContext): CelValue | undefined {
  const m = ctx.mcp
  return m === undefined ? undefined : record(MCP_READERS, m)
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
    return this.#view('jwt', () => this.#ctx.jwt)
  }
  get source(): CelValue | undefined {
    return this.#view('source', () => peer(this.#ctx.input.source))
  }
  get destination(): CelValue | undefined {
    return this.#view('destination', () => peer(this.#ctx.input.destination))
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
}

const MEMO_KEY = {}

/** The variables of `ctx`'s decision, shared by every CEL rule evaluated in it. */
export function requestVariables(ctx: RequestContext): RequestVariables {
  return ctx.memo(MEMO_KEY, () => new RequestVariables(ctx))
}
