/**
 * OPA bundle signatures: `/.signatures.json` holds `{"signatures": [<one compact JWS>]}` whose
 * payload lists every other file of the bundle with its digest (`files[].name/hash/algorithm`),
 * plus optional `keyid` (deprecated in favour of the header's `kid`) and `scope`.
 *
 * Digests follow OPA: the raw bytes of a file, except "structured" files (`data.json`,
 * `data.yaml`, `.manifest`), which are parsed and hashed in a canonical form (object keys in
 * byte order, no whitespace, numbers as written, strings as Go's encoder writes them).
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { CompactSign, compactVerify, decodeProtectedHeader } from 'jose'

export const SIGNATURES_FILE = '.signatures.json'

/** Hash algorithm names OPA accepts, with node:crypto's names. */
const HASHES: Readonly<Record<string, string>> = {
  MD5: 'md5',
  'SHA-1': 'sha1',
  'SHA-224': 'sha224',
  'SHA-256': 'sha256',
  'SHA-384': 'sha384',
  'SHA-512': 'sha512',
  'SHA-512-224': 'sha512-224',
  'SHA-512-256': 'sha512-256',
}

/** True for the files OPA hashes in canonical JSON form. */
export function isStructuredFile(name: string): boolean {
  const base = name.slice(name.lastIndexOf('/') + 1)
  return base === 'data.json' || base === 'data.yaml' || base === '.manifest' || base === SIGNATURES_FILE
}

type Json = null | boolean | { num: string } | string | Json[] | Map<string, Json>

const MAX_DEPTH = 512

/** JSON text -> a tree that keeps numbers as written (OPA decodes with UseNumber). */
function parseKeepingNumbers(text: string): Json {
  let i = 0
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++
  }
  const fail = (what: string): never => {
    throw new Error(`invalid JSON at offset ${i}: ${what}`)
  }
  const str = (): string => {
    const start = i
    i++
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1
    if (i >= text.length) fail('unterminated string')
    i++
    return JSON.parse(text.slice(start, i)) as string
  }
  const value = (depth: number): Json => {
    if (depth > MAX_DEPTH) fail('nested too deeply')
    ws()
    const c = text[i]
    if (c === '{') {
      i++
      const m = new Map<string, Json>()
      ws()
      if (text[i] === '}') {
        i++
        return m
      }
      for (;;) {
        ws()
        if (text[i] !== '"') fail('expected a key')
        const k = str()
        ws()
        if (text[i] !== ':') fail('expected ":"')
        i++
        m.set(k, value(depth + 1))
        ws()
        if (text[i] === ',') {
          i++
          continue
        }
        if (text[i] === '}') {
          i++
          return m
        }
        fail('expected "," or "}"')
      }
    }
    if (c === '[') {
      i++
      const a: Json[] = []
      ws()
      if (text[i] === ']') {
        i++
        return a
      }
      for (;;) {
        a.push(value(depth + 1))
        ws()
        if (text[i] === ',') {
          i++
          continue
        }
        if (text[i] === ']') {
          i++
          return a
        }
        fail('expected "," or "]"')
      }
    }
    if (c === '"') return str()
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400))
    if (m) {
      i += m[0].length
      return { num: m[0] }
    }
    for (const [lit, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(lit, i)) {
        i += lit.length
        return v
      }
    }
    return fail('unexpected character')
  }
  const v = value(0)
  ws()
  if (i !== text.length) fail('trailing characters')
  return v
}

/** A string as Go's encoding/json writes it with HTML escaping off. */
function goString(s: string): string {
  return JSON.stringify(
    s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'),
  )
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029')
}

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

function canonical(v: Json, out: string[]): void {
  if (v === null) out.push('null')
  else if (typeof v === 'boolean') out.push(String(v))
  else if (typeof v === 'string') out.push(goString(v))
  else if (Array.isArray(v)) {
    out.push('[')
    v.forEach((e, n) => {
      if (n > 0) out.push(',')
      canonical(e, out)
    })
    out.push(']')
  } else if (v instanceof Map) {
    out.push('{')
    ;[...v.keys()].sort(byteOrder).forEach((k, n) => {
      if (n > 0) out.push(',')
      out.push(goString(k), ':')
      canonical(v.get(k)!, out)
    })
    out.push('}')
  } else out.push(v.num)
}

/** The hex digest OPA records for file `name` with `algorithm` (`SHA-256`, ...). */
export function fileDigest(name: string, bytes: Uint8Array, algorithm = 'SHA-256'): string {
  const h = HASHES[algorithm]
  if (h === undefined) throw new Error(`unsupported hashing algorithm: ${algorithm}`)
  const hash = createHash(h)
  if (isStructuredFile(name)) {
    if (name.endsWith('.yaml')) throw new Error(`/${name}: YAML data files are not supported`)
    const out: string[] = []
    canonical(parseKeepingNumbers(new TextDecoder('utf-8', { fatal: true }).decode(bytes)), out)
    hash.update(out.join(''))
  } else hash.update(bytes)
  return hash.digest('hex')
}

/** A key given as PEM text (public or private key, certificate) or an HMAC secret. */
export type KeyMaterial = string | Uint8Array

const isHmac = (alg: string) => /^HS\d+$/.test(alg)

function verifyKey(material: KeyMaterial, alg: string): KeyObject | Uint8Array {
  if (isHmac(alg)) return typeof material === 'string' ? new TextEncoder().encode(material) : material
  return createPublicKey(typeof material === 'string' ? material : Buffer.from(material))
}

function signKey(material: KeyMaterial, alg: string): KeyObject | Uint8Array {
  if (isHmac(alg)) return typeof material === 'string' ? new TextEncoder().encode(material) : material
  return createPrivateKey(typeof material === 'string' ? material : Buffer.from(material))
}

export interface SigningOptions {
  /** Private key PEM (RSA, EC) or HMAC secret. */
  readonly key: KeyMaterial
  /** JWS algorithm (default RS256, as `opa build`). */
  readonly algorithm?: string
  /** `kid` header (default `default`, as `opa build`). */
  readonly keyId?: string
  /** `scope` claim; verifiers configured with a scope require the same. */
  readonly scope?: string
  /** Further claims (`iss`, `iat`, ...), as `opa build --claims-file`. */
  readonly claims?: Readonly<Record<string, unknown>>
}

/** The `.signatures.json` bytes for `files` (every file of the bundle but the signatures file). */
export async function signFiles(
  files: ReadonlyMap<string, Uint8Array>,
  o: SigningOptions,
): Promise<Uint8Array> {
  const alg = o.algorithm ?? 'RS256'
  const keyId = o.keyId ?? 'default'
  const payload = {
    ...o.claims,
    files: [...files.keys()]
      .filter((n) => n !== SIGNATURES_FILE)
      .sort()
      .map((name) => ({ name, hash: fileDigest(name, files.get(name)!), algorithm: 'SHA-256' })),
    keyid: keyId,
    ...(o.scope !== undefined ? { scope: o.scope } : {}),
  }
  const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg, kid: keyId })
    .sign(signKey(o.key, alg))
  return new TextEncoder().encode(`${JSON.stringify({ signatures: [jws] })}\n`)
}

/** A verification key, as OPA's `keys.<id>` configuration. */
export interface VerificationKey {
  /** Public key PEM (or certificate), or the HMAC secret. */
  readonly key: KeyMaterial
  /** Default RS256. */
  readonly algorithm?: string
  /** Scope required when the bundle configuration names none. */
  readonly scope?: string
}

export interface VerificationOptions {
  /** Keys by id. */
  readonly keys: Readonly<Record<string, VerificationKey>>
  /** The key to use; default: the JWS `kid`, then the payload's `keyid`. */
  readonly keyId?: string
  /** Required `scope` claim (default: the key's scope, else none). */
  readonly scope?: string
}

interface SignedFile {
  name: string
  hash: string
  algorithm: string
}

/**
 * Verify a bundle's files against its `.signatures.json` as OPA does: exactly one JWS, verified
 * with the configured key; the scope matches; the signed file list equals the bundle's files
 * (the signatures file aside) and every digest matches. Returns undefined when it verifies, else
 * why not.
 */
export async function verifyFiles(
  files: ReadonlyMap<string, Uint8Array>,
  o: VerificationOptions,
): Promise<string | undefined> {
  const sigFile = files.get(SIGNATURES_FILE)
  if (sigFile === undefined)
    return 'bundle is not signed (no /.signatures.json) but a verification key is configured'
  let tokens: unknown
  try {
    tokens = (JSON.parse(new TextDecoder().decode(sigFile)) as { signatures?: unknown }).signatures
  } catch {
    return '/.signatures.json is not valid JSON'
  }
  if (!Array.isArray(tokens) || tokens.length === 0)
    return '.signatures.json: missing JWT (expected exactly one)'
  if (tokens.length > 1) return '.signatures.json: multiple JWTs not supported (expected exactly one)'
  const token = tokens[0]
  if (typeof token !== 'string') return '.signatures.json: the signature is not a string'
  let payloadClaims: Record<string, unknown>
  let kid: unknown
  try {
    kid = decodeProtectedHeader(token).kid
    const part = token.split('.')[1] ?? ''
    payloadClaims = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>
  } catch {
    return '.signatures.json: the signature is not a compact JWS'
  }
  const keyId =
    o.keyId ||
    (typeof kid === 'string' && kid) ||
    (typeof payloadClaims.keyid === 'string' && payloadClaims.keyid) ||
    ''
  if (keyId === '') return 'verification key ID is empty'
  const key = o.keys[keyId]
  if (key === undefined || !Object.hasOwn(o.keys, keyId)) return `verification key not found: ${keyId}`
  const alg = key.algorithm ?? 'RS256'
  let payload: { files?: unknown; scope?: unknown }
  try {
    const r = await compactVerify(token, verifyKey(key.key, alg), { algorithms: [alg] })
    payload = JSON.parse(new TextDecoder().decode(r.payload)) as typeof payload
  } catch (e) {
    return `bundle signature does not verify: ${(e as Error).message}`
  }
  const scope = o.scope || key.scope || ''
  if ((typeof payload.scope === 'string' ? payload.scope : '') !== scope) return 'scope mismatch'
  if (!Array.isArray(payload.files)) return 'signature payload has no files'
  const signed = new Map<string, SignedFile>()
  for (const f of payload.files as SignedFile[]) {
    if (typeof f?.name !== 'string' || typeof f.hash !== 'string')
      return 'signature payload has a malformed file entry'
    signed.set(f.name.replace(/^\/+/, ''), f)
  }
  for (const [name, bytes] of files) {
    if (name === SIGNATURES_FILE) continue
    const f = signed.get(name)
    if (f === undefined) return `file ${name} not included in bundle signature`
    if (!f.algorithm) return `no hashing algorithm provided for file ${name}`
    let digest: string
    try {
      digest = fileDigest(name, bytes, f.algorithm)
    } catch (e) {
      return `${name}: ${(e as Error).message}`
    }
    if (digest !== f.hash.toLowerCase()) return `${name}: digest mismatch`
    signed.delete(name)
  }
  if (signed.size > 0)
    return `file(s) ${[...signed.keys()].join(', ')} specified in bundle signature but not found in the bundle`
  return undefined
}
