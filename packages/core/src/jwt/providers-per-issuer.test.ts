/**
 * Several providers per issuer and `requireKid` (issue 17): what agentgateway's JWT authentication
 * does with one issuer configured twice, and with tokens and keys that carry no `kid`.
 */
import { beforeAll, describe, expect, test } from 'vitest'
import { createEngine } from '../engine.js'
import { PolicyError } from '../errors.js'
import { jwks, makeKey, sign, type TestKey } from './testing/jwt-kit.js'

const ISS = 'https://idp.example.com'
const NOW_MS = 1_700_000_000_000
const NOW = NOW_MS / 1000

let a: TestKey
let b: TestKey

beforeAll(async () => {
  a = await makeKey('ES256', 'a')
  b = await makeKey('ES256', 'b')
})

const bearer = (t: string) => ({ method: 'GET', path: '/', headers: { authorization: `Bearer ${t}` } })

async function engineFor(jwt: Record<string, unknown>) {
  return createEngine({ authentication: { jwt }, default: 'allow' }, { now: () => NOW_MS })
}

describe('several providers with one issuer', () => {
  test('two key sets: a token signed by either key verifies, named after its provider', async () => {
    const e = await engineFor({
      mode: 'Strict',
      providers: [
        { issuer: ISS, jwks: { inline: jwks(a) } },
        { issuer: ISS, jwks: { inline: jwks(b) } },
      ],
    })
    const ta = await sign(a, { iss: ISS, sub: 'alice', exp: NOW + 60 })
    const tb = await sign(b, { iss: ISS, sub: 'bob', exp: NOW + 60 })
    const da = await e.decide(bearer(ta))
    const db = await e.decide(bearer(tb))
    expect(da).toMatchObject({ allowed: true, identity: { subject: 'alice', provider: `${ISS}#0` } })
    expect(db).toMatchObject({ allowed: true, identity: { subject: 'bob', provider: `${ISS}#1` } })
  })

  test('two audiences: each provider checks its own; a token for neither is 401 bad audience', async () => {
    const e = await engineFor({
      mode: 'Strict',
      providers: [
        { name: 'web', issuer: ISS, audiences: ['web'], jwks: { inline: jwks(a) } },
        { name: 'api', issuer: ISS, audiences: ['api'], jwks: { inline: jwks(a) } },
      ],
    })
    const api = await sign(a, { iss: ISS, sub: 's', aud: 'api', exp: NOW + 60 })
    expect(await e.decide(bearer(api))).toMatchObject({ allowed: true, identity: { provider: 'api' } })
    const other = await sign(a, { iss: ISS, sub: 's', aud: 'other', exp: NOW + 60 })
    expect(await e.decide(bearer(other))).toMatchObject({
      allowed: false,
      status: 401,
      detailCode: 'jwt_bad_audience',
    })
  })

  test('a provider without the token key is skipped; a key no provider has is unknown', async () => {
    const c = await makeKey('ES256', 'c')
    const e = await engineFor({
      mode: 'Strict',
      providers: [
        { issuer: ISS, audiences: ['x'], jwks: { inline: jwks(a) } },
        { issuer: ISS, jwks: { inline: jwks(b) } },
      ],
    })
    // Signed by b, audience not x: the first provider has no key b, so its failure is not reported.
    const expired = await sign(b, { iss: ISS, sub: 's', exp: NOW - 3600 })
    expect(await e.decide(bearer(expired))).toMatchObject({ status: 401, detailCode: 'jwt_expired' })
    const unknown = await sign(c, { iss: ISS, sub: 's', exp: NOW + 60 })
    expect(await e.decide(bearer(unknown))).toMatchObject({ status: 401, detailCode: 'jwt_unknown_key' })
  })

  test('explicit names must still be unique', async () => {
    const p = engineFor({
      providers: [
        { name: 'x', issuer: ISS, jwks: { inline: jwks(a) } },
        { name: 'x', issuer: ISS, jwks: { inline: jwks(b) } },
      ],
    })
    await expect(p).rejects.toThrow(PolicyError)
    await expect(p).rejects.toThrow(/provider name "x" is used twice/)
  })
})

describe('requireKid', () => {
  test('off (the default): a token without kid verifies against the keys allowing its alg', async () => {
    const e = await engineFor({ mode: 'Strict', providers: [{ issuer: ISS, jwks: { inline: jwks(a) } }] })
    const t = await sign(a, { iss: ISS, sub: 's', exp: NOW + 60 }, { kid: undefined })
    expect((await e.decide(bearer(t))).allowed).toBe(true)
  })

  test('on: a token without kid is 401 jwt_missing_kid, as agentgateway refuses it', async () => {
    const e = await engineFor({
      mode: 'Strict',
      providers: [{ issuer: ISS, requireKid: true, jwks: { inline: jwks(a) } }],
    })
    const none = await sign(a, { iss: ISS, sub: 's', exp: NOW + 60 }, { kid: undefined })
    const d = await e.decide(bearer(none))
    expect(d).toMatchObject({ allowed: false, status: 401, detailCode: 'jwt_missing_kid' })
    expect(d.headers.find((h) => h.key === 'www-authenticate')?.value).toContain('invalid_token')
    const named = await sign(a, { iss: ISS, sub: 's', exp: NOW + 60 })
    expect((await e.decide(bearer(named))).allowed).toBe(true)
  })

  test('on: a key without kid is a load problem, as in agentgateway', async () => {
    const bare = { keys: [{ ...a.jwk, kid: undefined }] }
    const p = engineFor({ providers: [{ issuer: ISS, requireKid: true, jwks: { inline: bare } }] })
    await expect(p).rejects.toThrow(/key 0 has no "kid", which requireKid needs/)
  })
})
