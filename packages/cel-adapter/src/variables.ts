/**
 * The CEL variables, with agentgateway's names, built from core's `RequestContext`.
 *
 * Each variable is built the first time an expression reads it, once per decision (shared by all
 * CEL rules through `ctx.memo`), and wraps the request's own objects in lazy views instead of
 * copying them: a 100k-key argument object costs nothing until a key is looked up.
 */
import type { CelValue } from '@bufbuild/cel'
import type { PeerInfo, RequestContext } from '@verdict/core'
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
] as const

export type VariableName = (typeof VARIABLE_NAMES)[number]

const PEER_FIELDS = ['address', 'port', 'principal', 'spiffeId', 'identity', 'service', 'labels']
const IDENTITY_FIELDS = ['trustDomain', 'namespace', 'serviceAccount']

function peer(p: PeerInfo): CelValue {
  return fieldsView(PEER_FIELDS, (k) => {
    switch (k) {
      case 'address':
        return p.address
      case 'port':
        return p.port
      case 'principal':
        return p.principal
      case 'spiffeId':
        return p.spiffe?.id
      case 'identity': {
        const s = p.spiffe
        if (s === undefined) return undefined
        return fieldsView(IDENTITY_FIELDS, (f) =>
          f === 'trustDomain' ? s.trustDomain : f === 'namespace' ? s.namespace : s.serviceAccount,
        )
      }
      case 'service':
        return p.service
      default:
        return p.labels
    }
  })
}

const REQUEST_FIELDS = ['method', 'path', 'uri', 'host', 'scheme', 'protocol', 'headers', 'query', 'body']

function request(ctx: RequestContext): CelValue {
  const i = ctx.input
  return fieldsView(REQUEST_FIELDS, (k) => {
    switch (k) {
      case 'method':
        return i.method
      case 'path':
        return i.path
      case 'uri':
        return i.rawPath
      case 'host':
        return i.host
      case 'scheme':
        return i.scheme
      case 'protocol':
        return i.protocol
      case 'headers':
        return i.headers
      case 'query':
        return i.query
      default:
        // Parsed only when an expression reads it; absent unless the body is JSON.
        return ctx.parsedBody
    }
  })
}

const MCP_FIELDS = ['method', 'id', 'params', 'tool', 'prompt', 'resource']

function mcp(ctx: RequestContext): CelValue | undefined {
  const m = ctx.mcp
  if (m === undefined) return undefined
  return fieldsView(MCP_FIELDS, (k) => m[k as 'method'])
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
}

const MEMO_KEY = {}

/** The variables of `ctx`'s decision, shared by every CEL rule evaluated in it. */
export function requestVariables(ctx: RequestContext): RequestVariables {
  return ctx.memo(MEMO_KEY, () => new RequestVariables(ctx))
}
