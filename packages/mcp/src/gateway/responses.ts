/** The answers the gateway gives itself: plain-text refusals and the engine's denials. */
import type { Decision } from '@verdict/core/internal'

export function textResponse(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...headers } })
}

/** A denial as the policy shaped it: status, headers (with their append modes) and body. */
export function denialResponse(d: Decision): Response {
  const h = new Headers()
  for (const e of d.headers) {
    if (e.append === 'append') h.append(e.key, e.value)
    else if (e.append !== 'add_if_absent' || !h.has(e.key)) h.set(e.key, e.value)
  }
  if (!h.has('content-type')) h.set('content-type', 'text/plain; charset=utf-8')
  return new Response(d.body ?? '', { status: d.status, headers: h })
}
