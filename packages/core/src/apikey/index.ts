/**
 * API-key and basic-auth authentication (`authentication.apiKey`, `authentication.basicAuth`), as
 * agentgateway has them: key stores in the policy, hashed; modes Strict / Optional (default) /
 * Permissive (API keys); the key's metadata, or the user name, exposed to rules (CEL `apiKey`,
 * `basicAuth`) and in the decision's identity. Keys and passwords are never kept in clear, never
 * compared by `===`, never put in a reason or an identity.
 */
import { sha256 as sha256Bytes } from '@noble/hashes/sha2.js'
import type { AuthCompileResult, Authenticator, AuthOutcome } from '../auth.js'
import { base64Decode, constantTimeEqual, fromHex, toHex, utf8Encode } from '../bytes.js'
import type { AuthFailureCode } from '../codes.js'
import type { RequestContext } from '../context.js'
import type { Identity } from '../decision.js'
import type { Problem } from '../errors.js'
import type { ResourceLoader } from '../evaluator.js'
import type { TokenLocation } from '../jwt/config.js'
import {
  cookieRemoval,
  extractToken,
  NO_REMOVAL,
  type Removal,
  type SearchLocation,
  searchLocation,
  staticRemoval,
} from '../jwt/token-location.js'
import { bcryptProblem, bcryptVerify } from './bcrypt.js'

/** Strict: a valid credential is required. Optional: validated when present. Permissive: never denies. */
type CredentialMode = 'Strict' | 'Optional' | 'Permissive'

type Obj = Record<string, unknown>

const problem = (message: string, path: string): Problem => ({ code: 'auth_config', message, path })

function mode(v: unknown): CredentialMode {
  if (typeof v !== 'string') return 'Optional'
  const m = v.toLowerCase()
  return m === 'strict' ? 'Strict' : m === 'permissive' ? 'Permissive' : 'Optional'
}

function location(raw: unknown, fallback: TokenLocation): TokenLocation {
  if (typeof raw !== 'object' || raw === null) return fallback
  const r = raw as Obj
  if (typeof r.query === 'string') return { kind: 'query', name: r.query }
  if (typeof r.cookie === 'string') return { kind: 'cookie', name: r.cookie }
  const h = (r.header ?? {}) as Obj
  return {
    kind: 'header',
    name: String(h.name ?? 'authorization').toLowerCase(),
    prefix: typeof h.prefix === 'string' ? h.prefix : '',
  }
}

const sha256 = (s: string): Uint8Array => sha256Bytes(utf8Encode(s))

/** What a matching key or user yields: frozen metadata and the identity. */
interface Entry {
  readonly identity: Identity
}

/** Bounded memory of credentials that verified against a bcrypt entry (by their SHA-256). */
class VerifiedCache {
  private readonly map = new Map<string, Entry>()
  constructor(private readonly max = 1000) {}
  get(k: string): Entry | undefined {
    return this.map.get(k)
  }
  set(k: string, v: Entry): void {
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value as string)
    this.map.set(k, v)
  }
}

function freeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v)
    for (const k of Object.keys(v)) freeze((v as Obj)[k])
  }
  return v
}

/** The subject of an API key: its metadata's `name`, `user` or `sub`, the first that is a string. */
function keySubject(metadata: Readonly<Obj>): string | undefined {
  for (const k of ['name', 'user', 'sub']) if (typeof metadata[k] === 'string') return metadata[k] as string
  return undefined
}

abstract class CredentialAuthenticator implements Authenticator {
  protected readonly at: readonly SearchLocation[]
  constructor(
    protected readonly mode: CredentialMode,
    protected readonly loc: TokenLocation,
    protected readonly what: string,
    protected readonly challenge: string | undefined,
  ) {
    this.at = [searchLocation(loc)]
  }

  get credentialLocations(): readonly TokenLocation[] {
    return [this.loc]
  }

  protected abstract lookup(credential: string): Entry | undefined

  authenticate(ctx: RequestContext): AuthOutcome {
    const ex = extractToken(ctx.input, this.at)
    if (ex.kind === 'none') {
      if (this.mode !== 'Strict') return { kind: 'anonymous' }
      return this.failed(`no ${this.what}`, `${this.code}_missing`, false)
    }
    const entry = ex.kind === 'one' ? this.lookup(ex.found.token) : undefined
    if (entry === undefined) {
      const why = ex.kind === 'multiple' ? `more than one ${this.what}` : `invalid ${this.what}`
      const code: AuthFailureCode = ex.kind === 'multiple' ? `${this.code}_multiple` : `${this.code}_invalid`
      if (this.mode === 'Permissive') return { kind: 'ignored', reason: why }
      return this.failed(why, code, true)
    }
    const removal: Removal =
      this.loc.kind === 'cookie'
        ? cookieRemoval(ctx.input, this.loc.name)
        : (staticRemoval(this.loc) ?? NO_REMOVAL)
    return {
      kind: 'authenticated',
      identity: entry.identity,
      headersToRemove: removal.headersToRemove,
      queryParametersToRemove: removal.queryParametersToRemove,
      headers: removal.headers,
    }
  }

  protected abstract readonly code: 'apikey' | 'basic'

  private failed(reason: string, code: AuthFailureCode, present: boolean): AuthOutcome {
    return {
      kind: 'failed',
      reason: `${reason} (${code})`,
      code,
      tokenPresent: present,
      ...(this.challenge !== undefined ? { challenge: this.challenge } : {}),
    }
  }
}

/** API keys: SHA-256 digests in a map, bcrypt hashes scanned (and remembered once verified). */
class ApiKeyAuthenticator extends CredentialAuthenticator {
  protected readonly code = 'apikey' as const
  private readonly cache = new VerifiedCache()
  constructor(
    mode: CredentialMode,
    loc: TokenLocation,
    private readonly digests: ReadonlyMap<string, { digest: Uint8Array; entry: Entry }>,
    private readonly bcrypt: readonly { hash: string; entry: Entry }[],
  ) {
    super(mode, loc, 'API key', undefined)
  }

  protected lookup(key: string): Entry | undefined {
    if (key === '') return undefined
    const digest = sha256(key)
    const hex = toHex(digest)
    // The map is keyed by digest, which tells nothing about a stored key; the final comparison is
    // constant-time all the same.
    const hit = this.digests.get(hex)
    if (hit !== undefined) return constantTimeEqual(hit.digest, digest) ? hit.entry : undefined
    if (this.bcrypt.length === 0) return undefined
    const cached = this.cache.get(hex)
    if (cached !== undefined) return cached
    for (const b of this.bcrypt) {
      if (bcryptVerify(key, b.hash)) {
        this.cache.set(hex, b.entry)
        return b.entry
      }
    }
    return undefined
  }
}

/** Basic auth: htpasswd users with bcrypt hashes. */
class BasicAuthenticator extends CredentialAuthenticator {
  protected readonly code = 'basic' as const
  private readonly cache = new VerifiedCache()
  constructor(
    mode: CredentialMode,
    realm: string,
    private readonly users: ReadonlyMap<string, { hash: string; entry: Entry }>,
  ) {
    super(
      mode,
      { kind: 'header', name: 'authorization', prefix: 'Basic ' },
      'basic auth credentials',
      `Basic realm="${realm.replace(/["\\\r\n]/g, '')}"`,
    )
  }

  protected lookup(credential: string): Entry | undefined {
    let decoded: string
    try {
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(credential)) return undefined
      decoded = new TextDecoder('utf-8', { fatal: true }).decode(base64Decode(credential))
    } catch {
      return undefined
    }
    const colon = decoded.indexOf(':')
    if (colon < 0) return undefined
    const user = this.users.get(decoded.slice(0, colon))
    if (user === undefined) return undefined
    const hex = toHex(sha256(decoded))
    const cached = this.cache.get(hex)
    if (cached !== undefined) return cached
    if (!bcryptVerify(decoded.slice(colon + 1), user.hash)) return undefined
    this.cache.set(hex, user.entry)
    return user.entry
  }
}

const SHA256_HASH = /^sha256:([0-9A-Fa-f]{64})$/

/**
 * Compile `authentication.apiKey` (its shape is checked by the policy schema). Plain `key` entries
 * are hashed here and not kept; `keyHash` is `sha256:<64 hex>` or a bcrypt hash.
 */
export function compileApiKeyAuthentication(config: unknown, path: string): AuthCompileResult {
  const c = (config ?? {}) as Obj
  const problems: Problem[] = []
  const digests = new Map<string, { digest: Uint8Array; entry: Entry }>()
  const bcrypt: { hash: string; entry: Entry }[] = []
  const keys = Array.isArray(c.keys) ? (c.keys as Obj[]) : []
  keys.forEach((k, i) => {
    const metadata = freeze({ ...((k.metadata as Obj | undefined) ?? {}) })
    const identity: Identity = freeze({
      kind: 'apiKey',
      subject: keySubject(metadata),
      apiKey: { metadata },
    })
    const entry: Entry = { identity }
    let digest: Uint8Array | undefined
    if (typeof k.key === 'string') digest = sha256(k.key)
    else if (typeof k.keyHash === 'string') {
      const m = SHA256_HASH.exec(k.keyHash)
      if (m !== null) digest = fromHex(m[1]!)
      else {
        const bad = bcryptProblem(k.keyHash)
        if (bad !== undefined) {
          problems.push(
            problem(
              `keyHash is neither sha256:<64 hex digits> nor bcrypt: ${bad}`,
              `${path}/keys/${i}/keyHash`,
            ),
          )
          return
        }
        bcrypt.push({ hash: k.keyHash, entry })
        return
      }
    }
    if (digest === undefined) return
    const hex = toHex(digest)
    if (digests.has(hex)) problems.push(problem('the same key is listed twice', `${path}/keys/${i}`))
    digests.set(hex, { digest, entry })
  })
  if (problems.length > 0) return { ok: false, problems }
  const loc = location(c.location, { kind: 'header', name: 'authorization', prefix: 'Bearer ' })
  return { ok: true, authenticator: new ApiKeyAuthenticator(mode(c.mode), loc, digests, bcrypt) }
}

/**
 * Compile `authentication.basicAuth`: `htpasswd` text (`user:hash` lines, `#` comments) inline or
 * `{file}` read through the host's resource loader. Hashes are bcrypt (`htpasswd -B`).
 */
export async function compileBasicAuthentication(
  config: unknown,
  path: string,
  resources: ResourceLoader | undefined,
): Promise<AuthCompileResult> {
  const c = (config ?? {}) as Obj
  let text: string
  let at = `${path}/htpasswd`
  if (typeof c.htpasswd === 'string') text = c.htpasswd
  else {
    const file = (c.htpasswd as Obj | undefined)?.file
    at = `${at}/file`
    if (typeof file !== 'string') return { ok: false, problems: [problem('htpasswd is required', at)] }
    if (resources === undefined)
      return { ok: false, problems: [problem('no resource loader to read the htpasswd file', at)] }
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(await resources.read(file))
    } catch (e) {
      return { ok: false, problems: [problem(`cannot read ${file}: ${(e as Error).message}`, at)] }
    }
  }
  const problems: Problem[] = []
  const users = new Map<string, { hash: string; entry: Entry }>()
  text.split(/\r?\n/).forEach((raw, n) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const colon = line.indexOf(':')
    const user = colon > 0 ? line.slice(0, colon) : ''
    // agentgateway's inline htpasswd escapes `$` as `$$`; accept that spelling too.
    const hash = line.slice(colon + 1).replaceAll('$$', '$')
    if (user === '') {
      problems.push(problem(`line ${n + 1} is not user:hash`, at))
      return
    }
    const bad = bcryptProblem(hash)
    if (bad !== undefined) {
      problems.push(
        problem(
          `line ${n + 1} (user ${JSON.stringify(user.slice(0, 64))}): only bcrypt hashes (htpasswd -B) are supported: ${bad}`,
          at,
        ),
      )
      return
    }
    if (users.has(user))
      problems.push(problem(`user ${JSON.stringify(user.slice(0, 64))} is listed twice`, at))
    const identity: Identity = freeze({ kind: 'basicAuth', subject: user, basicAuth: { username: user } })
    users.set(user, { hash, entry: { identity } })
  })
  if (problems.length > 0) return { ok: false, problems }
  if (users.size === 0) return { ok: false, problems: [problem('htpasswd lists no user', at)] }
  const m = mode(c.mode) === 'Strict' ? 'Strict' : 'Optional'
  const realm = typeof c.realm === 'string' ? c.realm : 'Restricted'
  return { ok: true, authenticator: new BasicAuthenticator(m, realm, users) }
}
