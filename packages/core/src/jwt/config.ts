/**
 * The `authentication.jwt` section of a policy: its JSON Schema, and the checks the schema cannot
 * express (unique names and issuers, header names, algorithms). Every problem comes back at once
 * with its JSON path.
 */
import { compileSchema, schemaProblems } from '../document.js'
import type { Problem } from '../errors.js'
import { HEADER_NAME } from '../input/header-syntax.js'
import { SUPPORTED_ALGORITHMS } from './key-set.js'
import { DEFAULT_REMOTE_SETTINGS, type RemoteSettings, urlProblem } from './remote-key-set.js'
import { normalizeType } from './verify-token.js'

/** Strict: a valid token is required. Optional: a token, if present, must be valid. Permissive: never denies. */
export type JwtMode = 'Strict' | 'Optional' | 'Permissive'

/** Where a provider's token is read from. */
export type TokenLocation =
  | { readonly kind: 'header'; readonly name: string; readonly prefix: string }
  | { readonly kind: 'query'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string }

/** Where a provider's keys come from, as written in the policy. */
type JwksSource =
  | { readonly inline: unknown }
  | { readonly file: string }
  | { readonly pem: string }
  | { readonly url: string }
  | { readonly discovery: true }

interface ClaimHeader {
  readonly claim: string
  readonly header: string
}

export interface ProviderConfig {
  readonly name: string
  readonly issuer: string
  readonly audiences: readonly string[]
  readonly jwks: JwksSource
  readonly location: TokenLocation
  readonly forwardToken: boolean
  readonly claimsToHeaders: readonly ClaimHeader[]
  readonly requiredClaims: readonly string[]
  readonly clockSkewSeconds: number
  readonly maxTokenBytes: number
  /** Algorithms allowed by the policy (intersected later with what each key allows). */
  readonly algorithms: ReadonlySet<string>
  /** Longest accepted lifetime (`exp - iat`, and `exp - now`); undefined: no limit. */
  readonly maxLifetimeSeconds: number | undefined
  /** Accepted `typ` header values, normalized (`normalizeType`); empty: `typ` is not checked. */
  readonly tokenTypes: ReadonlySet<string>
  /**
   * A token must name its key (`kid`) and only a key with that `kid` verifies it (agentgateway's
   * behaviour). Default false: a token without `kid` is tried against every key allowing its `alg`.
   */
  readonly requireKid: boolean
}

export interface JwtConfig {
  readonly mode: JwtMode
  readonly providers: readonly ProviderConfig[]
  readonly remote: RemoteSettings
  readonly cacheMaxEntries: number
}

/** Defaults named in docs/jwt.md. */
const DEFAULT_CLOCK_SKEW_SECONDS = 60
const DEFAULT_MAX_TOKEN_BYTES = 8192
const DEFAULT_CACHE_MAX_ENTRIES = 10_000

const name = { type: 'string', minLength: 1, maxLength: 256 }
const seconds = { type: 'integer', minimum: 0, maximum: 31_536_000 }

const JWT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['providers'],
  properties: {
    mode: { type: 'string', enum: ['Strict', 'Optional', 'Permissive'] },
    providers: {
      type: 'array',
      minItems: 1,
      maxItems: 256,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['issuer', 'jwks'],
        properties: {
          name,
          issuer: { type: 'string', minLength: 1, maxLength: 2048 },
          audiences: { type: 'array', maxItems: 64, items: { type: 'string', minLength: 1 } },
          jwks: {
            type: 'object',
            additionalProperties: false,
            minProperties: 1,
            maxProperties: 1,
            properties: {
              inline: { type: ['object', 'string'] },
              file: { type: 'string', minLength: 1 },
              pem: { type: 'string', minLength: 1 },
              url: { type: 'string', minLength: 1 },
              discovery: { type: 'boolean', const: true },
            },
          },
          location: {
            type: 'object',
            additionalProperties: false,
            minProperties: 1,
            maxProperties: 1,
            properties: {
              header: {
                type: 'object',
                additionalProperties: false,
                required: ['name'],
                properties: { name, prefix: { type: 'string', maxLength: 64 } },
              },
              query: name,
              cookie: name,
            },
          },
          forwardToken: { type: 'boolean' },
          claimsToHeaders: {
            type: 'array',
            maxItems: 64,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['claim', 'header'],
              properties: { claim: name, header: name },
            },
          },
          requiredClaims: { type: 'array', maxItems: 64, items: name },
          clockSkewSeconds: { type: 'integer', minimum: 0, maximum: 3600 },
          maxTokenBytes: { type: 'integer', minimum: 256, maximum: 65536 },
          algorithms: {
            type: 'array',
            minItems: 1,
            items: { type: 'string', enum: [...SUPPORTED_ALGORITHMS] },
          },
          maxLifetimeSeconds: { type: 'integer', minimum: 1, maximum: 31_536_000 },
          tokenTypes: {
            type: 'array',
            minItems: 1,
            maxItems: 16,
            items: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[\\x21-\\x7e]+$' },
          },
          requireKid: { type: 'boolean' },
        },
      },
    },
    remote: {
      type: 'object',
      additionalProperties: false,
      properties: {
        timeoutMs: { type: 'integer', minimum: 1, maximum: 60_000 },
        minTtlSeconds: seconds,
        maxTtlSeconds: seconds,
        defaultTtlSeconds: seconds,
        maxStaleSeconds: seconds,
        unknownKidCooldownSeconds: seconds,
        retrySeconds: seconds,
        maxBytes: { type: 'integer', minimum: 1024, maximum: 16 * 1024 * 1024 },
        allowInsecureHttp: { type: 'boolean' },
      },
    },
    cache: {
      type: 'object',
      additionalProperties: false,
      properties: { maxEntries: { type: 'integer', minimum: 0, maximum: 10_000_000 } },
    },
  },
} as const

let validate: ReturnType<typeof compileSchema> | undefined

type Obj = Record<string, unknown>

/** Headers a claim may never be copied into: they would change routing or authentication. */
const RESERVED_HEADERS = new Set([
  'host',
  'authorization',
  'cookie',
  'content-length',
  'transfer-encoding',
  'connection',
])

function location(raw: Obj | undefined): TokenLocation {
  if (raw === undefined) return { kind: 'header', name: 'authorization', prefix: 'Bearer ' }
  if (typeof raw.query === 'string') return { kind: 'query', name: raw.query }
  if (typeof raw.cookie === 'string') return { kind: 'cookie', name: raw.cookie }
  const h = raw.header as Obj
  return {
    kind: 'header',
    name: (h.name as string).toLowerCase(),
    prefix: (h.prefix as string | undefined) ?? '',
  }
}

/** Validate and normalize the section; `path` is its JSON pointer in the document. */
export function parseJwtConfig(raw: unknown, path: string): { config: JwtConfig } | { problems: Problem[] } {
  validate ??= compileSchema(JWT_SCHEMA)
  if (!validate(raw)) return { problems: schemaProblems(validate.errors, path, () => undefined) }
  const c = raw as Obj
  const problems: Problem[] = []
  const remote: RemoteSettings = {
    ...DEFAULT_REMOTE_SETTINGS,
    ...((c.remote as Partial<RemoteSettings>) ?? {}),
  }
  if (remote.minTtlSeconds > remote.maxTtlSeconds)
    problems.push({
      code: 'jwt_config',
      message: 'minTtlSeconds is larger than maxTtlSeconds',
      path: `${path}/remote`,
    })
  const names = new Set<string>()
  // Several providers may share an issuer (different keys, audiences or locations, as Envoy's
  // jwt_authn and agentgateway allow): a token is tried against each of them in order.
  const perIssuer = new Map<string, number>()
  for (const p of c.providers as Obj[])
    perIssuer.set(p.issuer as string, (perIssuer.get(p.issuer as string) ?? 0) + 1)
  const providers = (c.providers as Obj[]).map((p, i): ProviderConfig => {
    const at = `${path}/providers/${i}`
    const issuer = p.issuer as string
    // The default name is the issuer, or `<issuer>#<index>` when other providers share the issuer.
    const providerName =
      (p.name as string | undefined) ?? ((perIssuer.get(issuer) ?? 0) > 1 ? `${issuer}#${i}` : issuer)
    if (names.has(providerName))
      problems.push({
        code: 'jwt_config',
        message: `provider name "${providerName}" is used twice`,
        path: `${at}/name`,
      })
    names.add(providerName)
    const jwks = p.jwks as Obj
    if (typeof jwks.url === 'string') {
      const bad = urlProblem(jwks.url, remote.allowInsecureHttp)
      if (bad !== null)
        problems.push({ code: 'jwt_config', message: `JWKS url ${bad}`, path: `${at}/jwks/url` })
    }
    if (jwks.discovery === true) {
      const bad = urlProblem(issuer, remote.allowInsecureHttp)
      if (bad !== null)
        problems.push({
          code: 'jwt_config',
          message: `discovery needs an issuer URL that ${bad}`,
          path: `${at}/issuer`,
        })
    }
    const loc = location(p.location as Obj | undefined)
    if (loc.kind === 'header' && !HEADER_NAME.test(loc.name))
      problems.push({
        code: 'jwt_config',
        message: 'invalid header name',
        path: `${at}/location/header/name`,
      })
    const claimsToHeaders = ((p.claimsToHeaders as ClaimHeader[] | undefined) ?? []).map((m, j) => {
      const header = m.header.toLowerCase()
      if (!HEADER_NAME.test(header) || RESERVED_HEADERS.has(header))
        problems.push({
          code: 'jwt_config',
          message: `"${m.header}" cannot carry a claim`,
          path: `${at}/claimsToHeaders/${j}/header`,
        })
      return { claim: m.claim, header }
    })
    return {
      name: providerName,
      issuer,
      audiences: (p.audiences as string[] | undefined) ?? [],
      jwks: jwks as unknown as JwksSource,
      location: loc,
      forwardToken: p.forwardToken === true,
      claimsToHeaders,
      requiredClaims: (p.requiredClaims as string[] | undefined) ?? [],
      clockSkewSeconds: (p.clockSkewSeconds as number | undefined) ?? DEFAULT_CLOCK_SKEW_SECONDS,
      maxTokenBytes: (p.maxTokenBytes as number | undefined) ?? DEFAULT_MAX_TOKEN_BYTES,
      algorithms: new Set((p.algorithms as string[] | undefined) ?? SUPPORTED_ALGORITHMS),
      maxLifetimeSeconds: p.maxLifetimeSeconds as number | undefined,
      tokenTypes: new Set(((p.tokenTypes as string[] | undefined) ?? []).map(normalizeType)),
      requireKid: p.requireKid === true,
    }
  })
  if (problems.length > 0) return { problems }
  const cache = (c.cache as Obj | undefined)?.maxEntries
  return {
    config: {
      mode: (c.mode as JwtMode | undefined) ?? 'Strict',
      providers,
      remote,
      cacheMaxEntries: typeof cache === 'number' ? cache : DEFAULT_CACHE_MAX_ENTRIES,
    },
  }
}
