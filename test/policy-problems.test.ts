// Load problems a new user meets: a "$schema" key, enum and const values, YAML syntax errors.
import { createCelEvaluator } from '@verdict/cel-adapter'
import { createEngine, PolicyError, type Problem, parsePolicyText } from '@verdict/core/internal'
import { describe, expect, test } from 'vitest'

async function problemsOf(text: string): Promise<readonly Problem[]> {
  try {
    await createEngine(parsePolicyText(text))
  } catch (e) {
    if (e instanceof PolicyError) return e.problems
    throw e
  }
  return []
}

describe('"$schema" in a policy', () => {
  test('a JSON policy naming its schema loads', async () => {
    const text = JSON.stringify({
      $schema: './node_modules/@verdict/core/dist/policy.schema.json',
      default: 'deny',
    })
    expect(await problemsOf(text)).toEqual([])
  })

  test('so does a YAML one', async () => {
    expect(await problemsOf('$schema: https://example.com/policy.schema.json\ndefault: allow\n')).toEqual([])
  })

  test('a $schema that is not a string is a problem at its place', async () => {
    const problems = await problemsOf('{\n  "$schema": 1,\n  "default": "deny"\n}\n')
    expect(problems).toEqual([expect.objectContaining({ path: '/$schema', line: 2, column: 14 })])
  })
})

describe('enum and const problems name the allowed values', () => {
  test('version: verdict/v2', async () => {
    const problems = await problemsOf('version: verdict/v2\ndefault: deny\n')
    expect(problems).toEqual([
      expect.objectContaining({
        path: '/version',
        message: 'must be one of: verdict/v1',
        line: 1,
        column: 10,
      }),
    ])
  })

  test('an enum lists its values', async () => {
    const problems = await problemsOf('default: maybe\n')
    expect(problems).toContainEqual(
      expect.objectContaining({ path: '/default', message: 'must be one of: allow, deny' }),
    )
  })
})

describe('YAML errors point at the offending token', () => {
  const first = (text: string): Problem => {
    try {
      parsePolicyText(text)
    } catch (e) {
      return (e as PolicyError).problems[0]!
    }
    throw new Error('parsed')
  }

  test('an unclosed flow sequence is reported at its "["', () => {
    const p = first('rules:\n  - id: a\n    action: allow\n    match: { methods: [GET, POST }\n')
    expect(p).toMatchObject({ code: 'policy_parse', line: 4, column: 23 })
    expect(p.message).toMatch(/"\[" is never closed: expected "\]"/)
  })

  test('an unterminated string at its opening quote', () => {
    const p = first('name: "abc\ndefault: deny\n')
    expect(p).toMatchObject({ line: 1, column: 7 })
    expect(p.message).toMatch(/never closed: expected a closing "/)
  })

  test('a mis-indented line at its first token, which the message quotes', () => {
    const p = first('rules:\n  - id: a\n   action: allow\n')
    expect(p).toMatchObject({ line: 3, column: 4 })
    expect(p.message).toContain('(at "action")')
  })

  test('a tab used as indentation at the tab', () => {
    expect(first('rules:\n\t- id: a\n')).toMatchObject({ line: 2, column: 1 })
  })
})

describe('a CEL syntax error says what was expected, in words, where', () => {
  const celProblem = async (cel: string): Promise<Problem> => {
    try {
      await createEngine(
        { rules: [{ id: 'r', action: 'allow', cel }] },
        { evaluators: [createCelEvaluator()] },
      )
    } catch (e) {
      return (e as PolicyError).problems[0]!
    }
    throw new Error('loaded')
  }

  test.each([
    ['request.method ==', "1:16: syntax error: expected a value after '==', but the expression ends"],
    ['request.path.startsWith("/a"', "1:24: syntax error: '(' is not closed: expected ')'"],
    ['request.headers["x"', "1:16: syntax error: '[' is not closed: expected ']'"],
    ['request.method = "GET"', "1:16: syntax error: '=' is not a CEL operator: write '==' to compare"],
    [
      'request.method == "GET',
      '1:19: syntax error: the string starting here is not closed: expected a closing "',
    ],
    ['1 +* 2 == 3', "1:4: syntax error: expected a value after '+', found '*'"],
    ['[1, 2) == [1]', "1:6: syntax error: expected ']' to close the '[' at column 1, found ')'"],
    [
      'request.method == "GET" request.path == "/"',
      "1:25: syntax error: expected an operator (such as ==, &&, +) or the end of the expression before 'request'",
    ],
    ['a & b', "1:3: syntax error: '&' is not a CEL operator: write '&&'"],
  ])('%s', async (cel, message) => {
    const p = await celProblem(cel)
    expect(p).toMatchObject({ code: 'cel_syntax', path: '/rules/0/cel' })
    expect(p.message).toContain(message)
    expect(p.message).not.toMatch(/end of input|expecting/)
  })
})

test('docs/policy.md shows editor set-up with the shipped schema', async () => {
  const { readFile } = await import('node:fs/promises')
  const doc = await readFile(new URL('../docs/policy.md', import.meta.url), 'utf8')
  for (const s of [
    '"$schema"',
    '"json.schemas"',
    '# yaml-language-server: $schema=',
    'JetBrains',
    'policy.schema.json',
  ])
    expect(doc).toContain(s)
})
