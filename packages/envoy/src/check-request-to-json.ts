/**
 * Request: a CheckRequest as gRPC decoded it -> the protobuf JSON shape `decide()` accepts.
 *
 * proto-loader already yields lowerCamelCase names, 64-bit integers as strings and bytes as
 * `Buffer`, all of which core reads. What remains is what protobuf JSON spells differently: the
 * request time becomes an RFC 3339 string and filter metadata Structs become plain JSON.
 */
import { type Decision, malformed } from '@verdict/core/internal'
import { type StructMessage, StructTooDeep, structToJson } from './struct.js'

type Obj = Record<string, unknown>

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, in seconds since the epoch. */
const MIN_SECONDS = -62_135_596_800
const MAX_SECONDS = 253_402_300_799

let lastSeconds = Number.NaN
let lastBase = ''

/** RFC 3339 with nanoseconds, as protobuf JSON writes a Timestamp; undefined when out of range. */
export function timestampToJson(t: unknown): string | undefined {
  if (!isObject(t)) return undefined
  const seconds = Number(t.seconds ?? 0)
  const nanos = Number(t.nanos ?? 0)
  // RFC 3339 has four-digit years: protobuf JSON writes 0001-01-01 to 9999-12-31 and no other time.
  if (!Number.isSafeInteger(seconds) || seconds < MIN_SECONDS || seconds > MAX_SECONDS) return undefined
  if (!Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) return undefined
  // Checks arrive many to a second: the date and time text is kept for the last second seen.
  let base: string
  if (seconds === lastSeconds) base = lastBase
  else {
    base = new Date(seconds * 1000).toISOString().slice(0, 19)
    lastSeconds = seconds
    lastBase = base
  }
  if (nanos === 0) return `${base}Z`
  const frac = String(nanos).padStart(9, '0')
  const digits = frac.endsWith('000000') ? 3 : frac.endsWith('000') ? 6 : 9
  return `${base}.${frac.slice(0, digits)}Z`
}

function metadataToJson(md: unknown): Obj | undefined {
  if (!isObject(md)) return undefined
  const fm = md.filterMetadata
  const filterMetadata: Obj = {}
  if (isObject(fm)) {
    for (const ns of Object.keys(fm)) {
      const json = structToJson(fm[ns] as StructMessage)
      if (ns === '__proto__')
        Object.defineProperty(filterMetadata, ns, { value: json, enumerable: true, writable: true })
      else filterMetadata[ns] = json
    }
  }
  // typed_filter_metadata holds Any messages of types verdict does not know: not passed on.
  return { filterMetadata }
}

/**
 * The protobuf JSON form of a decoded CheckRequest, or a 400 denial when it cannot be one.
 *
 * @example
 * ```ts
 * const input = checkRequestToJson(call.request)
 * const decision = 'allowed' in input ? input : await engine.decide(input)
 * ```
 */
export function checkRequestToJson(message: unknown): Obj | Decision {
  if (!isObject(message) || !isObject(message.attributes))
    return malformed('malformed input: CheckRequest has no attributes')
  const a = message.attributes
  const attributes: Obj = { ...a }
  try {
    if (isObject(a.request)) {
      const request: Obj = { ...a.request }
      if (request.time !== undefined) {
        const time = timestampToJson(request.time)
        if (time === undefined) delete request.time
        else request.time = time
      }
      attributes.request = request
    }
    if (a.metadataContext !== undefined) attributes.metadataContext = metadataToJson(a.metadataContext)
    if (a.routeMetadataContext !== undefined)
      attributes.routeMetadataContext = metadataToJson(a.routeMetadataContext)
  } catch (e) {
    if (e instanceof StructTooDeep) return malformed(`malformed input: ${e.message}`)
    throw e
  }
  return { attributes }
}
