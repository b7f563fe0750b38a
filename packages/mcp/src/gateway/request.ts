/**
 * A gateway request as the engine's input: the method is one Streamable HTTP uses, the body is
 * read within its limit and is UTF-8, every header field line is kept (but the trusted proxy's
 * principal header and a client's `x-envoy-auth-partial-body`), and the caller's principal comes
 * from the `principal` option, the TLS peer, or the configured header, in that order.
 */
import { PARTIAL_BODY_HEADER, readLimited } from '@verdict/core/internal'
import type { FieldLineHeaders } from '@verdict/node'
import { textResponse } from './responses.js'

/** A request the gateway will decide. */
export interface GatewayRequest {
  readonly method: 'POST' | 'GET' | 'DELETE'
  readonly url: URL
  /** The body, for POST. */
  readonly body: string | undefined
  /** Every field line but the principal header's and `x-envoy-auth-partial-body`. */
  readonly headers: FieldLineHeaders
  readonly principal: string | undefined
  /** What `engine.decide()` gets. */
  readonly input: Record<string, unknown>
}

export interface RequestOptions {
  readonly maxBodyBytes: number
  /** Lower-cased. */
  readonly principalHeader: string | undefined
  readonly principal: ((request: Request) => string | undefined) | undefined
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Read `request`, or answer it (405, 413, 400). `lines`: the request's header field lines, when the
 * Node bridge has them (a Web `Headers` joins repeated lines with ", ", Node's `req.headers` even
 * keeps only the first of some).
 */
export async function readGatewayRequest(
  request: Request,
  peerPrincipal: string | undefined,
  lines: FieldLineHeaders | undefined,
  options: RequestOptions,
): Promise<GatewayRequest | Response> {
  const method = request.method.toUpperCase()
  if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
    return textResponse(405, 'method not allowed', { allow: 'GET, POST, DELETE' })
  }
  let body: string | undefined
  if (method === 'POST') {
    const bytes = await readLimited(request.body, options.maxBodyBytes)
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
  const { principalHeader } = options
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
  const input: Record<string, unknown> = {
    method,
    path: url.pathname + url.search,
    host: url.host,
    scheme: url.protocol.slice(0, -1),
    headers,
  }
  if (body !== undefined) input.body = body
  if (principal !== undefined) input.source = { principal }
  return { method, url, body, headers, principal, input }
}
