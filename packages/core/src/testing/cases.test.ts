import { fileURLToPath } from 'node:url'
import { describe, expect, test } from 'vitest'
import { deny } from '../decision.js'
import { PolicyError } from '../errors.js'
import { diffDecision } from './case-diff.js'
import { formatCaseResults, runCaseFile } from './cases.js'
import { describeCaseFile } from './vitest-suite.js'

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

describe('case files', () => {
  test('every case of a passing file passes; coverage names the rule no case decided', async () => {
    const r = await runCaseFile(fixture('cases.yaml'))
    expect(r.results.map((c) => [c.name, c.passed, c.diffs])).toEqual(
      r.results.map((c) => [c.name, true, []]),
    )
    expect(r.rules).toEqual(['header', 'agent-a', 'never-used'])
    expect(r.uncovered).toEqual(['never-used'])
    const text = formatCaseResults([r], { coverage: true })
    expect(text).toContain('coverage')
    expect(text).toContain('never decided: never-used')
    expect(text.trim().split('\n').at(-1)).toBe('6 passed, 0 failed')
  })

  test('a failing case shows a readable diff and the count', async () => {
    const r = await runCaseFile(fixture('failing.yaml'))
    expect(r.results[0]?.passed).toBe(false)
    expect(r.results[0]?.diffs).toEqual([
      { field: 'allowed', expected: true, actual: false },
      { field: 'status', expected: 200, actual: 403 },
      { field: 'reason (contains)', expected: 'rule header', actual: 'no allow rule matched' },
    ])
    const text = formatCaseResults([r])
    expect(text).toContain('FAIL')
    expect(text).toContain('- expected true')
    expect(text).toContain('+ actual   false')
    expect(text.trim().split('\n').at(-1)).toBe('1 passed, 1 failed')
  })

  test('a malformed case file reports its path and line', async () => {
    const err = (await runCaseFile(fixture('malformed.yaml')).catch((e: unknown) => e)) as PolicyError
    expect(err).toBeInstanceOf(PolicyError)
    expect(err.problems[0]).toMatchObject({
      path: '/cases/1/expect',
      line: 6,
      message: 'unknown field "alowed"',
    })
  })

  test('an empty expectation is refused: it could never fail', async () => {
    const err = (await runCaseFile(fixture('empty-expect.yaml')).catch((e: unknown) => e)) as PolicyError
    expect(err).toBeInstanceOf(PolicyError)
    expect(err.problems[0]).toMatchObject({ path: '/cases/0/expect' })
  })

  test('a case with both checkRequest and request is refused', async () => {
    const err = (await runCaseFile(fixture('two-requests.yaml')).catch((e: unknown) => e)) as PolicyError
    expect(err).toBeInstanceOf(PolicyError)
    expect(err.problems[0]).toMatchObject({ path: '/cases/0' })
  })

  test('a missing file is a PolicyError', async () => {
    await expect(runCaseFile(fixture('nope.yaml'))).rejects.toBeInstanceOf(PolicyError)
  })
})

// The same passing file as a vitest suite.
await describeCaseFile(fixture('cases.yaml'))

describe('expectations that must be able to fail', () => {
  test('rule: null expects that no rule decided', () => {
    const byRule = deny(403, 'denied by rule d', { code: 'denied', rule: 'd' })
    const byNone = deny(403, 'no allow rule matched', { code: 'no_match' })
    expect(diffDecision(byRule, { rule: null })).toEqual([{ field: 'rule', expected: null, actual: 'd' }])
    expect(diffDecision(byNone, { rule: null })).toEqual([])
    expect(diffDecision(byRule, { rule: 'd' })).toEqual([])
  })
})
