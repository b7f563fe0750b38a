/**
 * A plain HTTP-shaped object (`{ method, path, headers, body, source }`) into a `CheckInput`.
 */
import { malformed } from '../decision.js'
import {
  bad,
  decodeUtf8,
  EMPTY_STRINGS,
  InputProblem,
  jsonObjectMap,
  type Obj,
  optObject,
  optString,
  refuse,
  stringMap,
} from './fields.js'
import { normalizeHeaders } from './headers.js'
import { checkJsonValue } from './json.js'
import { checkTargetSize, splitPathOrThrow } from './path.js'
import { bodyFrom, checkBodyLength, EMPTY_NAMES, requestLine } from './request-line.js'
import { EMPTY_PEER, parseSpiffeId } from './spiffe.js'
import { type CheckInput, PARTIAL_BODY_HEADER, type PeerInfo, type ResolvedInputOptions } from './types.js'

function plainPeer(v: unknown, at: string): PeerInfo {
  const p = optObject(v, at)
  if (p === undefined) return EMPTY_PEER
  const port = p.port
  if (
    port !== undefined &&
    (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535)
  ) {
    bad(`${at}.port`, 'must be a port number')
  }
  const principal = optString(p.principal, `${at}.principal`)
  return {
    address: optString(p.address, `${at}.address`),
    port: port as number | undefined,
    service: optString(p.service, `${at}.service`),
    principal,
    certificate: optString(p.certificate, `${at}.certificate`),
    labels: p.labels === undefined ? EMPTY_STRINGS : stringMap(p.labels, `${at}.labels`),
    spiffe: parseSpiffeId(principal),
  }
}

/** A body given as bytes: a Uint8Array (Node's Buffer too), any other ArrayBuffer view, or an ArrayBuffer. */
function bodyBytes(b: unknown): Uint8Array | undefined {
  if (b instanceof Uint8Array) return b
  if (ArrayBuffer.isView(b)) return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
  if (b instanceof ArrayBuffer) return new Uint8Array(b)
  // SharedArrayBuffer is undefined in pages that are not cross-origin isolated.
  if (typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer) return new Uint8Array(b)
  return undefined
}

export function fromHttpShape(raw: Obj, o: ResolvedInputOptions): CheckInput {
  const target = optString(raw.path, 'path') ?? optString(raw.url, 'url')
  if (target === undefined) bad('path', 'is required')
  const acc = normalizeHeaders(raw.headers, undefined, 'headers', o)
  checkTargetSize(target, acc, o)
  const split = splitPathOrThrow(target, o.rejectAmbiguousPaths)
  const line = requestLine(
    acc,
    optString(raw.method, 'method') ?? acc.map[':method'] ?? 'GET',
    target,
    optString(raw.host, 'host'),
    optString(raw.scheme, 'scheme'),
  )
  let body: string | undefined
  const b = raw.body
  const bytes = bodyBytes(b)
  const bodyTruncated = acc.map[PARTIAL_BODY_HEADER] === 'true'
  if (bytes !== undefined) {
    if (bytes.length > o.maxBodyBytes)
      throw new InputProblem(malformed('body too large', 'body_too_large', 413))
    body = decodeUtf8(bytes, 'body')
    checkBodyLength(acc.map, -1, body, bodyTruncated)
  } else if (typeof b === 'object' && b !== null) {
    // A service author may pass an already-parsed JSON body; keep its text form for dialects.
    // Anything else (a Blob, a stream, a class instance) would stringify to something other than
    // what the upstream reads, so it is refused, and so is a value JSON cannot hold.
    checkJsonValue(b, o.maxJsonDepth)
    let text: string
    try {
      text = JSON.stringify(b)
    } catch {
      return refuse('unserializable_body', 'the body is not JSON-serializable')
    }
    body = bodyFrom(text, undefined, '', o)
  } else {
    body = bodyFrom(b, undefined, '', o)
    checkBodyLength(acc.map, -1, body, bodyTruncated)
  }
  const md = optObject(raw.metadata, 'metadata')
  return {
    dialect: 'http',
    id: optString(raw.id, 'id'),
    time: undefined,
    method: line.method,
    path: split.path,
    rawPath: target,
    rawQuery: split.rawQuery,
    query: split.query,
    host: line.host,
    scheme: line.scheme,
    protocol: optString(raw.protocol, 'protocol') ?? '',
    headers: acc.map,
    headerCount: acc.count,
    repeatedHeaders: acc.repeated ?? EMPTY_NAMES,
    droppedHeaders: acc.dropped ?? EMPTY_NAMES,
    body,
    bodyTruncated,
    size: body === undefined ? 0 : -1,
    source: plainPeer(raw.source, 'source'),
    destination: plainPeer(raw.destination, 'destination'),
    contextExtensions: stringMap(raw.contextExtensions, 'contextExtensions'),
    filterMetadata: jsonObjectMap(md === undefined ? undefined : (md.filterMetadata ?? md), 'metadata'),
    routeMetadata: jsonObjectMap(undefined, 'routeMetadata'),
    tlsSni: undefined,
    raw,
  }
}
