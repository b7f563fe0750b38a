import { expect, test } from 'vitest'
import { readLimited } from './read-limited.js'

const stream = (...parts: string[]) => new Response(parts.join('')).body

test('reads a body within the cap, refuses one over it', async () => {
  expect(new TextDecoder().decode((await readLimited(stream('abc', 'def'), 6)) as Uint8Array)).toBe('abcdef')
  expect(await readLimited(stream('abcdefg'), 6)).toBe('too_large')
  expect(await readLimited(null, 6)).toEqual(new Uint8Array(0))
})
