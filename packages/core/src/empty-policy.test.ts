// Issue 15: a policy (or a layer) with no rules must not allow every request silently. It is a
// load problem unless a `default` says allow or deny on purpose (docs/policy.md, docs/semantics.md).
import { describe, expect, test } from 'vitest'
import { createEngine } from './engine.js'
import { PolicyError, type Problem } from './errors.js'

const header = (id: string, name: string, action = 'allow') =>
  `  - id: ${id}\n    action: ${action}\n    match: { headers: [{ name: ${name}, present: true }] }\n`

/** Indent YAML lines by four spaces (rules inside a layer). */
const indent = (yaml: string) => yaml.replace(/^(?=.)/gm, '    ')

async function problemsOf(policy: string | Record<string, unknown>): Promise<readonly Problem[]> {
  const err = await createEngine(policy).then(
    (e) => {
      e.close()
      return undefined
    },
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(PolicyError)
  return (err as PolicyError).problems
}

async function decide(policy: string | Record<string, unknown>, headers: Record<string, string> = {}) {
  const engine = await createEngine(policy)
  try {
    return await engine.decide({ method: 'GET', path: '/reports', headers })
  } finally {
    engine.close()
  }
}

describe('a policy without rules and without a default is a load problem', () => {
  test('no rules field at all: reported at the document, with line and column and what to write', async () => {
    const problems = await problemsOf('# nothing decides here\nname: empty\n')
    expect(problems).toEqual([expect.objectContaining({ code: 'no_rules', path: '', line: 2, column: 1 })])
    expect(problems[0]?.message).toMatch(/no rules/)
    expect(problems[0]?.message).toMatch(/default: allow/)
    expect(problems[0]?.message).toMatch(/default: deny/)
  })

  test('rules: [] is reported at the empty list', async () => {
    const problems = await problemsOf('name: empty\nrules: []\n')
    expect(problems).toEqual([
      expect.objectContaining({ code: 'no_rules', path: '/rules', line: 2, column: 8 }),
    ])
    // The PolicyError message is what `verdict check` prints: position, pointer, code.
    const err = await createEngine('name: empty\nrules: []\n').catch((e: unknown) => e)
    expect((err as PolicyError).message).toMatch(/^2:8 \/rules: policy has no rules.*\[no_rules\]$/m)
  })

  test('an object policy (no text) has the path but no line', async () => {
    const problems = await problemsOf({ rules: [] })
    expect(problems).toEqual([expect.objectContaining({ code: 'no_rules', path: '/rules' })])
    expect(problems[0]?.line).toBeUndefined()
  })

  test('reported together with the other problems, not first and alone', async () => {
    const problems = await problemsOf(
      'name: empty\nresponses:\n  denied: { status: 418 }\nmcp: { denail: jsonrpc }\nrules: []\n',
    )
    expect(problems.map((p) => `${p.line}:${p.column} ${p.path} ${p.code}`)).toEqual([
      '3:21 /responses/denied/status invalid_status',
      '4:6 /mcp schema',
      '5:8 /rules no_rules',
    ])
  })

  test('rules that exist but fail to compile are not also called empty', async () => {
    const problems = await problemsOf('rules:\n  - id: a\n    action: allow\n')
    expect(problems.map((p) => p.code)).not.toContain('no_rules')
  })

  test('an update to an empty policy is refused and the old policy stays', async () => {
    const engine = await createEngine(`rules:\n${header('a', 'x-a')}`)
    try {
      const err = await engine.update('rules: []\n').catch((e: unknown) => e)
      expect((err as PolicyError).problems).toEqual([expect.objectContaining({ code: 'no_rules' })])
      expect(await engine.decide({ path: '/', headers: {} })).toMatchObject({ allowed: false, status: 403 })
      expect(await engine.decide({ path: '/', headers: { 'x-a': '1' } })).toMatchObject({
        allowed: true,
        rule: 'a',
      })
    } finally {
      engine.close()
    }
  })
})

describe('an explicit default', () => {
  test('default: allow without rules loads and allows every request', async () => {
    for (const policy of ['default: allow\n', 'default: allow\nrules: []\n']) {
      const d = await decide(policy)
      expect(d).toMatchObject({ allowed: true, status: 200, code: 'allowed' })
      expect(d.rule).toBeUndefined()
    }
  })

  test('default: deny without rules loads and denies every request with the denied response', async () => {
    const d = await decide('default: deny\nresponses:\n  denied: { status: 403, body: closed }\n', {
      'x-a': '1',
    })
    expect(d).toMatchObject({ allowed: false, status: 403, code: 'no_match', body: 'closed' })
    expect(await decide({ default: 'deny', rules: [] })).toMatchObject({ allowed: false, status: 403 })
  })

  test('default applies to the top-level rules as a layer default does', async () => {
    // A deny-list with default: deny lets nothing through that no allow rule allows.
    const policy = `default: deny\nrules:\n${header('no-debug', 'x-debug', 'deny')}`
    expect(await decide(policy)).toMatchObject({ allowed: false, code: 'no_match' })
    expect(await decide(policy, { 'x-debug': '1' })).toMatchObject({ allowed: false, rule: 'no-debug' })
    // default: allow next to allow rules: unmatched requests pass.
    const open = `default: allow\nrules:\n${header('a', 'x-a')}`
    expect(await decide(open)).toMatchObject({ allowed: true, code: 'allowed' })
  })

  test('only allow or deny are defaults', async () => {
    const problems = await problemsOf('default: permit\n')
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ code: 'schema', path: '/default', line: 1, column: 10 }),
        expect.objectContaining({ code: 'no_rules', path: '' }),
      ]),
    )
  })

  test('a top-level default next to layers is a problem at the default (each layer states its own)', async () => {
    const problems = await problemsOf(
      `default: allow\nlayers:\n  - name: gw\n    rules:\n${indent(header('a', 'x-a'))}`,
    )
    expect(problems).toEqual([
      expect.objectContaining({
        code: 'schema',
        path: '/default',
        line: 1,
        column: 10,
        message: 'must not have both default and layers: give each layer its own default',
      }),
    ])
  })
})

describe('layers', () => {
  const layered = (backend: string) =>
    `layers:\n  - name: gateway\n    rules:\n${indent(header('gw', 'x-gw'))}  - name: backend\n${backend}`

  test('a layer with an empty rules list is a problem at that list, naming the layer', async () => {
    const problems = await problemsOf(layered('    rules: []\n'))
    expect(problems).toEqual([
      expect.objectContaining({ code: 'no_rules', path: '/layers/1/rules', line: 8, column: 12 }),
    ])
    expect(problems[0]?.message).toMatch(/layer backend has no rules/)
    expect(problems[0]?.message).toMatch(/default: allow/)
  })

  test('every empty layer is reported at once', async () => {
    const problems = await problemsOf({ layers: [{ name: 'a', rules: [] }, { rules: [] }] })
    expect(problems.map((p) => [p.code, p.path])).toEqual([
      ['no_rules', '/layers/0/rules'],
      ['no_rules', '/layers/1/rules'],
    ])
    expect(problems[1]?.message).toMatch(/layer layer-1 has no rules/)
  })

  test('a layer without a rules field is only the schema problem', async () => {
    const problems = await problemsOf({ layers: [{ name: 'a' }] })
    expect(problems.map((p) => p.code)).toEqual(['schema'])
  })

  test('an empty layer with default: allow passes every request to the other layers', async () => {
    const policy = layered('    default: allow\n    rules: []\n')
    expect(await decide(policy)).toMatchObject({ allowed: false, code: 'no_match' })
    expect(await decide(policy, { 'x-gw': '1' })).toMatchObject({ allowed: true, rule: 'gw' })
  })

  test('an empty layer with default: deny refuses every request with its own response', async () => {
    const policy = layered(
      '    default: deny\n    denied: { status: 503, body: backend closed }\n    rules: []\n',
    )
    const d = await decide(policy, { 'x-gw': '1' })
    expect(d).toMatchObject({ allowed: false, status: 503, code: 'no_match', body: 'backend closed' })
    expect(d.reason).toMatch(/in layer backend/)
  })
})

describe('deny-list mode stays: only deny rules, no default', () => {
  test('loads, allows what no deny rule denies, denies what one does', async () => {
    const policy = `rules:\n${header('no-debug', 'x-debug', 'deny')}`
    expect(await decide(policy)).toMatchObject({ allowed: true, status: 200, code: 'allowed' })
    expect(await decide(policy, { 'x-debug': '1' })).toMatchObject({
      allowed: false,
      status: 403,
      rule: 'no-debug',
    })
  })

  test('the same in a layer', async () => {
    const policy = {
      layers: [{ name: 'l', rules: [{ id: 'd', action: 'deny', match: { methods: ['DELETE'] } }] }],
    }
    expect(await decide(policy)).toMatchObject({ allowed: true })
  })
})
