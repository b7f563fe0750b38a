/**
 * The gateway on node:http: an `IncomingMessage` becomes a Web `Request` (the header field lines
 * read from `rawHeaders`, since `req.headers` keeps only the first line of some names; the body a
 * stream; aborted when the client goes away), the caller's TLS principal is read from the socket,
 * and the `Response` is streamed back with backpressure.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import { type FieldLineHeaders, headerFieldLines, tlsPeerPrincipal } from '@verdict/node'

/** What the bridge calls: the gateway's handler with the TLS principal and the field lines. */
export type BridgedHandler = (
  request: Request,
  peerPrincipal: string | undefined,
  lines: FieldLineHeaders,
) => Promise<Response>

export function nodeHandler(handle: BridgedHandler): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
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
      .then((response) => writeResponse(response, res))
      .catch((e: unknown) => {
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('internal error')
        } else res.destroy(e as Error)
      })
  }
}

async function writeResponse(response: Response, res: ServerResponse): Promise<void> {
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
}
