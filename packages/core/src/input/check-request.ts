/**
 * An Envoy v3 CheckRequest (protobuf JSON camelCase or proto snake_case) into a `CheckInput`.
 */
import {
  bad,
  EMPTY_STRINGS,
  field,
  jsonObjectMap,
  type Obj,
  optObject,
  optString,
  stringMap,
} from './fields.js'
import { normalizeHeaders } from './headers.js'
import { checkTargetSize, splitPathOrThrow } from './path.js'
import { bodyFrom, checkBodyLength, EMPTY_NAMES, requestLine, sizeOf } from './request-line.js'
import { EMPTY_PEER, parseSpiffeId } from './spiffe.js'
import { type CheckInput, PARTIAL_BODY_HEADER, type PeerInfo, type ResolvedInputOptions } from './types.js'

function peerFromCheckRequest(v: unknown, at: string): PeerInfo {
  const p = optObject(v, at)
  if (p === undefined) return EMPTY_PEER
  let address: string | undefined
  let port: number | undefined
  const addr = optObject(p.address, `${at}.address`)
  if (addr !== undefined) {
    const sa = optObject(
      field(addr, 'socketAddress', 'socket_address', `${at}.address`),
      `${at}.address.socket_address`,
    )
    if (sa !== undefined) {
      address = optString(sa.address, `${at}.address.socket_address.address`)
      const pv = field(sa, 'portValue', 'port_value', `${at}.address.socket_address`)
      if (pv !== undefined && pv !== null) {
        // protobuf JSON may encode uint32 as a number or a decimal string.
        const n = typeof pv === 'string' && /^\d{1,5}$/.test(pv) ? Number(pv) : pv
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
          bad(`${at}.address.socket_address.port_value`, 'must be a port number')
        }
        port = n
      }
    }
  }
  const principal = optString(p.principal, `${at}.principal`)
  return {
    address,
    port,
    service: optString(p.service, `${at}.service`),
    principal,
    certificate: optString(p.certificate, `${at}.certificate`),
    labels: p.labels === undefined ? EMPTY_STRINGS : stringMap(p.labels, `${at}.labels`),
    spiffe: parseSpiffeId(principal),
  }
}

export function fromCheckRequest(raw: Obj, o: ResolvedInputOptions): CheckInput {
  const attrs = optObject(raw.attributes, 'attributes')
  if (attrs === undefined) bad('attributes', 'must be an object')
  const snake =
    Object.hasOwn(attrs, 'metadata_context') ||
    Object.hasOwn(attrs, 'context_extensions') ||
    Object.hasOwn(attrs, 'route_metadata_context') ||
    Object.hasOwn(attrs, 'tls_session')
  const req = optObject(attrs.request, 'attributes.request')
  const http = optObject(req?.http, 'attributes.request.http') ?? {}
  const at = 'attributes.request.http'
  const target = optString(http.path, `${at}.path`) ?? ''
  if (target === '') bad(`${at}.path`, 'is required')
  const acc = normalizeHeaders(http.headers, field(http, 'headerMap', 'header_map', at), `${at}.headers`, o)
  checkTargetSize(target, acc, o)
  const split = splitPathOrThrow(target, o.rejectAmbiguousPaths)
  const line = requestLine(
    acc,
    optString(http.method, `${at}.method`) ?? acc.map[':method'] ?? '',
    target,
    optString(http.host, `${at}.host`),
    optString(http.scheme, `${at}.scheme`),
  )
  const body = bodyFrom(http.body, field(http, 'rawBody', 'raw_body', at), at, o)
  const size = sizeOf(http.size, `${at}.size`)
  const bodyTruncated = acc.map[PARTIAL_BODY_HEADER] === 'true'
  checkBodyLength(acc.map, size, body, bodyTruncated)
  const md = optObject(
    field(attrs, 'metadataContext', 'metadata_context', 'attributes'),
    'attributes.metadata_context',
  )
  const rmd = optObject(
    field(attrs, 'routeMetadataContext', 'route_metadata_context', 'attributes'),
    'attributes.route_metadata_context',
  )
  const tls = optObject(field(attrs, 'tlsSession', 'tls_session', 'attributes'), 'attributes.tls_session')
  const time = req?.time
  return {
    dialect: snake ? 'proto' : 'protojson',
    id: optString(http.id, `${at}.id`),
    time: typeof time === 'string' ? time : undefined,
    method: line.method,
    path: split.path,
    rawPath: target,
    rawQuery: split.rawQuery,
    query: split.query,
    host: line.host,
    scheme: line.scheme,
    protocol: optString(http.protocol, `${at}.protocol`) ?? '',
    headers: acc.map,
    headerCount: acc.count,
    repeatedHeaders: acc.repeated ?? EMPTY_NAMES,
    droppedHeaders: acc.dropped ?? EMPTY_NAMES,
    body,
    bodyTruncated,
    size,
    source: peerFromCheckRequest(attrs.source, 'attributes.source'),
    destination: peerFromCheckRequest(attrs.destination, 'attributes.destination'),
    contextExtensions: stringMap(
      field(attrs, 'contextExtensions', 'context_extensions', 'attributes'),
      'attributes.context_extensions',
    ),
    filterMetadata: jsonObjectMap(
      md === undefined
        ? undefined
        : field(md, 'filterMetadata', 'filter_metadata', 'attributes.metadata_context'),
      'attributes.metadata_context.filter_metadata',
    ),
    routeMetadata: jsonObjectMap(
      rmd === undefined
        ? undefined
        : field(rmd, 'filterMetadata', 'filter_metadata', 'attributes.route_metadata_context'),
      'attributes.route_metadata_context.filter_metadata',
    ),
    tlsSni: tls === undefined ? undefined : optString(tls.sni, 'attributes.tls_session.sni'),
    raw,
  }
}
