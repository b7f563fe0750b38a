import { exportJWK, exportPKCS8, generateKeyPair } from 'jose'
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest'
import type { Authenticator } from '../auth.js'
import { DEFAULT_TIMEOUT_MS } from '../compile.js'
import { DecisionContext } from '../context.js'
import type { Decision } from '../decision.js'
import { createEngine, type Engine } from '../engine.js'
import { PolicyError } from '../errors.js'
import { isDecision, normalizeInput, resolveInputOptions } from '../input/index.js'
import {
  compileJwtAuthentication,
  DEFAULT_DECISION_TIMEOUT_MS,
  type JwtAuthenticator,
  keyWaitBudgetMs,
} from './index.js'
import { cacheControlMaxAge, DEFAULT_REMOTE_SETTINGS, RemoteKeySet, urlProblem } from './remote-key-set.js'
import { clock, jwks, makeKey, sign, startServer, type TestKey, type TestServer } from './testing/jwt-kit.js'

const NOW_MS = 1_700_000_000_000
const NOW = NOW_MS / 1000

let server: TestServer
let keyA: TestKey
let keyB: TestKey
let keyC: TestKey
const engines: Engine[] = []

beforeAll(async () => {
  server = await startServer()
  keyA = await makeKey('ES256', 'a')
  keyB = await makeKey('ES256', 'b')
  keyC = await makeKey('RS256', 'c')
})
afterAll(() => server.close())
afterEach(() => {
  for (const e of engines.splice(0)) e.close()
  server.routes.clear()
  server.hits.clear()
})

/** A token for the loopback issuer, valid for ten days from NOW. */
const token = (k: TestKey, iss = server.url, extra: Record<string, unknown> = {}) =>
  sign(k, { iss, sub: 'alice', exp: NOW + 864_000, iat: NOW, ...extra })

async function engineFor(
  jwksSource: Record<string, unknown>,
  remote: Record<string, unknown> = {},
  now = () => NOW_MS,
) {
  const e = await createEngine(
    {
      authentication: { jwt: { providers: [{ issuer: server.url, jwks: jwksSource }], remote } },
      rules: [ALLOW_ALL],
    },
    { now },
  )
  engines.push(e)
  return e
}

/** A rule allowing every authenticated request, so a policy is not refused for having none. */
const ALLOW_ALL = { id: 'any', action: 'allow', match: { always: true } }

const decideWith = async (e: Engine, t: string): Promise<Decision> =>
  e.decide({ path: '/', headers: { authorization: `Bearer ${t}` } })

describe('remote JWKS through the injected fetch', () => {
  test('fetched once at load, then served from memory', async () => {
    server.routes.set('/jwks', { body: jwks(keyA) })
    const e = await engineFor({ url: `${server.url}/jwks` })
    expect(server.hitsOf('/jwks')).toBe(1)
    for (let i = 0; i < 3; i++) expect((await decideWith(e, await token(keyA))).allowed).toBe(true)
    expect(server.hitsOf('/jwks')).toBe(1)
  })

  test('rotation: an unknown kid triggers one refetch, then a cooldown', async () => {
    server.routes.set('/jwks', { body: jwks(keyA) })
    const c = clock(NOW_MS)
    const e = await engineFor({ url: `${server.url}/jwks` }, {}, c.now)
    server.routes.set('/jwks', { body: jwks(keyA, keyB) })
    expect((await decideWith(e, await token(keyB))).allowed).toBe(true)
    expect(server.hitsOf('/jwks')).toBe(2)
    // A kid that is nowhere: no second refetch within the cooldown.
    const ghost = await sign(keyC, { iss: server.url, exp: NOW + 3600 }, { kid: 'ghost' })
    expect((await decideWith(e, ghost)).reason).toContain('unknown key (jwt_unknown_key)')
    expect(server.hitsOf('/jwks')).toBe(2)
    c.advance(31_000)
    server.routes.set('/jwks', { body: jwks(keyA, keyB, keyC) })
    expect(
      (await decideWith(e, await sign(keyC, { iss: server.url, sub: 'c', exp: NOW + 3600 }))).allowed,
    ).toBe(true)
    expect(server.hitsOf('/jwks')).toBe(3)
  })

  test('outage: stale keys keep serving until max staleness, then fail closed', async () => {
    server.routes.set('/jwks', { headers: { 'cache-control': 'max-age=600' }, body: jwks(keyA) })
    const c = clock(NOW_MS)
    const e = await engineFor(
      { url: `${server.url}/jwks` },
      { maxStaleSeconds: 3600, retrySeconds: 0 },
      c.now,
    )
    const t = await token(keyA)
    server.routes.set('/jwks', { status: 503, body: 'down' })
    c.advance(601_000) // stale: served, and a background refresh starts (and fails)
    expect((await decideWith(e, t)).allowed).toBe(true)
    await vi.waitFor(() => expect(server.hitsOf('/jwks')).toBe(2))
    c.advance(3_000_000) // still within 600 s + 3600 s
    expect((await decideWith(e, await token(keyA, server.url, { sub: 'other' }))).allowed).toBe(true)
    c.advance(700_000) // past max staleness: even the cached token fails closed
    const d = await decideWith(e, t)
    expect(d).toMatchObject({ allowed: false, status: 401 })
    expect(d.reason).toContain('signing keys unavailable')
    expect(d.reason).toContain('answered 503')
    // The endpoint comes back: keys are fetched again.
    server.routes.set('/jwks', { body: jwks(keyA) })
    expect((await decideWith(e, t)).allowed).toBe(true)
  })

  test('slow endpoint: the fetch times out, loading still succeeds, decisions fail closed', async () => {
    server.routes.set('/slow', () => {}) // never answers
    const e = await engineFor({ url: `${server.url}/slow` }, { timeoutMs: 100 })
    const d = await decideWith(e, await token(keyA))
    expect(d.allowed).toBe(false)
    expect(d.reason).toContain('timed out after 100 ms')
  })

  test('malformed JWKS is rejected and the last good set kept', async () => {
    server.routes.set('/jwks', { body: jwks(keyA) })
    const c = clock(NOW_MS)
    const e = await engineFor({ url: `${server.url}/jwks` }, { unknownKidCooldownSeconds: 0 }, c.now)
    const bad = [
      '{"keys":"nope"}',
      'not json',
      '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}',
      { keys: [{ kty: 'EC' }] },
    ]
    for (const body of bad) {
      server.routes.set('/jwks', { body })
      // An unknown kid forces a refetch; the malformed answer must not replace the good set.
      expect((await decideWith(e, await token(keyB))).reason).toContain('jwt_unknown_key')
      expect((await decideWith(e, await token(keyA, server.url, { n: String(body) }))).allowed).toBe(true)
    }
    expect(server.hitsOf('/jwks')).toBe(1 + bad.length)
  })

  test('100 concurrent decisions share one fetch', async () => {
    server.routes.set('/jwks', { status: 500, body: 'not yet' })
    const c = clock(NOW_MS)
    const e = await engineFor({ url: `${server.url}/jwks` }, { retrySeconds: 1 }, c.now)
    expect(server.hitsOf('/jwks')).toBe(1)
    c.advance(2000)
    server.routes.set('/jwks', (_req, res) => {
      setTimeout(
        () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks(keyA))),
        50,
      )
    })
    const tokens = await Promise.all(
      Array.from({ length: 100 }, (_, i) => token(keyA, server.url, { sub: `u${i}` })),
    )
    const ds = await Promise.all(tokens.map((t) => decideWith(e, t)))
    expect(ds.every((d) => d.allowed)).toBe(true)
    expect(server.hitsOf('/jwks')).toBe(2)
  })

  test('a redirect is a failed fetch, for the JWKS and for discovery (never followed)', async () => {
    server.routes.set('/moved', { status: 302, headers: { location: `${server.url}/jwks` }, body: '' })
    server.routes.set('/jwks', { body: jwks(keyA) })
    const e = await engineFor({ url: `${server.url}/moved` })
    const d = await decideWith(e, await token(keyA))
    expect(d).toMatchObject({ allowed: false, status: 401 })
    expect(d.reason).toContain('answered 302 (redirects are not followed)')
    const location = `${server.url}/.well-known/elsewhere`
    server.routes.set('/.well-known/openid-configuration', { status: 301, headers: { location }, body: '' })
    server.routes.set('/.well-known/elsewhere', {
      body: { issuer: server.url, jwks_uri: `${server.url}/jwks` },
    })
    const viaDiscovery = await decideWith(await engineFor({ discovery: true }), await token(keyA))
    expect(viaDiscovery.allowed).toBe(false)
    expect(server.hitsOf('/jwks')).toBe(0)
    expect(server.hitsOf('/.well-known/elsewhere')).toBe(0)
  })

  test('a cached token is re-verified when the key set changes', async () => {
    server.routes.set('/jwks', { body: jwks(keyA, keyB) })
    const c = clock(NOW_MS)
    const e = await engineFor(
      { url: `${server.url}/jwks` },
      { minTtlSeconds: 60, defaultTtlSeconds: 60 },
      c.now,
    )
    const t = await token(keyB)
    expect((await decideWith(e, t)).allowed).toBe(true)
    server.routes.set('/jwks', { body: jwks(keyA) }) // key b revoked
    c.advance(61_000)
    await decideWith(e, t) // stale: starts the background refresh
    await vi.waitFor(() => expect(server.hitsOf('/jwks')).toBe(2))
    await vi.waitFor(async () => expect((await decideWith(e, t)).reason).toContain('jwt_unknown_key'))
  })
})

describe('key material in a remote set', () => {
  /** The remote key set of a provider for `url`, loaded as an engine would load it. */
  async function remoteSet(url: string) {
    const r = await compileJwtAuthentication({ providers: [{ issuer: server.url, jwks: { url } }] }, '', {
      fetch: globalThis.fetch,
      resources: undefined,
      now: () => NOW_MS,
    })
    if (!r.ok) throw new Error(JSON.stringify(r.problems))
    const a = r.authenticator as JwtAuthenticator
    a.dispose()
    return a.providers[0]!.remote!
  }

  test('a key that leaks its private half is skipped and reported; the other keys still work', async () => {
    const leakedA = { ...(await exportJWK(keyA.privateKey)), kid: 'a', alg: 'ES256' }
    expect(leakedA.d).toBeDefined()
    server.routes.set('/jwks', { body: { keys: [leakedA, keyB.jwk] } })
    const e = await engineFor({ url: `${server.url}/jwks` })
    // Anyone holding the published d can sign as key a: such tokens must not verify.
    const forged = await decideWith(e, await token(keyA))
    expect(forged).toMatchObject({ allowed: false, status: 401 })
    expect(forged.reason).toContain('unknown key (jwt_unknown_key)')
    expect((await decideWith(e, await token(keyB))).allowed).toBe(true)
    const r = await remoteSet(`${server.url}/jwks`)
    expect(r.skippedKeys).toEqual([
      'key 0 (kid "a") carries private key members (d): publish only the public key',
    ])
    expect(JSON.stringify(r.skippedKeys)).not.toContain(leakedA.d)
  })

  test('oct secrets and encryption keys are skipped; a set of nothing else fails closed, saying why', async () => {
    const encKey = { ...keyA.jwk, use: 'enc' }
    server.routes.set('/jwks', { body: { keys: [{ kty: 'oct', kid: 'h', k: 'c2VjcmV0' }, encKey] } })
    const e = await engineFor({ url: `${server.url}/jwks` })
    const d = await decideWith(e, await token(keyA))
    expect(d).toMatchObject({ allowed: false, status: 401, detailCode: 'jwt_keys_unavailable' })
    expect(d.reason).toContain('key 0 (kid "h") carries private key members (k)')
    expect(d.reason).toContain('key 1 (kid "a") is not a signature verification key')
    expect(d.reason).not.toContain('c2VjcmV0')
    server.routes.set('/jwks', {
      body: { keys: [{ kty: 'oct', kid: 'h', k: 'c2VjcmV0' }, encKey, keyB.jwk] },
    })
    const e2 = await engineFor({ url: `${server.url}/jwks` })
    expect((await decideWith(e2, await token(keyA))).reason).toContain('jwt_unknown_key')
    expect((await decideWith(e2, await token(keyB))).allowed).toBe(true)
    expect((await remoteSet(`${server.url}/jwks`)).skippedKeys).toHaveLength(2)
  })

  test('inline keys with private members are load problems at their location', async () => {
    const full = { ...(await exportJWK(keyA.privateKey)), kid: 'a', alg: 'ES256' }
    const pem = (await generateKeyPair('ES256', { extractable: true })).privateKey
    const files: Record<string, string> = {
      'keys.json': JSON.stringify({ keys: [full] }),
      'key.pem': await exportPKCS8(pem),
    }
    const resources = { read: async (f: string) => new TextEncoder().encode(files[f]) }
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ inline: { keys: [full] } }, 'inline', 'key 0 carries private key members (d)'],
      [{ inline: JSON.stringify({ keys: [full] }) }, 'inline', 'key 0 carries private key members (d)'],
      [{ inline: files['key.pem'] }, 'inline', 'a PEM private key'],
      [{ pem: files['key.pem'] }, 'pem', 'a PEM private key'],
      [{ file: 'keys.json' }, 'file', 'key 0 carries private key members (d)'],
      [{ file: 'key.pem' }, 'file', 'a PEM private key'],
    ]
    for (const [jwksSource, where, message] of cases) {
      const err = await createEngine(
        {
          authentication: { jwt: { providers: [{ issuer: 'https://idp.example', jwks: jwksSource }] } },
          rules: [ALLOW_ALL],
        },
        { resources },
      ).catch((x: unknown) => x)
      expect(err, where).toBeInstanceOf(PolicyError)
      const problem = (err as PolicyError).problems[0]!
      expect(problem).toMatchObject({
        code: 'jwt_config',
        path: `/authentication/jwt/providers/0/jwks/${where}`,
      })
      expect(problem.message).toContain(message)
      expect(problem.message).not.toContain(String(full.d))
    }
  })
})

describe('key fetches and the decision deadline', () => {
  /** A route that never answers (the connection stays open until the server closes). */
  const hang = () => {}
  /** An engine whose JWKS fetch at load failed fast, so the next decision must wait for a fetch. */
  async function engineWithoutKeys(c: ReturnType<typeof clock>) {
    server.routes.set('/jwks', { status: 503, body: 'down' })
    const e = await engineFor({ url: `${server.url}/jwks` }, { retrySeconds: 1 }, c.now)
    c.advance(1000) // past retrySeconds: the next decision fetches again
    return e
  }

  function expectUnavailable(d: Decision, waitedMs: number): void {
    expect(d).toMatchObject({
      allowed: false,
      status: 401,
      code: 'unauthenticated',
      detailCode: 'jwt_keys_unavailable',
    })
    expect(d.reason).toBe(
      'unauthenticated: signing keys unavailable: key fetch did not finish within 900 ms (jwt_keys_unavailable)',
    )
    expect(d.headers).toContainEqual({
      key: 'www-authenticate',
      value: 'Bearer realm="verdict", error="invalid_token"',
    })
    // Answered by the key wait (900 ms): the 401 rather than the deadline's 403 is the proof; the
    // time is checked loosely, as a loaded machine may run the timers late.
    expect(waitedMs).toBeGreaterThanOrEqual(850)
    expect(waitedMs).toBeLessThan(1500)
  }

  test('a JWKS that hangs: 401 jwt_keys_unavailable within the default deadline, not a 403 timeout', async () => {
    const c = clock(NOW_MS)
    const e = await engineWithoutKeys(c)
    server.routes.set('/jwks', hang)
    const t = await token(keyA)
    const started = performance.now()
    const d = await decideWith(e, t)
    expectUnavailable(d, performance.now() - started)
    expect(server.hitsOf('/jwks')).toBe(2)
  })

  test("the policy's own timeoutMs bounds the wait: 401 before a 400 ms deadline, not a 403 timeout", async () => {
    server.routes.set('/jwks', { status: 503, body: 'down' })
    const c = clock(NOW_MS)
    const e = await createEngine(
      {
        timeoutMs: 400,
        authentication: {
          jwt: {
            providers: [{ issuer: server.url, jwks: { url: `${server.url}/jwks` } }],
            remote: { retrySeconds: 1 },
          },
        },
        rules: [ALLOW_ALL],
      },
      { now: c.now },
    )
    engines.push(e)
    c.advance(1000)
    server.routes.set('/jwks', hang)
    const d = await decideWith(e, await token(keyA))
    expect(d).toMatchObject({ allowed: false, status: 401, detailCode: 'jwt_keys_unavailable' })
    expect(d.reason).toContain('within 360 ms')
  })

  test('the refetch for an unknown kid that hangs is bounded the same way', async () => {
    server.routes.set('/jwks', { body: jwks(keyA) })
    const e = await engineFor({ url: `${server.url}/jwks` })
    server.routes.set('/jwks', hang)
    const t = await token(keyB)
    const started = performance.now()
    const d = await decideWith(e, t)
    expectUnavailable(d, performance.now() - started)
    // Keys already held still work meanwhile.
    expect((await decideWith(e, await token(keyA))).allowed).toBe(true)
  })

  test('the fetch is not cut at the deadline: a slow endpoint serves the next decisions', async () => {
    const c = clock(NOW_MS)
    const e = await engineWithoutKeys(c)
    server.routes.set('/jwks', (_req, res) => {
      setTimeout(
        () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks(keyA))),
        1500,
      )
    })
    const t = await token(keyA)
    const started = performance.now()
    expectUnavailable(await decideWith(e, t), performance.now() - started)
    // The same fetch (remote.timeoutMs 5000) finishes at 1.5 s; no second fetch is needed.
    await vi.waitFor(async () => expect((await decideWith(e, t)).allowed).toBe(true), {
      timeout: 3000,
      interval: 100,
    })
    expect(server.hitsOf('/jwks')).toBe(2)
  })

  test('the wait follows the deadline the host gives; a shorter remote timeout still wins', async () => {
    server.routes.set('/jwks', hang)
    const make = async (decisionTimeoutMs: number | undefined, timeoutMs: number) => {
      const r = await compileJwtAuthentication(
        {
          providers: [{ issuer: server.url, jwks: { url: `${server.url}/jwks` } }],
          remote: { timeoutMs, retrySeconds: 0 },
        },
        '',
        { fetch: globalThis.fetch, resources: undefined, now: () => NOW_MS, decisionTimeoutMs },
      )
      if (!r.ok) throw new Error(JSON.stringify(r.problems))
      engines.push({ close: () => r.authenticator.dispose?.() } as Engine)
      return r.authenticator
    }
    const input = normalizeInput(
      { path: '/', headers: { authorization: `Bearer ${await token(keyA)}` } },
      resolveInputOptions(undefined),
    )
    if (isDecision(input)) throw new Error(input.reason)
    const run = async (a: Authenticator) => {
      const started = performance.now()
      const o = await a.authenticate(new DecisionContext(input, NOW_MS, 64))
      return { o, ms: performance.now() - started }
    }
    // A 300 ms deadline: the wait ends at 270 ms.
    const short = await run(await make(300, 5000))
    expect(short.o).toMatchObject({ kind: 'failed', code: 'jwt_keys_unavailable' })
    expect(short.o.kind === 'failed' && short.o.reason).toContain('did not finish within 270 ms')
    expect(short.ms).toBeGreaterThanOrEqual(250)
    expect(short.ms).toBeLessThan(800)
    // remote.timeoutMs below the wait: the fetch's own timeout answers first.
    const quick = await run(await make(undefined, 100))
    expect(quick.o.kind === 'failed' && quick.o.reason).toContain('timed out after 100 ms')
  })

  test('the wait budget and the default deadline agree with the engine', () => {
    expect(DEFAULT_DECISION_TIMEOUT_MS).toBe(DEFAULT_TIMEOUT_MS)
    expect(keyWaitBudgetMs(1000)).toBe(900)
    expect(keyWaitBudgetMs(300)).toBe(270)
    expect(keyWaitBudgetMs(5000)).toBe(4900)
    expect(keyWaitBudgetMs(1)).toBe(0)
  })
})

describe('OIDC discovery', () => {
  const discovery = (issuer: string, jwksUri: string) => ({ body: { issuer, jwks_uri: jwksUri } })

  test('jwks_uri from <issuer>/.well-known/openid-configuration', async () => {
    server.routes.set('/.well-known/openid-configuration', discovery(server.url, `${server.url}/certs`))
    server.routes.set('/certs', { body: jwks(keyA) })
    const e = await engineFor({ discovery: true })
    expect((await decideWith(e, await token(keyA))).allowed).toBe(true)
    expect(server.hitsOf('/.well-known/openid-configuration')).toBe(1)
    expect(server.hitsOf('/certs')).toBe(1)
  })

  test.each([
    ['names another issuer', discovery('https://evil.example', 'X/certs'), 'different issuer'],
    ['has no jwks_uri', { body: { issuer: 'ISS' } }, 'no "jwks_uri"'],
    ['points at plain http elsewhere', discovery('ISS', 'http://keys.example/certs'), 'must be https'],
    ['is not JSON', { body: '<html>' }, 'did not answer JSON'],
    ['is too large', { body: { issuer: 'ISS', pad: 'x'.repeat(600_000) } }, 'larger than'],
  ])('a discovery document that %s fails closed', async (_name, route, why) => {
    const fixed = JSON.parse(
      JSON.stringify(route).replaceAll('ISS', server.url).replaceAll('X/', `${server.url}/`),
    )
    server.routes.set('/.well-known/openid-configuration', fixed)
    server.routes.set('/certs', { body: jwks(keyA) })
    const e = await engineFor({ discovery: true })
    const d = await decideWith(e, await token(keyA))
    expect(d.allowed).toBe(false)
    expect(d.reason).toContain(why)
  })
})

describe('RemoteKeySet', () => {
  const make = (path: string, c: ReturnType<typeof clock>, settings = {}) =>
    new RemoteKeySet(
      { url: `${server.url}${path}` },
      globalThis.fetch,
      c.now,
      { ...DEFAULT_REMOTE_SETTINGS, ...settings },
      new Set(['ES256', 'RS256']),
    )

  test.each([
    ['max-age=10', 60],
    ['public, max-age=7200', 7200],
    ['max-age=999999', 86400],
    ['no-store', 60],
    [undefined, 900],
  ])('Cache-Control %s gives %i s, within bounds', async (cc, ttl) => {
    server.routes.set('/k', { headers: cc === undefined ? {} : { 'cache-control': cc }, body: jwks(keyA) })
    const c = clock(NOW_MS)
    const r = make('/k', c)
    expect(await r.keys()).toBeDefined()
    c.advance(ttl * 1000 - 1)
    r.peek(c.now())
    expect(r.refreshing).toBe(false)
    c.advance(1)
    r.peek(c.now()) // now stale: refresh in the background
    expect(r.refreshing).toBe(true)
    await r.refresh()
    expect(r.fetches).toBe(2)
  })

  test('after a failure, no new attempt before retrySeconds', async () => {
    server.routes.set('/k', { status: 404, body: 'gone' })
    const c = clock(NOW_MS)
    const r = make('/k', c, { retrySeconds: 10 })
    expect(await r.keys()).toBeUndefined()
    expect(await r.keys()).toBeUndefined()
    expect(r.fetches).toBe(1)
    expect(r.lastError).toContain('answered 404')
    c.advance(10_000)
    server.routes.set('/k', { body: jwks(keyA) })
    expect(await r.keys()).toBeDefined()
    expect(r.lastError).toBeUndefined()
  })

  test('a body over maxBytes is refused even without content-length', async () => {
    server.routes.set('/big', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"keys":[')
      res.end(`${'{"kty":"EC"},'.repeat(200)}{}]}`)
    })
    const r = make('/big', clock(NOW_MS), { maxBytes: 1024 })
    expect(await r.keys()).toBeUndefined()
    expect(r.lastError).toContain('larger than 1024 bytes')
  })

  test('helpers', () => {
    expect(cacheControlMaxAge(null)).toBeUndefined()
    expect(cacheControlMaxAge('private')).toBeUndefined()
    expect(cacheControlMaxAge('max-age="30"')).toBe(30)
    expect(urlProblem('https://idp.example/keys', false)).toBeNull()
    expect(urlProblem('http://localhost:8080/keys', false)).toBeNull()
    expect(urlProblem('http://[::1]/keys', false)).toBeNull()
    expect(urlProblem('http://keycloak:8080/keys', false)).toContain('https')
    expect(urlProblem('http://keycloak:8080/keys', true)).toBeNull()
    expect(urlProblem('file:///etc/keys', true)).toContain('https')
    expect(urlProblem('::', false)).toBe('is not a URL')
  })
})

describe('configuration problems', () => {
  test('every problem with its JSON path', async () => {
    const err = await createEngine({
      authentication: {
        jwt: {
          mode: 'Lenient',
          providers: [
            { issuer: 'https://a', jwks: { url: 'http://keys.example/jwks' }, algorithms: ['HS256'] },
            { issuer: 'https://a', jwks: { inline: { keys: [] } } },
          ],
        },
      },
    }).catch((e) => e)
    expect(err).toBeInstanceOf(PolicyError)
    const paths = (err as PolicyError).problems.map((p) => p.path)
    expect(paths).toContain('/authentication/jwt/mode')
    expect(paths).toContain('/authentication/jwt/providers/0/algorithms/0')
  })

  test.each([
    [
      { issuer: 'https://a', jwks: { url: 'http://keys.example/jwks' } },
      '/authentication/jwt/providers/0/jwks/url',
    ],
    [{ issuer: 'http://idp.example', jwks: { discovery: true } }, '/authentication/jwt/providers/0/issuer'],
    [{ issuer: 'https://a', jwks: { inline: { keys: [] } } }, '/authentication/jwt/providers/0/jwks/inline'],
    [{ issuer: 'https://a', jwks: { inline: '{"keys":' } }, '/authentication/jwt/providers/0/jwks/inline'],
    [{ issuer: 'https://a', jwks: { pem: 'not a pem' } }, '/authentication/jwt/providers/0/jwks/pem'],
    [
      { issuer: 'https://a', jwks: { inline: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } } },
      '/authentication/jwt/providers/0/jwks/inline',
    ],
    [{ issuer: 'https://a', jwks: { file: 'k.json' } }, '/authentication/jwt/providers/0/jwks/file'],
    [
      {
        issuer: 'https://a',
        jwks: { url: 'https://a/k' },
        claimsToHeaders: [{ claim: 'sub', header: 'Authorization' }],
      },
      '/authentication/jwt/providers/0/claimsToHeaders/0/header',
    ],
    [
      { issuer: 'https://a', jwks: { url: 'https://a/k' }, location: { header: { name: 'bad header' } } },
      '/authentication/jwt/providers/0/location/header/name',
    ],
    [
      { issuer: 'https://a', jwks: { url: 'https://a/k', file: 'x' } },
      '/authentication/jwt/providers/0/jwks',
    ],
  ])('%j', async (provider, path) => {
    const r = await compileJwtAuthentication({ providers: [provider] }, '/authentication/jwt', {
      fetch: undefined,
      resources: undefined,
      now: () => NOW_MS,
    })
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.problems.map((p) => p.path)).toContain(path)
  })

  test('remote keys without a fetch; duplicate names; ttl bounds', async () => {
    const env = { fetch: undefined, resources: undefined, now: () => NOW_MS }
    const noFetch = await compileJwtAuthentication(
      { providers: [{ issuer: 'https://a', jwks: { url: 'https://a/k' } }] },
      '',
      env,
    )
    expect(!noFetch.ok && noFetch.problems[0]?.message).toContain('need a fetch')
    const dup = await compileJwtAuthentication(
      {
        providers: [
          { name: 'x', issuer: 'https://a', jwks: { url: 'https://a/k' } },
          { name: 'x', issuer: 'https://b', jwks: { url: 'https://b/k' } },
        ],
        remote: { minTtlSeconds: 100, maxTtlSeconds: 10 },
      },
      '/j',
      env,
    )
    expect(!dup.ok && dup.problems.map((p) => p.path)).toEqual(['/j/remote', '/j/providers/1/name'])
  })
})
