/**
 * Bytes and text with web-standard APIs only (TextEncoder, TextDecoder, atob, btoa), so core and
 * the evaluators run in browsers, Deno, Bun and workers as in Node, where `Buffer` did this before.
 */

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** UTF-8 bytes of a string (a lone surrogate becomes U+FFFD, as with Buffer). */
export function utf8Encode(s: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(s)
}

/** Bytes as UTF-8 text, invalid sequences replaced by U+FFFD (as Buffer's `toString('utf8')`). */
export function utf8Decode(b: Uint8Array): string {
  return decoder.decode(b)
}

const NOT_ASCII = /[\u0080-\uffff]/

/**
 * The UTF-8 size of a string without encoding it (as `Buffer.byteLength(s, 'utf8')`): a surrogate
 * pair is 4 bytes, a lone surrogate 3 (it is encoded as U+FFFD).
 */
export function utf8Length(s: string): number {
  if (!NOT_ASCII.test(s)) return s.length
  let n = s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) n += 1
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        // Two UTF-16 units, four bytes.
        n += 2
        i++
      } else n += 2
    } else n += 2
  }
  return n
}

/**
 * Decode base64 text already checked against the alphabet, as Node's Buffer decodes it: the
 * standard and the URL-safe alphabets alike, padding optional, and a lone final character (which
 * holds no whole byte) ignored. Callers validate first: anything outside the alphabet throws.
 */
export function base64Decode(s: string): Uint8Array {
  let t = s
  let end = t.length
  while (end > 0 && t.charCodeAt(end - 1) === 0x3d) end--
  t = t.slice(0, end)
  if (t.includes('-') || t.includes('_')) t = t.replace(/[-_]/g, (c) => (c === '-' ? '+' : '/'))
  if (t.length % 4 === 1) t = t.slice(0, -1)
  const bin = atob(t)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

/** Standard base64 with padding (as Buffer's `toString('base64')`). */
export function base64Encode(b: Uint8Array): string {
  let bin = ''
  // String.fromCharCode over chunks: one call per byte would be slow, one call for all may
  // exceed the argument limit.
  for (let i = 0; i < b.length; i += 0x8000) {
    bin += String.fromCharCode(...b.subarray(i, i + 0x8000))
  }
  return btoa(bin)
}

/** Lower-case hex of bytes. */
export function toHex(b: Uint8Array): string {
  let s = ''
  for (const x of b) s += x.toString(16).padStart(2, '0')
  return s
}

/** Bytes of an even-length hex string already checked to be hex. */
export function fromHex(s: string): Uint8Array {
  const out = new Uint8Array(s.length >> 1)
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(s.slice(2 * i, 2 * i + 2), 16)
  return out
}

/**
 * Whether two byte strings are equal, in time that depends only on their lengths (as node:crypto's
 * `timingSafeEqual` for equal lengths): a secret digest compared this way does not leak how many
 * leading bytes matched.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number)
  return diff === 0
}
