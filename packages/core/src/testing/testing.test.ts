import { createLocalJWKSet, jwtVerify } from 'jose'
import { describe, expect, test } from 'vitest'
import { createEngine } from '../engine.js'
import { checkRequest, createTestIssuer, httpRequest, mcpRequest, verdictMatchers } from './index.js'

expect.extend(verdictMatchers)

const policy = {
  mcp: { denial: 'jsonrpc' },
  rules: [
    { id: 'hdr', action: 'allow', match: { headers: [{ name: 'x-ext-authz', exact: 'allow' }] } },
    { id: 'agent', action: 'allow', match: { principals: [{ suffix: '/sa/agent-a' }] } },
  ],
}

describe('request builders', () => {
  test('checkRequest, httpRequest and mcpRequest decide as expected', async () => {
    const engine = await createEngine(policy)
    expect(await engine.decide(checkRequest({ headers: { 'X-Ext-Authz': 'allow' } }))).toAllow({
      rule: 'hdr',
    })
    expect(await engine.decide(httpRequest({ path: '/x' }))).toDeny({
      status: 403,
      code: 'no_match',
      body: 'access denied',
    })
    expect(
      await engine.decide(httpRequest({ principal: 'spiffe://td/ns/n/sa/agent-a', body: { a: 1 } })),
    ).toAllow()
    const mcp = await engine.decide(
      mcpRequest({ tool: 'echo', arguments: { message: 'hi' }, id: 'abc', metadata: true }),
    )
    expect(mcp).toDeny({ status: 200, body: /"id":"abc".*"code":403/ })
    const withToken = checkRequest({ body: { a: 1 }, token: 't' }) as any
    expect(withToken.attributes.request.http.headers).toMatchObject({
      authorization: 'Bearer t',
      'content-type': 'application/json',
    })
  })

  test('notifications have no id', () => {
    const r = mcpRequest({ method: 'notifications/initialized', id: null }) as any
    expect(JSON.parse(r.attributes.request.http.body)).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/initialized',
    })
  })
})

describe('matchers', () => {
  test('messages explain a mismatch', () => {
    const deny = {
      allowed: false,
      status: 403,
      code: 'denied',
      rule: 'd',
      reason: 'denied by rule d',
      headers: [],
      headersToRemove: [],
      responseHeadersToAdd: [],
      queryParametersToSet: [],
      queryParametersToRemove: [],
      dynamicMetadata: {},
      body: 'x',
    }
    expect(() => expect(deny).toAllow()).toThrow(/expected an allow, got deny 403 \(denied, rule d\)/)
    expect(() =>
      expect(deny).toDeny({ status: 401, rule: 'e', body: 'y', code: 'no_match', reason: /nope/ }),
    ).toThrow(
      /status 403 is not 401; code denied is not no_match; rule d is not e; body "x" does not match; reason does not match/,
    )
    expect(() => expect({ nope: true }).toDeny()).toThrow(/expected a verdict Decision/)
    expect(() => expect(deny).not.toDeny()).toThrow(/expected no such deny/)
    expect(deny).not.toAllow()
  })
})

describe('test issuer', () => {
  test('signs verifiable tokens with defaults and overrides', async () => {
    const idp = await createTestIssuer({ alg: 'RS256', audience: 'api' })
    const token = await idp.sign({ sub: 'alice', exp: undefined })
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(idp.jwks), {
      issuer: idp.issuer,
      audience: 'api',
    })
    expect(payload).toMatchObject({ sub: 'alice', iss: 'https://issuer.test', aud: 'api' })
    expect(payload.exp).toBeUndefined()
    expect(protectedHeader).toMatchObject({ alg: 'RS256', kid: 'test-rs256' })
  })
})
