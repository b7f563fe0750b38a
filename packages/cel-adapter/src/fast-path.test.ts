// The fast path must give @bufbuild/cel's answer whenever it answers at all: every expression of a
// generated corpus is run both ways on several requests, and the answers compared. Every test runs
// twice: on the generated code (fast-path-codegen.ts) and on the closures it falls back to where
// code generation is refused (a Content-Security-Policy: `new Function` throws an EvalError).
import { type CheckInput, type McpCall, normalizeInput, type RequestContext } from '@verdict/core/internal'
import { createSeededRandom } from '@verdict/core/testing'
import { describe, expect, test } from 'vitest'
import { compileCel as compileWithCodegen } from './compile/compile-cel.js'
import { type CelEnvironment, createCelEnvironment } from './compile/environment.js'
import { requestVariables, VARIABLE_NAMES } from './variables.js'

function context(
  raw: Record<string, unknown>,
  jwt: Record<string, unknown> | undefined,
  mcp?: McpCall,
): RequestContext {
  const input = normalizeInput(raw) as CheckInput
  if (!('headers' in input)) throw new Error('test input did not normalize')
  const memo = new Map<object, unknown>()
  return {
    input,
    jwt,
    jwtToken: undefined,
    identity: undefined,
    mcp,
    parsedBody: typeof raw.body === 'string' ? JSON.parse(raw.body) : undefined,
    now: 0,
    memo<T>(key: object, make: () => T): T {
      if (!memo.has(key)) memo.set(key, make())
      return memo.get(key) as T
    },
    refuse() {},
  }
}

/** A `Function` constructor that refuses, as under a Content-Security-Policy without `unsafe-eval`. */
function RefusingFunction(): never {
  throw new EvalError('Code generation from strings disallowed for this context')
}

/** `f()` while `new Function` throws, as in a browser under a strict Content-Security-Policy. */
function withoutCodegen<T>(f: () => T): T {
  const saved = globalThis.Function
  globalThis.Function = RefusingFunction as unknown as FunctionConstructor
  try {
    return f()
  } finally {
    globalThis.Function = saved
  }
}

const compileWithoutCodegen = (source: string, cenv: CelEnvironment) =>
  withoutCodegen(() => compileWithCodegen(source, cenv))

/** Whether `fast` is a generated function (its source is the generated text). */
const isGenerated = (fast: unknown) =>
  typeof fast === 'function' && String(fast).startsWith('function fastProgram(')

const body = { k: 'v', nested: { deep: 'x' }, n: 3, list: ['a', 'b'] }
const tool = {
  name: 'get-sum',
  // `big`: an integer beyond 2^53, which the engine refuses to compare with numbers.
  arguments: { repo: 'kubernetes-sigs/gateway-api', a: 1, flag: true, none: null, big: 2 ** 53 + 2 },
}
const CONTEXTS: Array<[string, RequestContext]> = [
  [
    'MCP call with JWT and SPIFFE peer',
    context(
      {
        method: 'POST',
        path: '/mcp?x=1',
        headers: { 'x-a': 'allow', 'content-type': 'application/json', 'user-agent': 'curl/8.1' },
        body: JSON.stringify(body),
        source: { principal: 'spiffe://cluster.local/ns/agents/sa/bot', address: '10.0.0.1' },
        filterMetadata: { ns: { key: 'val', num: 2 } },
        contextExtensions: { k: 'ctx', mcp_target: 'wiki' },
      },
      // Parsed, as verified claims are: `__proto__` is then an own key like any other.
      JSON.parse(
        '{"sub":"alice","roles":["admin","dev"],"n":7,"flag":false,"nul":null,"obj":{"a":"b"},"__proto__":"p"}',
      ),
      {
        method: 'tools/call',
        id: 3,
        params: { name: tool.name, arguments: tool.arguments },
        tool,
        from: 'body',
      },
    ),
  ],
  ['plain GET, no JWT, no MCP', context({ method: 'GET', path: '/', headers: { 'x-a': 'deny' } }, undefined)],
  [
    'JSON null body',
    context(
      { method: 'POST', path: '/', headers: { 'content-type': 'application/json' }, body: 'null' },
      undefined,
      // A prompt sent without arguments: `has(mcp.prompt.arguments)` is false.
      {
        method: 'prompts/get',
        id: 1,
        params: { name: 'p' },
        prompt: { name: 'p', arguments: {} },
        from: 'body',
      },
    ),
  ],
  [
    'JWT with other types',
    context(
      { method: 'GET', path: '/admin', headers: {} },
      { sub: 7, roles: 'admin', flag: 'true', nul: 'null', obj: ['a'] },
      {
        method: 'resources/read',
        id: 'x',
        params: { uri: 'file:///a' },
        resource: { uri: 'file:///a' },
        from: 'metadata',
      },
    ),
  ],
]

const ATOMS = [
  'jwt.sub',
  'jwt.missing',
  'jwt.roles',
  'jwt.n',
  'jwt.flag',
  'jwt.nul',
  'jwt.obj',
  'jwt["__proto__"]',
  'jwt.constructor',
  'request.headers["constructor"]',
  'request.constructor',
  'mcp.constructor',
  'source.identity.constructor',
  'source.toString',
  'request.headers["x-a"]',
  'request.headers.missing',
  'request.method',
  'request.nope',
  'request.json.k',
  'request.json.list',
  'mcp.tool.name',
  'mcp.tool.arguments.repo',
  'mcp.tool.arguments.flag',
  'mcp.tool.arguments.none',
  'mcp.tool.arguments.big',
  'mcp.tool.arguments',
  'mcp.tool.target',
  'mcp.prompt.arguments',
  'mcp.resource.name',
  'mcp.id',
  'mcp.method',
  'source.identity',
  'source.labels',
  'request.query',
  'request.query.x',
  'request.headers',
  'request.json',
  'mcp.params',
  'mcp.resource',
  'metadata',
  'context',
  'jwt',
  'source.identity.namespace',
  'source.address',
  'metadata.ns.key',
  'context.k',
  '"admin"',
  '"allow"',
  'true',
  'false',
  'null',
  '["admin", "x"]',
  '["a", "b", "c", "d", "e"]',
  '[jwt.sub, jwt.missing]',
  '[request.method, "x"]',
]

const BINARY = [
  (a: string, b: string) => `${a} == ${b}`,
  (a: string, b: string) => `${a} != ${b}`,
  (a: string, b: string) => `${a} in ${b}`,
  (a: string, b: string) => `${a} && ${b}`,
  (a: string, b: string) => `${a} || ${b}`,
  (a: string, b: string) => `${a}.startsWith(${b})`,
  (a: string, b: string) => `${a}.contains(${b})`,
  (a: string, b: string) => `${a}[${b}]`,
]

const UNARY = [
  (a: string) => `!${a}`,
  (a: string) => `has(${a})`,
  (a: string) => `${a} ? true : false`,
  (a: string) => `${a}.matches("^[a-z]+$")`,
  (a: string) => `default(${a}, "fallback") == "fallback"`,
  (a: string) => `${a}.exists(x, x == "admin")`,
  (a: string) => `${a}.exists(x, x == "namespace" || x == "sub" || x == "deep")`,
  (a: string) => `${a}.all(x, x.startsWith("a") || x == "k")`,
  (a: string) => `${a}.exists(x, jwt.roles.all(y, y != x))`,
  // A comprehension variable named like a variable hides it.
  (a: string) => `${a}.exists(request, request == "admin" || has(request.method))`,
]

function corpus(): string[] {
  const out: string[] = []
  for (const a of ATOMS) {
    for (const u of UNARY) out.push(u(a))
    for (const b of ATOMS) for (const op of BINARY) out.push(op(a, b))
  }
  // Compositions two levels deep.
  // Seeded, so a failure names an expression that can be run again.
  const { next: rnd, pick } = createSeededRandom(42)
  const leaf = () => pick(BINARY)(pick(ATOMS), pick(ATOMS))
  for (let i = 0; i < 1500; i++) {
    const l = rnd() < 0.3 ? pick(UNARY)(pick(ATOMS)) : leaf()
    const r = leaf()
    out.push(rnd() < 0.5 ? `(${l}) && (${r})` : `(${l}) || !(${r})`)
  }
  return out
}

describe.each([
  ['generated code', compileWithCodegen, true],
  ['closures, where code generation is refused', compileWithoutCodegen, false],
] as const)('fast path on %s', (kind, compileCel, generated) => {
  test('the fast programs are of the kind under test', () => {
    const cenv = createCelEnvironment(VARIABLE_NAMES)
    for (const source of ['jwt.sub == "alice" && jwt.roles.exists(r, r == "admin")', 'has(jwt.sub)']) {
      const c = compileCel(source, cenv)
      if (!c.ok) throw new Error('did not compile')
      expect(c.expression.fast).toBeDefined()
      expect(isGenerated(c.expression.fast)).toBe(generated)
      expect(c.expression.fast?.(CONTEXTS[0]![1])).toBe(true)
    }
  })

  // With maxIterations 10 on the first context, where jwt.roles has 2 elements.
  const limited = (expr: string) => {
    const c = compileCel(expr, createCelEnvironment(VARIABLE_NAMES, { maxIterations: 10 }))
    if (!c.ok) throw new Error(`did not compile: ${expr}`)
    return c.expression
  }
  const ctx = CONTEXTS[0]![1]
  /** The fast path covers `expr` but gives up over the limit; the engine reports the limit. */
  const expectEngineReportsLimit = (expr: string) => {
    const e = limited(expr)
    expect(e.fast).toBeDefined()
    expect(e.fast?.(ctx)).toBeUndefined()
    const slow = e.run(requestVariables(ctx))
    expect(slow.ok).toBe(false)
    expect(JSON.stringify(slow)).toContain('more than 10')
  }

  test('comprehensions share the iteration limit: over it, the engine answers with its error', () => {
    // 2 + 2 x 2 = 6 elements: within the limit.
    expect(limited('jwt.roles.all(r, jwt.roles.all(s, s != ""))').fast?.(ctx)).toBe(true)
    // 2 + 2 x (2 + 2 x 2) = 14 elements: over it.
    expectEngineReportsLimit('request.json.list.all(a, request.json.list.all(b, jwt.roles.all(c, c != "")))')
    // `+` is not covered: the whole expression runs on the engine.
    expect(limited('jwt.roles.exists(r, jwt.roles.exists(s, s == r + ""))').fast).toBeUndefined()
  })

  test('a scan of a list by `in` counts against the iteration limit, inside comprehensions too', () => {
    // 2 + 2 x 2 = 6 elements: within the limit.
    expect(limited('jwt.roles.all(r, r in jwt.roles)').fast?.(ctx)).toBe(true)
    // 2 + 2 x (2 + 2 x (2 + 2)) = 22 elements: over it; a deny rule then denies.
    expectEngineReportsLimit('jwt.roles.all(r, jwt.roles.all(s, s in jwt.roles && r in jwt.roles))')
  })

  test('answers exactly as @bufbuild/cel on a generated corpus, and answers most of it', () => {
    const cenv = createCelEnvironment(VARIABLE_NAMES)
    let compiled = 0
    let answered = 0
    let evaluations = 0
    const disagreements: string[] = []
    for (const source of corpus()) {
      const c = compileCel(source, cenv)
      if (!c.ok) continue
      compiled++
      const fast = c.expression.fast
      if (fast !== undefined && isGenerated(fast) !== generated)
        disagreements.push(`not on ${kind}: ${source}`)
      for (const [name, ctx] of CONTEXTS) {
        evaluations++
        const got = fast?.(ctx)
        const want = c.expression.run(requestVariables(ctx))
        if (got === undefined) continue
        answered++
        if (!want.ok || want.value !== got) {
          disagreements.push(`${source} on "${name}": fast ${got}, engine ${JSON.stringify(want)}`)
        }
      }
    }
    expect(disagreements.slice(0, 20)).toEqual([])
    expect(compiled).toBeGreaterThan(8000)
    // Random pairs of atoms are mostly type errors and numbers, which the engine answers; a
    // regression that sent everything to the engine would answer none.
    console.log(
      `fast path: ${answered} of ${evaluations} evaluations (${compiled} expressions) answered directly`,
    )
    expect(answered / evaluations).toBeGreaterThan(0.05)
  })

  test.each([
    '"x-a" in request.headers && request.headers["x-a"] == "allow"',
    'mcp.tool.name in ["get-sum", "echo"] && has(mcp.tool.arguments.repo) && mcp.tool.arguments.repo in ["kubernetes-sigs/gateway-api"]',
    'mcp.tool.name in ["a", "b", "c", "get-sum", "e"]',
    'jwt.sub == "alice" && "admin" in jwt.roles',
    'request.headers["user-agent"].matches("^curl/[0-9.]+$")',
    'source.identity.namespace == "agents" && !has(jwt.missing)',
    'default(request.headers["x-missing"], "none") == "none"',
    'jwt["__proto__"] == "p" && !has(jwt.constructor) && !("__proto__" in request.headers)',
    'has(jwt.roles) && jwt.roles.exists(r, r.startsWith("adm")) && request.headers.all(k, k != "")',
  ])('the reference shapes take the fast path: %s', (source) => {
    const c = compileCel(source, createCelEnvironment(VARIABLE_NAMES))
    if (!c.ok) throw new Error(c.problems[0]!.message)
    const ctx = CONTEXTS[0]![1]
    expect(c.expression.fast?.(ctx)).toBe(true)
    expect(c.expression.run(requestVariables(ctx))).toEqual({ ok: true, value: true })
  })

  test.each([
    ['jwt.n > 3', 'arithmetic and ordering'],
    ['jwt.roles.exists_one(r, r == "admin")', 'a comprehension counting in ints'],
    ['jwt.roles.map(r, r + "!") == ["admin!"]', 'list building'],
    ['size(jwt.roles) == 2', 'size() returns an int'],
    ['{"a": 1}.a == 1', 'map literals'],
  ])('%s runs on the engine (%s)', (source) => {
    const c = compileCel(source, createCelEnvironment(VARIABLE_NAMES))
    if (!c.ok) throw new Error(c.problems[0]!.message)
    expect(c.expression.fast).toBeUndefined()
  })

  test('errors, numbers and non-boolean results are left to the engine', () => {
    const cenv = createCelEnvironment(VARIABLE_NAMES)
    const ctx = CONTEXTS[0]![1]
    for (const source of [
      'jwt.missing == "a"',
      'jwt.n == mcp.id',
      'jwt.sub.startsWith(jwt.n)',
      'true ? "a" : "b"',
    ]) {
      const c = compileCel(source, cenv)
      if (!c.ok) throw new Error(c.problems[0]!.message)
      expect(c.expression.fast, source).toBeDefined()
      expect(c.expression.fast?.(ctx), source).toBeUndefined()
    }
  })
})

describe('generated code', () => {
  test('a runtime that refuses is asked once, not for every expression', () => {
    let asked = 0
    const saved = globalThis.Function
    globalThis.Function = function Refusing() {
      asked++
      throw new EvalError('Code generation from strings disallowed for this context')
    } as unknown as FunctionConstructor
    try {
      const cenv = createCelEnvironment(VARIABLE_NAMES)
      for (const source of ['jwt.sub == "alice"', 'has(jwt.roles)', '"admin" in jwt.roles']) {
        const c = compileWithCodegen(source, cenv)
        if (!c.ok) throw new Error('did not compile')
        expect(isGenerated(c.expression.fast)).toBe(false)
        expect(c.expression.fast?.(CONTEXTS[0]![1])).toBe(true)
      }
    } finally {
      globalThis.Function = saved
    }
    // A browser reports every refusal; and once `Function` is another constructor, code is
    // generated again.
    expect(asked).toBe(1)
    const c = compileWithCodegen('jwt.sub == "alice"', createCelEnvironment(VARIABLE_NAMES))
    expect(c.ok && isGenerated(c.expression.fast)).toBe(true)
  })

  // Strings and keys that would break out of a JavaScript string or comment if they were ever
  // pasted into the generated source: they live only in the constants array.
  const QUOTE = '"); process.exit(1); ("'
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a CEL string shaped like a JS template, on purpose
  const TICKS = '`${process.exit(1)}`'
  const claims = JSON.parse(
    JSON.stringify({
      sub: TICKS,
      [QUOTE]: '*/ process.exit(1) /*',
      constructor: 'c',
      list: [QUOTE, '\u2028'],
    }).replace('{', '{"__proto__":"p",'),
  )
  const ctx = context({ method: 'GET', path: '/', headers: { constructor: 'h' } }, claims)
  const cel = (s: string) => JSON.stringify(s)

  test.each([
    [`jwt[${cel(QUOTE)}] == ${cel('*/ process.exit(1) /*')}`, true],
    [`jwt.sub == ${cel(TICKS)} && ${cel(QUOTE)} in jwt`, true],
    [`jwt.sub.startsWith("\`") && jwt.sub.contains("\${") && !jwt.sub.endsWith(${cel(QUOTE)})`, true],
    ['jwt["__proto__"] == "p" && jwt.constructor == "c" && has(jwt.__proto__)', true],
    ['request.headers["constructor"] == "h" && !has(request.constructor) && !("toString" in jwt)', true],
    [`jwt.list.exists(x, x == ${cel(QUOTE)}) && "\\u2028" in jwt.list && jwt.list.all(k, k != "\`")`, true],
    [
      `[${cel(QUOTE)}, "\`", "\\\\"].exists(x, x == jwt.sub) || jwt.sub in ["__proto__", "constructor"]`,
      false,
    ],
    [
      '"__proto__" in request.headers || has(request.headers.__proto__) || jwt.sub.matches("^[a-z]+$")',
      false,
    ],
  ])('policy text stays data: %s', (source, want) => {
    const c = compileWithCodegen(source, createCelEnvironment(VARIABLE_NAMES))
    if (!c.ok) throw new Error(c.problems[0]!.message)
    const fast = c.expression.fast
    expect(isGenerated(fast)).toBe(true)
    const code = String(fast)
    for (const text of ['process', '`', '__proto__', 'constructor', 'toString', '\u2028', '"'])
      expect(code).not.toContain(text)
    expect(fast?.(ctx)).toBe(want)
    expect(c.expression.run(requestVariables(ctx))).toEqual({ ok: true, value: want })
    const closures = compileWithoutCodegen(source, createCelEnvironment(VARIABLE_NAMES))
    if (!closures.ok) throw new Error('did not compile')
    expect(closures.expression.fast?.(ctx)).toBe(want)
  })

  test("gives the closures' answer, and the engine's, on seeded random expressions", () => {
    const { next: rnd, pick } = createSeededRandom(7)
    // Conditions that mostly answer, errors (`jwt.missing`) and give-ups (`jwt.n`) among them.
    const CONDITIONS = [
      'jwt.sub == "alice"',
      '"admin" in jwt.roles',
      'has(jwt.roles)',
      'jwt.missing == "a"',
      'jwt.n == "a"',
      'request.headers["x-a"] == "allow"',
      '"x-a" in request.headers',
      'mcp.tool.name in ["get-sum", "echo"]',
      'mcp.tool.arguments.flag',
      'has(mcp.tool.arguments.repo)',
      'jwt.flag',
      'source.identity.namespace == "agents"',
      'request.method != "GET"',
      'context.k.startsWith("c")',
    ]
    const names = ['x', 'y']
    // Values: atoms, comprehension variables, lists and choices of them.
    const value = (depth: number, vars: readonly string[]): string => {
      const r = rnd()
      if (depth > 0 && r < 0.1) return `[${value(depth - 1, vars)}, ${value(depth - 1, vars)}]`
      if (depth > 0 && r < 0.2)
        return `(${test(depth - 1, vars)}) ? ${value(depth - 1, vars)} : ${value(depth - 1, vars)}`
      return vars.length > 0 && r < 0.5 ? pick(vars) : pick(ATOMS)
    }
    // Conditions: mostly booleans, combined by logic, choices and comprehensions.
    const test = (depth: number, vars: readonly string[]): string => {
      const r = rnd()
      const sub = () => `(${test(depth - 1, vars)})`
      if (depth === 0 || r < 0.25) {
        const q = rnd()
        if (q < 0.4) return pick(CONDITIONS)
        return q < 0.8
          ? pick(BINARY)(value(depth, vars), value(depth, vars))
          : pick(UNARY)(value(depth, vars))
      }
      if (r < 0.45) return `${sub()} && ${sub()}`
      if (r < 0.65) return `${sub()} || ${sub()}`
      if (r < 0.72) return `!${sub()}`
      if (r < 0.8) return `${sub()} ? ${sub()} : ${sub()}`
      const v = names[vars.length % names.length]!
      const body = test(depth - 1, [...vars, v])
      return `${value(depth - 1, vars)}.${pick(['exists', 'all'])}(${v}, ${body})`
    }
    const expr = (depth: number, vars: readonly string[]) => test(depth, vars)
    const withCodegen = createCelEnvironment(VARIABLE_NAMES, { maxIterations: 40 })
    const withClosures = createCelEnvironment(VARIABLE_NAMES, { maxIterations: 40 })
    let generated = 0
    let answered = 0
    const problems: string[] = []
    for (let n = 0; n < 2500; n++) {
      const source = expr(4, [])
      const a = compileWithCodegen(source, withCodegen)
      if (!a.ok) continue
      const b = compileWithoutCodegen(source, withClosures)
      if (!b.ok) throw new Error(`compiled once only: ${source}`)
      if (isGenerated(a.expression.fast)) generated++
      else if (a.expression.fast !== undefined) problems.push(`closures where code is allowed: ${source}`)
      // Both cover the same expressions.
      if ((a.expression.fast === undefined) !== (b.expression.fast === undefined))
        problems.push(`coverage: ${source}`)
      for (const [name, ctx] of CONTEXTS) {
        const got = a.expression.fast?.(ctx)
        const closures = b.expression.fast?.(ctx)
        if (got !== closures) problems.push(`${source} on "${name}": generated ${got}, closures ${closures}`)
        if (got === undefined) continue
        answered++
        const want = a.expression.run(requestVariables(ctx))
        if (!want.ok || want.value !== got)
          problems.push(`${source} on "${name}": generated ${got}, engine ${JSON.stringify(want)}`)
      }
    }
    expect(problems.slice(0, 20)).toEqual([])
    console.log(`random expressions: ${generated} generated, ${answered} answers compared`)
    expect(generated).toBeGreaterThan(1000)
    expect(answered).toBeGreaterThan(700)
  })
})
