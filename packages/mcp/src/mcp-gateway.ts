/**
 * A Streamable HTTP MCP gateway: every request is decided by the engine first (each JSON-RPC
 * message of a batch), allowed traffic goes to the upstream MCP server (JSON and SSE responses,
 * sessions, GET and DELETE), denials are answered here, and list results are filtered to what
 * the caller may use. One Web `Request -> Response` handler, plus a node:http adapter.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import {
  type Decision,
  type Engine,
  PARTIAL_BODY_HEADER,
  type PolicyWatch,
  readLimited,
  watchPolicyFile,
} from '@verdict/core/internal'
import { type FieldLineHeaders, headerFieldLines, tlsPeerPrincipal } from '@verdict/node'
import { filterListResult, isListMethod } from './filter-list-result.js'

/** Options of `createMcpGateway`. */
export interface McpGatewayOptions {
  /** The engine deciding every request (register `createMcpEvaluator()` on it). */
  readonly engine: Engine
  /** Full URL of the upstream MCP endpoint, e.g. `http://127.0.0.1:3001/mcp`. */
  readonly upstream: string | URL
  /**
   * A request header carrying the caller's principal (a SPIFFE ID), set by a trusted proxy in
   * front of the gateway. Only read when configured; always removed before forwarding. Never
   * configure it when clients can reach the gateway directly.
   */
  readonly principalHeader?: string
  /** Derive the caller's principal from the request instead (wins over everything else). */
  readonly principal?: (request: Request) => string | undefined
  /** Filter `tools/list`, `prompts/list` and `resources/list` results. Default true. */
  readonly filterLists?: boolean
  /** Largest request body accepted, in bytes. Default 4 MiB. */
  readonly maxBodyBytes?: number
  /** Reject a session id used by another principal than the one that opened it. Default true. */
  readonly bindSessions?: boolean
  /** Fetch used to reach the upstream. Default `globalThis.fetch`. */
  readonly fetch?: typeof globalThis.fetch
  /** Watch this policy file and swap the engine's policy when it changes. */
  readonly policyFile?: string
  /** After a successful reload. */
  readonly onPolicyReload?: (info: { generation: number; path: string }) => void
  /** An edit that does not load: the old policy stays. Default: a warning on stderr. */
  readonly onPolicyError?: (error: unknown) => void
}

/** A running gateway. */
export interface McpGateway {
  /** Web handler: `Request -> Response`. */
  fetch(request: Request): Promise<Response>
  /** node:http handler. With TLS client certificates, the peer's URI SAN is the principal. */
  node(req: IncomingMessage, res: ServerResponse): void
  /** Stop watching the policy file. */
  close(): void
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
  'proxy-connection',
  'host',
  'content-length',
])

/** Response headers fetch has already acted on (it decodes compressed bodies). */
const DECODED = new Set([
  'content-encoding',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
])

const MAX_SESSIONS = 10_000

type Obj = Record<string, unknown>

function textResponse(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...headers } })
}

function denialResponse(d: Decision): Response {
  const h = new Headers()
  for (const e of d.headers) {
    if (e.append === 'append') h.append(e.key, e.value)
    else if (e.append !== 'add_if_absent' || !h.has(e.key)) h.set(e.key, e.value)
  }
  if (!h.has('content-type')) h.set('content-type', 'text/plain; charset=utf-8')
  return new Response(d.body ?? '', { status: d.status, headers: h })
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** `id -> list method` for the list requests in a body the engine already accepted. */
function listRequests(body: string | undefined): Map<string, string> | undefined {
  if (body === undefined) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return undefined
  }
  let out: Map<string, string> | undefined
  for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
    if (typeof m !== 'object' || m === null) continue
    const { method, id } = m as Obj
    if (
      typeof method === 'string' &&
      isListMethod(method) &&
      (typeof id === 'string' || typeof id === 'number')
    ) {
      out ??= new Map()
      out.set(idKey(id), method)
    }
  }
  return out
}

function idKey(id: unknown): string {
  return `${typeof id}:${String(id)}`
}

/** SSE events are separated by a blank line; normalize CRLF so the split is simple. */
function sseTransform(
  rewrite: (data: string) => Promise<string | undefined>,
): TransformStream<Uint8Array, Uint8Array> {
  const decoder = new TextDecoder()
  const encoder = new TextEncoder()
  let buffer = ''
  const flushEvents = async (
    controller: TransformStreamDefaultController<Uint8Array>,
    final: boolean,
  ): Promise<void> => {
    buffer = buffer.replace(/\r\n?/g, '\n')
    for (;;) {
      const end = buffer.indexOf('\n\n')
      if (end === -1) break
      const event = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      controller.enqueue(encoder.encode(`${await rewriteEvent(event, rewrite)}\n\n`))
    }
    if (final && buffer.length > 0) controller.enqueue(encoder.encode(buffer))
  }
  return new TransformStream({
    async transform(chunk, controller) {
      buffer += decoder.decode(chunk, { stream: true })
      await flushEvents(controller, false)
    },
    async flush(controller) {
      buffer += decoder.decode()
      await flushEvents(controller, true)
    },
  })
}

async function rewriteEvent(
  event: string,
  rewrite: (data: string) => Promise<string | undefined>,
): Promise<string> {
  const lines = event.split('\n')
  const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(l.startsWith('data: ') ? 6 : 5))
  if (data.length === 0) return event
  const next = await rewrite(data.join('\n'))
  if (next === undefined) return event
  const kept = lines.filter((l) => !l.startsWith('data:'))
  return [...kept, `data: ${next}`].join('\n')
}

/**
 * Create a gateway in front of one upstream MCP server.
 *
 * @example
 * ```ts
 * const engine = await createEngineFromFile('policy.yaml', { evaluators: [createMcpEvaluator()] })
 * const gw = createMcpGateway({ engine, upstream: 'http://127.0.0.1:3001/mcp', policyFile: 'policy.yaml' })
 * http.createServer(gw.node).listen(8080)
 * ```
 */
export function createMcpGateway(options: McpGatewayOptions): McpGateway {
  const { engine } = options
  const upstream = new URL(options.upstream)
  const upstreamFetch = options.fetch ?? globalThis.fetch
  const maxBody = options.maxBodyBytes ?? 4 * 1024 * 1024
  const principalHeader = options.principalHeader?.toLowerCase()
  const filterLists = options.filterLists !== false
  const bindSessions = options.bindSessions !== false
  const sessions = new Map<string, string>()

  let watch: PolicyWatch | undefined
  if (options.policyFile !== undefined) {
    watch = watchPolicyFile(options.policyFile, engine, {
      ...(options.onPolicyReload ? { onReload: options.onPolicyReload } : {}),
      onError:
        options.onPolicyError ??
        ((e: unknown) =>
          console.warn(
            `verdict mcp gateway: policy reload failed, keeping the old policy: ${(e as Error)?.message ?? e}`,
          )),
    })
  }

  /**
   * `lines`: the request's header field lines, when the node:http adapter has them (a Web `Headers`
   * joins repeated lines with ", ", Node's `req.headers` even keeps only the first of some).
   */
  async function handle(
    request: Request,
    peerPrincipal: string | undefined,
    lines?: FieldLineHeaders,
  ): Promise<Response> {
    const method = request.method.toUpperCase()
    if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
      return textResponse(405, 'method not allowed', { allow: 'GET, POST, DELETE' })
    }
    let body: string | undefined
    if (method === 'POST') {
      const bytes = await readLimited(request.body, maxBody)
      if (bytes === 'too_large') return textResponse(413, 'request body too large')
      try {
        body = utf8.decode(bytes)
      } catch {
        return textResponse(400, 'request body is not valid UTF-8')
      }
    }
    // Every field line of the request: a name sent once is a string, one sent on several lines a
    // list. The principal header is the trusted proxy's, not the rules'; a client's
    // x-envoy-auth-partial-body would make the body look cut by Envoy.
    const headers: FieldLineHeaders = Object.create(null)
    if (lines !== undefined) {
      for (const k in lines) if (k !== principalHeader && k !== PARTIAL_BODY_HEADER) headers[k] = lines[k]!
    } else
      request.headers.forEach((v, k) => {
        if (k !== principalHeader && k !== PARTIAL_BODY_HEADER) headers[k] = v
      })
    const principal =
      options.principal?.(request) ??
      peerPrincipal ??
      (principalHeader !== undefined ? (request.headers.get(principalHeader) ?? undefined) : undefined)
    const url = new URL(request.url)
    const input: Obj = {
      method,
      path: url.pathname + url.search,
      host: url.host,
      scheme: url.protocol.slice(0, -1),
      headers,
    }
    if (body !== undefined) input.body = body
    if (principal !== undefined) input.source = { principal }

    const sessionLines = headers['mcp-session-id']
    // Two session ids: which one the upstream uses is not ours to guess.
    if (Array.isArray(sessionLines)) return textResponse(400, 'mcp-session-id sent more than once')
    const session = sessionLines
    if (bindSessions && session !== undefined) {
      const owner = sessions.get(session)
      if (owner !== undefined && owner !== (principal ?? '')) {
        return textResponse(403, 'this MCP session belongs to another caller')
      }
    }

    const d = await engine.decide(input)
    if (!d.allowed) return denialResponse(d)

    const out = new Headers()
    const remove = new Set(d.headersToRemove.map((h) => h.toLowerCase()))
    for (const [k, v] of Object.entries(headers)) {
      if (HOP_BY_HOP.has(k) || remove.has(k)) continue
      if (typeof v === 'string') out.set(k, v)
      else for (const x of v) out.append(k, x)
    }
    // A resumed stream replays earlier events as the upstream stored them, list results unfiltered:
    // with filtering on, streams are not resumed (the upstream opens a new one).
    if (filterLists) out.delete('last-event-id')
    for (const h of d.headers) {
      if (h.append === 'append') out.append(h.key, h.value)
      else if (h.append !== 'add_if_absent' || !out.has(h.key)) out.set(h.key, h.value)
    }
    const target = new URL(upstream)
    if (url.search !== '') target.search = url.search
    let up: Response
    try {
      up = await upstreamFetch(target, {
        method,
        headers: out,
        redirect: 'manual',
        signal: request.signal,
        ...(body !== undefined ? { body } : {}),
      })
    } catch (e) {
      if (request.signal.aborted) return textResponse(499, 'client closed the request')
      return textResponse(502, `upstream unavailable: ${(e as Error)?.message ?? e}`)
    }

    const respHeaders = new Headers()
    up.headers.forEach((v, k) => {
      if (!DECODED.has(k)) respHeaders.set(k, v)
    })
    for (const h of d.responseHeadersToAdd) respHeaders.append(h.key, h.value)
    const newSession = up.headers.get('mcp-session-id')
    if (bindSessions && newSession !== null && up.ok && !sessions.has(newSession)) {
      if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value!)
      sessions.set(newSession, principal ?? '')
    }
    if (bindSessions && method === 'DELETE' && session !== undefined && up.ok) sessions.delete(session)

    const lists = filterLists ? listRequests(body) : undefined
    if (lists === undefined || up.body === null) {
      return new Response(up.body, { status: up.status, statusText: up.statusText, headers: respHeaders })
    }
    const rewrite = async (text: string): Promise<string | undefined> => {
      let msg: unknown
      try {
        msg = JSON.parse(text)
      } catch {
        return undefined
      }
      let changed = false
      const each = async (m: unknown): Promise<unknown> => {
        if (typeof m !== 'object' || m === null || !('result' in m)) return m
        const listMethod = lists.get(idKey((m as Obj).id))
        if (listMethod === undefined) return m
        changed = true
        return { ...m, result: await filterListResult(engine, input, listMethod, (m as Obj).result) }
      }
      const next = Array.isArray(msg) ? await Promise.all(msg.map(each)) : await each(msg)
      return changed ? JSON.stringify(next) : undefined
    }
    const ct = up.headers.get('content-type') ?? ''
    if (ct.startsWith('text/event-stream')) {
      return new Response(up.body.pipeThrough(sseTransform(rewrite)), {
        status: up.status,
        statusText: up.statusText,
        headers: respHeaders,
      })
    }
    const text = await up.text()
    return new Response((await rewrite(text)) ?? text, {
      status: up.status,
      statusText: up.statusText,
      headers: respHeaders,
    })
  }

  function node(req: IncomingMessage, res: ServerResponse): void {
    const abort = new AbortController()
    res.on('close', () => {
      if (!res.writableFinished) abort.abort()
    })
    const method = (req.method ?? 'GET').toUpperCase()
    // From the raw field lines: req.headers keeps only the first authorization, host, ... line.
    const lines = headerFieldLines(req.rawHeaders)
    const headers = new Headers()
    for (const k in lines) {
      const v = lines[k]!
      if (k.startsWith(':')) {
        delete lines[k]
        continue
      }
      if (typeof v === 'string') headers.set(k, v)
      else for (const x of v) headers.append(k, x)
    }
    const scheme = (req.socket as Partial<TLSSocket>).encrypted ? 'https' : 'http'
    let request: Request
    try {
      request = new Request(`${scheme}://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, {
        method,
        headers,
        signal: abort.signal,
        ...(method === 'POST' ? { body: Readable.toWeb(req) as ReadableStream, duplex: 'half' } : {}),
      } as RequestInit)
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('bad request')
      return
    }
    handle(request, tlsPeerPrincipal(req.socket), lines)
      .then(async (response) => {
        const h: Record<string, string | string[]> = {}
        response.headers.forEach((v, k) => {
          h[k] = k === 'set-cookie' ? response.headers.getSetCookie() : v
        })
        res.writeHead(response.status, h)
        if (response.body === null) {
          res.end()
          return
        }
        res.flushHeaders()
        const reader = response.body.getReader()
        try {
          for (;;) {
            const { done, value } = await reader.read()
            if (done) break
            if (!res.write(value)) {
              await new Promise<void>((r) => {
                res.once('drain', r)
                res.once('close', r)
              })
              if (res.destroyed) break
            }
          }
          res.end()
        } catch {
          res.destroy()
        }
      })
      .catch((e: unknown) => {
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('internal error')
        } else res.destroy(e as Error)
      })
  }

  return {
    fetch: (request) => handle(request, undefined),
    node,
    close() {
      watch?.close()
    },
  }
}
