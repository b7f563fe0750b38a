import { describe, expect, test } from 'vitest'
import { hasDuplicateMember } from './json-members.js'

describe('hasDuplicateMember', () => {
  test.each([
    ['{"a":1,"a":2}', true],
    ['{"a":1,"\\u0061":2}', true],
    ['{"\\u0061":1,"\\u0061":2}', true],
    ['{"a\\"b":1,"a\\u0022b":2}', true],
    ['{"\\\\":1,"\\u005c":2}', true],
    ['{"x":{"y":[1,{"z":1,"z":2}]}}', true],
    ['{"x":[{"a":1}],"a":2,"b":{},"a":3}', true],
    ['{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}', false],
    ['{"a":"a","b":"\\"a\\":","c":"{\\"a\\":1,\\"a\\":2}"}', false],
    ['{"a":1,"A":2,"a ":3}', false],
    ['{"\\ud83d\\ude00":1,"😀x":2}', false],
    ['{"\\ud83d\\ude00":1,"😀":2}', true],
    ['{}', false],
    ['[]', false],
    [' { "a" : 1 , "a" : 2 } ', true],
  ])('%s: %s', (text, want) => {
    JSON.parse(text) // the cases are valid JSON, as the caller guarantees
    expect(hasDuplicateMember(text)).toBe(want)
  })

  test('deep nesting is walked without recursion', () => {
    const depth = 200_000
    const deep = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
    expect(hasDuplicateMember(deep)).toBe(false)
    const dup = `${'[{"a":'.repeat(depth)}1${'}]'.repeat(depth)}`.replace(/\]$/, ',{"b":1,"b":2}]')
    expect(hasDuplicateMember(dup)).toBe(true)
  })

  test('linear in the text: many members, long names and long escapes', () => {
    const many = `{${Array.from({ length: 50_000 }, (_, i) => `"k${i}":${i}`).join(',')}}`
    const escapes = `{"${'\\\\'.repeat(100_000)}":1,"${'\\u005c'.repeat(100_000)}":2}`
    const start = performance.now()
    expect(hasDuplicateMember(many)).toBe(false)
    expect(hasDuplicateMember(escapes)).toBe(true)
    expect(performance.now() - start).toBeLessThan(1000)
  })
})
