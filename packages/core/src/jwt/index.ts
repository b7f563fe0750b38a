/**
 * JWT authentication for verdict policies (`authentication.jwt`, docs/jwt.md).
 *
 * Load time: the section is validated (every problem with its JSON path), fixed keys (inline
 * JWKS, file, PEM) are read through the host's resource loader and imported, and remote key sets
 * (URL, OIDC discovery) are fetched once through the host's fetch, fail-soft. Decision time:
 * tokens are verified with jose against those keys, with remote sets refreshed lazily through the
 * same injected fetch; core itself does no I/O.
 */
import type { AuthCompileResult, AuthEnvironment } from '../auth.js'
import type { Problem } from '../errors.js'
import { JwtAuthenticator, type Provider } from './authenticator.js'
import { type JwtConfig, type ProviderConfig, parseJwtConfig } from './config.js'
import { buildKeySet, type KeySet, pemToJwks } from './key-set.js'
import { RemoteKeySet } from './remote-key-set.js'
import { locationKey, staticRemoval } from './token-location.js'

export { JwtAuthenticator } from './authenticator.js'
export { JWT_FAILURE_CODES, type JwtFailureCode } from './verify-token.js'

/**
 * The decision deadline assumed when the host does not say (compile.ts `DEFAULT_TIMEOUT_MS`; a test
 * checks they agree). Not imported from there: compile.ts imports this module.
 */
export const DEFAULT_DECISION_TIMEOUT_MS = 1000

/** What JWT authentication needs from the host beyond `AuthEnvironment`. */
export interface JwtEnvironment extends AuthEnvironment {
  /**
   * The policy's decision deadline (`timeoutMs`), default 1000. A decision waits for remote keys at
   * most this long minus a margin, so a key fetch that cannot finish in time is a 401
   * `jwt_keys_unavailable` rather than the deadline's timeout.
   */
  readonly decisionTimeoutMs?: number | undefined
}

/**
 * How long a decision may wait for remote keys under a deadline of `timeoutMs`: the deadline less
 * a margin (a tenth, at most 100 ms) for the signature check and the rest of the decision.
 */
export function keyWaitBudgetMs(timeoutMs: number): number {
  return Math.max(0, timeoutMs - Math.min(100, Math.ceil(timeoutMs / 10)))
}

type Loaded = { set: KeySet } | { remote: RemoteKeySet } | { problem: Problem }

const problem = (message: string, path: string): { problem: Problem } => ({
  problem: { code: 'jwt_config', message, path },
})

async function fixedKeys(jwks: unknown, p: ProviderConfig, path: string): Promise<Loaded> {
  const built = await buildKeySet(jwks, p.algorithms, true)
  if (!built.ok) return problem(built.error, path)
  // agentgateway refuses a key set with a key lacking `kid`; with requireKid such a key could
  // never verify anything, so it is a load problem here too.
  if (p.requireKid) {
    const i = built.set.keys.findIndex((k) => k.kid === undefined)
    if (i !== -1) return problem(`key ${i} has no "kid", which requireKid needs`, path)
  }
  return { set: built.set }
}

/** JSON JWKS text or PEM text, as found in a file or an inline string. */
async function parseKeyText(text: string): Promise<unknown | string> {
  if (text.trimStart().startsWith('-----BEGIN')) return await pemToJwks(text)
  try {
    return JSON.parse(text)
  } catch {
    return 'neither JSON (a JWKS) nor PEM'
  }
}

async function loadKeys(p: ProviderConfig, at: string, c: JwtConfig, env: AuthEnvironment): Promise<Loaded> {
  const j = p.jwks
  if ('inline' in j) {
    const v = typeof j.inline === 'string' ? await parseKeyText(j.inline) : j.inline
    if (typeof v === 'string') return problem(v, `${at}/inline`)
    return fixedKeys(v, p, `${at}/inline`)
  }
  if ('pem' in j) {
    const v = await pemToJwks(j.pem)
    if (typeof v === 'string') return problem(v, `${at}/pem`)
    return fixedKeys(v, p, `${at}/pem`)
  }
  if ('file' in j) {
    if (env.resources === undefined) return problem('no resource loader to read key files', `${at}/file`)
    let text: string
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(await env.resources.read(j.file))
    } catch (e) {
      return problem(`cannot read ${j.file}: ${(e as Error).message}`, `${at}/file`)
    }
    const v = await parseKeyText(text)
    if (typeof v === 'string') return problem(`${j.file}: ${v}`, `${at}/file`)
    return fixedKeys(v, p, `${at}/file`)
  }
  if (env.fetch === undefined) return problem('remote keys need a fetch from the host', at)
  const source = 'url' in j ? { url: j.url } : { discovery: p.issuer }
  return { remote: new RemoteKeySet(source, env.fetch, env.now, c.remote, p.algorithms) }
}

function providerFrom(p: ProviderConfig, loaded: { set: KeySet } | { remote: RemoteKeySet }): Provider {
  const fixed = 'set' in loaded ? loaded.set : undefined
  const algorithms = new Set<string>()
  if (fixed !== undefined) for (const k of fixed.keys) for (const a of k.algorithms) algorithms.add(a)
  return {
    config: p,
    locationKey: locationKey(p.location),
    algorithms: fixed !== undefined ? algorithms : p.algorithms,
    fixed,
    remote: 'remote' in loaded ? loaded.remote : undefined,
    removal: staticRemoval(p.location),
  }
}

/**
 * Compile `authentication.jwt`. Problems carry JSON paths under `path`
 * (`/authentication/jwt/providers/0/issuer`).
 *
 * @example
 * ```ts
 * const r = await compileJwtAuthentication(
 *   { mode: 'Strict', providers: [{ issuer: 'https://idp.example', jwks: { inline: { keys } } }] },
 *   '/authentication/jwt',
 *   { fetch: undefined, resources: undefined, now: Date.now },
 * )
 * if (r.ok) await r.authenticator.authenticate(ctx)
 * ```
 */
export async function compileJwtAuthentication(
  config: unknown,
  path: string,
  env: JwtEnvironment,
): Promise<AuthCompileResult> {
  const parsed = parseJwtConfig(config, path)
  if ('problems' in parsed) return { ok: false, problems: parsed.problems }
  const c = parsed.config
  const loaded = await Promise.all(
    c.providers.map((p, i) => loadKeys(p, `${path}/providers/${i}/jwks`, c, env)),
  )
  const problems: Problem[] = []
  for (const l of loaded) if ('problem' in l) problems.push(l.problem)
  if (problems.length > 0) return { ok: false, problems }
  const providers = c.providers.map((p, i) =>
    providerFrom(p, loaded[i] as { set: KeySet } | { remote: RemoteKeySet }),
  )
  // Prefetch remote keys so the first decisions need not wait; a failure here is not fatal.
  await Promise.all(providers.map((p) => p.remote?.refresh()))
  const maxWaitMs = keyWaitBudgetMs(env.decisionTimeoutMs ?? DEFAULT_DECISION_TIMEOUT_MS)
  return { ok: true, authenticator: new JwtAuthenticator(c, providers, { maxWaitMs }) }
}
