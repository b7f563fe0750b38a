/** Hashes, HMACs and `io.jwt.*`, on node:crypto (synchronous, as builtins must be). */
import {
  constants,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign,
  timingSafeEqual,
  verify,
  X509Certificate,
} from 'node:crypto'
import type { RegoBuiltin } from '../rego-policy.js'
import { currentScope, goJson, isObj, isStr, type Obj } from './scope.js'

const hash =
  (alg: string): RegoBuiltin =>
  (x) =>
    isStr(x) ? createHash(alg).update(x, 'utf8').digest('hex') : undefined

const hmac =
  (alg: string): RegoBuiltin =>
  (x, key) =>
    isStr(x) && isStr(key)
      ? createHmac(alg, Buffer.from(key, 'utf8')).update(x, 'utf8').digest('hex')
      : undefined

const b64 = (s: string) => Buffer.from(s, 'base64url')
const isB64url = (s: string) => /^[A-Za-z0-9_-]*={0,2}$/.test(s)

interface Token {
  readonly header: Obj
  readonly payload: Obj
  readonly signed: string
  readonly signature: Buffer
}

function decodeJson(s: string): Obj | undefined {
  if (!isB64url(s)) return undefined
  try {
    const v: unknown = JSON.parse(b64(s).toString('utf8'))
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
function publicKeys(material: string): KeyObject[] | undefined {
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

function verifyWith(alg: string, t: Token, keyText: string): boolean | undefined {
  const family = alg.slice(0, 2) as Family
  const digest = DIGEST[alg.slice(2)]
  if (digest === undefined || !['HS', 'RS', 'PS', 'ES'].includes(family)) return undefined
  if (family === 'HS') {
    const mac = createHmac(digest, Buffer.from(keyText, 'utf8')).update(t.signed).digest()
    return mac.length === t.signature.length && timingSafeEqual(mac, t.signature)
  }
  const keys = publicKeys(keyText)
  if (keys === undefined) return undefined
  return keys.some((key) => {
    try {
      if (family === 'ES') {
        if (key.asymmetricKeyType !== 'ec') return false
        return verify(digest, Buffer.from(t.signed), { key, dsaEncoding: 'ieee-p1363' }, t.signature)
      }
      if (key.asymmetricKeyType !== 'rsa') return false
      if (family === 'PS')
        return verify(
          digest,
          Buffer.from(t.signed),
          { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
          t.signature,
        )
      return verify(digest, Buffer.from(t.signed), key, t.signature)
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
    return t === undefined ? undefined : verifyWith(alg, t, key)
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
  if (verifyWith(talg, t, (cert ?? secret) as string) !== true) return INVALID
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

function signToken(header: Obj, headerText: string, payloadText: string, jwk: Obj): string | undefined {
  const alg = header.alg
  if (!isStr(alg)) return undefined
  const family = alg.slice(0, 2)
  const digest = DIGEST[alg.slice(2)]
  if (digest === undefined) return undefined
  const signed = `${Buffer.from(headerText).toString('base64url')}.${Buffer.from(payloadText).toString('base64url')}`
  let sig: Buffer
  try {
    if (family === 'HS') {
      if (!isStr(jwk.k)) return undefined
      sig = createHmac(digest, b64(jwk.k)).update(signed).digest()
    } else {
      const key = createPrivateKey({ key: jwk as never, format: 'jwk' })
      if (family === 'ES') sig = sign(digest, Buffer.from(signed), { key, dsaEncoding: 'ieee-p1363' })
      else if (family === 'PS') {
        // Salt as long as the hash when the key is long enough, else the longest that fits.
        const pss = (saltLength: number) =>
          sign(digest, Buffer.from(signed), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength })
        try {
          sig = pss(constants.RSA_PSS_SALTLEN_DIGEST)
        } catch {
          sig = pss(constants.RSA_PSS_SALTLEN_MAX_SIGN)
        }
      } else if (family === 'RS') sig = sign(digest, Buffer.from(signed), key)
      else return undefined
    }
  } catch {
    return undefined
  }
  return `${signed}.${sig.toString('base64url')}`
}

/** PEM text, given as is or base64-encoded (OPA accepts both). */
function pemText(x: string): string {
  return x.startsWith('-----BEGIN') ? x : Buffer.from(x, 'base64').toString('utf8')
}

/**
 * `crypto.x509.parse_rsa_private_key`: a PKCS #1 or PKCS #8 RSA key as a JWK. OPA's edges kept:
 * text without a PEM block is null, an EC key is `{"kty": "EC"}`, other keys are errors.
 */
function rsaPrivateJwk(x: unknown): unknown {
  if (!isStr(x) || x === '') return undefined
  const pem = pemText(x)
  if (!/-----BEGIN [A-Z ]+-----/.test(pem)) return null
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
    const x = Buffer.from(a)
    const y = Buffer.from(b)
    return x.length === y.length && timingSafeEqual(x, y)
  },
  'io.jwt.decode': (jwt) => {
    const t = decodeToken(jwt)
    return t === undefined ? undefined : [t.header, t.payload, t.signature.toString('hex')]
  },
  ...Object.fromEntries(
    ['hs', 'rs', 'ps', 'es'].flatMap((f) =>
      ['256', '384', '512'].map((n) => [`io.jwt.verify_${f}${n}`, verifier(`${f.toUpperCase()}${n}`)]),
    ),
  ),
  'io.jwt.decode_verify': decodeVerify,
  'io.jwt.encode_sign': (header, payload, key) => {
    if (!isObj(header) || !isObj(payload) || !isObj(key)) return undefined
    return signToken(header, goJson(header), goJson(payload), key)
  },
  'io.jwt.encode_sign_raw': (header, payload, key) => {
    if (!isStr(header) || !isStr(payload) || !isStr(key)) return undefined
    try {
      const h: unknown = JSON.parse(header)
      const k: unknown = JSON.parse(key)
      if (!isObj(h) || !isObj(k)) return undefined
      return signToken(h, header, payload, k)
    } catch {
      return undefined
    }
  },
}
