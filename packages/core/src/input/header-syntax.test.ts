import { describe, expect, test } from 'vitest'
import { hasControlChar } from './header-syntax.js'

describe('hasControlChar', () => {
  test('flags exactly the C0 controls other than tab, and DEL, anywhere in a value', () => {
    for (let c = 0; c <= 0xffff; c++) {
      const ch = String.fromCharCode(c)
      const forbidden = (c < 0x20 && c !== 0x09) || c === 0x7f
      expect(hasControlChar(`Bearer abc${ch}def`), `U+${c.toString(16)}`).toBe(forbidden)
    }
  })

  test('accepts empty values, tabs, non-ASCII text and surrogate pairs', () => {
    expect(hasControlChar('')).toBe(false)
    expect(hasControlChar('a\tb é € 😀')).toBe(false)
    expect(hasControlChar('x\r\nSet-Cookie: a=b')).toBe(true)
    expect(hasControlChar(`${'a'.repeat(100_000)}\n`)).toBe(true)
  })
})
