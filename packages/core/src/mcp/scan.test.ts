// The smuggling scan (mcp-call.ts) against an independent oracle on generated JSON: a recursive
// walk that decodes every key with JSON.parse and folds it, object by object.
import { describe, expect, test } from 'vitest'
import { createSeededRandom } from '../testing/random.js'
import { findDuplicateGuardedKey } from './index.js'

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
