import { readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { createTestIssuer } from '@verdict/core/testing'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { parse } from 'yaml'
// @ts-expect-error: the example is plain JavaScript
import { createApp, engineFor } from './server.mjs'

let base = ''
let close: () => void = () => {}
let sign: (claims: Record<string, unknown>) => Promise<string>

beforeAll(async () => {
  const policy = parse(await readFile(new URL('./policy.yaml', import.meta.url), 'utf8'))
  const provider = policy.authentication.jwt.providers[0]
  const idp = await createTestIssuer({ issuer: provider.issuer, audience: 'reports' })
  provider.jwks = { inline: idp.jwks }
  sign = (c) => idp.sign(c)
  const engine = await engineFor(policy)
  const server = createApp(engine).listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  close = () => {
    server.close()
    engine.close()
  }
})
afterAll(() => close())

test('the handler sees the caller from the token and never the token itself', async () => {
  const token = await sign({ sub: 'alice' })
  const res = await fetch(`${base}/reports`, {
    headers: { authorization: `Bearer ${token}`, 'x-user': 'spoofed' },
  })
  expect(res.status).toBe(200)
  expect(await res.json()).toEqual({ reports: ['q3.pdf'], user: 'alice' })
})

test('denials carry the policy body and a 401 carries the challenge', async () => {
  const anon = await fetch(`${base}/reports`)
  expect(anon.status).toBe(403)
  expect(await anon.json()).toEqual({ error: 'forbidden' })
  const bad = await fetch(`${base}/reports`, { headers: { authorization: 'Bearer x.y.z' } })
  expect(bad.status).toBe(401)
  expect(bad.headers.get('www-authenticate')).toMatch(/^Bearer realm=".*", error="invalid_token"$/)
})

test('only admins reach /admin', async () => {
  const analyst = await sign({ sub: 'a', roles: ['analyst'] })
  const admin = await sign({ sub: 'root', roles: ['admin'] })
  expect(
    (await fetch(`${base}/admin/purge`, { method: 'POST', headers: { authorization: `Bearer ${analyst}` } }))
      .status,
  ).toBe(403)
  const ok = await fetch(`${base}/admin/purge`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}` },
  })
  expect(await ok.json()).toEqual({ purged: true, by: 'root' })
})
