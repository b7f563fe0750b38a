import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, test } from 'vitest'
import { buildKeySet, candidateKeys, MAX_KEYS, pemToJwks, SUPPORTED_ALGORITHMS } from './key-set.js'
import { makeKey } from './testing/jwt-kit.js'

const ALL = new Set(SUPPORTED_ALGORITHMS)

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

  test('private members are dropped; the fingerprint follows the public keys', async () => {
    const k = await makeKey('ES256', 'x')
    const a = await buildKeySet({ keys: [{ ...k.jwk, d: 'c2VjcmV0' }] }, ALL, true)
    const b = await buildKeySet({ keys: [k.jwk] }, ALL, true)
    expect(a.ok && b.ok && a.set.fingerprint === b.set.fingerprint).toBe(true)
    expect(a.ok && a.set.fingerprint).not.toContain('c2VjcmV0')
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

  test('PEM keys and certificates', () => {
    const { publicKey } = generateKeyPairSync('ed25519')
    const jwks = pemToJwks(publicKey.export({ type: 'spki', format: 'pem' }) as string)
    expect(typeof jwks === 'object' && jwks.keys[0]?.kty).toBe('OKP')
    expect(pemToJwks('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----')).toContain('not a PEM')
  })
})
