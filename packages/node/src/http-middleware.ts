/**
 * Authorize an existing Node HTTP service's own routes with `decide()` (also exported as
 * `@verdict/core/middleware`). Works as Express/Connect middleware `(req, res, next)` and with a
 * plain `node:http` server.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import { type Decision, type Engine, PARTIAL_BODY_HEADER } from '@verdict/core/internal/portable'
import { tlsPeerPrincipal } from './tls-principal.js'

export interface HttpMiddlewareOptions {
  /**
   * The caller's peer principal, e.g. a SPIFFE ID from the client certificate. Default: the one URI
   * SAN of a verified client certificate, when the server uses TLS with client auth
   * (`tlsPeerPrincipal`).
   */
  readonly principal?: (req: IncomingMessage) => string | undefined
  /** Called with every decision (logging); exceptions are ignored. */
  readonly onDecision?: (decision: Decision, req: IncomingMessage) => void
}

/** What the middleware leaves on the request for route handlers. */
export interface VerdictRequest extends IncomingMessage {
  /** The allow decision (identity, claims, rule). */
  verdict?: Decision
  /** Set by body parsers such as `express.json()` when they ran first. */
  body?: unknown
  originalUrl?: string
}

const certificatePrincipal = (req: IncomingMessage): string | undefined => tlsPeerPrincipal(req.socket)

/** Headers as verdict's input takes them: one string per name, or a list when it came on several lines. */
export type FieldLineHeaders = Record<string, string | string[]>

/**
 * The request's header field lines as `decide()` should see them, from `req.rawHeaders`: names
 * lower-cased; a name that occurs once maps to its value, one that occurs on several lines (in any
 * letter case) to the list of its values in order. Node's `req.headers` keeps only the first
 * `authorization`, `host`, `content-type`, ... and joins others with ", ", so the rules would see
 * less than the upstream gets. `omit` names (lower case) are left out. The map has no prototype.
 *
 * @example
 * ```ts
 * // "Authorization: a" and "authorization: b" on the wire
 * headerFieldLines(req.rawHeaders).authorization // ['a', 'b']
 * ```
 */
export function headerFieldLines(rawHeaders: readonly string[], omit?: readonly string[]): FieldLineHeaders {
  const out = Object.create(null) as FieldLineHeaders
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    // toLowerCase returns the same string when it is already lower case: no copy in the usual case.
    const name = (rawHeaders[i] as string).toLowerCase()
    if (omit?.includes(name)) continue
    const value = rawHeaders[i + 1] as string
    const prev = out[name]
    if (prev === undefined) out[name] = value
    else if (typeof prev === 'string') out[name] = [prev, value]
    else prev.push(value)
  }
  return out
}

/**
 * `x-envoy-auth-partial-body` means "Envoy cut the body" only behind Envoy; from a client it would
 * hide the body from the rules, so the middleware drops it.
 */
const CLIENT_OMITS: readonly string[] = [PARTIAL_BODY_HEADER]

/**
 * Build the middleware.
 *
 * @example
 * ```ts
 * const engine = await createEngineFromFile('policy.yaml', { evaluators: [createCelEvaluator()] })
 * app.use(express.json(), createHttpMiddleware(engine))
 * app.get('/reports', (req, res) => res.json({ user: req.verdict?.identity?.subject }))
 * ```
 */
export function createHttpMiddleware(engine: Engine, options: HttpMiddlewareOptions = {}) {
  const principalOf = options.principal ?? certificatePrincipal
  return function verdictMiddleware(
    req: VerdictRequest,
    res: ServerResponse,
    next: (err?: unknown) => void,
  ): void {
    const principal = principalOf(req)
    const input: Record<string, unknown> = {
      method: req.method ?? 'GET',
      path: req.originalUrl ?? req.url ?? '/',
      // The scheme this service is reached by: the WWW-Authenticate realm and host canonicalization
      // use it (without it the realm would claim https:// on a plain-HTTP service).
      scheme: (req.socket as Partial<TLSSocket>).encrypted === true ? 'https' : 'http',
      // Every field line, as sent: req.headers drops repeated authorization, host, ... lines.
      headers: headerFieldLines(req.rawHeaders, CLIENT_OMITS),
      source: {
        address: req.socket.remoteAddress,
        port: req.socket.remotePort,
        ...(principal !== undefined ? { principal } : {}),
      },
    }
    if (req.body !== undefined && (typeof req.body === 'string' || typeof req.body === 'object'))
      input.body = req.body
    engine.decide(input).then(
      (d) => {
        try {
          options.onDecision?.(d, req)
        } catch {
          // Logging must not change the answer.
        }
        if (!d.allowed) {
          res.statusCode = d.status
          for (const h of d.headers) res.setHeader(h.key, h.value)
          res.end(d.body ?? '')
          return
        }
        // This service is the upstream: apply what would have gone to it.
        for (const name of d.headersToRemove) delete req.headers[name.toLowerCase()]
        for (const h of d.headers) req.headers[h.key.toLowerCase()] = h.value
        for (const h of d.responseHeadersToAdd) res.setHeader(h.key, h.value)
        req.verdict = d
        next()
      },
      () => {
        res.statusCode = 403
        res.end('access denied')
      },
    )
  }
}
