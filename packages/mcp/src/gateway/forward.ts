/**
 * Forwarding an allowed request to the upstream and shaping its answer: hop-by-hop headers and
 * those the policy removes are dropped, the policy's headers are added, redirects are not
 * followed, and headers fetch has already acted on (compression) are not passed back.
 */
import type { Decision } from '@verdict/core/internal'
import type { FieldLineHeaders } from '@verdict/node'
import type { GatewayRequest } from './request.js'
import { textResponse } from './responses.js'

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

/** The headers sent upstream. `resumable: false` drops `last-event-id` (see the gateway). */
function upstreamHeaders(headers: FieldLineHeaders, d: Decision, resumable: boolean): Headers {
  const out = new Headers()
  const remove = new Set(d.headersToRemove.map((h) => h.toLowerCase()))
  for (const [k, v] of Object.entries(headers)) {
    if (HOP_BY_HOP.has(k) || remove.has(k)) continue
    if (typeof v === 'string') out.set(k, v)
    else for (const x of v) out.append(k, x)
  }
  if (!resumable) out.delete('last-event-id')
  for (const h of d.headers) {
    if (h.append === 'append') out.append(h.key, h.value)
    else if (h.append !== 'add_if_absent' || !out.has(h.key)) out.set(h.key, h.value)
  }
  return out
}

/** What forwarding came to: the upstream's response, or the gateway's own answer. */
export type Forwarded = { readonly upstream: Response } | { readonly answer: Response }

/**
 * Send `req` to `upstream` (the request's query string replaces the upstream's). The gateway
 * answers itself when the upstream cannot be reached (502) or the client left (499).
 */
export async function forward(
  upstreamFetch: typeof globalThis.fetch,
  upstream: URL,
  request: Request,
  req: GatewayRequest,
  d: Decision,
  resumable: boolean,
): Promise<Forwarded> {
  const target = new URL(upstream)
  if (req.url.search !== '') target.search = req.url.search
  try {
    const upstreamResponse = await upstreamFetch(target, {
      method: req.method,
      headers: upstreamHeaders(req.headers, d, resumable),
      redirect: 'manual',
      signal: request.signal,
      ...(req.body !== undefined ? { body: req.body } : {}),
    })
    return { upstream: upstreamResponse }
  } catch (e) {
    if (request.signal.aborted) return { answer: textResponse(499, 'client closed the request') }
    return { answer: textResponse(502, `upstream unavailable: ${(e as Error)?.message ?? e}`) }
  }
}

/** The headers of the upstream's response passed back, with the policy's response headers. */
export function downstreamHeaders(up: Response, d: Decision): Headers {
  const out = new Headers()
  up.headers.forEach((v, k) => {
    if (!DECODED.has(k)) out.set(k, v)
  })
  for (const h of d.responseHeadersToAdd) out.append(h.key, h.value)
  return out
}
