// CEL is type-checked at load against the declared variables' known field types: a clear mismatch
// is a load problem with its location, not a rule that denies (or silently never matches) at run time.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createCelEvaluator } from '@verdict/cel-adapter'
import { type Io, main } from '@verdict/cli'
import { createEngine, PolicyError, type Problem } from '@verdict/core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'

async function problems(cel: string): Promise<readonly Problem[]> {
  try {
    const engine = await createEngine(
      { rules: [{ id: 'r', action: 'allow', cel }] },
      { evaluators: [createCelEvaluator()] },
    )
    engine.close()
    return []
  } catch (e) {
    if (e instanceof PolicyError) return e.problems
    throw e
  }
}

describe('clear mismatches are load problems', () => {
  test.each([
    ['request.method + 1', /'\+' cannot combine string and int/, 16],
    ['request.method == 1', /'==' compares string with int, which is never equal/, 16],
    ['request.headers["x-n"] != 2', /'!=' compares string with int/, 23],
    ['request.path < 3', /'<' cannot compare string with int/, 14],
    ['source.port == "8080"', /'==' compares number with string/, 13],
    ['request.headerValues["x-role"].exists(v, v == 1)', /'==' compares string with int/, 43],
    ['request.query["a"] == "b"', /compares list\(string\) with string/, 19],
    ['"admin" in request.method', /'in' needs a list or a map on its right, not string/, 8],
    ['request.method[0] == "G"', /string cannot be indexed/, 15],
    ['source.port.startsWith("80")', /startsWith\(\) is a string method, called on number/, 12],
    ['!request.path', /'!' needs a bool, not string/, 1],
    ['request.path.size() == "3"', /compares int with string/, 20],
  ])('%s', async (cel, message, column) => {
    const p = await problems(cel)
    expect(p).toHaveLength(1)
    expect(p[0]).toMatchObject({ code: 'cel_type', path: '/rules/0/cel' })
    expect(p[0]?.message).toMatch(message)
    expect(p[0]?.message).toContain(`1:${column}: type mismatch`)
  })
})

describe('valid and dynamic expressions still load', () => {
  test.each([
    'request.method == "GET" && request.path.startsWith("/api")',
    'jwt.sub == 1 || jwt.level + 1 > 2',
    'json(request.body).model == "gpt" && json(request.body).n + 1 > 2',
    'request.json.count + 1 == 2',
    'mcp.tool.arguments.limit + 1 < 100',
    'size(request.path) + 1 > 3',
    'source.port + 1 > 80 && source.port == 8080',
    'request.headers["x"] == "a" && request.headers.join()["x"] == "a"',
    'request.headers.split()["x"].exists(v, v == "a")',
    'request.query["a"][0] == "b"',
    'request.method in ["GET", "POST", "PUT", "DELETE", "PATCH"]',
    '{1: "a", "b": 2}.exists(k, k != 2)',
    '[1, "a"].exists(x, x == 1)',
    'request.startTime > timestamp("2020-01-01T00:00:00Z")',
    'string(request.body).contains("x")',
    'request.method == null || jwt == null',
    'has(request.headers.x) ? request.headers.x == "1" : false',
    'default(request.headers["x-n"], "0") == "0"',
    'context["tenant"] == "a"',
    'dyn(request.method) == 1 || true',
    'false && 32 == 32',
  ])('%s', async (cel) => {
    expect(await problems(cel)).toEqual([])
  })
})

describe('verdict check', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'verdict-cel-types-'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  test('reports the mismatch at its line and column in the policy file', async () => {
    const policy = join(dir, 'policy.yaml')
    writeFileSync(policy, 'rules:\n  - id: plus\n    action: allow\n    cel: request.method + 1 == 2\n')
    let err = ''
    const io: Io = {
      stdout: () => {},
      stderr: (t) => {
        err += t
      },
      isTTY: false,
      readStdin: async () => '',
    }
    expect(await main(['node', 'verdict', 'check', '-p', policy], io)).toBe(2)
    expect(err).toMatch(
      /policy\.yaml:4:\d+: \/rules\/0\/cel: .*1:16: type mismatch: '\+' cannot combine string and int \[cel_type\]/,
    )
  })
})
