/**
 * A Decision as a CheckResponse's bytes, its dynamic metadata written as a Struct straight from
 * the JSON values (`wire.ts`).
 */
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire'
import { type Decision, toCheckResponse } from '@verdict/core'
import { httpStatusFromName } from '@verdict/core/internal'
import { MAX_STRUCT_DEPTH } from './struct.js'
import { type Obj, put } from './wire-reader.js'

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
