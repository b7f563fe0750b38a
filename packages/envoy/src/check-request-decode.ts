/**
 * A CheckRequest's bytes as the protobuf JSON object `decide()` reads (lowerCamelCase names,
 * 64-bit integers as strings, enums by name, bytes as `Buffer`, the request time as RFC 3339,
 * filter metadata Structs as plain JSON), in one pass (`wire.ts`).
 */
import type { Decision } from '@verdict/core'
import { malformed } from '@verdict/core/internal'
import { timestampToJson } from './check-request-to-json.js'
import { MAX_STRUCT_DEPTH, StructTooDeep } from './struct.js'
import {
  delimited,
  expect,
  more,
  type Obj,
  put,
  readerOf,
  str,
  stringMapEntry,
  varint,
  type WireReader,
  WireType,
} from './wire-reader.js'

const SOCKET_PROTOCOL = ['TCP', 'UDP']

function socketAddress(r: WireReader, end: number): Obj {
  const o: Obj = {}
  while (more(r, end)) {
    const no = r.tag()
    const w = r.wt
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

function address(r: WireReader, end: number): Obj {
  const o: Obj = {}
  while (more(r, end)) {
    const no = r.tag()
    const w = r.wt
    if (no === 1) o.socketAddress = socketAddress(r, delimited(r, w, 'address.socket_address'))
    else if (no === 2) {
      const e = delimited(r, w, 'address.pipe')
      const pipe: Obj = {}
      while (more(r, e)) {
        const n = r.tag()
        const pw = r.wt
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
        const n = r.tag()
        const iw = r.wt
        if (n === 1) internal.serverListenerName = str(r, iw, 'envoy_internal_address.server_listener_name')
        else if (n === 2) internal.endpointId = str(r, iw, 'envoy_internal_address.endpoint_id')
        else r.skip(iw, n)
      }
      o.envoyInternalAddress = internal
    } else r.skip(w, no)
  }
  return o
}

function peer(r: WireReader, end: number): Obj {
  const o: Obj = {}
  let labels: Obj | undefined
  while (more(r, end)) {
    const no = r.tag()
    const w = r.wt
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

function headerMap(r: WireReader, end: number): Obj {
  const headers: Obj[] = []
  while (more(r, end)) {
    const no = r.tag()
    const w = r.wt
    if (no !== 1) {
      r.skip(w, no)
      continue
    }
    const e = delimited(r, w, 'header_map.headers')
    const h: Obj = {}
    while (more(r, e)) {
      const n = r.tag()
      const hw = r.wt
      if (n === 1) h.key = str(r, hw, 'header_value.key')
      else if (n === 2) h.value = str(r, hw, 'header_value.value')
      else if (n === 3) {
        expect(hw, WireType.LengthDelimited, 'header_value.raw_value')
        h.rawValue = r.bytes()
      } else r.skip(hw, n)
    }
    headers.push(h)
  }
  return headers.length > 0 ? { headers } : {}
}

function httpRequest(r: WireReader, end: number): Obj {
  const o: Obj = {}
  let headers: Obj | undefined
  while (more(r, end)) {
    const no = r.tag()
    const w = r.wt
    switch (no) {
      case 1:
        o.id = str(r, w, 'http.id')
        break
      case 2:
        o.method = str(r, w, 'http.method')
        break
      case 3:
        headers ??= {}
        stringMapEntry(r, w, headers, 'http.headers')
        break
      case 4:
        o.path = str(r, w, 'http.path')
        break
      case 5:
        o.host = str(r, w, 'http.host')
        break
      case 6:
        o.scheme = str(r, w, 'http.scheme')
        break
      case 7:
        o.query = str(r, w, 'http.query')
        break
      case 8:
        o.fragment = str(r, w, 'http.fragment')
        break
      case 9:
        varint(w, 'http.size')
        o.size = r.int64()
        break
      case 10:
        o.protocol = str(r, w, 'http.protocol')
        break
      case 11:
        o.body = str(r, w, 'http.body')
        break
      case 12:
        expect(w, WireType.LengthDelimited, 'http.raw_body')
        o.rawBody = r.bytes()
        break
      case 13:
        o.headerMap = headerMap(r, delimited(r, w, 'http.header_map'))
        break
      default:
        r.skip(w, no)
    }
  }
  if (headers !== undefined) o.headers = headers
  return o
}

function timestamp(r: WireReader, end: number): string | undefined {
  let seconds = '0'
  let nanos = 0
  while (more(r, end)) {
    const no = r.tag()
    const w = r.wt
    if (no === 1) {
      varint(w, 'time.seconds')
      seconds = r.int64()
    } else if (no === 2) {
      varint(w, 'time.nanos')
      nanos = r.int32()
    } else r.skip(w, no)
  }
  return timestampToJson({ seconds, nanos })
}

function request(r: WireReader, end: number): Obj {
  const o: Obj = {}
  while (more(r, end)) {
    const no = r.tag()
    const w = r.wt
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

function structJson(r: WireReader, end: number, depth: number): Obj {
  if (depth > MAX_STRUCT_DEPTH) throw new StructTooDeep(`metadata nested deeper than ${MAX_STRUCT_DEPTH}`)
  const out: Obj = {}
  while (more(r, end)) {
    const no = r.tag()
    const w = r.wt
    if (no !== 1) {
      r.skip(w, no)
      continue
    }
    const e = delimited(r, w, 'struct.fields')
    let key = ''
    let value: unknown = null
    while (more(r, e)) {
      const n = r.tag()
      const fw = r.wt
      if (n === 1) key = str(r, fw, 'struct.fields.key')
      else if (n === 2) value = valueJson(r, delimited(r, fw, 'struct.fields.value'), depth)
      else r.skip(fw, n)
    }
    put(out, key, value)
  }
  return out
}

function valueJson(r: WireReader, end: number, depth: number): unknown {
  let v: unknown = null
  while (more(r, end)) {
    const no = r.tag()
    const w = r.wt
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
          const n = r.tag()
          const lw = r.wt
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
function metadata(r: WireReader, end: number): Obj {
  const filterMetadata: Obj = {}
  while (more(r, end)) {
    const no = r.tag()
    const w = r.wt
    if (no !== 1) {
      r.skip(w, no)
      continue
    }
    const e = delimited(r, w, 'metadata.filter_metadata')
    let key = ''
    let value: Obj = {}
    while (more(r, e)) {
      const n = r.tag()
      const fw = r.wt
      if (n === 1) key = str(r, fw, 'filter_metadata.key')
      else if (n === 2) value = structJson(r, delimited(r, fw, 'filter_metadata.value'), 1)
      else r.skip(fw, n)
    }
    put(filterMetadata, key, value)
  }
  return { filterMetadata }
}

function attributes(r: WireReader, end: number): Obj {
  const o: Obj = {}
  let contextExtensions: Obj | undefined
  while (more(r, end)) {
    const no = r.tag()
    const w = r.wt
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
          const n = r.tag()
          const tw = r.wt
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
      const no = r.tag()
      const w = r.wt
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
