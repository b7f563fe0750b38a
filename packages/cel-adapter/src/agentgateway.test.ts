/**
 * verdict's side of agentgateway's library: the functions without a documented example (URL and
 * form encoding), the macros' edges, the header reads the new views count, and the fast path on
 * the new variables. The documented examples are in test/agentgateway-cel.test.ts.
 */
import { createEngine } from '@verdict/core'
import { describe, expect, test } from 'vitest'
import { compileCel } from './compile/compile-cel.js'
import { createCelEnvironment } from './compile/environment.js'
import { createCelEvaluator } from './index.js'
import { VARIABLE_NAMES } from './variables.js'

const env = createCelEnvironment(VARIABLE_NAMES)

async function decide(cel: string, input: Record<string, unknown>, fastPath = true) {
  const engine = await createEngine(
    { rules: [{ id: 'r', action: 'allow', cel }] },
    { evaluators: [createCelEvaluator({ fastPath })] },
  )
  try {
    return await engine.decide(input)
  } finally {
    engine.close()
  }
}

const request = (headers: Record<string, unknown> = {}, more: Record<string, unknown> = {}) => ({
  method: 'POST',
  path: '/api?x=1',
  host: 'example.com',
  headers,
  ...more,
})

describe('functions', () => {
  test.each([
    ['url.encode("a b/c?d=é!") == "a%20b%2Fc%3Fd%3D%C3%A9%21"'],
    ['url.decode("a%20b%2Fc") == "a b/c"'],
    ['form.encode({"a": "1", "b": "x y", "n": 2}) == "a=1&b=x+y&n=2"'],
    ['form.decode("a=1&b=x+y&a=2") == {"a": "2", "b": "x y"}'],
    ['toJson([b"hi", 1, 2.5, true, null]) == \'["aGk=",1,2.5,true,null]\''],
    ['json(b\'{"a":[1,{"b":2}]}\').a[1].b == 2'],
    ['{"a": {"b": 1}}.mapValues(v, v.with(x, x.b + 1)) == {"a": 2}'],
    ['{}.mapValues(v, v) == {}'],
    ['[1, 2].with(x, x.size()) == 2'],
    ['"abc".with(request, request.size()) == 3'],
    ['coalesce(1) == 1'],
    ['"a b c".split(" ", 0) == []'],
    ['"a b c".split(" ", 5) == ["a", "b", "c"]'],
    ['"hello".stripPrefix("hello") == ""'],
    ['ip("::ffff:127.0.0.1").isLoopback()'],
    ['cidr("2001:db8::1/32").masked() == "2001:db8::/32"'],
    ['cidr("::ffff:10.0.0.1/120").masked() == "::ffff:a00:0/120"'],
    ['!cidr("10.0.0.0/8").containsCIDR("::/0")'],
    ['math.greatest(1, 2u, 3.5, -4) == 3.5'],
  ])('%s', async (expr) => {
    expect((await decide(expr, request())).allowed).toBe(true)
  })

  test.each([
    ['url.decode("%zz")'],
    ['form.encode({"a": [1]})'],
    ['{"a": 1}.filterKeys(k, 1)'],
    ['unvalidatedJwtPayload("a.b")'],
    ['"x".regexReplace("(", "")'],
    ['math.bitShiftLeft(1, -1)'],
    ['ip("10.0.0.1").family() == 4 && ip("x").family() == 4'],
  ])('%s fails', async (expr) => {
    const d = await decide(`(${expr}) == (${expr})`, request())
    expect(d.allowed).toBe(false)
    expect(d.reason).toMatch(/r: /)
  })

  test('a macro needs a variable name', () => {
    const c = compileCel('{"a": 1}.mapValues(1, 2)', env)
    expect(c.ok).toBe(false)
    if (!c.ok) expect(c.problems[0]?.code).toBe('cel_unknown_function')
  })

  test('mapValues counts as a comprehension level', () => {
    const c = compileCel('[[1]].all(a, a.all(b, {"k": b}.mapValues(v, [v].all(w, w > 0)).size() > 0))', env)
    expect(c.ok).toBe(false)
    if (!c.ok) expect(c.problems[0]?.code).toBe('cel_limit')
  })
})

describe('header reads of the views', () => {
  const reads = (expr: string) => {
    const c = compileCel(expr, env)
    if (!c.ok) throw new Error(c.problems[0]!.message)
    return c.expression.headerReads
  }
  test.each([
    ['request.headers["x-role"] == "a"', ['x-role']],
    ['request.headers.redacted()["x-role"] == "a"', ['x-role']],
    ['request.headers.join()["x-role"] == "a"', []],
    ['request.headers.split()["x-role"] == ["a"]', []],
    ['request.headers.raw()["x-role"] == ["a"]', []],
    ['request.headers.redacted().split().authorization == ["a"]', []],
    ['request.headers.cookie("s") == "a"', ['cookie']],
    ['"x" in request.headers.split()', []],
    ['size(request.headers.split()) > 1', []],
    ['size(request.headers.redacted()) > 1', 'all'],
    ['"request" in variables()', 'all'],
  ] as const)('%s', (expr, want) => {
    expect(reads(expr)).toEqual(want)
  })

  test('split() of a header on two lines is its list; a direct read of it is refused', async () => {
    const input = request({ 'x-role': ['user', 'admin'] })
    expect((await decide('request.headers.split()["x-role"] == ["user", "admin"]', input)).allowed).toBe(true)
    expect((await decide('request.headers.join()["x-role"] == "user,admin"', input)).allowed).toBe(true)
    const direct = await decide('request.headers["x-role"] == "admin"', input)
    expect(direct.status).toBe(400)
  })
})

describe('variables', () => {
  const tool = (params: Record<string, unknown>) =>
    request(
      { 'content-type': 'application/json' },
      { path: '/mcp', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params }) },
    )

  test.each([true, false])('has(mcp.tool.arguments) follows the call, fast path %s', async (fast) => {
    expect((await decide('has(mcp.tool.arguments)', tool({ name: 't' }), fast)).allowed).toBe(false)
    expect((await decide('has(mcp.tool.arguments)', tool({ name: 't', arguments: {} }), fast)).allowed).toBe(
      true,
    )
    expect((await decide('!has(mcp.tool.target)', tool({ name: 't' }), fast)).allowed).toBe(true)
  })

  test.each([true, false])('jwt == null without a token, fast path %s', async (fast) => {
    expect((await decide('jwt == null && !(jwt != null)', request(), fast)).allowed).toBe(true)
    expect((await decide('mcp == null', request(), fast)).allowed).toBe(true)
  })

  test('request.body is bytes, request.json the parsed body, both absent the same way', async () => {
    const json = request({ 'content-type': 'application/json' }, { body: '{"a":1}' })
    expect((await decide('request.json.a == 1 && json(request.body).a == 1', json)).allowed).toBe(true)
    expect((await decide('string(request.body) == \'{"a":1}\'', json)).allowed).toBe(true)
    expect((await decide('size(request.body) == 0 && !has(request.json)', request())).allowed).toBe(true)
    // A JSON body with a key twice is refused when json(request.body) reads it, as request.json.
    const twice = request({ 'content-type': 'application/json' }, { body: '{"a":1,"a":2}' })
    expect((await decide('json(request.body).a == 2', twice)).status).toBe(400)
    // Text that is not JSON: an error, so the allow rule does not match.
    const text = request({ 'content-type': 'text/plain' }, { body: 'a=1' })
    expect((await decide('json(request.body) != null', text)).allowed).toBe(false)
  })

  test('request.uri is the complete URI, pathAndQuery the target', async () => {
    const d = await decide(
      'request.uri == "http://example.com/api?x=1" && request.pathAndQuery == "/api?x=1" && request.path == "/api"',
      request({}, { scheme: 'http' }),
    )
    expect(d.allowed).toBe(true)
  })
})
