/** The web-standard byte helpers agree with Node's Buffer, which core used before. */
import { describe, expect, test } from 'vitest'
import { base64Decode, base64Encode, constantTimeEqual, fromHex, toHex, utf8Length } from './bytes.js'
import { createSeededRandom } from './testing/random.js'

const texts = [
  '',
  'a',
  'é',
  '€',
  '😀',
  'a😀b',
  '\ud800',
  '\udc00x',
  'x\ud83d',
  '\ud83d\ud83d\ude00',
  'ab\u0000c',
]

describe('bytes', () => {
  test('utf8Length is Buffer.byteLength, lone surrogates included', () => {
    for (const t of texts) expect([t, utf8Length(t)]).toEqual([t, Buffer.byteLength(t, 'utf8')])
  })

  test('base64Decode decodes as Buffer does: both alphabets, padding optional, a lone last character ignored', () => {
    const random = createSeededRandom(18)
    const inputs = ['', 'YQ', 'YQ=', 'YQ==', 'YWI', 'YWJj', 'Y', 'YWJjZ', '-_-_', '+/+/', 'YQ==', 'AAAA']
    for (let i = 0; i < 200; i++) {
      const bytes = new Uint8Array(Math.floor(random.next() * 41))
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(random.next() * 256)
      const b64 = Buffer.from(bytes).toString(i % 2 === 0 ? 'base64' : 'base64url')
      inputs.push(b64, b64.replace(/=+$/, ''))
    }
    for (const s of inputs) {
      expect([s, Array.from(base64Decode(s))]).toEqual([s, Array.from(Buffer.from(s, 'base64'))])
    }
  })

  test('base64Encode, toHex and fromHex are the Buffer encodings', () => {
    const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff)
    expect(base64Encode(bytes)).toBe(Buffer.from(bytes).toString('base64'))
    expect(base64Encode(new Uint8Array([0xfb, 0xff]))).toBe('+/8=')
    expect(toHex(new Uint8Array([0, 15, 16, 255]))).toBe('000f10ff')
    expect(Array.from(fromHex('000f10ff'))).toEqual([0, 15, 16, 255])
  })

  test('constantTimeEqual compares lengths and every byte', () => {
    expect(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true)
    expect(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false)
    expect(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 0]))).toBe(false)
    expect(constantTimeEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true)
  })
})
