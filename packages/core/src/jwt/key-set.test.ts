import { generateKeyPairSync, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { exportJWK } from 'jose'
import { beforeAll, describe, expect, test } from 'vitest'
import { buildKeySet, candidateKeys, MAX_KEYS, pemToJwks, SUPPORTED_ALGORITHMS } from './key-set.js'
import { makeKey, type TestKey } from './testing/jwt-kit.js'

const ALL = new Set(SUPPORTED_ALGORITHMS)

/** An RSA key (slow to make: one for the whole file). */
let leaked: TestKey
beforeAll(async () => {
  leaked = await makeKey('RS256', 'leaked')
})

describe('buildKeySet', () => {
  test.each([
    ['not an object', [], 'JWKS must be an object'],
    ['keys not a list', { keys: {} }, 'JWKS must be an object'],
    ['too many keys', { keys: Array.from({ length: MAX_KEYS + 1 }, () => ({})) }, `more than ${MAX_KEYS}`],
    ['a key that is not an object', { keys: ['k'] }, 'key 0 is not an object'],
    ['an encryption key', { keys: [{ kty: 'RSA', use: 'enc', n: 'AQAB', e: 'AQAB' }] }, 'not a signature'],
    ['key_ops without verify', { keys: [{ kty: 'EC', key_ops: ['sign'] }] }, 'not a signature'],
    ['an unknown kty', { keys: [{ kty: 'XYZ' }] }, 'unsupported key type "XYZ"'],
    ['an unknown curve', { keys: [{ kty: 'EC', crv: 'P-192', x: 'AA', y: 'AA' }] }, 'unsupported EC curve'],
    ['EC without y', { keys: [{ kty: 'EC', crv: 'P-256', x: 'AA' }] }, 'without valid "x" and "y"'],
    ['Ed448', { keys: [{ kty: 'OKP', crv: 'Ed448', x: 'AA' }] }, 'unsupported OKP curve'],
    ['OKP without x', { keys: [{ kty: 'OKP', crv: 'Ed25519' }] }, 'without a valid "x"'],
    ['RSA without e', { keys: [{ kty: 'RSA', n: 'AQAB' }] }, 'without valid "n" and "e"'],
    ['a short RSA key', { keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB' }] }, 'shorter than 2048 bits'],
    [
      'EC point not on the curve',
      { keys: [{ kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' }] },
      'cannot be imported',
    ],
  ])('strict refuses %s', async (_name, value, error) => {
    const r = await buildKeySet(value, ALL, true)
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.error).toContain(error)
  })

  test('non-strict skips unusable keys and keeps the good ones', async () => {
    const k = await makeKey('ES256', 'good')
    const r = await buildKeySet(
      {
        keys: [
          { kty: 'oct', k: 'AA' },
          { kty: 'RSA', use: 'enc' },
          { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' },
          k.jwk,
        ],
      },
      ALL,
      false,
    )
    expect(r.ok && r.set.keys.map((e) => e.kid)).toEqual(['good'])
    const none = await buildKeySet({ keys: [{ kty: 'oct', k: 'AA' }] }, ALL, false)
    expect(!none.ok && none.error).toContain('no usable')
  })

  test('a non-string kid and algorithms the provider excludes', async () => {
    const k = await makeKey('ES256', 'x')
    const bad = await buildKeySet({ keys: [{ ...k.jwk, kid: 7 }] }, ALL, false)
    expect(!bad.ok && bad.error).toContain('"kid" must be a string')
    const excluded = await buildKeySet({ keys: [k.jwk] }, new Set(['RS256']), true)
    expect(!excluded.ok && excluded.error).toContain("none of the provider's algorithms")
  })

  test.each(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth'])(
    'a key carrying the private member %s is refused inline and skipped remotely, its value never quoted',
    async (member) => {
      const good = await makeKey('ES256', 'good')
      const secret = member === 'oth' ? [{ r: 'c2VjcmV0', d: 'c2VjcmV0', t: 'c2VjcmV0' }] : 'c2VjcmV0'
      const jwks = { keys: [{ ...leaked.jwk, [member]: secret }, good.jwk] }
      const strict = await buildKeySet(jwks, ALL, true)
      expect(strict.ok).toBe(false)
      if (!strict.ok) {
        expect(strict.error).toBe(
          `key 0 carries private key members (${member}): publish only the public key`,
        )
        expect(strict.error).not.toContain('c2VjcmV0')
      }
      const lenient = await buildKeySet(jwks, ALL, false)
      if (!lenient.ok) throw new Error(lenient.error)
      expect(lenient.set.keys.map((k) => k.kid)).toEqual(['good'])
      expect(lenient.skipped).toEqual([
        `key 0 (kid "leaked") carries private key members (${member}): publish only the public key`,
      ])
      expect(lenient.set.fingerprint).not.toContain('c2VjcmV0')
    },
  )

  test('an EC and an Ed25519 private key, and an oct secret, are refused too', async () => {
    for (const alg of ['ES256', 'EdDSA']) {
      const k = await makeKey(alg, 'k')
      const full = { ...(await exportJWK(k.privateKey)), kid: 'k', alg }
      expect(full.d).toBeDefined()
      const r = await buildKeySet({ keys: [full] }, ALL, true)
      expect(!r.ok && r.error).toContain('private key members (d)')
    }
    const oct = await buildKeySet({ keys: [{ kty: 'oct', k: 'c2VjcmV0', alg: 'HS256' }] }, ALL, true)
    expect(!oct.ok && oct.error).toContain('private key members (k)')
  })

  test('skipped keys are listed; with nothing usable the error names them', async () => {
    const k = await makeKey('ES256', 'k')
    const r = await buildKeySet(
      {
        keys: [
          { ...k.jwk, d: 'x' },
          { ...k.jwk, kid: 'e', use: 'enc' },
          { kty: 'oct', k: 'x' },
        ],
      },
      ALL,
      false,
    )
    expect(r.ok).toBe(false)
    if (!r.ok)
      expect(r.error).toBe(
        'JWKS has no usable signature verification key (key 0 (kid "k") carries private key members (d): ' +
          'publish only the public key; key 1 (kid "e") is not a signature verification key (use or key_ops); ' +
          'key 2 carries private key members (k): publish only the public key)',
      )
  })

  test('the fingerprint follows the public keys', async () => {
    const k = await makeKey('ES256', 'x')
    const a = await buildKeySet({ keys: [{ ...k.jwk, ext: true }] }, ALL, true)
    const b = await buildKeySet({ keys: [k.jwk] }, ALL, true)
    expect(a.ok && b.ok && a.set.fingerprint === b.set.fingerprint).toBe(true)
  })

  test('candidate keys by kid, falling back to keys without a kid', async () => {
    const named = await makeKey('ES256', 'n')
    const anon = await makeKey('ES256', 'unused')
    const r = await buildKeySet({ keys: [named.jwk, { ...anon.jwk, kid: undefined }] }, ALL, true)
    if (!r.ok) throw new Error(r.error)
    expect(candidateKeys(r.set, 'ES256', 'n').map((k) => k.kid)).toEqual(['n'])
    expect(candidateKeys(r.set, 'ES256', 'other').map((k) => k.kid)).toEqual([undefined])
    expect(candidateKeys(r.set, 'ES256', undefined)).toHaveLength(2)
    expect(candidateKeys(r.set, 'RS256', 'n')).toHaveLength(0)
  })

  test('PEM keys and certificates', async () => {
    const { publicKey } = generateKeyPairSync('ed25519')
    const jwks = await pemToJwks(publicKey.export({ type: 'spki', format: 'pem' }) as string)
    expect(typeof jwks === 'object' && jwks.keys[0]?.kty).toBe('OKP')
    expect(await pemToJwks('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----')).toContain(
      'not a PEM',
    )
  })

  test('PEM public keys of every supported family, SPKI and PKCS#1, as node:crypto exports them', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey
    const pems: Array<[string, string]> = [
      ['spki', rsa.export({ type: 'spki', format: 'pem' }) as string],
      ['pkcs1', rsa.export({ type: 'pkcs1', format: 'pem' }) as string],
    ]
    const expected = rsa.export({ format: 'jwk' })
    for (const [name, pem] of pems) {
      expect([name, await pemToJwks(pem)]).toEqual([
        name,
        { keys: [{ kty: 'RSA', n: expected.n, e: expected.e }] },
      ])
    }
    for (const namedCurve of ['P-256', 'P-384', 'P-521']) {
      const ec = generateKeyPairSync('ec', { namedCurve }).publicKey
      const jwk = ec.export({ format: 'jwk' })
      expect(await pemToJwks(ec.export({ type: 'spki', format: 'pem' }) as string)).toEqual({
        keys: [{ kty: 'EC', crv: namedCurve, x: jwk.x, y: jwk.y }],
      })
    }
    // A certificate: the committed test certificates of @verdict/mcp (EC P-256).
    const cert = readFileSync(new URL('../../../mcp/src/testing/tls/agent-a.pem', import.meta.url), 'utf8')
    const certJwk = new X509Certificate(cert).publicKey.export({ format: 'jwk' })
    expect(await pemToJwks(cert)).toEqual({ keys: [{ kty: 'EC', crv: 'P-256', x: certJwk.x, y: certJwk.y }] })
    const secp256k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey
    expect(await pemToJwks(secp256k1.export({ type: 'spki', format: 'pem' }) as string)).toContain(
      'no RSA, EC',
    )
  })

  test('a PEM private key is refused, though its public half could be derived', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    const pems = [
      rsa.export({ type: 'pkcs8', format: 'pem' }) as string,
      rsa.export({ type: 'pkcs1', format: 'pem' }) as string,
      ec.export({ type: 'sec1', format: 'pem' }) as string,
    ]
    for (const pem of pems) {
      expect(pem).toContain('PRIVATE KEY-----')
      expect(await pemToJwks(pem)).toBe('a PEM private key: give the public key or certificate instead')
    }
  })
})
