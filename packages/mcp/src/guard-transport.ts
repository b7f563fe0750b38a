/**
 * A guard for MCP servers built with the official SDK: wrap the server's transport, and every
 * incoming message is decided by the engine before the server sees it. Denied requests are
 * answered with a JSON-RPC error, denied notifications dropped, and list results filtered.
 */
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { JSONRPCMessage, MessageExtraInfo } from '@modelcontextprotocol/sdk/types.js'
import { type Decision, type Engine, PARTIAL_BODY_HEADER } from '@verdict/core/internal'
import { filterListResult, isListMethod } from './filter-list-result.js'

/** Options of `guardTransport`. */
export interface McpGuardOptions {
  readonly engine: Engine
  /** The caller's principal (SPIFFE ID) for a message, e.g. from `extra.authInfo`. */
  readonly principal?: (extra: MessageExtraInfo | undefined) => string | undefined
  /** Path given to the engine when the transport reports no URL. Default `/mcp`. */
  readonly path?: string
  /** Filter list results before they are sent. Default true. */
  readonly filterLists?: boolean
  /** Called with every denial (for logs). */
  readonly onDenied?: (message: JSONRPCMessage, decision: Decision) => void
}

type Obj = Record<string, unknown>

function idKey(id: unknown): string {
  return `${typeof id}:${String(id)}`
}

/** The JSON-RPC error a denial becomes: the policy's own JSON-RPC body when it has one. */
function rpcError(d: Decision): { code: number; message: string } {
  if (d.body !== undefined) {
    try {
      const b = JSON.parse(d.body) as Obj
      const e = b.error as Obj | undefined
      if (typeof e?.code === 'number' && typeof e.message === 'string')
        return { code: e.code, message: e.message }
    } catch {
      // Not JSON: a plain text denial body.
    }
  }
  if (d.status === 400 || d.status === 413 || d.status === 415) {
    return { code: -32600, message: `Invalid request: ${d.reason.slice(0, 200)}` }
  }
  return { code: 403, message: d.body !== undefined && d.body.length <= 200 ? d.body : 'access denied' }
}

function inputFor(
  message: JSONRPCMessage,
  extra: MessageExtraInfo | undefined,
  options: McpGuardOptions,
): Obj {
  const headers: Record<string, string> = Object.create(null)
  for (const [k, v] of Object.entries(extra?.requestInfo?.headers ?? {})) {
    if (v === undefined) continue
    const key = k.toLowerCase()
    if (key === 'content-length' || key === PARTIAL_BODY_HEADER || key.startsWith(':')) continue
    headers[key] = Array.isArray(v) ? v.join(',') : v
  }
  headers['content-type'] = 'application/json'
  const url = extra?.requestInfo?.url
  const input: Obj = {
    method: 'POST',
    path: url !== undefined ? url.pathname + url.search : (options.path ?? '/mcp'),
    headers,
    body: JSON.stringify(message),
  }
  const principal = options.principal?.(extra)
  if (principal !== undefined) input.source = { principal }
  return input
}

/**
 * Wrap an SDK server transport so every incoming message is authorized first. Connect the server
 * to the returned transport; messages are decided one after another, in arrival order.
 *
 * @example
 * ```ts
 * const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: randomUUID })
 * await server.connect(guardTransport(transport, { engine, principal: (x) => x?.authInfo?.clientId }))
 * ```
 */
export function guardTransport(inner: Transport, options: McpGuardOptions): Transport {
  const { engine } = options
  const filterLists = options.filterLists !== false
  const pendingLists = new Map<string, { method: string; input: Obj }>()
  let queue: Promise<void> = Promise.resolve()

  const outer: Transport = {
    start: () => inner.start(),
    close: () => inner.close(),
    async send(message: JSONRPCMessage, sendOptions?: TransportSendOptions): Promise<void> {
      const m = message as Obj
      if (('result' in m || 'error' in m) && pendingLists.size > 0) {
        const key = idKey(m.id)
        const list = pendingLists.get(key)
        if (list !== undefined) {
          pendingLists.delete(key)
          if ('result' in m) {
            const result = await filterListResult(engine, list.input, list.method, m.result)
            return inner.send({ ...m, result } as JSONRPCMessage, sendOptions)
          }
        }
      }
      return inner.send(message, sendOptions)
    },
    get sessionId() {
      return inner.sessionId
    },
    setProtocolVersion: (v: string) => inner.setProtocolVersion?.(v),
  }

  const decideOne = async (message: JSONRPCMessage, extra: MessageExtraInfo | undefined): Promise<void> => {
    const r = message as Obj
    // A request reusing the id of a list request still pending would take its filtered answer and
    // let the list's own answer through unfiltered: JSON-RPC ids are unique, so it is refused.
    if (typeof r.method === 'string' && (typeof r.id === 'string' || typeof r.id === 'number')) {
      if (pendingLists.has(idKey(r.id))) {
        const error = { code: -32600, message: 'Invalid request: the id of a request still pending' }
        await inner.send({ jsonrpc: '2.0', id: r.id, error } as JSONRPCMessage, { relatedRequestId: r.id })
        return
      }
    }
    const input = inputFor(message, extra, options)
    const d = await engine.decide(input)
    const m = message as Obj
    if (d.allowed) {
      if (filterLists && typeof m.method === 'string' && isListMethod(m.method) && m.id !== undefined) {
        pendingLists.set(idKey(m.id), { method: m.method, input })
      }
      outer.onmessage?.(message, extra)
      return
    }
    options.onDenied?.(message, d)
    if (typeof m.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number')) {
      await inner.send({ jsonrpc: '2.0', id: m.id, error: rpcError(d) } as JSONRPCMessage, {
        relatedRequestId: m.id,
      })
    }
  }

  inner.onmessage = (message, extra) => {
    queue = queue
      .then(() => decideOne(message, extra))
      .catch((e: unknown) => outer.onerror?.(e instanceof Error ? e : new Error(String(e))))
  }
  inner.onclose = () => outer.onclose?.()
  inner.onerror = (e) => outer.onerror?.(e)
  return outer
}
