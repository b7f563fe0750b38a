import { describe, expect, test } from 'vitest'
import { isoTime } from './iso-time.js'

describe('isoTime', () => {
  test('matches Date.prototype.toISOString, fractional milliseconds and second boundaries included', () => {
    const starts = [0, 1_700_000_000_000, Date.UTC(2026, 10, 24, 23, 59, 59, 990), Date.UTC(2000, 1, 29)]
    for (const start of starts) {
      for (let ms = start - 1500; ms < start + 1500; ms += 0.7) {
        expect(isoTime(ms), String(ms)).toBe(new Date(ms).toISOString())
      }
    }
    // Going back in time (a clock step) reformats the prefix.
    expect(isoTime(Date.UTC(2026, 0, 1, 0, 0, 1, 5))).toBe('2026-01-01T00:00:01.005Z')
    expect(isoTime(Date.UTC(2025, 11, 31, 23, 59, 59, 999))).toBe('2025-12-31T23:59:59.999Z')
  })

  test('years outside 0000-9999 take the long form', () => {
    const far = Date.UTC(12000, 0, 1, 0, 0, 0, 7)
    expect(isoTime(far)).toBe(new Date(far).toISOString())
    const before = Date.UTC(-5, 0, 1)
    expect(isoTime(before)).toBe(new Date(before).toISOString())
  })
})
