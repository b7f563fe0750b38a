/**
 * `crypto.parse_private_keys`: PEM private keys (PKCS #1, SEC 1, PKCS #8) as OPA returns them, which
 * is Go's key structs in JSON: RSA `{N, E, D, Primes, Precomputed}`, ECDSA `{Curve: {}, X, Y, D}`
 * with big integers as JSON numbers (exact, written as raw JSON text), Ed25519 as the base64 of
 * its 64 bytes. Keys are read by node:crypto (through `host.ts`).
 */
import type { RegoBuiltin } from '../rego-policy.js'
import { fromBase64, fromUtf8, toBase64 } from './bytes.js'
import { nodeCrypto } from './host.js'
import { isStr, rawJson } from './scope.js'

const NAME = 'crypto.parse_private_keys'

/** A base64url JWK member as a decimal big integer. */
function big(b64url: unknown): string {
  const bytes = isStr(b64url) ? fromBase64(b64url) : undefined
  if (bytes === undefined) throw new TypeError('bad JWK member')
  let n = 0n
  for (const x of bytes) n = (n << 8n) | BigInt(x)
  return n.toString()
}

/** One PEM private key as the JSON text of Go's key struct. */
export function privateKeyJson(pem: string, builtin = NAME): string {
  const jwk = nodeCrypto(builtin).createPrivateKey(pem).export({ format: 'jwk' }) as Record<string, unknown>
  if (jwk.kty === 'RSA')
    return (
      `{"N":${big(jwk.n)},"E":${big(jwk.e)},"D":${big(jwk.d)},"Primes":[${big(jwk.p)},${big(jwk.q)}],` +
      `"Precomputed":{"Dp":${big(jwk.dp)},"Dq":${big(jwk.dq)},"Qinv":${big(jwk.qi)},"CRTValues":[]}}`
    )
  if (jwk.kty === 'EC') return `{"Curve":{},"X":${big(jwk.x)},"Y":${big(jwk.y)},"D":${big(jwk.d)}}`
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
    const d = fromBase64(String(jwk.d))!
    const x = fromBase64(String(jwk.x))!
    return JSON.stringify(toBase64(Uint8Array.from([...d, ...x])))
  }
  throw new TypeError(`unsupported key type ${String(jwk.kty)}`)
}

function parsePrivateKeys(x: unknown): unknown {
  if (!isStr(x)) return undefined
  if (x === '') return null
  let text = x
  if (!x.includes('-----BEGIN')) {
    const b = fromBase64(x)
    text = b === undefined ? '' : fromUtf8(b)
  }
  const out: string[] = []
  // A block starts at the start of a line (Go's pem.Decode).
  for (const m of text.matchAll(/(?:^|\n)(-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \2-----)/g)) {
    if (!m[2]!.endsWith('PRIVATE KEY')) continue
    try {
      out.push(privateKeyJson(m[1]!))
    } catch (e) {
      if (e instanceof Error && e.message.includes('needs node:crypto')) throw e
      return undefined
    }
  }
  return rawJson(`[${out.join(',')}]`)
}

export const keyBuiltins: Record<string, RegoBuiltin> = {
  'crypto.parse_private_keys': parsePrivateKeys,
}
