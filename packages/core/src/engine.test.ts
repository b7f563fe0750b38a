import { describe, expect, test } from 'vitest'
import type { RequestContext } from './context.js'
import type { Decision } from './decision.js'
import { createEngine, type DecisionEvent, type EngineOptions } from './engine.js'
import { PolicyError } from './errors.js'
import { type Evaluator, fail, ok } from './evaluator.js'

/**
 * A test evaluator whose rule body says what to return: `{ value }`, `{ error }`, `{ throws }`,
 * `{ async: ms, value }` (resolves later), `{ hang: true }` (never resolves), or `{ header }`
 * (true when that header is present).
 */
const fixed: Evaluator = {
  kind: 'fixed',
  compile(config) {
    const c = config as {
      value?: unknown
      error?: string
      throws?: unknown
      async?: number
      hang?: boolean
      header?: string
      bad?: string
    }
    if (c.bad !== undefined) return { ok: false, problems: [{ code: 'compile', message: c.bad, path: '' }] }
    return {
      ok: true,
      program: {
        evaluate(ctx: RequestContext) {
          if (c.hang) return new Promise(() => {})
          if (c.throws !== undefined) throw c.throws
          if (c.error !== undefined) return fail(c.error)
          if (c.header !== undefined) return ok(ctx.input.headers[c.header] !== undefined)
          if (c.async !== undefined) return new Promise((r) => setTimeout(() => r(ok(c.value)), c.async))
          return ok(c.value)
        },
      },
    }
  },
}

const T = { fixed: { value: true } }
const F = { fixed: { value: false } }
const E = { fixed: { error: 'boom' } }
const N = { fixed: { value: 'yes' } }

async function decideWith(
  policy: Record<string, unknown>,
  input: unknown = { path: '/' },
  options: EngineOptions = {},
): Promise<Decision> {
  const engine = await createEngine(policy, { evaluators: [fixed], ...options })
  return engine.decide(input)
}

type Row = [
  string,
  Array<Record<string, unknown>>,
  { allowed: boolean; code: string; rule?: string; status?: number },
]

// agentgateway's order (protocols.md §5): any deny true -> deny; any require not true -> deny;
// any allow true -> allow; otherwise deny if allow rules exist, allow if only deny/require exist.
// Errors fail closed: deny/require deny, allow does not match.
const combination: Row[] = [
  // No rules at all is a load problem unless a default says so: empty-policy.test.ts.
  ['allow true', [{ id: 'a', action: 'allow', ...T }], { allowed: true, code: 'allowed', rule: 'a' }],
  ['allow false', [{ id: 'a', action: 'allow', ...F }], { allowed: false, code: 'no_match', status: 403 }],
  ['allow error does not match', [{ id: 'a', action: 'allow', ...E }], { allowed: false, code: 'no_match' }],
  [
    'allow non-boolean does not match',
    [{ id: 'a', action: 'allow', ...N }],
    { allowed: false, code: 'no_match' },
  ],
  [
    'second allow matches after a failing one',
    [
      { id: 'a', action: 'allow', ...E },
      { id: 'b', action: 'allow', ...T },
    ],
    { allowed: true, code: 'allowed', rule: 'b' },
  ],
  ['deny true', [{ id: 'd', action: 'deny', ...T }], { allowed: false, code: 'denied', rule: 'd' }],
  [
    'deny false, nothing else: allow',
    [{ id: 'd', action: 'deny', ...F }],
    { allowed: true, code: 'allowed' },
  ],
  [
    'deny error fails closed',
    [{ id: 'd', action: 'deny', ...E }],
    { allowed: false, code: 'evaluator_error', rule: 'd' },
  ],
  [
    'deny non-boolean fails closed',
    [{ id: 'd', action: 'deny', ...N }],
    { allowed: false, code: 'evaluator_error', rule: 'd' },
  ],
  [
    'deny beats allow',
    [
      { id: 'a', action: 'allow', ...T },
      { id: 'd', action: 'deny', ...T },
    ],
    { allowed: false, code: 'denied', rule: 'd' },
  ],
  ['require true alone allows', [{ id: 'r', action: 'require', ...T }], { allowed: true, code: 'allowed' }],
  [
    'require false denies',
    [{ id: 'r', action: 'require', ...F }],
    { allowed: false, code: 'denied', rule: 'r' },
  ],
  [
    'require error fails closed',
    [{ id: 'r', action: 'require', ...E }],
    { allowed: false, code: 'evaluator_error', rule: 'r' },
  ],
  [
    'require non-boolean fails closed',
    [{ id: 'r', action: 'require', ...N }],
    { allowed: false, code: 'evaluator_error', rule: 'r' },
  ],
  [
    'require false beats allow true',
    [
      { id: 'a', action: 'allow', ...T },
      { id: 'r', action: 'require', ...F },
    ],
    { allowed: false, code: 'denied', rule: 'r' },
  ],
  [
    'require true + allow false: deny',
    [
      { id: 'a', action: 'allow', ...F },
      { id: 'r', action: 'require', ...T },
    ],
    { allowed: false, code: 'no_match' },
  ],
  [
    'require true + allow true: allow',
    [
      { id: 'a', action: 'allow', ...T },
      { id: 'r', action: 'require', ...T },
    ],
    { allowed: true, code: 'allowed', rule: 'a' },
  ],
  [
    'deny false + require true + no allow: allow',
    [
      { id: 'd', action: 'deny', ...F },
      { id: 'r', action: 'require', ...T },
    ],
    { allowed: true, code: 'allowed' },
  ],
  ['decide true', [{ id: 'x', action: 'decide', ...T }], { allowed: true, code: 'allowed', rule: 'x' }],
  ['decide false', [{ id: 'x', action: 'decide', ...F }], { allowed: false, code: 'denied', rule: 'x' }],
  [
    'decide error',
    [{ id: 'x', action: 'decide', ...E }],
    { allowed: false, code: 'evaluator_error', rule: 'x' },
  ],
  [
    'decide non-decision value',
    [{ id: 'x', action: 'decide', ...N }],
    { allowed: false, code: 'evaluator_error', rule: 'x' },
  ],
  [
    'decide deny is final over allow',
    [
      { id: 'a', action: 'allow', ...T },
      { id: 'x', action: 'decide', ...F },
    ],
    { allowed: false, code: 'denied', rule: 'x' },
  ],
  [
    'decide allow, then allow rules still apply',
    [
      { id: 'x', action: 'decide', ...T },
      { id: 'a', action: 'allow', ...F },
    ],
    { allowed: false, code: 'no_match' },
  ],
  [
    'decide allow, then deny rules still apply',
    [
      { id: 'x', action: 'decide', ...T },
      { id: 'd', action: 'deny', ...T },
    ],
    { allowed: false, code: 'denied', rule: 'd' },
  ],
  [
    'condition false skips a deny',
    [{ id: 'd', action: 'deny', when: F, ...T }],
    { allowed: true, code: 'allowed' },
  ],
  [
    'condition false skips a require',
    [{ id: 'r', action: 'require', when: F, ...F }],
    { allowed: true, code: 'allowed' },
  ],
  [
    'condition true applies a deny',
    [{ id: 'd', action: 'deny', when: T, ...T }],
    { allowed: false, code: 'denied', rule: 'd' },
  ],
  [
    'condition error on deny fails closed',
    [{ id: 'd', action: 'deny', when: E, ...F }],
    { allowed: false, code: 'evaluator_error', rule: 'd' },
  ],
  [
    'condition non-boolean on deny fails closed',
    [{ id: 'd', action: 'deny', when: N, ...F }],
    { allowed: false, code: 'evaluator_error', rule: 'd' },
  ],
  [
    'condition error on allow does not match',
    [{ id: 'a', action: 'allow', when: E, ...T }],
    { allowed: false, code: 'no_match' },
  ],
  [
    'condition false skips an allow',
    [{ id: 'a', action: 'allow', when: F, ...T }],
    { allowed: false, code: 'no_match' },
  ],
  [
    'condition false skips a decide',
    [{ id: 'x', action: 'decide', when: F, ...F }],
    { allowed: true, code: 'allowed' },
  ],
  [
    'shadow deny is recorded, not enforced',
    [{ id: 'd', action: 'deny', shadow: true, ...T }],
    { allowed: true, code: 'allowed' },
  ],
  [
    'shadow allow does not count as an allow rule',
    [{ id: 'a', action: 'allow', shadow: true, ...F }],
    { allowed: true, code: 'allowed' },
  ],
]

describe('combination (one layer)', () => {
  test.each(combination)('%s', async (_name, rules, want) => {
    const d = await decideWith({ rules })
    expect(d).toMatchObject(want)
    if (want.rule === undefined && !want.allowed) expect(d.rule).toBeUndefined()
  })

  test('reasons name the rule and the error', async () => {
    expect((await decideWith({ rules: [{ id: 'd', action: 'deny', ...E }] })).reason).toBe(
      'deny rule d failed: boom',
    )
    expect((await decideWith({ rules: [{ id: 'a', action: 'allow', ...E }] })).reason).toBe(
      'no allow rule matched (failed: a: boom)',
    )
    expect((await decideWith({ rules: [{ id: 'r', action: 'require', ...F }] })).reason).toBe(
      'require rule r not satisfied',
    )
    expect((await decideWith({ rules: [{ id: 'r', action: 'require', ...N }] })).reason).toMatch(
      /returned string, not a boolean/,
    )
  })

  test('an evaluator that throws (Error, string, object) fails closed', async () => {
    for (const throws of [new Error('kaput'), 'a string', { code: 42 }]) {
      const d = await decideWith({ rules: [{ id: 'd', action: 'deny', fixed: { throws } }] })
      expect(d).toMatchObject({ allowed: false, code: 'evaluator_error' })
      expect(d.reason).toMatch(/evaluator threw/)
    }
  })

  test('layer default overrides the derived fallback', async () => {
    expect(
      await decideWith({ layers: [{ default: 'deny', rules: [{ id: 'd', action: 'deny', ...F }] }] }),
    ).toMatchObject({ allowed: false, code: 'no_match' })
    expect(
      await decideWith({ layers: [{ default: 'allow', rules: [{ id: 'a', action: 'allow', ...F }] }] }),
    ).toMatchObject({ allowed: true })
  })
})

describe('layers are AND-ed (kube-agentic-networking: gateway and backend levels)', () => {
  const allowIf = (header: string) => ({ id: `allow-${header}`, action: 'allow', fixed: { header } })
  const policy = {
    layers: [
      { name: 'gateway', rules: [allowIf('x-gw')] },
      { name: 'backend', rules: [allowIf('x-be'), allowIf('x-be2')] },
    ],
  }
  test.each([
    [{}, false],
    [{ 'x-gw': '1' }, false],
    [{ 'x-be': '1' }, false],
    [{ 'x-gw': '1', 'x-be': '1' }, true],
    [{ 'x-gw': '1', 'x-be2': '1' }, true],
  ])('%o -> %s', async (headers, allowed) => {
    const d = await decideWith(policy, { path: '/', headers })
    expect(d.allowed).toBe(allowed)
  })
  test('the reason names the denying layer', async () => {
    const d = await decideWith(policy, { path: '/', headers: { 'x-gw': '1' } })
    expect(d.reason).toBe('no allow rule matched in layer backend')
  })
})

describe('responses and overrides', () => {
  test('default denial: 403, body "access denied"', async () => {
    expect(await decideWith({ rules: [{ id: 'a', action: 'allow', ...F }] })).toMatchObject({
      status: 403,
      body: 'access denied',
      headers: [],
    })
  })

  test('policy, layer and rule overrides, most specific wins', async () => {
    const base = {
      responses: { denied: { status: 401, body: 'policy', headers: { 'x-p': 'p', 'x-both': 'policy' } } },
    }
    expect(await decideWith({ ...base, rules: [{ id: 'a', action: 'allow', ...F }] })).toMatchObject({
      status: 401,
      body: 'policy',
    })
    const layer = await decideWith({
      ...base,
      layers: [
        {
          denied: { status: 404, headers: { 'x-both': 'layer' } },
          rules: [{ id: 'a', action: 'allow', ...F }],
        },
      ],
    })
    expect(layer).toMatchObject({ status: 404, body: 'policy' })
    expect(layer.headers).toEqual([
      { key: 'x-p', value: 'p' },
      { key: 'x-both', value: 'layer' },
    ])
    const rule = await decideWith({
      ...base,
      rules: [
        {
          id: 'd',
          action: 'deny',
          response: { status: 429, body: 'slow down', headers: { 'Retry-After': '5' } },
          ...T,
        },
      ],
    })
    expect(rule).toMatchObject({ status: 429, body: 'slow down', rule: 'd' })
    expect(rule.headers).toContainEqual({ key: 'retry-after', value: '5' })
  })

  test('errors use responses.error', async () => {
    const d = await decideWith({
      responses: { error: { status: 503, body: 'try later' } },
      rules: [{ id: 'd', action: 'deny', ...E }],
    })
    expect(d).toMatchObject({ status: 503, body: 'try later', code: 'evaluator_error' })
  })

  test('allow headers: rule headers and policy-wide headers', async () => {
    const d = await decideWith({
      responses: { allowed: { headers: { 'x-checked': 'yes' }, responseHeaders: { 'x-resp': '1' } } },
      rules: [{ id: 'a', action: 'allow', headers: { 'x-rule': 'a' }, ...T }],
    })
    expect(d.headers).toEqual([
      { key: 'x-rule', value: 'a' },
      { key: 'x-checked', value: 'yes' },
    ])
    expect(d.responseHeadersToAdd).toEqual([{ key: 'x-resp', value: '1' }])
  })

  test('decide rules: OPA-Envoy decision objects map onto the decision', async () => {
    const allow = await decideWith({
      rules: [
        {
          id: 'x',
          action: 'decide',
          fixed: {
            value: {
              allowed: true,
              headers: { 'x-user': 'alice', 'x-multi': ['1', '2'] },
              response_headers_to_add: { 'x-r': 'r' },
              request_headers_to_remove: ['authorization'],
              query_parameters_to_set: { a: 'b' },
              query_parameters_to_remove: ['token'],
              dynamic_metadata: { decision: 'ok' },
            },
          },
        },
      ],
    })
    expect(allow).toMatchObject({
      allowed: true,
      rule: 'x',
      headers: [
        { key: 'x-user', value: 'alice' },
        { key: 'x-multi', value: '1' },
        { key: 'x-multi', value: '2', append: 'append' },
      ],
      headersToRemove: ['authorization'],
      responseHeadersToAdd: [{ key: 'x-r', value: 'r' }],
      queryParametersToSet: [{ key: 'a', value: 'b' }],
      queryParametersToRemove: ['token'],
      dynamicMetadata: { decision: 'ok' },
    })
    const denyObj = await decideWith({
      rules: [
        {
          id: 'x',
          action: 'decide',
          fixed: { value: { allowed: false, http_status: 429, body: 'nope', headers: { 'x-why': 'law' } } },
        },
      ],
    })
    expect(denyObj).toMatchObject({
      allowed: false,
      status: 429,
      body: 'nope',
      headers: [{ key: 'x-why', value: 'law' }],
    })
  })

  test.each([
    [{ allowed: 'yes' }, /"allowed" must be a boolean/],
    [{}, /no "allowed" field/],
    [{ allowed: false, http_status: 418 }, /418 is not a valid HTTP status/],
    [{ allowed: false, http_status: 0 }, /0 is not a valid HTTP status/],
    [{ allowed: true, headers: 'x' }, /headers must be an object/],
    [{ allowed: true, headers: { 'bad name': 'x' } }, /invalid header name/],
    [{ allowed: true, headers: { a: 'x\ny' } }, /control character/],
    [{ allowed: true, headers: { a: 1 } }, /must be a string or a list/],
    [{ allowed: true, request_headers_to_remove: 'authorization' }, /list of strings/],
    [{ allowed: true, query_parameters_to_set: [] }, /must be an object/],
    [{ allowed: true, query_parameters_to_set: { a: 1 } }, /string or a list/],
    [{ allowed: false, body: 5 }, /body must be a string/],
    [{ allowed: true, dynamic_metadata: [] }, /dynamic_metadata must be an object/],
    [[true], /got a list/],
    [null, /got null/],
    [7, /got 7/],
  ])('decide rule result %j fails closed', async (value, reason) => {
    const d = await decideWith({ rules: [{ id: 'x', action: 'decide', fixed: { value } }] })
    expect(d).toMatchObject({ allowed: false, code: 'evaluator_error', status: 403 })
    expect(d.reason).toMatch(reason)
  })
})

describe('policy loading', () => {
  test('an invalid status in a rule is a load error with its location', async () => {
    const err = await createEngine(
      'rules:\n  - id: a\n    action: deny\n    match: { always: true }\n    response: { status: 418 }\n',
    ).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PolicyError)
    const p = (err as PolicyError).problems
    expect(p).toEqual([
      expect.objectContaining({ code: 'invalid_status', path: '/rules/0/response/status', line: 5 }),
    ])
  })

  test('every problem at once, each with its path and line', async () => {
    const text = [
      'name: 5',
      'bogus: true',
      'rules:',
      '  - id: a',
      '    action: permit',
      '    match: { always: true }',
      '  - id: a',
      '    action: allow',
      '    nope: {}',
      '  - id: c',
      '    action: allow',
      '    match: { always: true }',
      '    fixed: { value: true }',
      '  - id: d',
      '    action: allow',
      '    fixed: { bad: "syntax error at 1:3" }',
      '  - id: e',
      '    action: allow',
      '',
    ].join('\n')
    const err = (await createEngine(text, { evaluators: [fixed] }).catch((e: unknown) => e)) as PolicyError
    expect(err).toBeInstanceOf(PolicyError)
    const summary = err.problems.map((p) => `${p.line}:${p.path}:${p.code}`)
    expect(summary).toEqual(
      expect.arrayContaining([
        '1:/name:schema',
        '1::schema',
        '5:/rules/0/action:schema',
        '7:/rules/1/id:duplicate_rule_id',
        '9:/rules/1/nope:unknown_rule_kind',
        '10:/rules/2:ambiguous_rule_kind',
        '16:/rules/3/fixed:compile',
        '17:/rules/4:unknown_rule_kind',
      ]),
    )
    expect(err.message).toMatch(/^policy has \d+ problems:/)
    expect(err.problems.find((p) => p.code === 'compile')?.ruleId).toBe('d')
  })

  test('YAML parse errors and duplicate keys carry line and column', async () => {
    const err = (await createEngine('rules:\n  - id: a\n    id: b\n').catch((e: unknown) => e)) as PolicyError
    expect(err.problems[0]).toMatchObject({ code: 'policy_parse', line: 3 })
    const err2 = (await createEngine('rules: [\n').catch((e: unknown) => e)) as PolicyError
    expect(err2.problems[0]?.code).toBe('policy_parse')
  })

  test('rules and layers together are rejected', async () => {
    const err = (await createEngine({ rules: [], layers: [{ rules: [] }] }).catch(
      (e: unknown) => e,
    )) as PolicyError
    expect(err.problems.map((p) => p.message)).toContain('must not have both rules and layers')
  })

  test('a non-object document is rejected', async () => {
    await expect(createEngine('- a\n- b\n')).rejects.toBeInstanceOf(PolicyError)
  })

  test('an evaluator that throws while compiling is a problem, not a crash', async () => {
    const throwing: Evaluator = {
      kind: 'boom',
      compile() {
        throw new Error('compiler exploded')
      },
    }
    const err = (await createEngine(
      { rules: [{ id: 'a', action: 'allow', boom: 1 }] },
      { evaluators: [throwing] },
    ).catch((e: unknown) => e)) as PolicyError
    expect(err.problems[0]).toMatchObject({ code: 'compile', ruleId: 'a' })
    expect(err.problems[0]?.message).toMatch(/compiler exploded/)
  })

  test('evaluator config schemas are checked with the document', async () => {
    const typed: Evaluator = {
      kind: 'typed',
      configSchema: { type: 'string' },
      compile: () => ({ ok: true, program: { evaluate: () => ok(true) } }),
    }
    const err = (await createEngine(
      { rules: [{ id: 'a', action: 'allow', typed: 5 }] },
      { evaluators: [typed] },
    ).catch((e: unknown) => e)) as PolicyError
    expect(err.problems[0]).toMatchObject({ code: 'schema', path: '/rules/0/typed', ruleId: 'a' })
  })
})

describe('fail closed at runtime', () => {
  test('a hanging evaluator times out with a deny', async () => {
    const d = await decideWith({
      timeoutMs: 30,
      rules: [{ id: 'h', action: 'allow', fixed: { hang: true } }],
    })
    expect(d).toMatchObject({ allowed: false, code: 'timeout', status: 403 })
    expect(d.reason).toBe('decision timed out after 30 ms')
  })

  test('an async evaluator that answers in time decides', async () => {
    const d = await decideWith({
      timeoutMs: 1000,
      rules: [{ id: 'a', action: 'allow', fixed: { async: 5, value: true } }],
    })
    expect(d).toMatchObject({ allowed: true, rule: 'a' })
  })

  test('an async evaluator that rejects fails closed', async () => {
    const rejecting: Evaluator = {
      kind: 'rej',
      compile: () => ({ ok: true, program: { evaluate: () => Promise.reject(new Error('network down')) } }),
    }
    const engine = await createEngine(
      { rules: [{ id: 'd', action: 'deny', rej: {} }] },
      { evaluators: [rejecting] },
    )
    const d = await engine.decide({ path: '/' })
    expect(d).toMatchObject({ allowed: false, code: 'evaluator_error' })
    expect(d.reason).toMatch(/network down/)
  })

  test('malformed input is a 400 decision, not a throw', async () => {
    const engine = await createEngine({ default: 'allow', rules: [] })
    for (const raw of [undefined, 42, 'x', [], { attributes: null }]) {
      const d = await engine.decide(raw)
      expect(d).toMatchObject({ allowed: false, status: 400, code: 'malformed_input' })
    }
  })

  test('an internal bug is a deny with code internal', async () => {
    const engine = await createEngine({ default: 'allow', rules: [] })
    // A getter that throws something that is not an input problem exercises the internal guard.
    const hostile = {
      get attributes(): never {
        throw new TypeError('hostile getter')
      },
    }
    Object.defineProperty(hostile, 'attributes', { enumerable: true })
    const d = await engine.decide(hostile)
    expect(d).toMatchObject({ allowed: false, code: 'internal', status: 403 })
  })
})

describe('shadow mode', () => {
  test('per-rule shadow records what each rule would have decided', async () => {
    const d = await decideWith({
      rules: [
        { id: 'd', action: 'deny', shadow: true, ...T },
        { id: 'r', action: 'require', shadow: true, ...F },
        { id: 'e', action: 'deny', shadow: true, ...E },
        { id: 'a', action: 'allow', shadow: true, ...T },
        { id: 'x', action: 'decide', shadow: true, fixed: { value: { allowed: false } } },
        { id: 'w', action: 'deny', shadow: true, when: F, ...T },
      ],
    })
    expect(d.allowed).toBe(true)
    expect(d.shadow).toEqual([
      { rule: 'd', outcome: 'match', wouldDecide: 'deny' },
      { rule: 'r', outcome: 'no_match', wouldDecide: 'deny' },
      { rule: 'e', outcome: 'error', wouldDecide: 'deny', error: 'boom' },
      { rule: 'a', outcome: 'match', wouldDecide: 'allow' },
      { rule: 'x', outcome: 'match', wouldDecide: 'deny' },
      { rule: 'w', outcome: 'no_match', wouldDecide: 'none' },
    ])
  })

  test('policy-wide shadow evaluates everything and enforces nothing', async () => {
    const d = await decideWith({ shadow: true, rules: [{ id: 'd', action: 'deny', ...T }] })
    expect(d).toMatchObject({ allowed: true, shadow: [{ rule: 'd', wouldDecide: 'deny' }] })
  })

  test('shadow records survive an enforced denial', async () => {
    const d = await decideWith({
      rules: [
        { id: 's', action: 'allow', shadow: true, ...T },
        { id: 'd', action: 'deny', ...T },
      ],
    })
    expect(d).toMatchObject({ allowed: false, shadow: [{ rule: 's', wouldDecide: 'allow' }] })
  })
})

describe('identity and events', () => {
  test('the peer principal is the identity when no token verified', async () => {
    const d = await decideWith(
      { default: 'allow', rules: [] },
      { path: '/', source: { principal: 'spiffe://td/ns/a/sa/b' } },
    )
    expect(d.identity).toEqual({
      kind: 'peer',
      subject: 'spiffe://td/ns/a/sa/b',
      principal: 'spiffe://td/ns/a/sa/b',
    })
    const denied = await decideWith(
      { rules: [{ id: 'd', action: 'deny', ...T }] },
      { path: '/', source: { principal: 'p' } },
    )
    expect(denied.identity?.principal).toBe('p')
  })

  test('one event per decision, redacted', async () => {
    const events: DecisionEvent[] = []
    const engine = await createEngine(
      { name: 'p1', rules: [{ id: 'a', action: 'allow', ...T }] },
      { evaluators: [fixed], onDecision: (e) => events.push(e) },
    )
    await engine.decide({
      path: '/x?access_token=SECRET',
      headers: { authorization: 'Bearer SECRET' },
      body: 'SECRET',
    })
    await engine.decide('garbage')
    expect(events).toHaveLength(2)
    expect(events[0]).toMatchObject({
      policy: 'p1',
      allowed: true,
      status: 200,
      rule: 'a',
      input: { method: 'GET', path: '/x' },
    })
    expect(events[0]?.id).toMatch(/^[0-9a-f-]{36}$/)
    expect(JSON.stringify(events)).not.toContain('SECRET')
    expect(events[1]).toMatchObject({ allowed: false, status: 400 })
  })

  test("what an evaluator said is in the decision's reason but not in its event", async () => {
    const events: DecisionEvent[] = []
    const leak = { fixed: { error: 'cannot convert "Bearer SECRET" to int' } }
    const policies = [
      { rules: [{ id: 'd', action: 'deny', ...leak }] },
      { rules: [{ id: 'r', action: 'require', ...leak }] },
      { rules: [{ id: 'x', action: 'decide', ...leak }] },
      { rules: [{ id: 'a', action: 'allow', ...leak }] },
    ]
    const reasons: string[] = []
    for (const p of policies) {
      const engine = await createEngine(p, { evaluators: [fixed], onDecision: (e) => events.push(e) })
      const d = await engine.decide({ path: '/' })
      expect(d.allowed).toBe(false)
      expect(d.reason).toContain('Bearer SECRET')
      reasons.push(d.reason)
    }
    expect(events.map((e) => e.reason)).toEqual([
      "deny rule d failed (the evaluator's message is not logged)",
      "require rule r failed (the evaluator's message is not logged)",
      "rule x failed (the evaluator's message is not logged)",
      'no allow rule matched (rules failed; their messages are not logged)',
    ])
    expect(JSON.stringify(events)).not.toContain('SECRET')
  })

  test('the caller can name the decision in its event', async () => {
    const events: DecisionEvent[] = []
    const engine = await createEngine({ default: 'allow', rules: [] }, { onDecision: (e) => events.push(e) })
    await engine.decide({ path: '/' }, { id: 'req-42' })
    await engine.decide('garbage', { id: 'req-43' })
    expect(events.map((e) => e.id)).toEqual(['req-42', 'req-43'])
  })

  test('a throwing listener does not change the decision', async () => {
    const engine = await createEngine(
      { default: 'allow', rules: [] },
      {
        onDecision: () => {
          throw new Error('listener')
        },
      },
    )
    expect((await engine.decide({ path: '/' })).allowed).toBe(true)
  })
})

describe('hot swap', () => {
  test('update swaps atomically; a failing update keeps the old policy', async () => {
    const engine = await createEngine(
      { name: 'v1', rules: [{ id: 'a', action: 'allow', ...F }] },
      { evaluators: [fixed] },
    )
    expect((await engine.decide({ path: '/' })).allowed).toBe(false)
    await engine.update({ name: 'v2', rules: [{ id: 'a', action: 'allow', ...T }] })
    expect(engine.info).toEqual({ name: 'v2', generation: 1 })
    expect((await engine.decide({ path: '/' })).allowed).toBe(true)
    await expect(engine.update({ rules: [{ id: 'a', action: 'allow', nope: 1 }] })).rejects.toBeInstanceOf(
      PolicyError,
    )
    expect(engine.info).toEqual({ name: 'v2', generation: 1 })
    expect((await engine.decide({ path: '/' })).allowed).toBe(true)
  })

  test('in-flight decisions finish on the policy they started with', async () => {
    const engine = await createEngine(
      { rules: [{ id: 'slow', action: 'allow', fixed: { async: 30, value: true } }] },
      { evaluators: [fixed] },
    )
    const inflight = engine.decide({ path: '/' })
    await engine.update({ rules: [{ id: 'new', action: 'allow', ...F }] })
    expect(await inflight).toMatchObject({ allowed: true, rule: 'slow' })
    expect(await engine.decide({ path: '/' })).toMatchObject({ allowed: false })
  })

  test('close releases evaluator resources and refuses updates', async () => {
    let disposed = 0
    const disposable: Evaluator = {
      kind: 'disp',
      compile: () => ({
        ok: true,
        program: {
          evaluate: () => ok(true),
          dispose: () => {
            disposed++
          },
        },
      }),
    }
    const engine = await createEngine(
      { rules: [{ id: 'a', action: 'allow', disp: {} }] },
      { evaluators: [disposable] },
    )
    engine.close()
    expect(disposed).toBe(1)
    await expect(engine.update({ default: 'allow', rules: [] })).rejects.toThrow(/closed/)
  })
})

describe('authentication outcomes in the decision', () => {
  async function jwtEngine(mode: string) {
    const { createTestIssuer } = await import('./testing/issuer.js')
    const idp = await createTestIssuer({ issuer: 'https://idp.engine.test' })
    const engine = await createEngine({
      authentication: {
        jwt: {
          mode,
          providers: [
            {
              issuer: idp.issuer,
              jwks: { inline: idp.jwks },
              claimsToHeaders: [{ claim: 'sub', header: 'x-user' }],
            },
          ],
        },
      },
      default: 'allow',
      rules: [],
    })
    return { idp, engine }
  }

  test('a failed token names its specific code beside the category', async () => {
    const { idp, engine } = await jwtEngine('Strict')
    const token = await idp.sign({ sub: 'alice', exp: 1_000_000_000 })
    const d = await engine.decide({ path: '/', headers: { authorization: `Bearer ${token}` } })
    expect(d).toMatchObject({
      allowed: false,
      status: 401,
      code: 'unauthenticated',
      detailCode: 'jwt_expired',
    })
    expect(d.headers).toContainEqual({
      key: 'www-authenticate',
      value: 'Bearer realm="verdict", error="invalid_token"',
    })
    expect(d.reason).not.toContain(token)
  })

  test('claim headers cannot be forged by callers without a verified token', async () => {
    const optional = await jwtEngine('Optional')
    const anon = await optional.engine.decide({ path: '/', headers: { 'x-user': 'admin' } })
    expect(anon).toMatchObject({ allowed: true, headersToRemove: ['x-user'] })
    const permissive = await jwtEngine('Permissive')
    const bad = await permissive.engine.decide({
      path: '/',
      headers: { 'x-user': 'admin', authorization: 'Bearer x.y.z' },
    })
    expect(bad).toMatchObject({ allowed: true, headersToRemove: ['x-user'] })
    const ok = await optional.engine.decide({
      path: '/',
      headers: { authorization: `Bearer ${await optional.idp.sign({ sub: 'alice' })}` },
    })
    expect(ok.headers).toContainEqual({ key: 'x-user', value: 'alice', append: 'overwrite' })
    expect(ok.headersToRemove).toContain('authorization')
  })
})

describe('mcp settings', () => {
  test('unknown or misspelled MCP settings are load errors', async () => {
    const err = (await createEngine({ mcp: { denail: 'jsonrpc' }, default: 'allow', rules: [] }).catch(
      (e: unknown) => e,
    )) as PolicyError
    expect(err.problems[0]).toMatchObject({ path: '/mcp', message: 'unknown field "denail"' })
    await expect(
      createEngine({
        mcp: { enabled: 'auto', batches: 'reject', denial: 'hidden' },
        default: 'allow',
        rules: [],
      }),
    ).resolves.toBeDefined()
  })
})
