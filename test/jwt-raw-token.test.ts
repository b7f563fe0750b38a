/**
 * CEL `jwt.rawToken` is the token the provider verified, wherever the policy says it is found
 * (agentgateway's variable), not only an `Authorization: Bearer` header.
 */
import { createCelEvaluator } from '@verdict/cel-adapter'
import { createEngine } from '@verdict/core'
import { describe, expect, it } from 'vitest'
import { jwks, makeKey, sign } from '../packages/core/src/jwt/testing/jwt-kit.js'

describe('jwt.rawToken', () => {
  it('is the verified token from the query or the header, and absent without one', async () => {
    const key = await makeKey('ES256')
    const now = Math.floor(Date.now() / 1000)
    const token = await sign(key, { iss: 'https://issuer.test', sub: 'alice', exp: now + 600, iat: now })
    const policy = (location: string) => `
authentication:
  jwt:
    mode: Optional
    providers:
      - issuer: https://issuer.test
        location: ${location}
        jwks: { inline: ${JSON.stringify(JSON.stringify(jwks(key)))} }
rules:
  - id: raw
    action: allow
    cel: 'jwt != null && jwt.rawToken.endsWith("${token.slice(-12)}") && size(jwt.rawToken) == ${token.length}'
`
    const byQuery = await createEngine(policy('{ query: access_token }'), {
      evaluators: [createCelEvaluator()],
    })
    const d = await byQuery.decide({ method: 'GET', path: `/x?access_token=${token}` })
    expect(d.allowed, d.reason).toBe(true)
    const byHeader = await createEngine(policy('{ header: { name: x-token } }'), {
      evaluators: [createCelEvaluator()],
    })
    const h = await byHeader.decide({ method: 'GET', path: '/x', headers: { 'x-token': token } })
    expect(h.allowed, h.reason).toBe(true)
    const none = await byQuery.decide({ method: 'GET', path: '/x' })
    expect(none.allowed).toBe(false)
  })
})
