// JWT verification: verdict's cold path (cache disabled) per algorithm, next to jose.jwtVerify
// and node:crypto.verify on the same key and token, and a verified-token cache hit.
import { constants, createPublicKey, verify } from 'node:crypto'
import { createEngine } from '@verdict/core'
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT } from 'jose'
import { compileJwtAuthentication } from '../packages/core/dist/jwt/index.js'
import { compare, table } from './harness.mjs'

const ISS = 'https://idp.example'

/** node:crypto parameters that verify the same signature jose does. */
function nodeVerifier(alg, jwk) {
  const key = createPublicKey({ key: jwk, format: 'jwk' })
  const hash = { 256: 'sha256', 384: 'sha384', 512: 'sha512' }[alg.slice(2)]
  if (alg === 'EdDSA') return (data, sig) => verify(null, data, key, sig)
  if (alg.startsWith('RS')) return (data, sig) => verify(hash, data, key, sig)
  if (alg.startsWith('PS'))
    return (data, sig) =>
      verify(
        hash,
        data,
        { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST },
        sig,
      )
  return (data, sig) => verify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, sig)
}

async function authenticator(jwk, maxEntries) {
  const r = await compileJwtAuthentication(
    { providers: [{ issuer: ISS, jwks: { inline: { keys: [jwk] } } }], cache: { maxEntries } },
    '/authentication/jwt',
    { fetch: undefined, resources: undefined, now: Date.now },
  )
  if (!r.ok) throw new Error(JSON.stringify(r.problems))
  return r.authenticator
}

/** The smallest request context the authenticator reads. */
const ctxFor = (token) => ({
  input: { headers: { authorization: `Bearer ${token}` }, query: {} },
  now: Date.now(),
})

export default async function (report) {
  const rows = []
  let hitRows
  for (const alg of ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA']) {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg }
    const token = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg, kid: 'k' })
      .setIssuer(ISS)
      .setIssuedAt()
      .setExpirationTime('2h')
      .sign(privateKey)
    const [h, p, s] = token.split('.')
    const data = Buffer.from(`${h}.${p}`)
    const sig = Buffer.from(s, 'base64url')
    const nodeCheck = nodeVerifier(alg, jwk)
    if (!nodeCheck(data, sig)) throw new Error(`node:crypto does not verify ${alg}`)
    const joseKey = await importJWK(jwk, alg)
    const cold = await authenticator(jwk, 0)
    const ctx = ctxFor(token)
    if ((await cold.authenticate(ctx)).kind !== 'authenticated')
      throw new Error(`verdict does not verify ${alg}`)
    const measured = await compare(
      [
        { name: `${alg} node:crypto.verify`, fn: () => nodeCheck(data, sig) },
        { name: `${alg} jose.jwtVerify`, fn: () => jwtVerify(token, joseKey, { issuer: ISS }), async: true },
        { name: `${alg} verdict cold (no cache)`, fn: () => cold.authenticate(ctx), async: true },
      ],
      { rounds: 5 },
    )
    rows.push(`**${alg}**\n\n${table(measured, [measured[0].name])}`)
    if (alg === 'RS256') {
      const warm = await authenticator(jwk, 10_000)
      await warm.authenticate(ctx)
      const hit = warm.authenticate(ctx)
      if (hit instanceof Promise || hit.kind !== 'authenticated')
        throw new Error('expected a synchronous cache hit')
      const engine = await createEngine({
        authentication: { jwt: { providers: [{ issuer: ISS, jwks: { inline: { keys: [jwk] } } }] } },
        default: 'allow',
      })
      const input = { method: 'GET', path: '/', headers: { authorization: `Bearer ${token}` } }
      if (!(await engine.decide(input)).allowed) throw new Error('engine does not allow the token')
      hitRows = await compare([
        { name: 'RS256 node:crypto.verify', fn: () => nodeCheck(data, sig) },
        { name: 'verdict cache hit (authenticator)', fn: () => warm.authenticate(ctx) },
        { name: 'engine.decide, JWT cache hit, no rules', fn: () => engine.decide(input), async: true },
      ])
      engine.close()
    }
  }
  const note =
    'Cold: every token verified again (cache `maxEntries: 0`), signature through jose (WebCrypto), ' +
    'claims and header checks included. The cache hit is one LRU lookup keyed by the exact token.'
  report.section('JWT verification per algorithm', `${note}\n\n${rows.join('\n\n')}`)
  report.section('JWT verified-token cache', table(hitRows, ['RS256 node:crypto.verify']))
}
