import { readFile } from 'node:fs/promises'
import { describe, expect, test } from 'vitest'
import { POLICY_SCHEMA, parsePolicyText, pointer, sourceFromValue, validatePolicyShape } from './document.js'
import { PolicyError } from './errors.js'

/** Every property name defined anywhere in the schema. */
function schemaFields(node: unknown, out = new Set<string>()): Set<string> {
  if (typeof node !== 'object' || node === null) return out
  const n = node as Record<string, unknown>
  if (typeof n.properties === 'object' && n.properties !== null) {
    for (const [k, v] of Object.entries(n.properties)) {
      out.add(k)
      schemaFields(v, out)
    }
  }
  for (const key of ['definitions', 'items', 'additionalProperties']) {
    const v = n[key]
    if (key === 'definitions' && typeof v === 'object' && v !== null)
      for (const d of Object.values(v)) schemaFields(d, out)
    else schemaFields(v, out)
  }
  return out
}

describe('policy schema and docs/policy.md', () => {
  test('every schema field is documented, and every documented field exists', async () => {
    const doc = await readFile(new URL('../../../docs/policy.md', import.meta.url), 'utf8')
    const fields = schemaFields(POLICY_SCHEMA)
    expect(fields.size).toBeGreaterThan(30)
    const missing = [...fields].filter((f) => !doc.includes(`\`${f}\``))
    expect(missing).toEqual([])
    // Field names in the docs' table rows must be schema fields (or documented sub-forms).
    const documented = [...doc.matchAll(/^\| `([A-Za-z]+)` \|/gm)].map((m) => m[1]!)
    const unknown = documented.filter((f) => !fields.has(f))
    expect(unknown).toEqual([])
  })
})

describe('locating problems', () => {
  test('schema problems point into the YAML text', () => {
    const src = parsePolicyText('rules:\n  - id: a\n    action: allow\n    match:\n      methods: GET\n')
    const problems = validatePolicyShape(src)
    expect(problems).toEqual([
      expect.objectContaining({ path: '/rules/0/match/methods', line: 5, column: 16 }),
    ])
  })

  test('objects without text have paths but no lines', () => {
    const problems = validatePolicyShape(
      sourceFromValue({ rules: [{ id: 'a', action: 'x', match: { always: true } }] }),
    )
    expect(problems).toEqual([
      expect.objectContaining({ path: '/rules/0/action', message: expect.stringMatching(/must be one of/) }),
    ])
    expect(problems[0]?.line).toBeUndefined()
  })

  test('an empty document is reported as not an object, and only so', () => {
    const problems = validatePolicyShape(parsePolicyText(''))
    expect(problems.map((p) => p.message)).toEqual(['must be object'])
  })

  test('keys that become the same property are duplicates', () => {
    expect(() => parsePolicyText('headers:\n  1: a\n  "1": b\n')).toThrow(PolicyError)
    expect(() => parsePolicyText('headers:\n  true: a\n  "true": b\n')).toThrow(PolicyError)
    expect(parsePolicyText('headers:\n  1: a\n  "2": b\n').value).toEqual({ headers: { 1: 'a', 2: 'b' } })
  })

  test('an unresolved YAML tag is a parse error, not a string', () => {
    for (const text of ['rules:\n  - id: !custom a\n', 'rules:\n  - id: !!js/function "a"\n']) {
      let err: PolicyError | undefined
      try {
        parsePolicyText(text)
      } catch (e) {
        err = e as PolicyError
      }
      expect(err).toBeInstanceOf(PolicyError)
      expect(err?.problems[0]).toMatchObject({ code: 'policy_parse', line: 2 })
      expect(err?.problems[0]?.message).toMatch(/Unresolved tag/)
    }
  })

  test('JSON pointers escape / and ~', () => {
    expect(pointer('a/b', 'c~d', 3)).toBe('/a~1b/c~0d/3')
  })

  test('YAML aliases are bounded (billion laughs)', () => {
    const bomb = [
      'a: &a ["x","x","x","x","x","x","x","x","x"]',
      'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
      'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
      'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
      'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
      'f: [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
    ].join('\n')
    expect(() => parsePolicyText(bomb)).toThrow(/alias|policy/i)
  })
})
