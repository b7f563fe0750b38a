/**
 * Issue 18 part 3, "a closed contract": every code verdict emits is in an exported list.
 *
 * - Statically: every string literal the sources pass where a code is expected (`code:`,
 *   `detailCode:`, `hostDenial(…, 'x', …)`, `malformed(…, 'x')`, `refuse('x', …)`,
 *   `problem('x', …)`, `fail(…, …, 'x')`, `new VerdictError('x', …)`) is in `DECISION_CODES`,
 *   `DETAIL_CODES`, `PROBLEM_CODES` or `ERROR_CODES`.
 * - At run time: the decisions of every case file (examples/, test/fixtures/) and of a table of
 *   requests built to hit each refusal, authentication failure and host denial carry a `code` in
 *   `DECISION_CODES` and a `detailCode` in `DETAIL_CODES`; the problems of a table of broken
 *   policies carry a `code` in `PROBLEM_CODES`.
 * - Programmer errors (bad options) are `VerdictUsageError`s with code `invalid_option`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createCelEvaluator } from '@verdict/cel-adapter'
import {
  AUTH_FAILURE_CODES,
  createEngine,
  DECISION_CODES,
  DETAIL_CODES,
  type Decision,
  ERROR_CODES,
  type Evaluator,
  INPUT_REFUSALS,
  JWT_FAILURE_CODES,
  PolicyError,
  PROBLEM_CODES,
  type Problem,
  VerdictError,
  VerdictUsageError,
} from '@verdict/core'
import { runCaseFile } from '@verdict/core/testing'
import { createExtAuthzServer } from '@verdict/envoy'
import { createMcpEvaluator } from '@verdict/mcp'
import { createRegoEvaluator } from '@verdict/rego-adapter'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

function walk(dir: string, keep: (p: string) => boolean): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...walk(p, keep))
    else if (keep(p)) out.push(p)
  }
  return out
}

const ALL = new Set<string>([...DECISION_CODES, ...DETAIL_CODES, ...PROBLEM_CODES, ...ERROR_CODES])

describe('the code lists', () => {
  it('have no duplicates, and the detail codes hold every refusal, JWT and auth failure', () => {
    for (const list of [DECISION_CODES, DETAIL_CODES, PROBLEM_CODES, ERROR_CODES])
      expect(new Set(list).size).toBe(list.length)
    for (const c of [...INPUT_REFUSALS, ...JWT_FAILURE_CODES, ...AUTH_FAILURE_CODES])
      expect(DETAIL_CODES).toContain(c)
    expect(ERROR_CODES).toContain('policy_invalid')
    expect(ERROR_CODES).toContain('invalid_option')
    for (const c of PROBLEM_CODES) expect(ERROR_CODES).toContain(c)
    for (const list of [DECISION_CODES, DETAIL_CODES, PROBLEM_CODES, ERROR_CODES])
      expect(Object.isFrozen(list)).toBe(true)
  })
})

/** Where a source passes a code as a string literal. */
const CODE_SITES: readonly RegExp[] = [
  /(?<!readonly )\b(?:code|detailCode)\s*[:=]\s*'([^'\n]*)'/g,
  /\bhostDenial\([^,()]+,\s*'([^']*)'/g,
  /\bmalformed\([^()]*?,\s*'([^']*)'/g,
  /\brefuse\(\s*'([^']*)'/g,
  /\bproblem\(\s*'([^']*)'/g,
  /\bnew (?:VerdictError|PolicyError)\(\s*'([^']*)'/g,
  /\bfailed\([^()]*?,\s*'([^']*)'/g,
]

/** Files whose `code` is not one of verdict's (the status-name table). */
const NOT_VERDICT_CODES = [/^packages\/core\/src\/status\.ts$/]

/** The packages this contract covers (docs/architecture.md, "Public API and codes"). */
const PACKAGES = ['core', 'cel-adapter', 'rego-adapter', 'mcp', 'envoy', 'cli', 'import']

describe('every code literal in packages/*/src', () => {
  it('is in an exported code list', () => {
    const files = walk(join(ROOT, 'packages'), (p) => {
      const rel = relative(ROOT, p)
      return (
        PACKAGES.some((p) => rel.startsWith(`packages/${p}/src/`)) &&
        rel.endsWith('.ts') &&
        !rel.endsWith('.test.ts') &&
        !rel.includes('/testing/') &&
        !rel.includes('parity-cases') &&
        !NOT_VERDICT_CODES.some((r) => r.test(rel))
      )
    })
    expect(files.length).toBeGreaterThan(50)
    const strays: string[] = []
    let seen = 0
    for (const f of files) {
      const text = readFileSync(f, 'utf8')
      for (const re of CODE_SITES) {
        for (const m of text.matchAll(re)) {
          const code = m[1]!
          // Helpers named problem()/failed() also take messages first in some files: codes are
          // snake_case words, so anything else there is not a code.
          if (!/^[a-z][a-z0-9_]*$/.test(code) && !m[0].includes('ode')) continue
          seen++
          if (!ALL.has(code)) {
            const line = text.slice(0, m.index).split('\n').length
            strays.push(`${relative(ROOT, f)}:${line}: '${code}'`)
          }
        }
      }
    }
    expect(seen).toBeGreaterThan(100)
    expect(strays).toEqual([])
  })
})

function checkDecision(d: Decision, where: string, bad: string[]): void {
  if (!(DECISION_CODES as readonly string[]).includes(d.code)) bad.push(`${where}: code ${d.code}`)
  if (d.detailCode !== undefined && !(DETAIL_CODES as readonly string[]).includes(d.detailCode))
    bad.push(`${where}: detailCode ${d.detailCode}`)
}

function checkProblems(problems: readonly Problem[], where: string, bad: string[]): void {
  for (const p of problems)
    if (!(PROBLEM_CODES as readonly string[]).includes(p.code)) bad.push(`${where}: problem ${p.code}`)
}

const evaluators = (): Evaluator[] => [createCelEvaluator(), createMcpEvaluator()]

describe('decisions at run time', () => {
  it("every case file's decisions carry listed codes", async () => {
    const files = [
      ...walk(join(ROOT, 'examples'), (p) => /(^|[./])cases\.yaml$/.test(p)),
      ...walk(join(ROOT, 'test/fixtures/agentgateway'), (p) => /(^|[./])cases\.yaml$/.test(p)),
    ].filter((f) => !f.includes(`${join('examples', 'rego')}`))
    expect(files.length).toBeGreaterThan(5)
    const bad: string[] = []
    const codes = new Set<string>()
    let decisions = 0
    for (const f of files) {
      const r = await runCaseFile(f, { evaluators: evaluators() })
      for (const c of r.results) {
        decisions++
        codes.add(c.decision.code)
        if (c.decision.detailCode !== undefined) codes.add(c.decision.detailCode)
        checkDecision(c.decision, `${relative(ROOT, f)} "${c.name}"`, bad)
      }
    }
    expect(decisions).toBeGreaterThan(30)
    expect(codes.size).toBeGreaterThan(5)
    expect(bad).toEqual([])
  })

  it('refusals, authentication failures and limits carry listed codes', async () => {
    const engine = await createEngine(
      {
        input: { maxBodyBytes: 64, maxHeaders: 8 },
        authentication: {
          apiKey: { mode: 'Optional', keys: [{ key: 'k-123', metadata: { name: 'a' } }] },
        },
        rules: [
          { id: 'role', action: 'deny', match: { headers: [{ name: 'x-role', exact: 'admin' }] } },
          { id: 'cel', action: 'allow', cel: 'request.path.startsWith("/ok")' },
          { id: 'boom', action: 'deny', cel: '"x-n" in request.headers && int(request.headers["x-n"]) > 1' },
        ],
      },
      { evaluators: evaluators() },
    )
    const inputs: unknown[] = [
      { method: 'GET', path: '/ok' },
      { method: 'GET', path: '/no' },
      { method: 'GET', path: '/ok', headers: { 'x-role': ['user', 'admin'] } },
      { method: 'GET', path: '/ok', headers: { x_role: 'admin' } },
      { method: 'GET', path: '/ok', host: 'a b' },
      { method: 'GET', path: '/%252e' },
      { method: 'GE T', path: '/ok' },
      { method: 'GET', path: '/ok', headers: { 'x-http-method-override': 'DELETE' } },
      { method: 'GET', path: '/ok', headers: { ':method': 'POST' } },
      { method: 'POST', path: '/ok', headers: { 'content-length': '3' }, body: 'abcd' },
      { method: 'POST', path: '/ok', body: 'x'.repeat(100) },
      {
        method: 'GET',
        path: '/ok',
        headers: Object.fromEntries([...Array(20)].map((_, i) => [`h${i}`, 'v'])),
      },
      { method: 'GET', path: '/ok', headers: { 'x-n': 'nope' } },
      { method: 'GET', path: '/ok', headers: { 'x-api-key': 'wrong' } },
      { method: 'GET', path: '/ok', headers: { 'x-api-key': 'k-123' } },
      { method: 'POST', path: '/ok', body: () => 1 },
      'not a request',
      { attributes: { request: { http: { method: 'GET', path: '/ok', headers: 1 } } } },
    ]
    const bad: string[] = []
    const seen = new Set<string>()
    for (const [i, input] of inputs.entries()) {
      const d = await engine.decide(input)
      seen.add(d.code)
      if (d.detailCode !== undefined) seen.add(d.detailCode)
      checkDecision(d, `input ${i}`, bad)
    }
    engine.close()
    expect(bad).toEqual([])
    // The table reaches the codes it is meant to reach.
    for (const c of ['allowed', 'no_match', 'malformed_input', 'body_too_large', 'headers_too_large'])
      expect(seen).toContain(c)
    for (const c of ['ambiguous_header', 'underscore_header', 'invalid_method', 'method_override'])
      expect(seen).toContain(c)
  })

  it('load problems carry listed codes', async () => {
    const broken: unknown[] = [
      'rules: [',
      { version: 'verdict/v2', rules: [] },
      { rules: [] },
      { rules: [{ id: 'a', action: 'allow', nope: 1 }] },
      { rules: [{ id: 'a', action: 'allow', match: { always: true }, cel: 'true' }] },
      {
        rules: [
          { id: 'a', action: 'allow', match: { always: true } },
          { id: 'a', action: 'allow', match: { always: true } },
        ],
      },
      { rules: [{ id: 'a', action: 'allow', cel: 'request.' }] },
      { rules: [{ id: 'a', action: 'allow', cel: 'nosuch.thing == 1' }] },
      { rules: [{ id: 'a', action: 'allow', cel: 'frob(1)' }] },
      { rules: [{ id: 'a', action: 'allow', mcp: { nope: true } }] },
      {
        responses: { denied: { status: 299 } },
        rules: [{ id: 'a', action: 'allow', match: { always: true } }],
      },
      { authentication: { jwt: { providers: [{ issuer: 'x' }] } }, rules: [], default: 'deny' },
    ]
    const bad: string[] = []
    let problems = 0
    for (const [i, policy] of broken.entries()) {
      try {
        const e = await createEngine(policy as never, { evaluators: evaluators() })
        e.close()
        bad.push(`policy ${i} loaded`)
      } catch (e) {
        expect(e).toBeInstanceOf(PolicyError)
        const pe = e as PolicyError
        expect(pe.code).toBe('policy_invalid')
        problems += pe.problems.length
        checkProblems(pe.problems, `policy ${i}`, bad)
      }
    }
    expect(problems).toBeGreaterThanOrEqual(broken.length)
    expect(bad).toEqual([])
  })
})

describe('programmer errors', () => {
  const usage = (f: () => unknown, option: string) => {
    let thrown: unknown
    try {
      f()
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(VerdictUsageError)
    expect(thrown).toBeInstanceOf(VerdictError)
    expect((thrown as VerdictUsageError).code).toBe('invalid_option')
    expect((thrown as VerdictUsageError).option).toBe(option)
  }
  const rejects = async (p: Promise<unknown>, option: string) => {
    const e = await p.then(
      () => undefined,
      (x: unknown) => x,
    )
    expect(e).toBeInstanceOf(VerdictUsageError)
    expect((e as VerdictUsageError).code).toBe('invalid_option')
    expect((e as VerdictUsageError).option).toBe(option)
  }
  const policy = { rules: [{ id: 'a', action: 'allow', match: { always: true } }] }

  it('createEngine: evaluators, fetch, now, resources', async () => {
    await rejects(createEngine(policy, { evaluators: [createCelEvaluator as never] }), 'evaluators[0]')
    await rejects(
      createEngine(policy, { evaluators: [createCelEvaluator(), createCelEvaluator()] }),
      'evaluators[1]',
    )
    await rejects(createEngine(policy, { evaluators: 'cel' as never }), 'evaluators')
    await rejects(createEngine(policy, { fetch: 'x' as never }), 'fetch')
    await rejects(createEngine(policy, { now: 5 as never }), 'now')
    await rejects(createEngine(policy, { resources: {} as never }), 'resources')
  })

  it('createCelEvaluator: limits and fastPath', () => {
    usage(() => createCelEvaluator({ maxDepth: 0 }), 'maxDepth')
    usage(() => createCelEvaluator({ maxIterations: 1.5 }), 'maxIterations')
    usage(() => createCelEvaluator({ fastPath: 'yes' as never }), 'fastPath')
    usage(() => createCelEvaluator({ maxDeepth: 3 } as never), 'maxDeepth')
  })

  it('createRegoEvaluator: memory and bundle limits', () => {
    usage(() => createRegoEvaluator({ maxBundleBytes: 0 }), 'maxBundleBytes')
    usage(() => createRegoEvaluator({ memory: { maxPages: 1.5 } }), 'memory.maxPages')
    usage(() => createRegoEvaluator({ memory: { initialPages: 8, maxPages: 4 } }), 'memory.initialPages')
  })

  it('createMcpEvaluator: trustDomain', () => {
    usage(() => createMcpEvaluator({ trustDomain: '' }), 'trustDomain')
    usage(() => createMcpEvaluator(null as never), 'options')
  })

  it('createExtAuthzServer: engine, statusOnError and limits', async () => {
    const engine = await createEngine(policy)
    usage(() => createExtAuthzServer({} as never), 'engine')
    usage(() => createExtAuthzServer({ engine, statusOnError: 200 }), 'statusOnError')
    usage(() => createExtAuthzServer({ engine, maxConcurrent: 0 }), 'maxConcurrent')
    usage(() => createExtAuthzServer({ engine, decisionTimeoutMs: -1 }), 'decisionTimeoutMs')
    engine.close()
  })
})
