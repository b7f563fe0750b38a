/**
 * Verification keys: a JWKS (or a PEM public key) turned into public keys with the algorithms each
 * may verify. The algorithms come from the key type, never from the token, so `none` and HMAC
 * are impossible by construction.
 */
import { type CryptoKey, exportJWK, importJWK, importSPKI, importX509, type JWK } from 'jose'
import { base64Decode, base64Encode } from '../bytes.js'

/** Asymmetric JWS algorithms verdict verifies. HMAC (`HS*`) and `none` are deliberately absent. */
export const SUPPORTED_ALGORITHMS: readonly string[] = Object.freeze([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
])

const RSA_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
const EC_ALGS: Readonly<Record<string, string>> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' }

/** Most keys one set may hold: a JWKS is small; more is a sign of abuse. */
export const MAX_KEYS = 100

/** One public key and what it may verify. */
export interface KeyEntry {
  readonly kid: string | undefined
  /** Algorithms this key may verify (from its type, its `alg`, and the provider's list). */
  readonly algorithms: ReadonlySet<string>
  /** The CryptoKey for `alg`, imported once per algorithm (WebCrypto binds a key to one). */
  key(alg: string): Promise<CryptoKey>
}

/** A validated key set. Its identity changes only when its content does. */
export interface KeySet {
  readonly keys: readonly KeyEntry[]
  /** Canonical form of the public keys; equal fingerprints mean the same keys. */
  readonly fingerprint: string
}

export type KeySetResult =
  /** `skipped`: why each key left out was unusable (never its key material). */
  | { readonly ok: true; readonly set: KeySet; readonly skipped: readonly string[] }
  | { readonly ok: false; readonly error: string }

type Obj = Record<string, unknown>

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const B64URL = /^[A-Za-z0-9_-]+$/

/**
 * Members that only a private or secret key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1; OKP `d` in
 * RFC 8037). A set that publishes them has leaked the signing key: anyone can mint tokens with it.
 */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const

/** The private members a JWK carries, by name (never their values). */
function privateMembers(k: Obj): string[] {
  return PRIVATE_MEMBERS.filter((m) => Object.hasOwn(k, m))
}

/** The public members of a JWK, or a reason it is unusable. */
function publicJwk(k: Obj): { jwk: JWK; algs: string[] } | string {
  const str = (name: string): string | undefined => {
    const v = k[name]
    return typeof v === 'string' && B64URL.test(v) ? v : undefined
  }
  switch (k.kty) {
    case 'RSA': {
      const n = str('n')
      const e = str('e')
      if (n === undefined || e === undefined) return 'RSA key without valid "n" and "e"'
      if (base64Decode(n).length < 256) return 'RSA key shorter than 2048 bits'
      return { jwk: { kty: 'RSA', n, e }, algs: RSA_ALGS }
    }
    case 'EC': {
      const alg = typeof k.crv === 'string' ? EC_ALGS[k.crv] : undefined
      const x = str('x')
      const y = str('y')
      if (alg === undefined) return `unsupported EC curve ${JSON.stringify(k.crv)}`
      if (x === undefined || y === undefined) return 'EC key without valid "x" and "y"'
      return { jwk: { kty: 'EC', crv: k.crv as string, x, y }, algs: [alg] }
    }
    case 'OKP': {
      const x = str('x')
      if (k.crv !== 'Ed25519') return `unsupported OKP curve ${JSON.stringify(k.crv)}`
      if (x === undefined) return 'OKP key without a valid "x"'
      return { jwk: { kty: 'OKP', crv: 'Ed25519', x }, algs: ['EdDSA', 'Ed25519'] }
    }
    case 'oct':
      // An oct key is its secret "k": publishing it lets anyone sign. HMAC is not supported at all
      // (SUPPORTED_ALGORITHMS has no HS*), so no provider can allow one.
      return 'symmetric (oct) keys are not accepted: verdict verifies asymmetric signatures only'
    default:
      return `unsupported key type ${JSON.stringify(k.kty)}`
  }
}

/** Whether a JWK is meant for signature verification at all (`use`, `key_ops`). */
function isSigningKey(k: Obj): boolean {
  if (k.use !== undefined && k.use !== 'sig') return false
  if (k.key_ops !== undefined && !(Array.isArray(k.key_ops) && k.key_ops.includes('verify'))) return false
  return true
}

function makeEntry(jwk: JWK, kid: string | undefined, algorithms: ReadonlySet<string>): KeyEntry {
  const imported = new Map<string, Promise<CryptoKey>>()
  return {
    kid,
    algorithms,
    key(alg: string): Promise<CryptoKey> {
      let p = imported.get(alg)
      if (p === undefined) {
        p = importJWK(jwk, alg) as Promise<CryptoKey>
        imported.set(alg, p)
        // A failed import must not stick: the next request retries.
        p.catch(() => imported.delete(alg))
      }
      return p
    },
  }
}

/** How a skipped key is named in reports: its index, and its `kid` when it has a short one. */
function keyLabel(i: number, k: Obj): string {
  return typeof k.kid === 'string' && k.kid.length <= 64
    ? `key ${i} (kid ${JSON.stringify(k.kid)})`
    : `key ${i}`
}

/** Most skip reasons quoted in an error, so a hostile set cannot make reasons huge. */
const MAX_REPORTED = 3

/**
 * Build a key set from a parsed JWKS. Keys carrying private members (`d`, `p`, ..., an oct `k`),
 * for encryption (`use: enc`, `key_ops` without `verify`), of unknown types or curves, or
 * allowing none of `allowed` are skipped (reported in `skipped`) unless `strict`, where any
 * unusable key is an error (inline configuration: the author should know). At least one usable
 * key is required. Every kept key is imported once here so a malformed key fails now.
 */
export async function buildKeySet(
  jwks: unknown,
  allowed: ReadonlySet<string>,
  strict: boolean,
): Promise<KeySetResult> {
  if (!isObj(jwks) || !Array.isArray(jwks.keys))
    return { ok: false, error: 'JWKS must be an object with a "keys" array' }
  if (jwks.keys.length > MAX_KEYS) return { ok: false, error: `JWKS has more than ${MAX_KEYS} keys` }
  const keys: KeyEntry[] = []
  const canonical: string[] = []
  const skipped: string[] = []
  for (let i = 0; i < jwks.keys.length; i++) {
    const k: unknown = jwks.keys[i]
    if (!isObj(k)) return { ok: false, error: `key ${i} is not an object` }
    // Checked before the key type: an oct key's "k" is reported as the leaked secret it is.
    const secret = privateMembers(k)
    const why =
      secret.length > 0
        ? `carries private key members (${secret.join(', ')}): publish only the public key`
        : !isSigningKey(k)
          ? 'is not a signature verification key (use or key_ops)'
          : undefined
    if (why !== undefined) {
      if (strict) return { ok: false, error: `key ${i} ${why}` }
      skipped.push(`${keyLabel(i, k)} ${why}`)
      continue
    }
    const pub = publicJwk(k)
    if (typeof pub === 'string') {
      if (strict) return { ok: false, error: `key ${i}: ${pub}` }
      skipped.push(`${keyLabel(i, k)}: ${pub}`)
      continue
    }
    if (k.kid !== undefined && typeof k.kid !== 'string')
      return { ok: false, error: `key ${i}: "kid" must be a string` }
    let algs = pub.algs.filter((a) => allowed.has(a))
    if (k.alg !== undefined) algs = algs.filter((a) => a === k.alg)
    if (algs.length === 0) {
      if (strict) return { ok: false, error: `key ${i} allows none of the provider's algorithms` }
      skipped.push(`${keyLabel(i, k)} allows none of the provider's algorithms`)
      continue
    }
    const entry = makeEntry(pub.jwk, k.kid as string | undefined, new Set(algs))
    try {
      await entry.key(algs[0]!)
    } catch (e) {
      if (strict) return { ok: false, error: `key ${i} cannot be imported: ${(e as Error).message}` }
      skipped.push(`${keyLabel(i, k)} cannot be imported`)
      continue
    }
    keys.push(entry)
    canonical.push(JSON.stringify([k.kid ?? null, algs, pub.jwk]))
  }
  if (keys.length === 0) {
    const more = skipped.length > MAX_REPORTED ? `; ${skipped.length - MAX_REPORTED} more` : ''
    const detail = skipped.length > 0 ? ` (${skipped.slice(0, MAX_REPORTED).join('; ')}${more})` : ''
    return { ok: false, error: `JWKS has no usable signature verification key${detail}` }
  }
  return { ok: true, set: { keys, fingerprint: canonical.join('\n') }, skipped }
}

/** A PEM block holding a private key (PKCS#8, PKCS#1, SEC1, encrypted, OpenSSH). */
const PRIVATE_PEM = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/

/** The first PEM block of a text: its label and the whole block. */
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\s]*)-----END \1-----/

/**
 * One algorithm per key family WebCrypto imports from SPKI: importing a key under each in turn
 * finds its family (and an EC key's curve) without parsing ASN.1 here.
 */
const IMPORT_AS = ['RS256', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const

/** DER length octets. */
function derLength(n: number): number[] {
  if (n < 0x80) return [n]
  const out: number[] = []
  for (let v = n; v > 0; v >>= 8) out.unshift(v & 0xff)
  return [0x80 | out.length, ...out]
}

/**
 * A PKCS#1 RSAPublicKey (`BEGIN RSA PUBLIC KEY`) as SPKI PEM, which WebCrypto imports: the key
 * wrapped in SubjectPublicKeyInfo with the rsaEncryption algorithm identifier.
 */
function pkcs1ToSpki(der: Uint8Array): string {
  const algorithm = [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00]
  const bits = [0x03, ...derLength(der.length + 1), 0x00]
  const body = algorithm.length + bits.length + der.length
  const out = new Uint8Array([0x30, ...derLength(body), ...algorithm, ...bits, ...der])
  return `-----BEGIN PUBLIC KEY-----\n${base64Encode(out)}\n-----END PUBLIC KEY-----`
}

/** The public members of an exported JWK, by key type. */
function publicMembers(jwk: JWK): JWK {
  if (jwk.kty === 'RSA') return { kty: 'RSA', n: jwk.n as string, e: jwk.e as string }
  if (jwk.kty === 'EC') return { kty: 'EC', crv: jwk.crv as string, x: jwk.x as string, y: jwk.y as string }
  return { kty: jwk.kty as string, crv: jwk.crv as string, x: jwk.x as string }
}

/**
 * A PEM public key (SPKI, or PKCS#1 for RSA) or certificate as a one-key JWKS (no `kid`), through
 * jose and WebCrypto. Text holding a private key is refused, even though its public half could be
 * derived: a private key does not belong in a policy or a key file that verdict reads.
 */
export async function pemToJwks(pem: string): Promise<{ keys: JWK[] } | string> {
  if (PRIVATE_PEM.test(pem)) return 'a PEM private key: give the public key or certificate instead'
  const block = PEM_BLOCK.exec(pem)
  if (block === null) return 'not a PEM public key or certificate: no complete PEM block'
  const label = block[1] as string
  let text = block[0]
  let x509 = false
  if (label === 'CERTIFICATE') x509 = true
  else if (label === 'RSA PUBLIC KEY') {
    try {
      text = pkcs1ToSpki(base64Decode((block[2] as string).replace(/\s+/g, '')))
    } catch {
      return 'not a PEM public key or certificate: invalid base64'
    }
  } else if (label !== 'PUBLIC KEY')
    return `not a PEM public key or certificate: a PEM ${JSON.stringify(label)}`
  for (const alg of IMPORT_AS) {
    try {
      const key = x509
        ? await importX509(text, alg, { extractable: true })
        : await importSPKI(text, alg, { extractable: true })
      return { keys: [publicMembers(await exportJWK(key))] }
    } catch {
      // Not this family: try the next.
    }
  }
  return 'not a PEM public key or certificate: no RSA, EC (P-256, P-384, P-521) or Ed25519 key in it'
}

/**
 * Keys that may verify a token with header `alg` and `kid`. A token naming a `kid` gets the keys
 * with that `kid`, or failing those the keys without one (a lone PEM key); a token without `kid`
 * gets every key allowing `alg`.
 */
export function candidateKeys(set: KeySet, alg: string, kid: string | undefined): KeyEntry[] {
  const byAlg = set.keys.filter((k) => k.algorithms.has(alg))
  if (kid === undefined) return byAlg
  const named = byAlg.filter((k) => k.kid === kid)
  return named.length > 0 ? named : byAlg.filter((k) => k.kid === undefined)
}
