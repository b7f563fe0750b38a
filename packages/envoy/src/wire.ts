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
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire'
import { readerOf, str } from './wire-reader.js'

export { decodeCheckRequest } from './check-request-decode.js'
export { DECISION_ID_KEY, encodeCheckResponse, encodeCheckResponseFrame } from './check-response-encode.js'

/** The `service` of a grpc.health.v1.HealthCheckRequest ("" when absent). */
export function decodeHealthRequest(bytes: Uint8Array): string {
  const r = readerOf(bytes)
  let service = ''
  while (r.pos < r.len) {
    const no = r.tag()
    const w = r.wt
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
