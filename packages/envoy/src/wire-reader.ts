/**
 * Low-level protobuf reading for the Authorization service's messages (`wire.ts`): a
 * @bufbuild/protobuf binary reader whose strings must be UTF-8, and the checks every field read
 * shares (wire types, lengths that stay inside their message, string map entries).
 */
import { isUtf8 } from 'node:buffer'
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire'

export type Obj = Record<string, unknown>

/** Thrown for bytes that are not a CheckRequest; turned into a 400 denial. */
export class WireError extends Error {
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
export const readerOf = (bytes: Uint8Array): BinaryReader => new BinaryReader(bytes, utf8)

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
export function delimited(r: BinaryReader, wire: WireType, what: string): number {
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
export function more(r: BinaryReader, end: number): boolean {
  if (r.pos > end) throw new WireError('a field runs past the end of its message')
  return r.pos < end
}

export function str(r: BinaryReader, wire: WireType, what: string): string {
  expect(wire, WireType.LengthDelimited, what)
  return r.string()
}

export function varint(wire: WireType, what: string): void {
  expect(wire, WireType.Varint, what)
}

/** A `map<string, string>` entry, into `into`. */
export function stringMapEntry(r: BinaryReader, wire: WireType, into: Obj, what: string): void {
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
