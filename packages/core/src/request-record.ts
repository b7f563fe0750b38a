/**
 * The request as a decision log records it: the canonical request in the shape of OPA-Envoy's input
 * document (`attributes.request.http...`, `parsed_path`, `parsed_query`), with every credential
 * erased before it leaves core. Built only when a log asks for it (`DecisionEvent.request`).
 *
 * Erased, each listed as the JSON pointer OPA's masking would report:
 * - the headers that carry credentials by convention (`authorization`, `proxy-authorization`,
 *   `cookie`, `x-api-key`) and every header, query parameter or cookie the policy reads a
 *   credential from (JWT token locations, API keys, basic auth);
 * - any other header or query value that holds the token the request authenticated with, or that
 *   looks like a JWT (three base64url parts starting `eyJ`), wherever a client put it.
 * Not recorded: the body (it may be large and hold secrets or prompts), the peer certificate, and
 * the query string inside `path` (its parameters are in `parsed_query`, erased as above).
 */
import type { CheckInput, PeerInfo } from './input/index.js'
import type { TokenLocation } from './jwt/config.js'

/** A decision log's view of the request: `input` as OPA logs it, and what was erased from it. */
export interface RequestRecord {
  readonly input: Readonly<Record<string, unknown>>
  /** JSON pointers (under `/input`) of the erased fields. */
  readonly erased: readonly string[]
}

const CONVENTIONAL = ['authorization', 'proxy-authorization', 'cookie', 'x-api-key']
const JWT_LIKE = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.?/

const escapePointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1')

function peer(p: PeerInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (p.address !== undefined)
    out.address = {
      socket_address: { address: p.address, ...(p.port !== undefined ? { port_value: p.port } : {}) },
    }
  if (p.principal !== undefined) out.principal = p.principal
  if (p.service !== undefined) out.service = p.service
  if (Object.keys(p.labels).length > 0) out.labels = { ...p.labels }
  return out
}

function secret(value: string, token: string | undefined): boolean {
  return (token !== undefined && token.length >= 8 && value.includes(token)) || JWT_LIKE.test(value)
}

/**
 * The record of `input`. `credentials` are the policy's credential locations; `token` the
 * credential the request authenticated with, if any.
 */
export function requestRecord(
  input: CheckInput,
  credentials: readonly TokenLocation[],
  token: string | undefined,
): RequestRecord {
  const erasedHeaders = new Set(CONVENTIONAL)
  const erasedQuery = new Set<string>()
  for (const l of credentials) {
    if (l.kind === 'header') erasedHeaders.add(l.name.toLowerCase())
    else if (l.kind === 'query') erasedQuery.add(l.name)
    else erasedHeaders.add('cookie')
  }
  const erased: string[] = []
  const headers: Record<string, string> = Object.create(null)
  for (const name of Object.keys(input.headers)) {
    const v = input.headers[name]!
    if (erasedHeaders.has(name) || secret(v, token)) {
      erased.push(`/input/attributes/request/http/headers/${escapePointer(name)}`)
      continue
    }
    headers[name] = v
  }
  const query: Record<string, string[]> = Object.create(null)
  for (const name of Object.keys(input.query)) {
    const values = input.query[name]!
    if (erasedQuery.has(name) || values.some((v) => secret(v, token))) {
      erased.push(`/input/parsed_query/${escapePointer(name)}`)
      continue
    }
    query[name] = [...values]
  }
  const http: Record<string, unknown> = {
    method: input.method,
    path: input.rawPath.split('?', 1)[0],
    host: input.host,
    headers,
  }
  if (input.id !== undefined) http.id = input.id
  if (input.scheme !== '') http.scheme = input.scheme
  if (input.protocol !== '') http.protocol = input.protocol
  if (input.size > 0) http.size = input.size
  const attributes: Record<string, unknown> = {
    source: peer(input.source),
    destination: peer(input.destination),
    request: { ...(input.time !== undefined ? { time: input.time } : {}), http },
  }
  if (Object.keys(input.contextExtensions).length > 0)
    attributes.context_extensions = { ...input.contextExtensions }
  if (Object.keys(input.filterMetadata).length > 0)
    attributes.metadata_context = { filter_metadata: input.filterMetadata }
  if (Object.keys(input.routeMetadata).length > 0)
    attributes.route_metadata_context = { filter_metadata: input.routeMetadata }
  return {
    input: {
      attributes,
      parsed_path: input.path.split('/').slice(1),
      parsed_query: query,
      truncated_body: input.bodyTruncated,
    },
    erased,
  }
}
