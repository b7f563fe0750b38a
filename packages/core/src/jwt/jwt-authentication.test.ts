import { createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { CompactEncrypt, exportSPKI } from 'jose'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { RequestContext } from '../context.js'
import type { Decision } from '../decision.js'
import { createEngine } from '../engine.js'
import { PolicyError } from '../errors.js'
import { type Evaluator, ok } from '../evaluator.js'
import {
  b64,
  jwks,
  makeKey,
  sign,
  signRaw,
  startServer,
  type TestKey,
  type TestServer,
  withAlg,
  withBom,
} from './testing/jwt-kit.js'
import { JWT_FAILURE_CODES } from './verify-token.js'

const ISS = 'https://idp.example.com/realms/verdict'
const NOW_MS = 1_700_000_000_000
const NOW = NOW_MS / 1000

/** A rule body naming a test function of the request context. */
const checks: Record<string, (ctx: RequestContext) => unknown> = {
  subIsAlice: (ctx) => ctx.jwt?.sub === 'alice',
}
const js: Evaluator = {
  kind: 'js',
  compile(config) {
    const f = checks[config as string]!
    return { ok: true, program: { evaluate: (ctx) => ok(f(ctx)) } }
  },
}

let rsa: TestKey
let attacker: TestKey
let server: TestServer

beforeAll(async () => {
  rsa = await makeKey('RS256', 'main')
  attacker = await makeKey('RS256', 'evil')
  server = await startServer()
  server.routes.set('/attacker/jwks', { body: jwks(attacker) })
})
afterAll(() => server.close())

const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  iss: ISS,
  sub: 'alice',
  aud: 'api',
  iat: NOW - 10,
  exp: NOW + 3600,
  ...extra,
})

/** A rule allowing every authenticated request, so a policy is not refused for having none. */
const ALLOW_ALL = { id: 'any', action: 'allow', match: { always: true } }

function policy(mode: string, provider: Record<string, unknown> = {}, rules: unknown[] = [ALLOW_ALL]) {
  return {
    authentication: {
      realm: 'verdict-test',
      jwt: {
        mode,
        providers: [{ issuer: ISS, audiences: ['api'], jwks: { inline: jwks(rsa) }, ...provider }],
      },
    },
    rules,
  }
}

async function decide(
  p: Record<string, unknown>,
  headers: Record<string, string | string[]> = {},
  path = '/',
): Promise<Decision> {
  const engine = await createEngine(p, { evaluators: [js], now: () => NOW_MS })
  try {
    return await engine.decide({ method: 'GET', path, headers })
  } finally {
    engine.close()
  }
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` })

type TokenState = [string, () => Promise<string | undefined>, string | undefined]

/** Token states of the case table: name, token maker, failure code (undefined: valid). */
const states: TokenState[] = [
  ['no token', async () => undefined, 'jwt_missing'],
  ['invalid', async () => 'abc.def.ghi', 'jwt_malformed'],
  ['expired', () => sign(rsa, claims({ exp: NOW - 120 })), 'jwt_expired'],
  ['nbf in future', () => sign(rsa, claims({ nbf: NOW + 600 })), 'jwt_not_yet_valid'],
  ['wrong iss', () => sign(rsa, claims({ iss: 'https://other.example.com' })), 'jwt_unknown_issuer'],
  ['wrong aud', () => sign(rsa, claims({ aud: 'billing' })), 'jwt_bad_audience'],
  ['aud array', () => sign(rsa, claims({ aud: ['billing', 'api'] })), undefined],
  ['unknown kid', () => sign(rsa, claims(), { kid: 'rotated-away' }), 'jwt_unknown_key'],
  ['valid', () => sign(rsa, claims()), undefined],
]

describe('modes x token states (protocols.md §5)', () => {
  for (const mode of ['Strict', 'Optional', 'Permissive']) {
    for (const [name, make, code] of states) {
      test(`${mode}: ${name}`, async () => {
        const token = await make()
        const d = await decide(policy(mode), token === undefined ? {} : bearer(token))
        if (code === undefined) {
          // Valid in every mode: claims attached, credential removed.
          expect(d.allowed).toBe(true)
          expect(d.identity).toMatchObject({ kind: 'jwt', subject: 'alice', issuer: ISS })
          expect(d.headersToRemove).toEqual(['authorization'])
          return
        }
        const denies = mode === 'Strict' || (mode === 'Optional' && token !== undefined)
        if (!denies) {
          expect(d.allowed).toBe(true)
          expect(d.identity).toBeUndefined()
          // Permissive leaves an invalid token in place.
          expect(d.headersToRemove).toEqual([])
          return
        }
        expect(d.allowed).toBe(false)
        expect(d.status).toBe(401)
        expect(d.code).toBe('unauthenticated')
        expect(d.reason).toContain(`(${code})`)
        const challenge = d.headers.find((h) => h.key === 'www-authenticate')?.value
        expect(challenge).toBe(
          token === undefined
            ? 'Bearer realm="verdict-test"'
            : 'Bearer realm="verdict-test", error="invalid_token"',
        )
        if (token !== undefined) expect(d.reason).not.toContain(token)
      })
    }
  }
})

describe('specific failure reasons', () => {
  test.each([
    ['expired', claims({ exp: NOW - 61 }), 'expired (jwt_expired)'],
    ['not yet valid', claims({ nbf: NOW + 61 }), 'not yet valid (jwt_not_yet_valid)'],
    ['issued in the future', claims({ iat: NOW + 61 }), 'issued in the future (jwt_issued_in_future)'],
    ['bad audience', claims({ aud: ['x', 'y'] }), 'bad audience (jwt_bad_audience)'],
    ['no audience', claims({ aud: undefined }), 'bad audience (jwt_bad_audience)'],
    ['no exp', claims({ exp: undefined }), 'missing required claim "exp" (jwt_missing_claim)'],
    ['required claim', claims(), 'missing required claim "email" (jwt_missing_claim)'],
  ])('%s', async (_name, c, reason) => {
    const d = await decide(policy('Strict', { requiredClaims: ['email'] }), bearer(await sign(rsa, c)))
    expect(d.reason).toBe(`unauthenticated: ${reason}`)
  })

  test('clock skew is configurable and applies to exp and nbf', async () => {
    const late = await sign(rsa, claims({ exp: NOW - 30 }))
    const early = await sign(rsa, claims({ nbf: NOW + 30 }))
    expect((await decide(policy('Strict'), bearer(late))).allowed).toBe(true)
    expect((await decide(policy('Strict'), bearer(early))).allowed).toBe(true)
    const strict = policy('Strict', { clockSkewSeconds: 0 })
    expect((await decide(strict, bearer(late))).reason).toContain('jwt_expired')
    expect((await decide(strict, bearer(early))).reason).toContain('jwt_not_yet_valid')
  })

  test('without audiences configured, aud is not checked', async () => {
    const d = await decide(
      policy('Strict', { audiences: undefined }),
      bearer(await sign(rsa, claims({ aud: 'any' }))),
    )
    expect(d.allowed).toBe(true)
  })
})

describe('attacks', () => {
  const strict = () => policy('Strict')

  test('alg none', async () => {
    const t = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`
    expect((await decide(strict(), bearer(t))).reason).toContain('jwt_bad_algorithm')
  })

  test('HS256 signed with the RSA public key as the secret', async () => {
    const pem = await exportSPKI(rsa.publicKey)
    for (const secret of [pem, JSON.stringify(rsa.jwk), rsa.jwk.n!]) {
      const input = `${b64({ alg: 'HS256', typ: 'JWT', kid: 'main' })}.${b64(claims())}`
      const t = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
      const d = await decide(strict(), bearer(t))
      expect(d.allowed).toBe(false)
      expect(d.reason).toContain('jwt_bad_algorithm')
    }
  })

  test('a JWE (5 parts) is refused', async () => {
    const jwe = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(claims())))
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM' })
      .encrypt(await makeKey('RSA-OAEP-256').then((k) => k.publicKey))
    expect(jwe.split('.')).toHaveLength(5)
    const d = await decide(strict(), bearer(jwe))
    expect(d.reason).toContain('encrypted tokens (JWE) are not accepted (jwt_malformed)')
  })

  test('crit header', async () => {
    const t = await sign(rsa, claims(), { crit: ['x-verdict'], 'x-verdict': 1 }, { 'x-verdict': true })
    expect((await decide(strict(), bearer(t))).reason).toContain('jwt_crit')
  })

  test('jku, x5u and embedded jwk are never followed', async () => {
    const jku = `${server.url}/attacker/jwks`
    const tokens = [
      await sign(attacker, claims(), { jku }),
      await sign(attacker, claims(), { x5u: `${server.url}/attacker/cert` }),
      await sign(attacker, claims(), { jwk: attacker.jwk }),
      // Same kid as the real key: still verified with the provider's key, so the signature fails.
      await sign(attacker, claims(), { jku, kid: 'main' }),
    ]
    const reasons = []
    for (const t of tokens) reasons.push((await decide(strict(), bearer(t))).reason)
    expect(reasons.slice(0, 3).every((r) => r.includes('jwt_unknown_key'))).toBe(true)
    expect(reasons[3]).toContain('jwt_bad_signature')
    expect(server.hitsOf('/attacker/jwks')).toBe(0)
    expect(server.hitsOf('/attacker/cert')).toBe(0)
  })

  test('oversized token is rejected before parsing', async () => {
    const big = await sign(rsa, claims({ pad: 'x'.repeat(9000) }))
    expect((await decide(strict(), bearer(big))).reason).toContain('token too large (jwt_too_large)')
    // A larger limit, chosen by the policy, accepts it.
    expect((await decide(policy('Strict', { maxTokenBytes: 16384 }), bearer(big))).allowed).toBe(true)
    // Junk of the same size gets the same answer: nothing is decoded.
    expect((await decide(strict(), bearer('a'.repeat(9000)))).reason).toContain('jwt_too_large')
  })

  test.each([
    ['exp 1e400', '{"iss":"ISS","sub":"alice","aud":"api","exp":1e400}', 'invalid claim "exp"'],
    ['exp "2030"', '{"iss":"ISS","sub":"alice","aud":"api","exp":"2030"}', 'invalid claim "exp"'],
    ['fractional exp', '{"iss":"ISS","sub":"alice","aud":"api","exp":1900000000.5}', 'invalid claim "exp"'],
    [
      'nbf NaN-like',
      '{"iss":"ISS","sub":"alice","aud":"api","exp":1900000000,"nbf":"0"}',
      'invalid claim "nbf"',
    ],
    ['non-string sub', '{"iss":"ISS","sub":42,"aud":"api","exp":1900000000}', 'invalid claim "sub"'],
    ['payload not an object', '["ISS"]', 'jwt_malformed'],
  ])('%s', async (_name, payload, reason) => {
    const t = await sign(rsa, payload.replace('ISS', ISS))
    const d = await decide(strict(), bearer(t))
    expect(d.allowed).toBe(false)
    expect(d.reason).toContain(reason)
  })

  test('duplicate Authorization headers', async () => {
    const t = await sign(rsa, claims())
    for (const authorization of [
      [`Bearer ${t}`, `Bearer ${t}`],
      [`Bearer ${t}`, 'Basic dXNlcjpwdw=='],
    ]) {
      const d = await decide(strict(), { authorization })
      expect(d.status).toBe(401)
      expect(d.reason).toContain('jwt_multiple_tokens')
    }
  })

  test('signature by another key under the right kid, and a tampered payload', async () => {
    const forged = await sign(attacker, claims(), { kid: 'main' })
    expect((await decide(strict(), bearer(forged))).reason).toContain('jwt_bad_signature')
    const good = (await sign(rsa, claims())).split('.')
    const tampered = `${good[0]}.${b64(claims({ sub: 'admin' }))}.${good[2]}`
    expect((await decide(strict(), bearer(tampered))).reason).toContain('jwt_bad_signature')
  })

  test('malformed structures', async () => {
    const good = (await sign(rsa, claims())).split('.')
    const cases = [
      'onlyonepart',
      `${good[0]}.${good[1]}`,
      `${good[0]}.${good[1]}.${good[2]}.x`,
      `${good[0]}!.${good[1]}.${good[2]}`,
      `${good[0]}.${good[1]}.sig+nature`,
      `${b64('not json')}.${good[1]}.${good[2]}`,
      `${b64({ alg: 'RS256', kid: 7 })}.${good[1]}.${good[2]}`,
      `${b64({ alg: 'RS256', b64: false, crit: undefined })}.${good[1]}.${good[2]}`,
    ]
    for (const t of cases) {
      const d = await decide(strict(), bearer(t))
      expect(d.allowed, t).toBe(false)
      expect(d.reason, t).toMatch(/jwt_malformed|jwt_bad_algorithm/)
    }
    expect((await decide(strict(), { authorization: 'Bearer ' })).reason).toContain('jwt_malformed')
  })

  test('an algorithm the key does not allow', async () => {
    const ps = await makeKey('PS256', 'main')
    // The JWK says alg RS256, so a PS256 token under the same kid is refused before verification.
    const t = await sign(ps, claims())
    expect((await decide(strict(), bearer(t))).reason).toContain('jwt_bad_algorithm')
  })
})

/** The 401 answer to a presented but refused token: the code, and the challenge. */
function expectRefused(d: Decision, code: string): void {
  expect(d).toMatchObject({ allowed: false, status: 401, code: 'unauthenticated', detailCode: code })
  expect(d.headers).toContainEqual({
    key: 'www-authenticate',
    value: 'Bearer realm="verdict-test", error="invalid_token"',
  })
}

describe('one reading of the header and the claims', () => {
  const header = JSON.stringify({ alg: 'RS256', kid: 'main', typ: 'JWT' })
  const payload = JSON.stringify(claims())
  /** `payload` with `extra` members spliced in after `iss`, as raw JSON text. */
  const spliced = (extra: string) => payload.replace(`"iss":"${ISS}",`, `"iss":"${ISS}",${extra},`)

  test('the hand-built tokens verify when nothing is repeated', async () => {
    const d = await decide(policy('Strict'), bearer(await signRaw(rsa, header, payload)))
    expect(d).toMatchObject({ allowed: true, identity: { subject: 'alice' } })
    // The same name in sibling objects, in arrays, or as a value is no duplicate.
    const siblings = spliced('"o":[{"sub":1},{"sub":2}],"p":{"sub":"sub"},"q":{"x":{"sub":1},"sub":2}')
    expect((await decide(policy('Strict'), bearer(await signRaw(rsa, header, siblings)))).allowed).toBe(true)
  })

  test.each([
    ['a claim twice (JSON.parse keeps the last, others the first)', '"sub":"admin"'],
    ['a claim twice, once escaped', '"\\u0073ub":"admin"'],
    ['a nested member twice', '"realm_access":{"roles":["user"],"roles":["admin"]}'],
    ['a name with an escaped quote twice', '"a\\"b":1,"a\\u0022b":2'],
  ])('%s is refused', async (_name, extra) => {
    // The spliced members come before claims()'s own sub (alice): a first-wins parser reads admin.
    const d = await decide(policy('Strict'), bearer(await signRaw(rsa, header, spliced(extra))))
    expectRefused(d, 'jwt_malformed')
    expect(d.reason).toContain('a member name appears twice in the header or the claims')
  })

  test('a header member twice is refused', async () => {
    for (const h of [
      '{"alg":"RS256","kid":"main","kid":"main"}',
      '{"alg":"RS256","kid":"main","typ":"JWT","\\u0074yp":"at+jwt"}',
    ]) {
      const d = await decide(policy('Strict'), bearer(await signRaw(rsa, h, payload)))
      expectRefused(d, 'jwt_malformed')
      expect(d.reason).toContain('appears twice')
    }
  })

  test('a byte order mark before the header or the claims is refused', async () => {
    for (const t of [
      await signRaw(rsa, withBom(header), payload),
      await signRaw(rsa, header, withBom(payload)),
    ]) {
      const d = await decide(policy('Strict'), bearer(t))
      expectRefused(d, 'jwt_malformed')
      expect(d.reason).toContain('byte order mark')
    }
  })
})

describe('token lifetime and type', () => {
  const limited = (extra: Record<string, unknown> = {}) =>
    policy('Strict', { maxLifetimeSeconds: 3600, ...extra })

  test.each([
    ['exactly the limit', { iat: NOW, exp: NOW + 3600 }, undefined],
    ['issued a while ago, within the limit', { iat: NOW - 3000, exp: NOW + 600 }, undefined],
    [
      'one second over',
      { iat: NOW - 10, exp: NOW + 3591 },
      'token lifetime too long (jwt_lifetime_too_long)',
    ],
    ['a century', { iat: NOW, exp: NOW + 3_155_760_000 }, 'token lifetime too long (jwt_lifetime_too_long)'],
    [
      'long, though mostly over',
      { iat: NOW - 86_400, exp: NOW + 60 },
      'token lifetime too long (jwt_lifetime_too_long)',
    ],
    ['no iat', { iat: undefined, exp: NOW + 60 }, 'missing required claim "iat" (jwt_missing_claim)'],
  ])('maxLifetimeSeconds: %s', async (_name, times, reason) => {
    const d = await decide(limited(), bearer(await sign(rsa, claims(times))))
    if (reason === undefined) expect(d.allowed).toBe(true)
    else {
      expectRefused(d, reason.slice(reason.lastIndexOf('(') + 1, -1))
      expect(d.reason).toBe(`unauthenticated: ${reason}`)
    }
  })

  test('without maxLifetimeSeconds, a century-long token without iat is accepted (the old behaviour)', async () => {
    const t = await sign(rsa, claims({ iat: undefined, exp: NOW + 3_155_760_000 }))
    expect((await decide(policy('Strict'), bearer(t))).allowed).toBe(true)
  })

  test.each([
    ['at+jwt', 'at+jwt', true],
    ['case-insensitive', 'AT+JWT', true],
    ['with the application/ prefix', 'application/at+jwt', true],
    ['prefix in another case', 'Application/At+Jwt', true],
    ['an ID token', 'JWT', false],
    ['no typ', undefined, false],
    ['a typ that only ends like one', 'application/x/at+jwt', false],
    ['a typ that is not a string', ['at+jwt'], false],
  ])('tokenTypes [at+jwt]: %s', async (_name, typ, accepted) => {
    const d = await decide(
      policy('Strict', { tokenTypes: ['at+jwt'] }),
      bearer(await sign(rsa, claims(), { typ })),
    )
    if (accepted) expect(d.allowed).toBe(true)
    else {
      expectRefused(d, 'jwt_bad_type')
      expect(d.reason).toBe('unauthenticated: token type (typ) not accepted (jwt_bad_type)')
    }
  })

  test('tokenTypes in the policy are normalized the same way', async () => {
    const p = policy('Strict', { tokenTypes: ['application/AT+JWT', 'secevent+jwt'] })
    expect((await decide(p, bearer(await sign(rsa, claims(), { typ: 'at+jwt' })))).allowed).toBe(true)
    expect((await decide(p, bearer(await sign(rsa, claims(), { typ: 'JWT' })))).detailCode).toBe(
      'jwt_bad_type',
    )
    // Without tokenTypes, typ is not looked at.
    expect((await decide(policy('Strict'), bearer(await sign(rsa, claims(), { typ: 'x' })))).allowed).toBe(
      true,
    )
  })

  test.each([
    [{ maxLifetimeSeconds: 0 }, '/maxLifetimeSeconds'],
    [{ maxLifetimeSeconds: 1.5 }, '/maxLifetimeSeconds'],
    [{ tokenTypes: [] }, '/tokenTypes'],
    [{ tokenTypes: ['at jwt'] }, '/tokenTypes/0'],
  ])('%j is a load problem', async (extra, path) => {
    const err = await createEngine(policy('Strict', extra)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PolicyError)
    expect((err as PolicyError).problems.map((p) => p.path)).toContain(
      `/authentication/jwt/providers/0${path}`,
    )
  })
})

describe('failure codes', () => {
  test('every code is documented in docs/jwt.md', () => {
    const doc = readFileSync(new URL('../../../../docs/jwt.md', import.meta.url), 'utf8')
    for (const code of JWT_FAILURE_CODES) expect(doc, code).toContain(`| \`${code}\` |`)
  })
})

describe('seed 003 flow', () => {
  const seed = () =>
    policy('Strict', { audiences: undefined }, [{ id: 'alice-only', action: 'allow', js: 'subIsAlice' }])

  test('no token: 401 with a challenge', async () => {
    const d = await decide(seed(), {})
    expect(d.status).toBe(401)
    expect(d.headers).toContainEqual({ key: 'www-authenticate', value: 'Bearer realm="verdict-test"' })
    expect(d.reason).toBe('unauthenticated: no token (jwt_missing)')
  })

  test('sub alice: allowed; sub bob: denied by the rule', async () => {
    const alice = await decide(seed(), bearer(await sign(rsa, claims())))
    expect(alice).toMatchObject({ allowed: true, rule: 'alice-only' })
    const bob = await decide(seed(), bearer(await sign(rsa, claims({ sub: 'bob' }))))
    expect(bob).toMatchObject({ allowed: false, status: 403, code: 'no_match' })
    expect(bob.identity?.subject).toBe('bob')
  })
})

describe('claims for policies', () => {
  test('jwt and the decision identity carry the verified claims', async () => {
    const seen: Record<string, unknown> = {}
    const capture: Evaluator = {
      kind: 'capture',
      compile: () => ({
        ok: true,
        program: {
          evaluate(ctx) {
            seen.jwt = ctx.jwt
            return ok(true)
          },
        },
      }),
    }
    const engine = await createEngine(policy('Strict', {}, [{ id: 'c', action: 'allow', capture: {} }]), {
      evaluators: [capture],
      now: () => NOW_MS,
    })
    const c = claims({ email: 'alice@company.com', roles: ['admin'] })
    const d = await engine.decide({ path: '/', headers: bearer(await sign(rsa, c)) })
    engine.close()
    expect(d.allowed).toBe(true)
    expect(seen.jwt).toEqual(c)
    expect(d.identity).toEqual({ kind: 'jwt', subject: 'alice', issuer: ISS, provider: ISS, claims: c })
    // Claims are frozen: a rule cannot change what the next decision (a cache hit) sees.
    expect(Object.isFrozen(seen.jwt)).toBe(true)
    expect(Object.isFrozen((seen.jwt as { roles: unknown }).roles)).toBe(true)
  })
})

describe('token location and upstream changes', () => {
  test('scheme is case-insensitive; other schemes are no token', async () => {
    const t = await sign(rsa, claims())
    expect((await decide(policy('Strict'), { authorization: `bEaReR ${t}` })).allowed).toBe(true)
    expect((await decide(policy('Strict'), { authorization: `Bearer\t${t}` })).allowed).toBe(true)
    expect((await decide(policy('Strict'), { authorization: `Bearer${t}` })).reason).toContain('jwt_missing')
    expect((await decide(policy('Optional'), { authorization: 'Basic dXNlcjpwdw==' })).allowed).toBe(true)
  })

  test('named header with a prefix', async () => {
    const t = await sign(rsa, claims())
    const p = policy('Strict', { location: { header: { name: 'X-Api-Token', prefix: 'JWT ' } } })
    const d = await decide(p, { 'x-api-token': `jwt ${t}` })
    expect(d.allowed).toBe(true)
    expect(d.headersToRemove).toEqual(['x-api-token'])
    // The default location is not searched for this provider.
    expect((await decide(p, bearer(t))).reason).toContain('jwt_missing')
    const bare = policy('Strict', { location: { header: { name: 'x-token' } } })
    expect((await decide(bare, { 'x-token': t })).allowed).toBe(true)
    expect((await decide(bare, { 'x-token': [t, t] })).reason).toContain('jwt_multiple_tokens')
  })

  test('query parameter', async () => {
    const t = await sign(rsa, claims())
    const p = policy('Strict', { location: { query: 'access_token' } })
    const d = await decide(p, {}, `/x?access_token=${t}&a=1`)
    expect(d.allowed).toBe(true)
    expect(d.queryParametersToRemove).toEqual(['access_token'])
    expect(d.headersToRemove).toEqual([])
    const two = await decide(p, {}, `/x?access_token=${t}&access_token=${t}`)
    expect(two.reason).toContain('jwt_multiple_tokens')
  })

  test('cookie: removed from the Cookie header, other cookies kept', async () => {
    const t = await sign(rsa, claims())
    const p = policy('Strict', { location: { cookie: 'session' } })
    const d = await decide(p, { cookie: `theme=dark; session=${t}; lang=en` })
    expect(d.allowed).toBe(true)
    expect(d.headers).toContainEqual({ key: 'cookie', value: 'theme=dark; lang=en', append: 'overwrite' })
    const only = await decide(p, { cookie: `session=${t}` })
    expect(only.headersToRemove).toEqual(['cookie'])
    const two = await decide(p, { cookie: [`session=${t}`, `session=${t}`] })
    expect(two.reason).toContain('jwt_multiple_tokens')
  })

  test('forwardToken keeps the credential; claimsToHeaders copies sanitized claims', async () => {
    const p = policy('Strict', {
      forwardToken: true,
      claimsToHeaders: [
        { claim: 'sub', header: 'X-User' },
        { claim: 'roles', header: 'x-roles' },
        { claim: 'realm_access.roles', header: 'x-realm-roles' },
        { claim: 'tenant', header: 'x-tenant' },
        { claim: 'org', header: 'x-org' },
      ],
    })
    const t = await sign(
      rsa,
      claims({
        sub: 'alice\r\nx-admin: true',
        roles: ['a', 'b'],
        org: { id: 7 },
        realm_access: { roles: ['r'] },
      }),
    )
    const d = await decide(p, { ...bearer(t), 'x-tenant': 'forged' })
    expect(d.allowed).toBe(true)
    expect(d.headers).toEqual([
      { key: 'x-user', value: 'alicex-admin: true', append: 'overwrite' },
      { key: 'x-roles', value: 'a,b', append: 'overwrite' },
      { key: 'x-realm-roles', value: 'r', append: 'overwrite' },
      { key: 'x-org', value: '{"id":7}', append: 'overwrite' },
    ])
    // The token stays; the header of an absent claim is stripped so a client cannot supply it.
    expect(d.headersToRemove).toEqual(['x-tenant'])
  })

  test("a token of one provider strips the other providers' claim headers", async () => {
    const es = await makeKey('ES256', 'es')
    const p = {
      rules: [ALLOW_ALL],
      authentication: {
        jwt: {
          providers: [
            {
              issuer: ISS,
              jwks: { inline: jwks(rsa) },
              claimsToHeaders: [{ claim: 'sub', header: 'x-user' }],
            },
            {
              issuer: 'https://partner.example',
              jwks: { inline: jwks(es) },
              claimsToHeaders: [
                { claim: 'role', header: 'X-Role' },
                { claim: 'sub', header: 'x-user' },
              ],
            },
          ],
        },
      },
    }
    const t = await sign(rsa, claims())
    const engine = await createEngine(p, { now: () => NOW_MS })
    try {
      // Twice: verified, then from the token cache.
      for (let i = 0; i < 2; i++) {
        const d = await engine.decide({
          method: 'GET',
          path: '/',
          headers: { ...bearer(t), 'x-role': 'admin' },
        })
        expect(d.allowed).toBe(true)
        expect(d.headers).toEqual([{ key: 'x-user', value: 'alice', append: 'overwrite' }])
        expect(d.headersToRemove).toEqual(['authorization', 'x-role'])
      }
    } finally {
      engine.close()
    }
  })

  test('several providers: chosen by iss, each in its own location', async () => {
    const es = await makeKey('ES256', 'es')
    const p = {
      rules: [ALLOW_ALL],
      authentication: {
        jwt: {
          providers: [
            { name: 'main', issuer: ISS, jwks: { inline: jwks(rsa) } },
            {
              name: 'partner',
              issuer: 'https://partner.example',
              jwks: { inline: jwks(es) },
              location: { query: 't' },
            },
          ],
        },
      },
    }
    const partner = await sign(es, claims({ iss: 'https://partner.example' }))
    const a = await decide(p, {}, `/?t=${partner}`)
    expect(a.identity).toMatchObject({ provider: 'partner', issuer: 'https://partner.example' })
    const b = await decide(p, bearer(await sign(rsa, claims())))
    expect(b.identity?.provider).toBe('main')
    // The partner's token in the main provider's location is refused.
    expect((await decide(p, bearer(partner))).reason).toContain('jwt_wrong_location')
    // A token in each location is more than one token.
    expect((await decide(p, bearer(partner), `/?t=${partner}`)).reason).toContain('jwt_multiple_tokens')
    // A token signed by the main key but claiming the partner issuer fails its signature.
    const cross = await sign(rsa, claims({ iss: 'https://partner.example' }), { kid: undefined })
    expect((await decide(p, {}, `/?t=${cross}`)).reason).toContain('jwt_bad_algorithm')
  })
})

describe('algorithms and key sources', () => {
  for (const alg of ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA']) {
    test(`${alg} verifies`, async () => {
      const k = await makeKey(alg)
      const d = await decide(policy('Strict', { jwks: { inline: jwks(k) } }), bearer(await sign(k, claims())))
      expect(d.allowed).toBe(true)
      const other = await makeKey(alg, k.kid)
      const forged = await decide(
        policy('Strict', { jwks: { inline: jwks(k) } }),
        bearer(await sign(other, claims())),
      )
      expect(forged.reason).toContain('jwt_bad_signature')
    })
  }

  test('an RSA key without alg verifies RS256 and PS256 unless the policy narrows algorithms', async () => {
    const rs = await makeKey('RS256', 'k')
    const ps = await withAlg(rs, 'PS256')
    const noAlg = { keys: [{ ...rs.jwk, alg: undefined }] }
    expect(
      (await decide(policy('Strict', { jwks: { inline: noAlg } }), bearer(await sign(ps, claims())))).allowed,
    ).toBe(true)
    const narrowed = policy('Strict', { jwks: { inline: noAlg }, algorithms: ['RS256'] })
    expect((await decide(narrowed, bearer(await sign(ps, claims())))).reason).toContain('jwt_bad_algorithm')
    expect((await decide(narrowed, bearer(await sign(rs, claims())))).allowed).toBe(true)
  })

  test('PEM public key and inline JWKS text; tokens with or without kid', async () => {
    const pem = await exportSPKI(rsa.publicKey)
    for (const source of [{ pem }, { inline: pem }, { inline: JSON.stringify(jwks(rsa)) }]) {
      const p = policy('Strict', { jwks: source })
      expect((await decide(p, bearer(await sign(rsa, claims())))).allowed).toBe(true)
      expect((await decide(p, bearer(await sign(rsa, claims(), { kid: undefined })))).allowed).toBe(true)
    }
  })

  test('no kid: every key allowing the algorithm is tried', async () => {
    const second = await makeKey('RS256', 'second')
    const p = policy('Strict', { jwks: { inline: jwks(rsa, second) } })
    expect((await decide(p, bearer(await sign(second, claims(), { kid: undefined })))).allowed).toBe(true)
    expect((await decide(p, bearer(await sign(attacker, claims(), { kid: undefined })))).reason).toContain(
      'jwt_bad_signature',
    )
  })

  test('JWKS file through the resource loader', async () => {
    const files: Record<string, string> = {
      'keys.json': JSON.stringify(jwks(rsa)),
      'key.pem': await exportSPKI(rsa.publicKey),
    }
    const resources = {
      read: async (f: string) => {
        if (files[f] === undefined) throw new Error('no such file')
        return new TextEncoder().encode(files[f])
      },
    }
    for (const file of ['keys.json', 'key.pem']) {
      const engine = await createEngine(policy('Strict', { jwks: { file } }), {
        resources,
        now: () => NOW_MS,
      })
      expect((await engine.decide({ path: '/', headers: bearer(await sign(rsa, claims())) })).allowed).toBe(
        true,
      )
      engine.close()
    }
    const err = await createEngine(policy('Strict', { jwks: { file: 'missing.json' } }), { resources }).catch(
      (e) => e,
    )
    expect(err).toBeInstanceOf(PolicyError)
    expect(err.problems[0]).toMatchObject({
      code: 'jwt_config',
      path: '/authentication/jwt/providers/0/jwks/file',
    })
  })
})
