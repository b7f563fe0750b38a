// Issue 15, class 2: an integer beyond 2^53 from the request (JSON.parse rounded it) is never
// compared as if it were exact. Every comparison with another number is an error, on the engine
// and through the fast path, which leaves numbers to the engine.
import { type CheckInput, createEngine, type McpCall, normalizeInput } from '@verdict/core/internal'
import { describe, expect, it } from 'vitest'
import { compileCel } from './compile/compile-cel.js'
import { createCelEnvironment } from './compile/environment.js'
import { createCelEvaluator } from './index.js'
import { celView, fieldsView } from './value-view.js'
import { requestVariables, VARIABLE_NAMES } from './variables.js'

const cenv = createCelEnvironment(['args', 'v'])

function compiled(expr: string) {
  const c = compileCel(expr, cenv)
  if (!c.ok) throw new Error(c.problems[0]!.message)
  return c.expression
}

/** Arguments as a server reads them: the JSON text, parsed. */
const ARGS = JSON.parse(
  '{"n":9007199254740993,"neg":-9007199254740993,"two53":9007199254740992,"huge":1e300,' +
    '"safe":9007199254740991,"s":5,"f":1.5,"str":"x","list":[1,9007199254740993],"obj":{"k":9007199254740993}}',
)
const run = (expr: string, args: unknown = ARGS) => compiled(expr).run({ args: celView(args) })
const ROUNDED = /integer beyond 2\^53 from the request/

describe('CEL: integers beyond 2^53 from the request', () => {
  it.each([
    // Ordering, each side, against int, uint, double and another request value.
    'args.n > 5',
    '5 < args.n',
    'args.n >= 9007199254740993',
    'args.n <= 9007199254740993.0',
    'args.n > 1u',
    '1u < args.n',
    'args.neg < 0',
    'args.two53 > 9007199254740991',
    'args.huge > 1.0',
    'args.n > args.s',
    'args.n < args.f',
    // Equality with a number.
    'args.n == 9007199254740993',
    'args.n == 9007199254740992',
    'args.n != 9007199254740992',
    'args.n == 1.0',
    'args.n == 1u',
    'args.n == args.two53',
    'args.list == [1, 9007199254740993]',
    'args.obj == {"k": 9007199254740993}',
    // Membership among numbers.
    'args.n in [1, 2]',
    '9007199254740993 in args.list',
    'args.n in {"k": 1}',
    // Arithmetic and conversions would launder the rounded value into an exact-looking one.
    'args.n - 1.0 < 5.0',
    '-args.n < 0.0',
    'int(args.n) > 0',
    'uint(args.n) > 0u',
    'string(args.n) == "9007199254740993"',
  ])('%s is an error', (expr) => {
    const r = run(expr)
    expect(r.ok).toBe(false)
    expect(JSON.stringify(r)).toMatch(ROUNDED)
  })

  it.each<[string, boolean]>([
    // Exact values are compared as before: up to 2^53 - 1, and fractions.
    ['args.safe == 9007199254740991', true],
    ['args.safe < 9007199254740992', true],
    ['args.s < 6 && args.f > 1.0', true],
    // Not a comparison of numbers: no error.
    ['has(args.n)', true],
    ['args.n == "9007199254740993"', false],
    ['args.n != null', true],
    ['type(args.n) == double', true],
    ['"n" in args', true],
    ['[args.n, "a"] == ["b", "a"]', false],
    // An exact match decides `in`, an unequal pair decides `==`, whatever else is there.
    ['1 in args.list', true],
    ['args.list == [2, 9007199254740993]', false],
    ['args.list == [1]', false],
    // CEL's logic absorbs the error as for any other: false && error is false.
    ['false && args.n > 5', false],
    ['args.n > 5 || true', true],
  ])('%s is %s', (expr, want) => {
    expect(run(expr)).toEqual({ ok: true, value: want })
  })

  it('doubles of the expression itself keep CEL semantics', () => {
    for (const expr of ['1e20 > 1e19', '1e20 == 100000000000000000000.0', 'double(9007199254740993) > 1.0']) {
      expect(run(expr, {}), expr).toEqual({ ok: true, value: true })
    }
    // The record of rounded values belongs to one evaluation: the next one starts empty.
    expect(run('args.big > 1.0', { big: 1e20 }).ok).toBe(false)
    expect(run('1e20 > 1.0', {})).toEqual({ ok: true, value: true })
  })

  it('a value kept by a variable view from an earlier evaluation is still rounded', () => {
    // The variables of one decision are shared by its rules: `request.json` is read once.
    const v = fieldsView(['n'], () => 2 ** 53)
    expect(compiled('type(v.n) == double').run({ v })).toEqual({ ok: true, value: true })
    const r = compiled('v.n == 9007199254740992').run({ v })
    expect(r.ok).toBe(false)
    expect(JSON.stringify(r)).toMatch(ROUNDED)
  })

  it('the fast path leaves a comparison of numbers to the engine, which reports the error', () => {
    const input = normalizeInput({ method: 'POST', path: '/mcp', headers: {} }) as CheckInput
    const args = JSON.parse('{"n":9007199254740993,"m":9007199254740992,"s":"x"}')
    const mcp: McpCall = {
      method: 'tools/call',
      id: 1,
      params: { name: 't', arguments: args },
      tool: { name: 't', arguments: args },
      from: 'body',
    }
    const ctx = {
      input,
      jwt: undefined,
      mcp,
      parsedBody: undefined,
      memo: (_k: object, make: () => unknown) => make(),
    }
    const env = createCelEnvironment(VARIABLE_NAMES)
    for (const expr of [
      'mcp.tool.arguments.n == mcp.tool.arguments.m',
      'mcp.tool.arguments.n != mcp.tool.arguments.m',
      'mcp.tool.arguments.n in [mcp.tool.arguments.m]',
    ]) {
      const c = compileCel(expr, env)
      if (!c.ok) throw new Error(c.problems[0]!.message)
      expect(c.expression.fast, expr).toBeDefined()
      expect(c.expression.fast?.(ctx as never), expr).toBeUndefined()
      expect(JSON.stringify(c.expression.run(requestVariables(ctx as never))), expr).toMatch(ROUNDED)
    }
    // Against a string the answer is exact, and the same both ways.
    const c = compileCel('mcp.tool.arguments.n == mcp.tool.arguments.s', env)
    if (!c.ok) throw new Error(c.problems[0]!.message)
    expect(c.expression.fast?.(ctx as never)).toBe(false)
    expect(c.expression.run(requestVariables(ctx as never))).toEqual({ ok: true, value: false })
  })
})

describe('CEL rules on MCP arguments and JSON bodies beyond 2^53', () => {
  const tool = (args: string) => ({
    method: 'POST',
    path: '/mcp',
    headers: { 'content-type': 'application/json' },
    body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"transfer","arguments":${args}}}`,
  })
  const decide = async (rules: Record<string, unknown>[], input: Record<string, unknown>) => {
    const engine = await createEngine({ rules }, { evaluators: [createCelEvaluator()] })
    try {
      return await engine.decide(input)
    } finally {
      engine.close()
    }
  }
  const denyLarge = [
    { id: 'large', action: 'deny', cel: 'has(mcp.tool) && mcp.tool.arguments.amount > 1000000' },
    { id: 'rest', action: 'allow', cel: 'true' },
  ]

  it('a deny rule with an ordering comparison denies (evaluator error); both paths', async () => {
    for (const fastPath of [true, false]) {
      const engine = await createEngine(
        { rules: denyLarge },
        { evaluators: [createCelEvaluator({ fastPath })] },
      )
      expect((await engine.decide(tool('{"amount":5}'))).allowed).toBe(true)
      expect((await engine.decide(tool('{"amount":5000000}'))).allowed).toBe(false)
      for (const amount of ['9007199254740993', '-9007199254740993', '18446744073709551617']) {
        const d = await engine.decide(tool(`{"amount":${amount}}`))
        expect(d.allowed, amount).toBe(false)
        expect(d.reason).toMatch(ROUNDED)
      }
      engine.close()
    }
  })

  it('an allow rule comparing one does not match, in CEL equality as well', async () => {
    // 9007199254740993 parses to 9007199254740992, so this allowed the wrong account before.
    const rules = [{ id: 'acct', action: 'allow', cel: 'mcp.tool.arguments.account == 9007199254740992' }]
    const d = await decide(rules, tool('{"account":9007199254740993}'))
    expect(d.allowed).toBe(false)
    expect(d.reason).toMatch(ROUNDED)
  })

  it('request.json numbers too, and every rule of the decision sees the value as rounded', async () => {
    const body = (text: string) => ({
      method: 'POST',
      path: '/api',
      headers: { 'content-type': 'application/json' },
      body: text,
    })
    const rules = [
      { id: 'typed', action: 'deny', cel: 'type(request.json) == string' },
      { id: 'exact', action: 'allow', cel: 'request.json == 9007199254740992' },
    ]
    expect((await decide(rules, body('9007199254740991'))).allowed).toBe(false)
    const d = await decide(rules, body('9007199254740993'))
    expect(d.allowed).toBe(false)
    expect(d.reason).toMatch(ROUNDED)
    const deny = [
      { id: 'cap', action: 'deny', cel: 'request.json.limit >= 100' },
      { id: 'rest', action: 'allow', cel: 'true' },
    ]
    expect((await decide(deny, body('{"limit":99}'))).allowed).toBe(true)
    expect((await decide(deny, body('{"limit":90071992547409930}'))).allowed).toBe(false)
    // agentgateway's spelling reads the same parsed body.
    const json = [
      { id: 'cap', action: 'deny', cel: 'json(request.body).limit >= 100' },
      { id: 'rest', action: 'allow', cel: 'true' },
    ]
    expect((await decide(json, body('{"limit":99}'))).allowed).toBe(true)
    const big = await decide(json, body('{"limit":90071992547409930}'))
    expect(big.allowed).toBe(false)
    expect(big.reason).toMatch(ROUNDED)
  })
})
