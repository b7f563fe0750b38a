// The smuggling scan (mcp-call.ts) against an independent oracle on generated JSON: a recursive
// walk that decodes every key with JSON.parse and folds it, object by object.
import { describe, expect, test } from 'vitest'
import { createSeededRandom } from '../testing/random.js'
import { findDuplicateGuardedKey } from './index.js'
import { scanJson } from './scan.js'

const GUARDED = new Set(['jsonrpc', 'method', 'id', 'params', 'name', 'arguments', 'uri'])

/** The first guarded key repeated in one object, by a recursive walk over valid JSON text. */
function oracle(text: string): string | undefined {
  let pos = 0
  let found: string | undefined
  const ws = () => {
    while (/\s/.test(text[pos] ?? '')) pos++
  }
  const str = (): string => {
    const start = pos
    pos++
    while (text[pos] !== '"') pos += text[pos] === '\\' ? 2 : 1
    pos++
    return JSON.parse(text.slice(start, pos)) as string
  }
  const value = (): void => {
    ws()
    const c = text[pos]
    if (c === '{') {
      pos++
      const seen = new Set<string>()
      ws()
      if (text[pos] === '}') {
        pos++
        return
      }
      for (;;) {
        ws()
        const key = str()
        const folded = key.toLowerCase().replace(/\u017f/g, 's')
        if (GUARDED.has(folded)) {
          if (seen.has(folded)) found ??= key
          seen.add(folded)
        }
        ws()
        pos++ // :
        value()
        ws()
        if (text[pos++] === '}') return
      }
    }
    if (c === '[') {
      pos++
      ws()
      if (text[pos] === ']') {
        pos++
        return
      }
      for (;;) {
        value()
        ws()
        if (text[pos++] === ']') return
      }
    }
    if (c === '"') {
      str()
      return
    }
    while (pos < text.length && !/[,}\]\s]/.test(text[pos]!)) pos++
  }
  value()
  return found
}

describe('smuggling scan vs an oracle', () => {
  test('agrees on 20,000 generated documents with escapes, case variants and long strings', () => {
    const { next: rnd, pick } = createSeededRandom(7)
    const escapeChars = (s: string) =>
      [...s].map((ch) => (rnd() < 0.2 ? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}` : ch)).join('')
    // Strings of many lengths, with escaped quotes and backslashes anywhere.
    const filler = () => {
      const n = pick([0, 5, 30, 31, 32, 33, 34, 40, 100])
      let out = ''
      while (out.length < n)
        out += pick(['a', 'b', '\\"', '\\\\', ' ', 'é', '\\n', 'name', '"'.replace('"', '\\"')])
      return out
    }
    const key = () => {
      const r = rnd()
      if (r < 0.5) {
        const k = pick([...GUARDED])
        const v = pick([k, k.toUpperCase(), k[0]!.toUpperCase() + k.slice(1), k.replace(/s/g, '\u017f')])
        return rnd() < 0.3 ? escapeChars(v) : v
      }
      return r < 0.8 ? filler() : pick(['x', 'repoName', 'ids', 'namespace', 'urii'])
    }
    const doc = (depth: number): string => {
      const r = rnd()
      if (depth > 3 || r < 0.3) return pick(['1', 'true', 'null', `"${filler()}"`])
      if (r < 0.45)
        return `[${Array.from({ length: Math.floor(rnd() * 3) }, () => doc(depth + 1)).join(',')}]`
      const n = Math.floor(rnd() * 5)
      return `{${Array.from({ length: n }, () => `"${key()}":${doc(depth + 1)}`).join(',')}}`
    }
    let duplicates = 0
    for (let i = 0; i < 20_000; i++) {
      const text = doc(0)
      JSON.parse(text) // the generator makes valid JSON only
      const want = oracle(text)
      if (want !== undefined) duplicates++
      expect(findDuplicateGuardedKey(text), text).toBe(want)
    }
    // The corpus must exercise both answers.
    expect(duplicates).toBeGreaterThan(500)
  })
})

describe('the overflow pre-filter of the scan', () => {
  // The oracle: a number literal with an exponent or 309 digits in a row, searched in the text with
  // every string emptied (numbers only occur outside strings).
  const oracle = (text: string): boolean =>
    /[0-9.][eE]|[0-9]{309}/.test(text.replace(/"(?:[^"\\]|\\.)*"/g, '""'))
  test('flags exactly the literals that may overflow, never a string that spells one', () => {
    const { next: rnd, pick } = createSeededRandom(11)
    const number = () =>
      pick([
        '0',
        '-1',
        '2.5',
        '1e5',
        '-1e400',
        '3E-2',
        '0.5e+1',
        `1${'0'.repeat(307)}`,
        `1${'0'.repeat(308)}`,
        `-${'9'.repeat(400)}`,
        `0.${'1'.repeat(320)}`,
      ])
    const str = () => `"${pick(['1e400', `${'9'.repeat(309)}`, 'e', 'E5', 'a\\"1e9', ''])}"`
    const doc = (depth: number): string => {
      const r = rnd()
      if (depth > 3 || r < 0.35) return rnd() < 0.5 ? number() : pick([str(), 'true', 'false', 'null'])
      if (r < 0.5)
        return `[${Array.from({ length: Math.floor(rnd() * 4) }, () => doc(depth + 1)).join(', ')}]`
      const n = Math.floor(rnd() * 4)
      return `{${Array.from({ length: n }, (_, i) => `"k${i}e1": ${doc(depth + 1)}`).join(', ')}}`
    }
    let flagged = 0
    for (let i = 0; i < 5_000; i++) {
      const text = doc(0)
      JSON.parse(text)
      const want = oracle(text)
      if (want) flagged++
      expect(scanJson(text, 64).hugeNumber, text).toBe(want)
    }
    expect(flagged).toBeGreaterThan(500)
    expect(flagged).toBeLessThan(4_500)
  })
})
