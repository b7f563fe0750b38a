// `verdict test`: the runner as users meet it, through the command's entry point.
import { fileURLToPath } from 'node:url'
import { type Io, main } from '@verdict/cli'
import { describe, expect, test } from 'vitest'

const fixtures = fileURLToPath(new URL('../packages/core/src/testing/fixtures/', import.meta.url))

async function run(...args: string[]) {
  let out = ''
  let err = ''
  const io: Io = {
    stdout: (t) => {
      out += t
    },
    stderr: (t) => {
      err += t
    },
    isTTY: false,
    readStdin: async () => '',
  }
  const code = await main(['node', 'verdict', 'test', ...args], io)
  return { code, out, err, last: out.trim().split('\n').at(-1) }
}

describe('verdict test', () => {
  test('every example case file passes', async () => {
    const r = await run(fileURLToPath(new URL('../examples', import.meta.url)))
    expect(r.err).toBe('')
    expect(r.code).toBe(0)
    expect(r.last).toMatch(/^\d+ passed, 0 failed$/)
    // 001 (three files), 002, 003 and the rest were all found.
    expect(r.out).toContain('001-mcp-tools/remote-cel.cases.yaml')
    expect(r.out).toContain('003-jwt-cel/cases.yaml')
  })

  test('a failing case shows a diff and exits 1', async () => {
    const r = await run(`${fixtures}failing.yaml`)
    expect(r.code).toBe(1)
    expect(r.out).toContain('FAIL')
    expect(r.out).toContain('- expected true')
    expect(r.last).toBe('1 passed, 1 failed')
  })

  test('--coverage names the rule no case made decide', async () => {
    const r = await run(`${fixtures}cases.yaml`, '--coverage')
    expect(r.code).toBe(0)
    expect(r.out).toContain('never decided: never-used')
  })

  test('a malformed case file reports its path and line, exit 2', async () => {
    const r = await run(`${fixtures}malformed.yaml`)
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/malformed\.yaml:6:\d+: \/cases\/1\/expect: unknown field "alowed"/)
  })

  test('--json for machines', async () => {
    const r = await run(`${fixtures}failing.yaml`, '--json')
    const j = JSON.parse(r.out)
    expect(j).toMatchObject({ passed: 1, failed: 1, problems: [] })
    expect(j.files[0].cases[0].diffs[0]).toEqual({ field: 'allowed', expected: true, actual: false })
  })

  test('no case files is an error', async () => {
    const r = await run(fileURLToPath(new URL('../packages/cli/src', import.meta.url)))
    expect(r.code).toBe(2)
  })
})
