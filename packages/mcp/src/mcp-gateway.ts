/**
 * A Streamable HTTP MCP gateway: every request is decided by the engine first (each JSON-RPC
 * message of a batch), allowed traffic goes to the upstream MCP server (JSON and SSE responses,
 * sessions, GET and DELETE), denials are answered here, and list results are filtered to what
 * the caller may use. One Web `Request -> Response` handler, plus a node:http adapter.
 *
 * The steps live in gateway/: request.ts (the request as the engine's input), sessions.ts (session
 * binding), forward.ts (to the upstream and back), list-rewrite.ts and sse-rewrite.ts (list results
 * filtered in JSON and SSE responses), node-bridge.ts (node:http), responses.ts (own answers).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { type Engine, type PolicyWatch, VerdictUsageError, watchPolicyFile } from '@verdict/core/internal'
import type { FieldLineHeaders } from '@verdict/node'
import { downstreamHeaders, forward } from './gateway/forward.js'
import { listRequests, withFilteredLists } from './gateway/list-rewrite.js'
import { nodeHandler } from './gateway/node-bridge.js'
import { readGatewayRequest } from './gateway/request.js'
import { denialResponse, textResponse } from './gateway/responses.js'
import { SessionBindings } from './gateway/sessions.js'

/** Options of `createMcpGateway`. */
export interface McpGatewayOptions {
  /** The engine deciding every request (register `createMcpEvaluator()` on it). */
  readonly engine: Engine
  /**
   * Full URL of the upstream MCP endpoint, e.g. `http://127.0.0.1:3001/mcp` (http or https; anything
   * else throws `VerdictUsageError`).
   */
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

/** `options.upstream` as a URL, or the `VerdictUsageError` naming it. */
function upstreamUrl(upstream: unknown): URL {
  let url: URL | undefined
  if (upstream instanceof URL || typeof upstream === 'string') url = URL.parse(String(upstream)) ?? undefined
  if (url === undefined)
    throw new VerdictUsageError(
      'upstream',
      `createMcpGateway: upstream must be the absolute URL of the upstream MCP endpoint, got ${describe(upstream)}`,
    )
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new VerdictUsageError(
      'upstream',
      `createMcpGateway: upstream must be an http: or https: URL, got ${url.protocol}`,
    )
  return url
}

function describe(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : v === null ? 'null' : typeof v
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
  const upstream = upstreamUrl(options.upstream)
  const upstreamFetch = options.fetch ?? globalThis.fetch
  const requestOptions = {
    maxBodyBytes: options.maxBodyBytes ?? 4 * 1024 * 1024,
    principalHeader: options.principalHeader?.toLowerCase(),
    principal: options.principal,
  }
  const filterLists = options.filterLists !== false
  const sessions = options.bindSessions !== false ? new SessionBindings() : undefined

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

  async function handle(
    request: Request,
    peerPrincipal: string | undefined,
    lines?: FieldLineHeaders,
  ): Promise<Response> {
    const req = await readGatewayRequest(request, peerPrincipal, lines, requestOptions)
    if (req instanceof Response) return req

    const sessionLines = req.headers['mcp-session-id']
    // Two session ids: which one the upstream uses is not ours to guess.
    if (Array.isArray(sessionLines)) return textResponse(400, 'mcp-session-id sent more than once')
    const session = sessionLines
    if (sessions !== undefined && session !== undefined && !sessions.mayUse(session, req.principal)) {
      return textResponse(403, 'this MCP session belongs to another caller')
    }

    const d = await engine.decide(req.input)
    if (!d.allowed) return denialResponse(d)

    // A resumed stream replays earlier events as the upstream stored them, list results unfiltered:
    // with filtering on, streams are not resumed (the upstream opens a new one).
    const forwarded = await forward(upstreamFetch, upstream, request, req, d, !filterLists)
    if ('answer' in forwarded) return forwarded.answer
    const up = forwarded.upstream
    const headers = downstreamHeaders(up, d)
    sessions?.record(req.method, session, up, req.principal)

    const lists = filterLists ? listRequests(req.body) : undefined
    if (lists === undefined || up.body === null) {
      return new Response(up.body, { status: up.status, statusText: up.statusText, headers })
    }
    return withFilteredLists(
      engine,
      req.input,
      lists,
      up as Response & { body: ReadableStream<Uint8Array> },
      headers,
    )
  }

  return {
    fetch: (request) => handle(request, undefined),
    node: nodeHandler(handle),
    close() {
      watch?.close()
    },
  }
}
