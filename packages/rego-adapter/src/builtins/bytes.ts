/**
 * Bytes without `Buffer`: UTF-8, hex and base64 on `TextEncoder`, `atob` and `btoa` (web APIs
 * that Node has too), so the builtins run in a browser bundle.
 */

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export const utf8 = (s: string): Uint8Array => encoder.encode(s)
/** Bytes as UTF-8 text; invalid sequences become U+FFFD (as Go's string conversion prints them). */
export const fromUtf8 = (b: Uint8Array): string => decoder.decode(b)

export function toHex(b: Uint8Array): string {
  let out = ''
  for (const x of b) out += x.toString(16).padStart(2, '0')
  return out
}

/** Hex digits to bytes; undefined for an odd length or a non-hex digit. */
export function fromHex(s: string): Uint8Array | undefined {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) return undefined
  const out = new Uint8Array(s.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(s.slice(2 * i, 2 * i + 2), 16)
  return out
}

/** Standard base64 (padded), or base64url without padding. */
export function toBase64(b: Uint8Array, url = false): string {
  let bin = ''
  for (const x of b) bin += String.fromCharCode(x)
  const s = btoa(bin)
  return url ? s.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '') : s
}

/**
 * Base64 in either alphabet, padded or not, whitespace ignored; undefined when it does not decode.
 */
export function fromBase64(s: string): Uint8Array | undefined {
  const t = s.replace(/[\s=]/g, '').replace(/-/g, '+').replace(/_/g, '/')
  try {
    const bin = atob(t)
    const out = new Uint8Array(bin.length)
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
    return out
  } catch {
    return undefined
  }
}

/** Strings in the byte order of their UTF-8 (Go's string order): code point order. */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0
  const x = a[Symbol.iterator]()
  const y = b[Symbol.iterator]()
  for (;;) {
    const p = x.next()
    const q = y.next()
    if (p.done === true) return q.done === true ? 0 : -1
    if (q.done === true) return 1
    const d = p.value.codePointAt(0)! - q.value.codePointAt(0)!
    if (d !== 0) return d
  }
}

/** Equal bytes, in time that depends on the length only. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let d = 0
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!
  return d === 0
}

/** A uniformly random integer in [0, n), n < 2^48, from `crypto.getRandomValues`. */
export function randomBelow(n: number): number {
  const limit = 2 ** 48 - (2 ** 48 % n)
  const buf = new Uint8Array(6)
  for (;;) {
    globalThis.crypto.getRandomValues(buf)
    let v = 0
    for (const x of buf) v = v * 256 + x
    if (v < limit) return v % n
  }
}
