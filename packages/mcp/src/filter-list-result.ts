/**
 * List filtering: keep in a `tools/list`, `prompts/list` or `resources/list` result only the items
 * the caller may use, by deciding a synthetic `tools/call` / `prompts/get` / `resources/read` per
 * item with the same engine and the caller's own request.
 */
import type { Engine } from '@verdict/core'
import { DecisionContext, MCP_METADATA_NAMESPACES, PARTIAL_BODY_HEADER } from '@verdict/core/internal'

type Obj = Record<string, unknown>

/** What each list method lists, and which call stands for using one item. */
const LISTS: Readonly<Record<string, { key: string; call: string; field: 'name' | 'uri' }>> = {
  'tools/list': { key: 'tools', call: 'tools/call', field: 'name' },
  'prompts/list': { key: 'prompts', call: 'prompts/get', field: 'name' },
  'resources/list': { key: 'resources', call: 'resources/read', field: 'uri' },
}

/** True for the list methods `filterListResult` understands. */
export function isListMethod(method: string): boolean {
  return Object.hasOwn(LISTS, method)
}

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

const DROPPED_HEADERS = new Set(['content-type', 'content-length', PARTIAL_BODY_HEADER])

function probeHeaders(h: unknown): Obj {
  const out: Obj = Object.create(null)
  if (isObject(h)) for (const k of Object.keys(h)) if (!DROPPED_HEADERS.has(k.toLowerCase())) out[k] = h[k]
  out['content-type'] = 'application/json'
  return out
}

function withoutMcpNamespaces(fm: unknown): unknown {
  if (!isObject(fm)) return fm
  const out: Obj = Object.create(null)
  for (const k of Object.keys(fm))
    if (!(MCP_METADATA_NAMESPACES as readonly string[]).includes(k)) out[k] = fm[k]
  return out
}

/** The caller's request with its JSON-RPC body replaced by `body` (either input dialect). */
function probeInput(base: Obj, body: string): Obj {
  if (!isObject(base.attributes)) {
    const probe: Obj = { ...base, method: 'POST', headers: probeHeaders(base.headers), body }
    if (isObject(base.metadata)) {
      const md = base.metadata
      probe.metadata = isObject(md.filterMetadata)
        ? { ...md, filterMetadata: withoutMcpNamespaces(md.filterMetadata) }
        : withoutMcpNamespaces(md)
    }
    return probe
  }
  const attrs = base.attributes
  const request = isObject(attrs.request) ? attrs.request : {}
  const http: Obj = { ...(isObject(request.http) ? request.http : {}), method: 'POST', body }
  delete http.raw_body
  delete http.rawBody
  http.headers = probeHeaders(http.headers)
  delete http.header_map
  delete http.headerMap
  const out: Obj = { ...attrs, request: { ...request, http } }
  for (const key of ['metadataContext', 'metadata_context']) {
    const md = attrs[key]
    if (!isObject(md)) continue
    const copy: Obj = { ...md }
    for (const fk of ['filterMetadata', 'filter_metadata'])
      if (fk in md) copy[fk] = withoutMcpNamespaces(md[fk])
    out[key] = copy
  }
  return { ...base, attributes: out }
}

/** Options of `filterListResult`. */
export interface FilterListOptions {
  /** Called once per item the caller may not use (for logs). */
  readonly onHidden?: (item: string, reason: string) => void
}

/**
 * Filter a list result to what `caller` may use. `caller` is the `decide()` input of the list
 * request (a CheckRequest or an HTTP-shaped object) or the `RequestContext` an evaluator received.
 * Items without a string name (or uri) are dropped; results of other methods come back unchanged.
 * Rules on arguments (the `mcp` body's `arguments`) are not applied while listing: a tool stays
 * listed when the caller may call it with some arguments.
 *
 * @example
 * ```ts
 * const visible = await filterListResult(engine, listRequestInput, 'tools/list', result)
 * ```
 */
export async function filterListResult<T>(
  engine: Engine,
  caller: unknown,
  method: string,
  result: T,
  options: FilterListOptions = {},
): Promise<T> {
  if (!Object.hasOwn(LISTS, method) || !isObject(result)) return result
  const spec = LISTS[method]!
  const items = result[spec.key]
  if (!Array.isArray(items)) return result
  // The context an evaluator received is the engine's own class; anything else is a decide() input.
  const base = caller instanceof DecisionContext ? caller.input.raw : caller
  if (!isObject(base)) return { ...result, [spec.key]: [] }
  const verdicts = await Promise.all(
    items.map(async (item: unknown) => {
      const id = isObject(item) ? item[spec.field] : undefined
      if (typeof id !== 'string') return false
      const params = spec.field === 'name' ? { name: id, arguments: {} } : { uri: id }
      const probe = probeInput(base, JSON.stringify({ jsonrpc: '2.0', id: 0, method: spec.call, params }))
      const d = await engine.decide(probe, { probe: 'list' })
      if (!d.allowed) options.onHidden?.(id, d.reason)
      return d.allowed
    }),
  )
  return { ...result, [spec.key]: items.filter((_, i) => verdicts[i]) }
}
