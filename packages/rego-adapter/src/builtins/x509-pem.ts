/** Certificates, requests and keys in the encodings OPA accepts: PEM text, base64 PEM, base64 DER. */
import { fromBase64, fromUtf8 } from './bytes.js'

/**
 * The DER blocks of a type in PEM text, base64 PEM, or base64 DER (as OPA reads them). With
 * `strict`, a PEM block of another type is an error (OPA's certificate reading); otherwise skipped.
 */
export function ders(x: string, type = 'CERTIFICATE', strict = false): Uint8Array[] | undefined {
  let text = x
  if (!text.startsWith('-----BEGIN')) {
    const b = fromBase64(text)
    if (b === undefined) return undefined
    if (b.length === 0) return []
    const decoded = fromUtf8(b)
    if (!decoded.startsWith('-----BEGIN')) return [b]
    text = decoded
  }
  const out: Uint8Array[] = []
  for (const m of text.matchAll(/(?:^|\n)-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g)) {
    if (m[1] !== type) {
      if (strict) return undefined
      continue
    }
    const b = fromBase64(m[2]!.replace(/^[A-Za-z-]+:.*$/gm, ''))
    if (b === undefined) return undefined
    out.push(b)
  }
  return out
}

/** PEM text as given, or base64-encoded PEM. */
export function pem(x: string): string {
  if (x.includes('-----BEGIN')) return x
  const b = fromBase64(x)
  return b === undefined ? '' : fromUtf8(b)
}
