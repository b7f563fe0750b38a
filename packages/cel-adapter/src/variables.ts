/**
 * The CEL variables, with agentgateway's names, built from core's `RequestContext`.
 *
 * Each variable is built the first time an expression reads it, once per decision (shared by all
 * CEL rules through `ctx.memo`), and wraps the request's own objects in lazy views instead of
 * copying them: a 100k-key argument object costs nothing until a key is looked up.
 */
import type { CelValue } from '@bufbuild/cel'
import type { PeerInfo, RequestContext } from '@verdict/core'
import { celView } from './value-view.js'

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

type Obj = Record<string, unknown>

/** A null-prototype object with only the defined entries of `entries`. */
function record(entries: Obj): Obj {
  const out: Obj = Object.create(null)
  for (const k of Object.keys(entries)) if (entries[k] !== undefined) out[k] = entries[k]
  return out
}

function peer(p: PeerInfo): Obj {
  const s = p.spiffe
  return record({
    address: p.address,
    port: p.port,
    principal: p.principal,
    spiffeId: s?.id,
    identity:
      s === undefined
        ? undefined
        : record({ trustDomain: s.trustDomain, namespace: s.namespace, serviceAccount: s.serviceAccount }),
    service: p.service,
    labels: p.labels,
  })
}

function requestRecord(ctx: RequestContext): Obj {
  const i = ctx.input
  const out = record({
    method: i.method,
    path: i.path,
    uri: i.rawPath,
    host: i.host,
    scheme: i.scheme,
    protocol: i.protocol,
    headers: i.headers,
    query: i.query,
  })
  // The body is parsed only when an expression reads it; `has(request.body)` is false unless JSON.
  Object.defineProperty(out, 'body', { enumerable: true, get: () => ctx.parsedBody })
  return out
}

function mcpRecord(ctx: RequestContext): Obj | undefined {
  const m = ctx.mcp
  if (m === undefined) return undefined
  return record({
    method: m.method,
    id: m.id,
    params: m.params,
    tool: m.tool,
    prompt: m.prompt,
    resource: m.resource,
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
    return this.#view('request', () => requestRecord(this.#ctx))
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
    return this.#view('mcp', () => mcpRecord(this.#ctx))
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
