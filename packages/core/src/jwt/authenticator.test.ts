import { beforeAll, describe, expect, test } from 'vitest'
import type { Authenticator, AuthOutcome } from '../auth.js'
import { DecisionContext } from '../context.js'
import { isDecision, normalizeInput, resolveInputOptions } from '../input/index.js'
import { compileJwtAuthentication, type JwtAuthenticator } from './index.js'
import { jwks, makeKey, sign, type TestKey } from './testing/jwt-kit.js'

const ISS = 'https://idp.example'
const NOW_MS = 1_700_000_000_000
const NOW = NOW_MS / 1000

let key: TestKey

beforeAll(async () => {
  key = await makeKey('ES256', 'k')
})

async function authenticator(extra: Record<string, unknown> = {}): Promise<JwtAuthenticator> {
  const r = await compileJwtAuthentication(
    {
      providers: [
        { issuer: ISS, jwks: { inline: jwks(key) } },
        { issuer: 'https://partner', jwks: { inline: jwks(key) }, location: { query: 't' } },
      ],
      ...extra,
    },
    '/authentication/jwt',
    { fetch: undefined, resources: undefined, now: () => NOW_MS },
  )
  if (!r.ok) throw new Error(JSON.stringify(r.problems))
  return r.authenticator as JwtAuthenticator
}

function ctx(raw: Record<string, unknown>, now = NOW_MS): DecisionContext {
  const input = normalizeInput({ path: '/', ...raw }, resolveInputOptions(undefined))
  if (isDecision(input)) throw new Error(input.reason)
  return new DecisionContext(input, now, 64)
}

const withToken = (t: string) => ({ headers: { authorization: `Bearer ${t}` } })
const isPromise = (v: unknown): v is Promise<AuthOutcome> => v instanceof Promise

async function settle(a: Authenticator, c: DecisionContext): Promise<AuthOutcome> {
  return a.authenticate(c)
}

describe('verified-token cache', () => {
  test('a hit is synchronous and returns the same outcome', async () => {
    const a = await authenticator()
    const t = await sign(key, { iss: ISS, sub: 'alice', exp: NOW + 60 })
    const first = a.authenticate(ctx(withToken(t)))
    expect(isPromise(first)).toBe(true)
    const o = await first
    expect(o.kind).toBe('authenticated')
    const hit = a.authenticate(ctx(withToken(t)))
    expect(isPromise(hit)).toBe(false)
    expect(hit).toBe(o)
    expect(a.cacheSize).toBe(1)
  })

  test('entries expire at exp (plus skew)', async () => {
    const a = await authenticator()
    const t = await sign(key, { iss: ISS, sub: 'alice', exp: NOW + 60 })
    await settle(a, ctx(withToken(t)))
    expect(isPromise(a.authenticate(ctx(withToken(t), (NOW + 119) * 1000)))).toBe(false)
    const late = await settle(a, ctx(withToken(t), (NOW + 120) * 1000))
    expect(late).toMatchObject({ kind: 'failed', code: 'jwt_expired' })
    expect(a.cacheSize).toBe(0)
  })

  test('a hit before the cached not-before is not served', async () => {
    const a = await authenticator()
    const t = await sign(key, { iss: ISS, exp: NOW + 600, nbf: NOW })
    await settle(a, ctx(withToken(t)))
    // A clock that went backwards: the entry is kept but the token is verified again (and fails).
    expect(await settle(a, ctx(withToken(t), (NOW - 120) * 1000))).toMatchObject({
      code: 'jwt_not_yet_valid',
    })
  })

  test('bounded: the least recently used entry leaves first', async () => {
    const a = await authenticator({ cache: { maxEntries: 2 } })
    const [t1, t2, t3] = await Promise.all(
      [1, 2, 3].map((i) => sign(key, { iss: ISS, sub: `u${i}`, exp: NOW + 60 })),
    )
    await settle(a, ctx(withToken(t1!)))
    await settle(a, ctx(withToken(t2!)))
    a.authenticate(ctx(withToken(t1!))) // t1 is now the most recent
    await settle(a, ctx(withToken(t3!)))
    expect(a.cacheSize).toBe(2)
    expect(isPromise(a.authenticate(ctx(withToken(t1!))))).toBe(false)
    expect(isPromise(a.authenticate(ctx(withToken(t2!))))).toBe(true)
  })

  test('maxEntries 0 disables the cache', async () => {
    const a = await authenticator({ cache: { maxEntries: 0 } })
    const t = await sign(key, { iss: ISS, exp: NOW + 60 })
    await settle(a, ctx(withToken(t)))
    expect(isPromise(a.authenticate(ctx(withToken(t))))).toBe(true)
  })

  test('a cached token presented in another location is checked again', async () => {
    const a = await authenticator()
    const t = await sign(key, { iss: ISS, exp: NOW + 60 })
    await settle(a, ctx(withToken(t)))
    expect(await settle(a, ctx({ path: `/?t=${t}` }))).toMatchObject({ code: 'jwt_wrong_location' })
  })

  test('cookie removal is computed per request, also on a hit', async () => {
    const c = await compileJwtAuthentication(
      { providers: [{ issuer: ISS, jwks: { inline: jwks(key) }, location: { cookie: 's' } }] },
      '',
      { fetch: undefined, resources: undefined, now: () => NOW_MS },
    )
    if (!c.ok) throw new Error('compile failed')
    const t = await sign(key, { iss: ISS, exp: NOW + 60 })
    const one = await settle(c.authenticator, ctx({ headers: { cookie: `s=${t}; a=1` } }))
    const two = c.authenticator.authenticate(ctx({ headers: { cookie: `b=2; s=${t}` } }))
    expect(isPromise(two)).toBe(false)
    expect(one).toMatchObject({ headers: [{ key: 'cookie', value: 'a=1' }] })
    expect(two).toMatchObject({ headers: [{ key: 'cookie', value: 'b=2' }] })
  })

  test('dispose empties the cache', async () => {
    const a = await authenticator()
    await settle(a, ctx(withToken(await sign(key, { iss: ISS, exp: NOW + 60 }))))
    a.dispose()
    expect(a.cacheSize).toBe(0)
  })
})

describe('modes without the engine', () => {
  test('Permissive turns failures into ignored; Optional passes a missing token', async () => {
    const p = await authenticator({ mode: 'Permissive' })
    expect(await settle(p, ctx(withToken('x.y.z')))).toEqual({
      kind: 'ignored',
      reason: 'malformed token (jwt_malformed)',
    })
    const o = await authenticator({ mode: 'Optional' })
    expect(await settle(o, ctx({}))).toEqual({ kind: 'anonymous' })
    expect(await settle(o, ctx(withToken('x.y.z')))).toMatchObject({ kind: 'failed', tokenPresent: true })
  })
})
