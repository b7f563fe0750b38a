// A small Keycloak-like OIDC issuer for the example, on 127.0.0.1: it mints an RS256 key, serves
// the discovery document and the JWKS, and issues access tokens for one test user through the
// password grant. Nothing here is for production.
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'

export const REALM_PATH = '/realms/verdict'
export const TEST_USER = {
  username: 'testuser',
  password: 'testpass',
  sub: 'f3b6c0de-0001-4c1a-9d1e-000000000001',
}

/** Start the issuer; `port` 0 picks a free one. Returns its URL, a token minting helper and close(). */
export async function startIssuer({ port = 0, audience = 'llm-gateway' } = {}) {
  const { publicKey, privateKey } = await generateKeyPair('RS256')
  const kid = `rs256-${randomUUID().slice(0, 8)}`
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }] }
  let issuer = ''
  const fetches = { discovery: 0, jwks: 0 }

  const mint = (claims = {}) =>
    new SignJWT({
      sub: TEST_USER.sub,
      preferred_username: TEST_USER.username,
      aud: audience,
      azp: 'verdict-demo',
      ...claims,
    })
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
      .setIssuer(issuer)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey)

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const json = (status, body, headers = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers })
      res.end(JSON.stringify(body))
    }
    if (req.method === 'GET' && url.pathname === `${REALM_PATH}/.well-known/openid-configuration`) {
      fetches.discovery++
      return json(200, {
        issuer,
        jwks_uri: `${issuer}/protocol/openid-connect/certs`,
        token_endpoint: `${issuer}/protocol/openid-connect/token`,
        id_token_signing_alg_values_supported: ['RS256'],
      })
    }
    if (req.method === 'GET' && url.pathname === `${REALM_PATH}/protocol/openid-connect/certs`) {
      fetches.jwks++
      return json(200, jwks, { 'cache-control': 'max-age=300' })
    }
    if (req.method === 'POST' && url.pathname === `${REALM_PATH}/protocol/openid-connect/token`) {
      let body = ''
      for await (const chunk of req) body += chunk
      const form = new URLSearchParams(body)
      if (
        form.get('grant_type') !== 'password' ||
        form.get('username') !== TEST_USER.username ||
        form.get('password') !== TEST_USER.password
      ) {
        return json(401, { error: 'invalid_grant' })
      }
      return json(200, { access_token: await mint(), token_type: 'Bearer', expires_in: 300 })
    }
    json(404, { error: 'not_found' })
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })
  issuer = `http://127.0.0.1:${server.address().port}${REALM_PATH}`
  return { issuer, mint, fetches, close: () => new Promise((r) => server.close(r)) }
}

/** The password grant, as a client (or seed 002's curl) would do it. */
export async function passwordGrant(issuer, username, password) {
  const res = await fetch(`${issuer}/protocol/openid-connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', client_id: 'verdict-demo', username, password }),
  })
  if (!res.ok) throw new Error(`token endpoint answered ${res.status}`)
  return (await res.json()).access_token
}
