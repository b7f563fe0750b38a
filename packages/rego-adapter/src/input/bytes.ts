/**
 * Bytes for the input documents with web-standard APIs only (no `Buffer`): base64 as protobuf JSON
 * and the plugin use it, UTF-8 lengths, and Latin-1 text.
 */

const STANDARD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** Sextet of each character code, both alphabets (`+/` and `-_`); -1 for anything else. */
const SEXTET = new Int8Array(128).fill(-1)
for (let k = 0; k < 64; k++) SEXTET[STANDARD.charCodeAt(k)] = k
SEXTET[0x2d] = 62 // -
SEXTET[0x5f] = 63 // _

/**
 * Base64 to bytes, leniently: either alphabet, padding optional, characters outside the alphabet
 * (whitespace, stray symbols) skipped, and the text ends at the first `=`. A last lone character
 * (6 bits) makes no byte. Callers that need strict syntax check it before (core's normalizer does
 * for the fields it reads).
 */
export function fromBase64(text: string): Uint8Array {
  const out = new Uint8Array(Math.floor((text.length * 3) / 4))
  let n = 0
  let acc = 0
  let bits = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x3d) break
    const v = c < 128 ? SEXTET[c]! : -1
    if (v < 0) continue
    acc = ((acc << 6) | v) & 0xffffff
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out[n++] = (acc >> bits) & 0xff
    }
  }
  return out.subarray(0, n)
}

// Standard base64 and UTF-8 lengths are core's (the same as Buffer's).
export { base64Encode as toBase64, utf8Length } from '@verdict/core/internal'

/** Each byte as the character of the same code (ISO-8859-1; not the WHATWG `latin1` label, which is windows-1252). */
export function latin1(b: Uint8Array): string {
  let out = ''
  for (let i = 0; i < b.length; i += 8192)
    out += String.fromCharCode(...b.subarray(i, Math.min(i + 8192, b.length)))
  return out
}

export const utf8Encoder = new TextEncoder()
