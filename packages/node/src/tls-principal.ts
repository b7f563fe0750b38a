/**
 * The caller's principal from a mutual-TLS connection: the URI SAN (a SPIFFE ID for an X.509-SVID)
 * of the verified client certificate. One extractor for every Node host verdict ships (the HTTP
 * middleware, the MCP gateway, `verdict serve`).
 */
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'

/**
 * The URI SAN of the peer's client certificate, or undefined. Fails closed: no principal unless the
 * socket is TLS, the certificate chain verified (`authorized`), and the certificate carries exactly
 * one URI SAN (as a SPIFFE X.509-SVID does; with several, which one is the caller is ambiguous).
 * Node prints a value with special characters JSON-quoted (`URI:"..."`, commas as `\u002c`), so
 * splitting the list on `, ` cannot be fooled by a DNS SAN spelling `, URI:...`, and a quoted value
 * is decoded.
 *
 * @example
 * ```ts
 * https.createServer({ key, cert, ca, requestCert: true }, (req, res) => {
 *   const principal = tlsPeerPrincipal(req.socket) // 'spiffe://cluster.local/ns/agents/sa/agent-a'
 * })
 * ```
 */
export function tlsPeerPrincipal(socket: Socket | TLSSocket): string | undefined {
  const tls = socket as Partial<TLSSocket>
  if (tls.authorized !== true || typeof tls.getPeerCertificate !== 'function') return undefined
  let san: unknown
  try {
    san = tls.getPeerCertificate().subjectaltname
  } catch {
    return undefined
  }
  if (typeof san !== 'string') return undefined
  const uris = san.split(', ').filter((part) => part.startsWith('URI:'))
  if (uris.length !== 1) return undefined
  const value = (uris[0] as string).slice(4)
  if (!value.startsWith('"')) return value
  try {
    const decoded: unknown = JSON.parse(value)
    return typeof decoded === 'string' ? decoded : undefined
  } catch {
    return undefined
  }
}
