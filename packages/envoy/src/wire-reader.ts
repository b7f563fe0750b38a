/**
 * Low-level protobuf reading for the Authorization service's messages (`wire.ts`): a lean reader
 * over one message's bytes whose strings must be UTF-8, and the checks every field read shares
 * (wire types, lengths that stay inside their message, string map entries).
 *
 * The reader replaces @bufbuild/protobuf's `BinaryReader` on this one hot path (a sidecar decodes
 * every CheckRequest): its tag reads return the field number without allocating a pair, and short
 * ASCII strings (almost every header) are sliced without a decoder. docs/envoy.md ("Speed") has the
 * measurement. Encoding rules follow the protobuf wire format: varints of up to 10 bytes, 32-bit
 * fields truncated from them, groups skipped to their matching end.
 */
import { isUtf8 } from 'node:buffer'

export type Obj = Record<string, unknown>

/** Wire types (protobuf encoding). */
export const WireType = {
  Varint: 0,
  Bit64: 1,
  LengthDelimited: 2,
  StartGroup: 3,
  EndGroup: 4,
  Bit32: 5,
} as const
export type WireType = number

/** Thrown for bytes that are not a CheckRequest; turned into a 400 denial. */
export class WireError extends Error {
  override readonly name = 'WireError'
}

const TWO_32 = 4_294_967_296

/** Unknown groups nested deeper than this are refused (protobuf's usual recursion limit). */
const MAX_GROUP_DEPTH = 100

/** Strings of up to this many bytes are interned. */
const INTERN_MAX = 64
const INTERN_MASK = 4095
/** Process-wide: at most 4,096 strings of at most 64 characters. */
const interned: Array<string | undefined> = new Array(INTERN_MASK + 1).fill(undefined)

/** A reader over one message. `tag()` returns the field number and leaves the wire type in `wt`. */
export class WireReader {
  pos = 0
  readonly len: number
  /** The wire type of the last tag read. */
  wt: WireType = 0
  /** The high 32 bits of the last varint read (for 64-bit fields). */
  private hi = 0
  private readonly buf: Buffer

  constructor(bytes: Uint8Array) {
    this.buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.len = bytes.length
  }

  /** The next field's number; its wire type is in `wt`. */
  tag(): number {
    const t = this.varint()
    const no = t >>> 3
    if (no === 0 || this.hi !== 0) throw new WireError(`illegal tag: field no ${no} wire type ${t & 7}`)
    this.wt = t & 7
    return no
  }

  /** A varint's low 32 bits (unsigned); its high 32 bits are kept in `hi`. */
  private varint(): number {
    const b = this.buf
    let pos = this.pos
    const len = this.len
    if (pos < len && b[pos]! < 0x80) {
      this.pos = pos + 1
      this.hi = 0
      return b[pos]!
    }
    let lo = 0
    let hi = 0
    let shift = 0
    for (let i = 0; i < 10; i++) {
      if (pos >= len) throw new WireError('premature EOF')
      const x = b[pos++]!
      if (shift < 28) lo |= (x & 0x7f) << shift
      else if (shift === 28) {
        lo |= (x & 0x0f) << 28
        hi |= (x & 0x7f) >> 4
      } else hi |= (x & 0x7f) << (shift - 32)
      shift += 7
      if (x < 0x80) {
        this.pos = pos
        this.hi = hi >>> 0
        return lo >>> 0
      }
    }
    throw new WireError('invalid varint')
  }

  uint32(): number {
    return this.varint()
  }

  int32(): number {
    return this.varint() | 0
  }

  bool(): boolean {
    const lo = this.varint()
    return lo !== 0 || this.hi !== 0
  }

  /** A signed 64-bit integer as its decimal text (exact beyond 2^53). */
  int64(): string {
    const lo = this.varint()
    const hi = this.hi
    if (hi === 0) return String(lo)
    if (hi < 0x200000) return String(hi * TWO_32 + lo)
    return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString()
  }

  double(): number {
    const end = this.pos + 8
    if (end > this.len) throw new WireError('premature EOF')
    const v = this.buf.readDoubleLE(this.pos)
    this.pos = end
    return v
  }

  /** A length-delimited field's bounds, checked against the message's end. */
  private span(): number {
    const n = this.varint()
    const end = this.pos + n
    if (this.hi !== 0 || end > this.len) throw new WireError('premature EOF')
    return end
  }

  /** A length-delimited field's bytes, copied. */
  bytes(): Buffer {
    const end = this.span()
    const out = Buffer.from(this.buf.subarray(this.pos, end))
    this.pos = end
    return out
  }

  /**
   * A string field's text. proto3 strings are UTF-8: bytes that are not (which a decoder would turn
   * into U+FFFD, so that two different requests read the same) make the message malformed.
   */
  string(): string {
    const end = this.span()
    const b = this.buf
    const start = this.pos
    this.pos = end
    const n = end - start
    if (n <= INTERN_MAX) {
      // Short ASCII strings repeat from request to request (header names, most values, hosts,
      // principals): the last string seen with the same hash is reused when its bytes are equal.
      let h = n
      let i = start
      for (; i < end; i++) {
        const c = b[i]!
        if (c >= 0x80) break
        h = (Math.imul(h, 31) + c) | 0
      }
      if (i === end) {
        const slot = (h ^ (h >>> 12)) & INTERN_MASK
        const seen = interned[slot]
        if (seen !== undefined && seen.length === n) {
          let k = 0
          while (k < n && seen.charCodeAt(k) === b[start + k]) k++
          if (k === n) return seen
        }
        const s = b.toString('latin1', start, end)
        interned[slot] = s
        return s
      }
    } else {
      let i = start
      while (i < end && b[i]! < 0x80) i++
      if (i === end) return b.toString('latin1', start, end)
    }
    if (!isUtf8(b.subarray(start, end))) throw new WireError('a string field is not valid UTF-8')
    return b.toString('utf8', start, end)
  }

  /** Skip the field whose tag was just read (number `no`, wire type `wire`). */
  skip(wire: WireType, no: number, depth = 0): void {
    switch (wire) {
      case WireType.Varint:
        this.varint()
        return
      case WireType.Bit64:
        this.pos += 8
        break
      case WireType.LengthDelimited:
        this.pos = this.span()
        return
      case WireType.StartGroup:
        if (depth >= MAX_GROUP_DEPTH) throw new WireError(`groups nested deeper than ${MAX_GROUP_DEPTH}`)
        for (;;) {
          if (this.pos >= this.len) throw new WireError('premature EOF')
          const n = this.tag()
          const w = this.wt
          if (w === WireType.EndGroup) {
            if (n !== no) throw new WireError('invalid end group tag')
            return
          }
          this.skip(w, n, depth + 1)
        }
      case WireType.Bit32:
        this.pos += 4
        break
      default:
        throw new WireError(`cant skip wire type ${wire}`)
    }
    if (this.pos > this.len) throw new WireError('premature EOF')
  }
}

export const readerOf = (bytes: Uint8Array): WireReader => new WireReader(bytes)

/** `o[k] = v`, keeping a `__proto__` key as data (as JSON.parse does). */
export function put(o: Obj, k: string, v: unknown): void {
  if (k === '__proto__')
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
  else o[k] = v
}

export function expect(wire: WireType, want: WireType, what: string): void {
  if (wire !== want) throw new WireError(`${what} has wire type ${wire}, not ${want}`)
}

/** End position of the length-delimited field at the reader's position. */
export function delimited(r: WireReader, wire: WireType, what: string): number {
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
export function more(r: WireReader, end: number): boolean {
  if (r.pos > end) throw new WireError('a field runs past the end of its message')
  return r.pos < end
}

export function str(r: WireReader, wire: WireType, what: string): string {
  expect(wire, WireType.LengthDelimited, what)
  return r.string()
}

export function varint(wire: WireType, what: string): void {
  expect(wire, WireType.Varint, what)
}

/** A `map<string, string>` entry, into `into`. */
export function stringMapEntry(r: WireReader, wire: WireType, into: Obj, what: string): void {
  const end = delimited(r, wire, what)
  let key = ''
  let value = ''
  while (more(r, end)) {
    const no = r.tag()
    const w = r.wt
    if (no === 1) key = str(r, w, what)
    else if (no === 2) value = str(r, w, what)
    else r.skip(w, no)
  }
  put(into, key, value)
}
