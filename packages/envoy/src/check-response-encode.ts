/**
 * A Decision as a CheckResponse's bytes, its dynamic metadata written as a Struct straight from
 * the JSON values (`wire.ts`), into one buffer that already holds the gRPC message prefix.
 */
import { type Decision, toCheckResponse } from '@verdict/core'
import { httpStatusFromName } from '@verdict/core/internal'
import { MAX_STRUCT_DEPTH } from './struct.js'
import { type Obj, put, WireType } from './wire-reader.js'

/**
 * A protobuf writer for one message at a time, in a scratch buffer kept between messages. A
 * length-delimited field reserves one byte for its length and moves its contents when the length
 * needs more (128 bytes or longer), so nothing is written twice in the common case. `finish`
 * copies the message once, behind the 5-byte gRPC prefix (not compressed, length).
 */
class FrameWriter {
  private buf = new Uint8Array(4096)
  private view = new DataView(this.buf.buffer)
  private pos = 0
  private readonly forks: number[] = []

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n))
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  private varint(v: number): void {
    this.room(10)
    const b = this.buf
    let pos = this.pos
    if (v >= 0) {
      while (v > 0x7f) {
        b[pos++] = (v & 0x7f) | 0x80
        v = Math.floor(v / 128)
      }
      b[pos++] = v
    } else {
      // A negative int32 is sign-extended to 64 bits: ten bytes.
      let lo = v | 0
      let hi = -1
      for (let i = 0; i < 9; i++) {
        b[pos++] = (lo & 0x7f) | 0x80
        lo = (lo >>> 7) | (hi << 25)
        hi >>= 7
      }
      b[pos++] = 1
    }
    this.pos = pos
  }

  tag(no: number, wire: number): this {
    this.varint((no << 3) | wire)
    return this
  }

  int32(v: number): this {
    this.varint(v | 0)
    return this
  }

  bool(v: boolean): this {
    this.room(1)
    this.buf[this.pos++] = v ? 1 : 0
    return this
  }

  double(v: number): this {
    this.room(8)
    this.view.setFloat64(this.pos, v, true)
    this.pos += 8
    return this
  }

  string(s: string): this {
    const n = s.length
    let ascii = true
    for (let i = 0; i < n; i++)
      if (s.charCodeAt(i) >= 0x80) {
        ascii = false
        break
      }
    if (ascii) {
      this.varint(n)
      this.room(n)
      const b = this.buf
      let pos = this.pos
      for (let i = 0; i < n; i++) b[pos++] = s.charCodeAt(i)
      this.pos = pos
      return this
    }
    const bytes = utf8.encode(s)
    this.varint(bytes.length)
    this.room(bytes.length)
    this.buf.set(bytes, this.pos)
    this.pos += bytes.length
    return this
  }

  /** Start a length-delimited field's contents (its tag already written). */
  fork(): this {
    this.room(1)
    this.forks.push(this.pos)
    this.pos++
    return this
  }

  /** End the innermost `fork`, writing its length. */
  join(): this {
    const at = this.forks.pop()!
    const len = this.pos - at - 1
    if (len < 0x80) {
      this.buf[at] = len
      return this
    }
    let extra = 0
    for (let v = len; v > 0x7f; v = Math.floor(v / 128)) extra++
    this.room(extra)
    const b = this.buf
    b.copyWithin(at + 1 + extra, at + 1, this.pos)
    let v = len
    let p = at
    while (v > 0x7f) {
      b[p++] = (v & 0x7f) | 0x80
      v = Math.floor(v / 128)
    }
    b[p] = v
    this.pos += extra
    return this
  }

  /** The message written since the last `finish`, framed for gRPC, in a buffer of its own. */
  finish(): Buffer {
    const len = this.pos
    const out = Buffer.allocUnsafe(5 + len)
    out[0] = 0
    out.writeUInt32BE(len, 1)
    out.set(this.buf.subarray(0, len), 5)
    this.pos = 0
    this.forks.length = 0
    return out
  }

  /** Forget a half-written message. */
  reset(): void {
    this.pos = 0
    this.forks.length = 0
  }
}

const utf8 = new TextEncoder()
type BinaryWriter = FrameWriter

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
 * The CheckResponse for `decision`, with `decisionId` in `dynamic_metadata` next to the
 * decision's own metadata (as `toCheckResponseMessage` builds it for protobuf.js), framed as one
 * gRPC message: the 5-byte prefix, then the message.
 *
 * @example
 * ```ts
 * const frame = encodeCheckResponseFrame(decision, id)
 * const message = frame.subarray(5)
 * ```
 */
export function encodeCheckResponseFrame(decision: Decision, decisionId: string): Buffer {
  const json = toCheckResponse(decision)
  // One writer for every answer (this runs to the end synchronously): its buffer is kept, so a
  // check does not allocate a new one. A throw leaves it half-written: reset then.
  try {
    return writeCheckResponse(writer, json, decisionId)
  } catch (e) {
    writer.reset()
    throw e
  }
}

/**
 * The CheckResponse bytes for `decision` (the message alone, without the gRPC prefix).
 *
 * @example
 * ```ts
 * const bytes = encodeCheckResponse(decision, id)
 * ```
 */
export function encodeCheckResponse(decision: Decision, decisionId: string): Uint8Array {
  return encodeCheckResponseFrame(decision, decisionId).subarray(5)
}

const writer = new FrameWriter()

function writeCheckResponse(
  w: BinaryWriter,
  json: ReturnType<typeof toCheckResponse>,
  decisionId: string,
): Buffer {
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
  // The id as one Struct entry: { key: "decision_id", value: { string_value: id } }.
  w.tag(1, WireType.LengthDelimited).fork()
  w.tag(1, WireType.LengthDelimited).string(DECISION_ID_KEY)
  w.tag(2, WireType.LengthDelimited).fork().tag(3, WireType.LengthDelimited).string(decisionId).join()
  w.join()
  w.join()
  return w.finish()
}
