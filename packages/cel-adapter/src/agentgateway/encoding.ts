/** agentgateway's encodings and hashes: base64, URL and form encoding, sha1 / sha256 / md5. */
import { type CelMap, type CelValue, celMap, isCelUint } from '@bufbuild/cel'
import { md5, sha1 } from '@noble/hashes/legacy.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { base64Decode, toHex, utf8Encode } from '@verdict/core/internal'

// Encodings and hashes

const HASHES = { sha1, sha256, md5 }

export function digest(algorithm: 'sha1' | 'sha256' | 'md5') {
  const hash = HASHES[algorithm]
  return (v: string | Uint8Array): string => toHex(hash(typeof v === 'string' ? utf8Encode(v) : v))
}

/** Standard base64 with or without padding; anything else is an error, never a partial decode. */
export function decodeBase64(s: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || (s.includes('=') && s.length % 4 !== 0) || s.length % 4 === 1) {
    throw new Error('invalid base64')
  }
  return base64Decode(s)
}

/** Percent-encoding of everything but RFC 3986's unreserved characters. */
export function urlEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

export function urlDecode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    throw new Error('invalid percent-encoding')
  }
}

function formScalar(v: CelValue): string {
  switch (typeof v) {
    case 'string':
      return v
    case 'bigint':
    case 'boolean':
    case 'number':
      return String(v)
    default:
      if (isCelUint(v)) return String(v.value)
      throw new Error('form.encode takes a map of strings, numbers and booleans')
  }
}

export function formEncode(m: CelMap): string {
  const p = new URLSearchParams()
  for (const [k, v] of m) p.append(formScalar(k as CelValue), formScalar(v))
  return p.toString()
}

/** `application/x-www-form-urlencoded` text as a map; a name given twice keeps the last value. */
export function formDecode(s: string): CelValue {
  const out = new Map<string, string>()
  for (const [k, v] of new URLSearchParams(s)) out.set(k, v)
  return celMap(out)
}
