/**
 * The Authorization service's messages on the wire, read and written with @bufbuild/protobuf's
 * binary reader and writer, without message objects in between:
 *
 * - a CheckRequest's bytes become the protobuf JSON object `decide()` reads (lowerCamelCase names,
 *   64-bit integers as strings, enums by name, bytes as `Buffer`, the request time as RFC 3339,
 *   filter metadata Structs as plain JSON), in one pass;
 * - a Decision becomes a CheckResponse's bytes, its dynamic metadata written as a Struct straight
 *   from the JSON values.
 *
 * Field numbers are Envoy's, from this package's `.proto` files (`proto/`); `wire.test.ts` checks
 * both directions against protobuf.js reading the same files.
 */
import { isUtf8 } from 'node:buffer'
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire'
import { type Decision, toCheckResponse } from '@verdict/core'
import { httpStatusFromName, malformed } from '@verdict/core/internal'
import { timestampToJson } from './check-request-to-json.js'
import { MAX_STRUCT_DEPTH, StructTooDeep } from './struct.js'

type Obj = Record<string, unknown>

/** Thrown for bytes that are not a CheckRequest; turned into a 400 denial. */
class WireError extends Error {
  override readonly name = 'WireError'
}

/**
 * A string field's text. proto3 strings are UTF-8: bytes that are not (which Buffer would turn
 * into U+FFFD, so that two different requests read the same) make the message malformed.
 */
const utf8 = (b: Uint8Array): string => {
  const s = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8')
  if (s.includes('\uFFFD') && !isUtf8(b)) throw new WireError('a string field is not valid UTF-8')
  return s
}

/** A reader whose strings are decoded by Buffer (faster than TextDecoder for short ASCII). */
const readerOf = (bytes: Uint8Array): BinaryReader => new BinaryReader(bytes, utf8)

/** `o[k] = v`, keeping a `__proto__` key as data (as JSON.parse does). */
function put(o: Obj, k: string, v: unknown): void {
  if (k === '__proto__')
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
  else o[k] = v
}

function expect(wire: WireType, want: WireType, what: string): void {
  if (wire !== want) throw new WireError(`${what} has wire type ${wire}, not ${want}`)
}

/** End position of the length-delimited field at the reader's position. */
function delimited(r: BinaryReader, wire: WireType, what: string): number {
  expect(wire, WireType.LengthDelimited, what)
  const len = r.uint32()
  const end = r.pos + len
  if (end > r.len) throw new WireError(`${what} is cut short`)
  return end
}

/**
 * True while the message ending at `end` has fields left. A field that ran past `end` (its length
 * reaching into the bytes after the message holding it) makes the bytes malformed: a reader that
 * went on would read them differently from every protobuf decoder.
 */
function more(r: BinaryReader, end: number): boolean {
  if (r.pos > end) throw new WireError('a field runs past the end of its message')
  return r.pos < end
}

function str(r: BinaryReader, wire: WireType, what: string): string {
  expect(wire, WireType.LengthDelimited, what)
  return r.string()
}

function varint(wire: WireType, what: string): void {
  expect(wire, WireType.Varint, what)
}

/** A `map<string, string>` entry, into `into`. */
function stringMapEntry(r: BinaryReader, wire: WireType, into: Obj, what: string): void {
  const end = delimited(r, wire, what)
  let key = ''
  let value = ''
  while (more(r, end)) {
    const [no, w] = r.tag()
    if (no === 1) key = str(r, w, what)
    else if (no === 2) value = str(r, w, what)
    else r.skip(w, no)
  }
  put(into, key, value)
}

const SOCKET_PROTOCOL = ['TCP', 'UDP']

function socketAddress(r: BinaryReader, end: number): Obj {
  const o: Obj = {}
  while (more(r, end)) {
    const [no, w] = r.tag()
    switch (no) {
      case 1: {
        varint(w, 'socket_address.protocol')
        const p = r.int32()
        o.protocol = SOCKET_PROTOCOL[p] ?? p
        break
      }
      case 2:
        o.address = str(r, w, 'socket_address.address')
        break
      case 3:
        varint(w, 'socket_address.port_value')
        o.portValue = r.uint32()
        break
      case 4:
        o.namedPort = str(r, w, 'socket_address.named_port')
        break
      case 5:
        o.resolverName = str(r, w, 'socket_address.resolver_name')
        break
      case 6:
        varint(w, 'socket_address.ipv4_compat')
        o.ipv4Compat = r.bool()
        break
      default:
        r.skip(w, no)
    }
  }
  return o
}

function address(r: BinaryReader, end: number): Obj {
  const o: Obj = {}
  while (more(r, end)) {
    const [no, w] = r.tag()
    if (no === 1) o.socketAddress = socketAddress(r, delimited(r, w, 'address.socket_address'))
    else if (no === 2) {
      const e = delimited(r, w, 'address.pipe')
      const pipe: Obj = {}
      while (more(r, e)) {
        const [n, pw] = r.tag()
        if (n === 1) pipe.path = str(r, pw, 'pipe.path')
        else if (n === 2) {
          varint(pw, 'pipe.mode')
          pipe.mode = r.uint32()
        } else r.skip(pw, n)
      }
      o.pipe = pipe
    } else if (no === 3) {
      const e = delimited(r, w, 'address.envoy_internal_address')
      const internal: Obj = {}
      while (more(r, e)) {
        const [n, iw] = r.tag()
        if (n === 1) internal.serverListenerName = str(r, iw, 'envoy_internal_address.server_listener_name')
        else if (n === 2) internal.endpointId = str(r, iw, 'envoy_internal_address.endpoint_id')
        else r.skip(iw, n)
      }
      o.envoyInternalAddress = internal
    } else r.skip(w, no)
  }
  return o
}

function peer(r: BinaryReader, end: number): Obj {
  const o: Obj = {}
  let labels: Obj | undefined
  while (more(r, end)) {
    const [no, w] = r.tag()
    switch (no) {
      case 1:
        o.address = address(r, delimited(r, w, 'peer.address'))
        break
      case 2:
        o.service = str(r, w, 'peer.service')
        break
      case 3:
        labels ??= {}
        stringMapEntry(r, w, labels, 'peer.labels')
        break
      case 4:
        o.principal = str(r, w, 'peer.principal')
        break
      case 5:
        o.certificate = str(r, w, 'peer.certificate')
        break
      default:
        r.skip(w, no)
    }
  }
  if (labels !== undefined) o.labels = labels
  return o
}

function headerMap(r: BinaryReader, end: number): Obj {
  const headers: Obj[] = []
  while (more(r, end)) {
    const [no, w] = r.tag()
    if (no !== 1) {
      r.skip(w, no)
      continue
    }
    const e = delimited(r, w, 'header_map.headers')
    const h: Obj = {}
    while (more(r, e)) {
      const [n, hw] = r.tag()
      if (n === 1) h.key = str(r, hw, 'header_value.key')
      else if (n === 2) h.value = str(r, hw, 'header_value.value')
      else if (n === 3) {
        expect(hw, WireType.LengthDelimited, 'header_value.raw_value')
        h.rawValue = Buffer.from(r.bytes())
      } else r.skip(hw, n)
    }
    headers.push(h)
  }
  return headers.length > 0 ? { headers } : {}
}

const HTTP_STRINGS: Record<number, string> = {
  1: 'id',
  2: 'method',
  4: 'path',
  5: 'host',
  6: 'scheme',
  7: 'query',
  8: 'fragment',
  10: 'protocol',
  11: 'body',
}

function httpRequest(r: BinaryReader, end: number): Obj {
  const o: Obj = {}
  let headers: Obj | undefined
  while (more(r, end)) {
    const [no, w] = r.tag()
    const name = HTTP_STRINGS[no]
    if (name !== undefined) o[name] = str(r, w, `http.${name}`)
    else if (no === 3) {
      headers ??= {}
      stringMapEntry(r, w, headers, 'http.headers')
    } else if (no === 9) {
      varint(w, 'http.size')
      o.size = String(r.int64())
    } else if (no === 12) {
      expect(w, WireType.LengthDelimited, 'http.raw_body')
      o.rawBody = Buffer.from(r.bytes())
    } else if (no === 13) o.headerMap = headerMap(r, delimited(r, w, 'http.header_map'))
    else r.skip(w, no)
  }
  if (headers !== undefined) o.headers = headers
  return o
}

function timestamp(r: BinaryReader, end: number): string | undefined {
  let seconds = '0'
  let nanos = 0
  while (more(r, end)) {
    const [no, w] = r.tag()
    if (no === 1) {
      varint(w, 'time.seconds')
      seconds = String(r.int64())
    } else if (no === 2) {
      varint(w, 'time.nanos')
      nanos = r.int32()
    } else r.skip(w, no)
  }
  return timestampToJson({ seconds, nanos })
}

function request(r: BinaryReader, end: number): Obj {
  const o: Obj = {}
  while (more(r, end)) {
    const [no, w] = r.tag()
    if (no === 1) {
      const time = timestamp(r, delimited(r, w, 'request.time'))
      if (time !== undefined) o.time = time
      else delete o.time
    } else if (no === 2) o.http = httpRequest(r, delimited(r, w, 'request.http'))
    else r.skip(w, no)
  }
  return o
}

// google.protobuf.Struct / Value / ListValue, straight to JSON.

function structJson(r: BinaryReader, end: number, depth: number): Obj {
  if (depth > MAX_STRUCT_DEPTH) throw new StructTooDeep(`metadata nested deeper than ${MAX_STRUCT_DEPTH}`)
  const out: Obj = {}
  while (more(r, end)) {
    const [no, w] = r.tag()
    if (no !== 1) {
      r.skip(w, no)
      continue
    }
    const e = delimited(r, w, 'struct.fields')
    let key = ''
    let value: unknown = null
    while (more(r, e)) {
      const [n, fw] = r.tag()
      if (n === 1) key = str(r, fw, 'struct.fields.key')
      else if (n === 2) value = valueJson(r, delimited(r, fw, 'struct.fields.value'), depth)
      else r.skip(fw, n)
    }
    put(out, key, value)
  }
  return out
}

function valueJson(r: BinaryReader, end: number, depth: number): unknown {
  let v: unknown = null
  while (more(r, end)) {
    const [no, w] = r.tag()
    switch (no) {
      case 1:
        varint(w, 'value.null_value')
        r.int32()
        v = null
        break
      case 2:
        expect(w, WireType.Bit64, 'value.number_value')
        v = r.double()
        break
      case 3:
        v = str(r, w, 'value.string_value')
        break
      case 4:
        varint(w, 'value.bool_value')
        v = r.bool()
        break
      case 5:
        v = structJson(r, delimited(r, w, 'value.struct_value'), depth + 1)
        break
      case 6: {
        const e = delimited(r, w, 'value.list_value')
        if (depth + 1 > MAX_STRUCT_DEPTH)
          throw new StructTooDeep(`metadata nested deeper than ${MAX_STRUCT_DEPTH}`)
        const list: unknown[] = []
        while (more(r, e)) {
          const [n, lw] = r.tag()
          if (n === 1) list.push(valueJson(r, delimited(r, lw, 'list_value.values'), depth + 1))
          else r.skip(lw, n)
        }
        v = list
        break
      }
      default:
        r.skip(w, no)
    }
  }
  return v
}

/** envoy.config.core.v3.Metadata: `filter_metadata` as plain JSON; typed metadata is not passed on. */
function metadata(r: BinaryReader, end: number): Obj {
  const filterMetadata: Obj = {}
  while (more(r, end)) {
    const [no, w] = r.tag()
    if (no !== 1) {
      r.skip(w, no)
      continue
    }
    const e = delimited(r, w, 'metadata.filter_metadata')
    let key = ''
    let value: Obj = {}
    while (more(r, e)) {
      const [n, fw] = r.tag()
      if (n === 1) key = str(r, fw, 'filter_metadata.key')
      else if (n === 2) value = structJson(r, delimited(r, fw, 'filter_metadata.value'), 1)
      else r.skip(fw, n)
    }
    put(filterMetadata, key, value)
  }
  return { filterMetadata }
}

function attributes(r: BinaryReader, end: number): Obj {
  const o: Obj = {}
  let contextExtensions: Obj | undefined
  while (more(r, end)) {
    const [no, w] = r.tag()
    switch (no) {
      case 1:
        o.source = peer(r, delimited(r, w, 'attributes.source'))
        break
      case 2:
        o.destination = peer(r, delimited(r, w, 'attributes.destination'))
        break
      case 4:
        o.request = request(r, delimited(r, w, 'attributes.request'))
        break
      case 10:
        contextExtensions ??= {}
        stringMapEntry(r, w, contextExtensions, 'attributes.context_extensions')
        break
      case 11:
        o.metadataContext = metadata(r, delimited(r, w, 'attributes.metadata_context'))
        break
      case 12: {
        const e = delimited(r, w, 'attributes.tls_session')
        const tls: Obj = {}
        while (more(r, e)) {
          const [n, tw] = r.tag()
          if (n === 1) tls.sni = str(r, tw, 'tls_session.sni')
          else r.skip(tw, n)
        }
        o.tlsSession = tls
        break
      }
      case 13:
        o.routeMetadataContext = metadata(r, delimited(r, w, 'attributes.route_metadata_context'))
        break
      default:
        r.skip(w, no)
    }
  }
  if (contextExtensions !== undefined) o.contextExtensions = contextExtensions
  return o
}

/**
 * A CheckRequest's bytes as the protobuf JSON object `decide()` reads (`{attributes: ...}`), or a
 * 400 denial when they are not one (cannot be decoded, no attributes, metadata nested too deep).
 *
 * @example
 * ```ts
 * const input = decodeCheckRequest(messageBytes)
 * const decision = 'allowed' in input ? input : await engine.decide(input)
 * ```
 */
export function decodeCheckRequest(bytes: Uint8Array): Obj | Decision {
  let attrs: Obj | undefined
  try {
    const r = readerOf(bytes)
    while (r.pos < r.len) {
      const [no, w] = r.tag()
      if (no === 1) {
        // A repeated singular message field merges in protobuf; Envoy sends it once.
        attrs = attributes(r, delimited(r, w, 'attributes'))
      } else r.skip(w, no)
    }
  } catch (e) {
    if (e instanceof StructTooDeep) return malformed(`malformed input: ${e.message}`)
    return malformed(`malformed input: CheckRequest does not decode (${(e as Error).message})`)
  }
  if (attrs === undefined) return malformed('malformed input: CheckRequest has no attributes')
  return { attributes: attrs }
}

/** The `service` of a grpc.health.v1.HealthCheckRequest ("" when absent). */
export function decodeHealthRequest(bytes: Uint8Array): string {
  const r = readerOf(bytes)
  let service = ''
  while (r.pos < r.len) {
    const [no, w] = r.tag()
    if (no === 1) service = str(r, w, 'service')
    else r.skip(w, no)
  }
  return service
}

/** grpc.health.v1.HealthCheckResponse.ServingStatus. */
export const SERVING_STATUS = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const

/** A HealthCheckResponse with `status`. */
export function encodeHealthResponse(status: number): Uint8Array {
  const w = new BinaryWriter()
  if (status !== 0) w.tag(1, WireType.Varint).int32(status)
  return w.finish()
}

// Writing.

function writeValue(w: BinaryWriter, v: unknown, depth: number): void {
  // google.protobuf.Value; values nested past the depth limit, and non-JSON ones, become null.
  switch (typeof v) {
    case 'string':
      w.tag(3, WireType.LengthDelimited).string(v)
      return
    case 'number':
      if (Number.isFinite(v)) w.tag(2, WireType.Bit64).double(v)
      else w.tag(3, WireType.LengthDelimited).string(String(v))
      return
    case 'boolean':
      w.tag(4, WireType.Varint).bool(v)
      return
    case 'bigint':
      w.tag(3, WireType.LengthDelimited).string(v.toString())
      return
    case 'object':
      if (v !== null && depth < MAX_STRUCT_DEPTH) {
        if (Array.isArray(v)) {
          w.tag(6, WireType.LengthDelimited).fork()
          for (const x of v) {
            w.tag(1, WireType.LengthDelimited).fork()
            if (x !== undefined && typeof x !== 'function' && typeof x !== 'symbol')
              writeValue(w, x, depth + 1)
            else w.tag(1, WireType.Varint).int32(0)
            w.join()
          }
          w.join()
        } else {
          w.tag(5, WireType.LengthDelimited).fork()
          writeStruct(w, v as Obj, depth + 1)
          w.join()
        }
        return
      }
      w.tag(1, WireType.Varint).int32(0)
      return
    default:
      w.tag(1, WireType.Varint).int32(0)
  }
}

/** The fields of a google.protobuf.Struct for `o` (keys whose value has no JSON form are left out). */
function writeStruct(w: BinaryWriter, o: Readonly<Obj>, depth: number): void {
  for (const k of Object.keys(o)) {
    const v = o[k]
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue
    w.tag(1, WireType.LengthDelimited).fork()
    w.tag(1, WireType.LengthDelimited).string(k)
    w.tag(2, WireType.LengthDelimited).fork()
    writeValue(w, v, depth)
    w.join()
    w.join()
  }
}

const APPEND_ACTION_NUMBER: Record<string, number> = {
  APPEND_IF_EXISTS_OR_ADD: 0,
  ADD_IF_ABSENT: 1,
  OVERWRITE_IF_EXISTS_OR_ADD: 2,
  OVERWRITE_IF_EXISTS: 3,
}

type HeaderOptionJson = { header: { key: string; value: string }; appendAction: string }

function writeHeaderOptions(
  w: BinaryWriter,
  field: number,
  list: readonly HeaderOptionJson[] | undefined,
): void {
  if (list === undefined) return
  for (const h of list) {
    w.tag(field, WireType.LengthDelimited).fork()
    w.tag(1, WireType.LengthDelimited).fork()
    w.tag(1, WireType.LengthDelimited).string(h.header.key)
    w.tag(2, WireType.LengthDelimited).string(h.header.value)
    w.join()
    const action = APPEND_ACTION_NUMBER[h.appendAction] ?? 0
    w.tag(3, WireType.Varint).int32(action)
    w.join()
  }
}

function writeStrings(w: BinaryWriter, field: number, list: readonly string[] | undefined): void {
  if (list !== undefined) for (const s of list) w.tag(field, WireType.LengthDelimited).string(s)
}

/** Key of the decision id in `dynamic_metadata` (the name the OPA-Envoy plugin uses too). */
export const DECISION_ID_KEY = 'decision_id'

/**
 * The CheckResponse bytes for `decision`, with `decisionId` in `dynamic_metadata` next to the
 * decision's own metadata (as `toCheckResponseMessage` builds it for protobuf.js).
 *
 * @example
 * ```ts
 * const bytes = encodeCheckResponse(decision, id)
 * ```
 */
export function encodeCheckResponse(decision: Decision, decisionId: string): Uint8Array {
  const json = toCheckResponse(decision)
  // One writer for every answer (this runs to the end synchronously): its buffer is kept, so a
  // check does not allocate and zero a new one. A throw leaves it half-written: replaced then.
  try {
    return writeCheckResponse(writer, json, decisionId)
  } catch (e) {
    writer = new BinaryWriter()
    throw e
  }
}

let writer = new BinaryWriter()

function writeCheckResponse(
  w: BinaryWriter,
  json: ReturnType<typeof toCheckResponse>,
  decisionId: string,
): Uint8Array {
  // status: google.rpc.Status
  w.tag(1, WireType.LengthDelimited).fork()
  w.tag(1, WireType.Varint).int32(json.status.code)
  if (json.status.message !== undefined) w.tag(2, WireType.LengthDelimited).string(json.status.message)
  w.join()
  const denied = json.deniedResponse
  if (denied !== undefined) {
    w.tag(2, WireType.LengthDelimited).fork()
    // envoy.type.v3.HttpStatus { code: StatusCode } — the enum's numbers are the HTTP statuses.
    const code = httpStatusFromName(denied.status.code) ?? 403
    w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.Varint).int32(code).join()
    writeHeaderOptions(w, 2, denied.headers)
    if (denied.body !== undefined) w.tag(3, WireType.LengthDelimited).string(denied.body)
    w.join()
  }
  const ok = json.okResponse
  if (ok !== undefined) {
    w.tag(3, WireType.LengthDelimited).fork()
    writeHeaderOptions(w, 2, ok.headers)
    writeStrings(w, 5, ok.headersToRemove)
    writeHeaderOptions(w, 6, ok.responseHeadersToAdd)
    if (ok.queryParametersToSet !== undefined)
      for (const q of ok.queryParametersToSet) {
        w.tag(7, WireType.LengthDelimited).fork()
        w.tag(1, WireType.LengthDelimited).string(q.key)
        w.tag(2, WireType.LengthDelimited).string(q.value)
        w.join()
      }
    writeStrings(w, 8, ok.queryParametersToRemove)
    w.join()
  }
  // dynamic_metadata: the decision's own keys, then the id (which wins over a key of that name).
  w.tag(4, WireType.LengthDelimited).fork()
  const own = json.dynamicMetadata
  if (own !== undefined) {
    const rest: Obj = {}
    for (const k of Object.keys(own)) if (k !== DECISION_ID_KEY) put(rest, k, own[k])
    writeStruct(w, rest, 1)
  }
  writeStruct(w, { [DECISION_ID_KEY]: decisionId }, 1)
  w.join()
  return w.finish()
}
