/**
 * Hashes, HMACs and `io.jwt.*`. Hashes and HMACs on `@noble/hashes` (synchronous, as builtins must
 * be, and in any runtime); RSA and ECDSA keys and signatures on node:crypto, reached through
 * `host.ts` (WebCrypto is asynchronous), so those fail the evaluation with a clear error where
 * node:crypto is absent.
 */

import type { KeyObject } from 'node:crypto'
import { hmac as nobleHmac } from '@noble/hashes/hmac.js'
import { md5, sha1 } from '@noble/hashes/legacy.js'
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js'
import type { CHash } from '@noble/hashes/utils.js'
import type { RegoBuiltin } from '../rego-policy.js'
import { constantTimeEqual, fromBase64, fromUtf8, toBase64, toHex, utf8 } from './bytes.js'
import { nodeCrypto } from './host.js'
import { currentScope, goJson, isObj, isStr, type Obj } from './scope.js'

const HASHES: Record<string, CHash> = { md5, sha1, sha256, sha384, sha512 }

const hash =
  (alg: string): RegoBuiltin =>
  (x) =>
    isStr(x) ? toHex(HASHES[alg]!(utf8(x))) : undefined

const mac = (alg: string, key: Uint8Array, data: Uint8Array) => nobleHmac(HASHES[alg]!, key, data)

const hmac =
  (alg: string): RegoBuiltin =>
  (x, key) =>
    isStr(x) && isStr(key) ? toHex(mac(alg, utf8(key), utf8(x))) : undefined

const b64 = (s: string) => fromBase64(s) ?? new Uint8Array(0)
const isB64url = (s: string) => /^[A-Za-z0-9_-]*={0,2}$/.test(s)

interface Token {
  readonly header: Obj
  readonly payload: Obj
  readonly signed: string
  readonly signature: Uint8Array
}

function decodeJson(s: string): Obj | undefined {
  if (!isB64url(s)) return undefined
  try {
    const v: unknown = JSON.parse(fromUtf8(b64(s)))
    return isObj(v) ? v : undefined
  } catch {
    return undefined
  }
}

function decodeToken(jwt: unknown): Token | undefined {
  if (!isStr(jwt)) return undefined
  const parts = jwt.split('.')
  if (parts.length !== 3 || !isB64url(parts[2]!)) return undefined
  const header = decodeJson(parts[0]!)
  const payload = decodeJson(parts[1]!)
  if (header === undefined || payload === undefined) return undefined
  return { header, payload, signed: `${parts[0]}.${parts[1]}`, signature: b64(parts[2]!) }
}

/** Public keys in a PEM certificate, a PEM public key, a JWK or a JWKS. */
function publicKeys(material: string, builtin: string): KeyObject[] | undefined {
  const { X509Certificate, createPublicKey } = nodeCrypto(builtin)
  try {
    if (material.startsWith('-----BEGIN CERTIFICATE')) return [new X509Certificate(material).publicKey]
    if (material.startsWith('-----BEGIN')) return [createPublicKey(material)]
    const j: unknown = JSON.parse(material)
    if (!isObj(j)) return undefined
    const keys = Array.isArray(j.keys) ? j.keys : [j]
    return keys.map((k) => createPublicKey({ key: k as never, format: 'jwk' }))
  } catch {
    return undefined
  }
}

type Family = 'HS' | 'RS' | 'PS' | 'ES'
const DIGEST: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' }

function verifyWith(alg: string, t: Token, keyText: string, builtin: string): boolean | undefined {
  const family = alg.slice(0, 2) as Family
  const digest = DIGEST[alg.slice(2)]
  if (digest === undefined || !['HS', 'RS', 'PS', 'ES'].includes(family)) return undefined
  if (family === 'HS') {
    return constantTimeEqual(mac(digest, utf8(keyText), utf8(t.signed)), t.signature)
  }
  const keys = publicKeys(keyText, builtin)
  if (keys === undefined) return undefined
  const { constants, verify } = nodeCrypto(builtin)
  const data = utf8(t.signed)
  return keys.some((key) => {
    try {
      if (family === 'ES') {
        if (key.asymmetricKeyType !== 'ec') return false
        return verify(digest, data, { key, dsaEncoding: 'ieee-p1363' }, t.signature)
      }
      if (key.asymmetricKeyType !== 'rsa') return false
      if (family === 'PS')
        return verify(
          digest,
          data,
          { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
          t.signature,
        )
      return verify(digest, data, key, t.signature)
    } catch {
      return false
    }
  })
}

const verifier =
  (alg: string): RegoBuiltin =>
  (jwt, key) => {
    if (!isStr(key)) return undefined
    const t = decodeToken(jwt)
    return t === undefined ? undefined : verifyWith(alg, t, key, `io.jwt.verify_${alg.toLowerCase()}`)
  }

const INVALID = [false, {}, {}]
const CONSTRAINTS = new Set(['cert', 'secret', 'alg', 'iss', 'aud', 'time'])

function decodeVerify(jwt: unknown, constraints: unknown): unknown {
  if (!isObj(constraints)) return undefined
  for (const k of Object.keys(constraints)) if (!CONSTRAINTS.has(k)) return undefined
  const { cert, secret, alg, iss, aud, time } = constraints
  if ((cert !== undefined && !isStr(cert)) || (secret !== undefined && !isStr(secret))) return undefined
  if ((cert === undefined) === (secret === undefined)) return undefined
  const t = decodeToken(jwt)
  if (t === undefined) return undefined
  const p = t.payload
  // A malformed exp or nbf is an error in OPA, not an invalid token.
  if (
    (p.exp !== undefined && typeof p.exp !== 'number') ||
    (p.nbf !== undefined && typeof p.nbf !== 'number')
  )
    return undefined
  const talg = t.header.alg
  if (!isStr(talg) || (alg !== undefined && talg !== alg)) return INVALID
  if ((cert !== undefined) === talg.startsWith('HS')) return INVALID
  if (verifyWith(talg, t, (cert ?? secret) as string, 'io.jwt.decode_verify') !== true) return INVALID
  const nowNs = typeof time === 'number' ? time : currentScope().nowMs * 1e6
  if (typeof p.exp === 'number' && nowNs >= p.exp * 1e9) return INVALID
  if (typeof p.nbf === 'number' && nowNs < p.nbf * 1e9) return INVALID
  if (iss !== undefined && p.iss !== iss) return INVALID
  if (aud !== undefined) {
    const list = isStr(p.aud) ? [p.aud] : Array.isArray(p.aud) ? p.aud : undefined
    if (list === undefined || !list.includes(aud)) return INVALID
  } else if (p.aud !== undefined) return INVALID
  return [true, t.header, p]
}

function signToken(
  header: Obj,
  headerText: string,
  payloadText: string,
  jwk: Obj,
  builtin: string,
): string | undefined {
  const alg = header.alg
  if (!isStr(alg)) return undefined
  const family = alg.slice(0, 2)
  const digest = DIGEST[alg.slice(2)]
  if (digest === undefined) return undefined
  const signed = `${toBase64(utf8(headerText), true)}.${toBase64(utf8(payloadText), true)}`
  let sig: Uint8Array
  try {
    if (family === 'HS') {
      if (!isStr(jwk.k)) return undefined
      sig = mac(digest, b64(jwk.k), utf8(signed))
    } else {
      const { constants, createPrivateKey, sign } = nodeCrypto(builtin)
      const key = createPrivateKey({ key: jwk as never, format: 'jwk' })
      if (family === 'ES') sig = sign(digest, utf8(signed), { key, dsaEncoding: 'ieee-p1363' })
      else if (family === 'PS') {
        // Salt as long as the hash when the key is long enough, else the longest that fits.
        const pss = (saltLength: number) =>
          sign(digest, utf8(signed), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength })
        try {
          sig = pss(constants.RSA_PSS_SALTLEN_DIGEST)
        } catch {
          sig = pss(constants.RSA_PSS_SALTLEN_MAX_SIGN)
        }
      } else if (family === 'RS') sig = sign(digest, utf8(signed), key)
      else return undefined
    }
  } catch (e) {
    if (e instanceof Error && e.message.includes('needs node:crypto')) throw e
    return undefined
  }
  return `${signed}.${toBase64(sig, true)}`
}

/** PEM text, given as is or base64-encoded (OPA accepts both). */
function pemText(x: string): string {
  if (x.startsWith('-----BEGIN')) return x
  const b = fromBase64(x)
  return b === undefined ? '' : fromUtf8(b)
}

/**
 * `crypto.x509.parse_rsa_private_key`: a PKCS #1 or PKCS #8 RSA key as a JWK. OPA's edges kept:
 * text without a PEM block is null, an EC key is `{"kty": "EC"}`, other keys are errors.
 */
function rsaPrivateJwk(x: unknown): unknown {
  if (!isStr(x) || x === '') return undefined
  const pem = pemText(x)
  if (!/-----BEGIN [A-Z ]+-----/.test(pem)) return null
  const { createPrivateKey } = nodeCrypto('crypto.x509.parse_rsa_private_key')
  try {
    const key = createPrivateKey(pem)
    if (key.asymmetricKeyType === 'ec') return { kty: 'EC' }
    return key.asymmetricKeyType === 'rsa' ? key.export({ format: 'jwk' }) : undefined
  } catch {
    return undefined
  }
}

export const cryptoBuiltins: Record<string, RegoBuiltin> = {
  'crypto.x509.parse_rsa_private_key': rsaPrivateJwk,
  'crypto.md5': hash('md5'),
  'crypto.sha1': hash('sha1'),
  'crypto.sha256': hash('sha256'),
  'crypto.hmac.md5': hmac('md5'),
  'crypto.hmac.sha1': hmac('sha1'),
  'crypto.hmac.sha256': hmac('sha256'),
  'crypto.hmac.sha512': hmac('sha512'),
  'crypto.hmac.equal': (a, b) => {
    if (!isStr(a) || !isStr(b)) return undefined
    return constantTimeEqual(utf8(a), utf8(b))
  },
  'io.jwt.decode': (jwt) => {
    const t = decodeToken(jwt)
    return t === undefined ? undefined : [t.header, t.payload, toHex(t.signature)]
  },
  ...Object.fromEntries(
    ['hs', 'rs', 'ps', 'es'].flatMap((f) =>
      ['256', '384', '512'].map((n) => [`io.jwt.verify_${f}${n}`, verifier(`${f.toUpperCase()}${n}`)]),
    ),
  ),
  'io.jwt.decode_verify': decodeVerify,
  'io.jwt.encode_sign': (header, payload, key) => {
    if (!isObj(header) || !isObj(payload) || !isObj(key)) return undefined
    return signToken(header, goJson(header), goJson(payload), key, 'io.jwt.encode_sign')
  },
  'io.jwt.encode_sign_raw': (header, payload, key) => {
    if (!isStr(header) || !isStr(payload) || !isStr(key)) return undefined
    try {
      const h: unknown = JSON.parse(header)
      const k: unknown = JSON.parse(key)
      if (!isObj(h) || !isObj(k)) return undefined
      return signToken(h, header, payload, k, 'io.jwt.encode_sign_raw')
    } catch {
      return undefined
    }
  },
}
