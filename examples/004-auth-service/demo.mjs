// pnpm demo rows for seed 004: start the Express service on loopback with a throwaway issuer,
// call its routes over HTTP and report what came back.
import { readFile } from 'node:fs/promises'
import { createTestIssuer } from '@verdict/core/testing'
import { parse } from 'yaml'
import { createApp, engineFor } from './server.mjs'

export default async function scenarios() {
  const policy = parse(await readFile(new URL('./policy.yaml', import.meta.url), 'utf8'))
  const provider = policy.authentication.jwt.providers[0]
  const idp = await createTestIssuer({ issuer: provider.issuer, audience: 'reports' })
  provider.jwks = { inline: idp.jwks }
  const engine = await engineFor(policy)
  const server = createApp(engine).listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  const base = `http://127.0.0.1:${server.address().port}`
  const alice = await idp.sign({ sub: 'alice', roles: ['analyst'] })
  const root = await idp.sign({ sub: 'root', roles: ['admin'] })
  const call = async (method, path, token) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    })
    await res.text()
    return `${res.status === 200 ? 'allow' : 'deny'} ${res.status}`
  }
  const rows = [
    ['GET /public/status, anonymous', 'allow 200', await call('GET', '/public/status')],
    ['GET /reports, anonymous', 'deny 403', await call('GET', '/reports')],
    ['GET /reports, alice', 'allow 200', await call('GET', '/reports', alice)],
    ['GET /reports, bad token', 'deny 401', await call('GET', '/reports', 'x.y.z')],
    ['POST /admin/purge, alice', 'deny 403', await call('POST', '/admin/purge', alice)],
    ['POST /admin/purge, admin', 'allow 200', await call('POST', '/admin/purge', root)],
  ]
  server.close()
  engine.close()
  return rows.map(([request, expected, got]) => ({ request, expected, got }))
}
