/**
 * Policy case files: YAML or JSON next to a policy, each case an input and the decision it must
 * get. `runCaseFile` runs one and reports per-case diffs and rule coverage; `verdict test` and
 * `describeCaseFile` (vitest) are thin layers over it.
 */
import { dirname, resolve } from 'node:path'
import { loadPolicyFile, readSourceFile } from '@verdict/node'
import type { Decision } from '../decision.js'
import { compileSchema, type SourceDocument, schemaProblems } from '../document.js'
import { createEngine } from '../engine.js'
import { PolicyError, type Problem } from '../errors.js'
import type { Evaluator } from '../evaluator.js'
import { checkRequest, mcpRequest } from './inputs.js'
import { createTestIssuer, type TestIssuer } from './issuer.js'

/** JSON Schema of a case file (documented in docs/testing.md). */
export const CASE_FILE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['policy', 'cases'],
  properties: {
    policy: { type: 'string', minLength: 1 },
    description: { type: 'string' },
    fixtures: {
      type: 'object',
      additionalProperties: false,
      properties: {
        include: { type: 'array', items: { type: 'string' } },
        issuers: {
          type: 'object',
          additionalProperties: {
            type: 'object',
            additionalProperties: false,
            required: ['provider'],
            properties: {
              provider: { type: 'string' },
              alg: { enum: ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'] },
            },
          },
        },
        identities: { type: 'object', additionalProperties: { type: 'string' } },
      },
    },
    cases: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'expect'],
        // Both would leave one of them silently unused.
        not: { required: ['checkRequest', 'request'] },
        properties: {
          name: { type: 'string', minLength: 1 },
          checkRequest: { type: 'object' },
          request: {
            type: 'object',
            additionalProperties: false,
            properties: {
              method: { type: 'string' },
              path: { type: 'string' },
              host: { type: 'string' },
              headers: { type: 'object', additionalProperties: { type: 'string' } },
              body: {},
              principal: { type: 'string' },
              token: { type: 'string' },
              jwt: {
                type: 'object',
                additionalProperties: false,
                required: ['issuer'],
                properties: { issuer: { type: 'string' }, claims: { type: 'object' } },
              },
              mcp: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  method: { type: 'string' },
                  tool: { type: 'string' },
                  arguments: { type: 'object' },
                  id: { type: ['string', 'integer', 'null'] },
                  metadata: { type: 'boolean' },
                },
              },
            },
          },
          expect: {
            type: 'object',
            additionalProperties: false,
            // An empty expectation would pass whatever the policy decides.
            minProperties: 1,
            properties: {
              allowed: { type: 'boolean' },
              status: { type: 'integer' },
              code: { type: 'string' },
              rule: { type: ['string', 'null'] },
              headers: { type: 'object', additionalProperties: { type: 'string' } },
              body: { type: 'string' },
              bodyContains: { type: 'string' },
              reasonContains: { type: 'string' },
              mcpError: {
                type: 'object',
                additionalProperties: false,
                properties: { code: { type: 'integer' }, message: { type: 'string' } },
              },
            },
          },
        },
      },
    },
  },
} as const

interface RequestSpec {
  method?: string
  path?: string
  host?: string
  headers?: Record<string, string>
  body?: unknown
  principal?: string
  token?: string
  jwt?: { issuer: string; claims?: Record<string, unknown> }
  mcp?: {
    method?: string
    tool?: string
    arguments?: Record<string, unknown>
    id?: string | number | null
    metadata?: boolean
  }
}

export interface Expectation {
  allowed?: boolean
  status?: number
  code?: string
  rule?: string | null
  headers?: Record<string, string>
  body?: string
  bodyContains?: string
  reasonContains?: string
  mcpError?: { code?: number; message?: string }
}

interface CaseSpec {
  name: string
  checkRequest?: Record<string, unknown>
  request?: RequestSpec
  expect: Expectation
}

interface Fixtures {
  include?: string[]
  issuers?: Record<string, { provider: string; alg?: 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA' }>
  identities?: Record<string, string>
}

interface CaseFile {
  policy: string
  cases: CaseSpec[]
  fixtures?: Fixtures
}

/** One difference between expectation and decision. */
export interface CaseDiff {
  readonly field: string
  readonly expected: unknown
  readonly actual: unknown
}

export interface CaseResult {
  readonly name: string
  /** What the case file expects, as `allow 200` / `deny 401` / `deny` (no status stated). */
  readonly expected: string
  /** The case's `expect` block as written. */
  readonly expectation: Readonly<Expectation>
  readonly passed: boolean
  readonly diffs: readonly CaseDiff[]
  readonly decision: Decision
}

export interface CaseFileResult {
  readonly file: string
  readonly policy: string
  readonly results: readonly CaseResult[]
  /** Every rule id in the policy. */
  readonly rules: readonly string[]
  /** Rules that no case made decide (like `opa test --coverage`). */
  readonly uncovered: readonly string[]
}

export interface RunCasesOptions {
  /** Evaluators for the policy's rule kinds (CEL, Rego, MCP, ...). */
  readonly evaluators?: readonly Evaluator[]
}

/**
 * A `PolicyError` about a file other than the case file (its policy, an included fixture file):
 * `file` names it, and the problems' lines and columns are in that file.
 */
class PolicyFileError extends PolicyError {
  readonly file: string
  constructor(file: string, problems: readonly Problem[]) {
    super(problems)
    this.file = file
  }
}

/** Run `load`; its `PolicyError`s are reported against `file`, located in `source` when given. */
async function inFile<T>(file: string, load: () => Promise<T>, source?: SourceDocument): Promise<T> {
  try {
    return await load()
  } catch (e) {
    if (!(e instanceof PolicyError) || e instanceof PolicyFileError) throw e
    // A patched copy of the policy (fixture issuers) has no text: locate its problems in the file's.
    const located = e.problems.map((p) => {
      if (p.line !== undefined || source === undefined) return p
      const at = source.locate(p.path)
      return at === undefined ? p : { ...p, line: at.line, column: at.column }
    })
    throw new PolicyFileError(file, located)
  }
}

const validateCaseFile = compileSchema(CASE_FILE_SCHEMA as unknown as Record<string, unknown>)

async function readCaseFile(path: string): Promise<CaseFile> {
  const { source } = await readSourceFile(path)
  if (!validateCaseFile(source.value))
    throw new PolicyError(schemaProblems(validateCaseFile.errors, '', source.locate))
  return source.value as CaseFile
}

async function mergedFixtures(
  fileDir: string,
  f: Fixtures | undefined,
  seen = new Set<string>(),
): Promise<Fixtures> {
  const out: Fixtures = { issuers: { ...(f?.issuers ?? {}) }, identities: { ...(f?.identities ?? {}) } }
  for (const inc of f?.include ?? []) {
    const p = resolve(fileDir, inc)
    if (seen.has(p)) continue
    seen.add(p)
    const v = (await inFile(p, () => readSourceFile(p))).source.value as Fixtures
    const nested = await mergedFixtures(dirname(p), v, seen)
    out.issuers = { ...nested.issuers, ...out.issuers }
    out.identities = { ...nested.identities, ...out.identities }
  }
  return out
}

type Obj = Record<string, unknown>

/** Point each fixture issuer's provider at a freshly generated key (inline JWKS). */
async function issuersFor(
  policy: Obj,
  fixtures: Fixtures,
): Promise<Map<string, { issuer: TestIssuer; audience: string | undefined }>> {
  const out = new Map<string, { issuer: TestIssuer; audience: string | undefined }>()
  const entries = Object.entries(fixtures.issuers ?? {})
  if (entries.length === 0) return out
  const providers = ((policy.authentication as Obj | undefined)?.jwt as Obj | undefined)?.providers
  if (!Array.isArray(providers))
    throw new Error('fixtures.issuers needs a policy with authentication.jwt.providers')
  for (const [name, spec] of entries) {
    const idx = providers.findIndex((p: Obj) => p.name === spec.provider || p.issuer === spec.provider)
    if (idx === -1)
      throw new Error(`fixtures.issuers.${name}: no JWT provider named "${spec.provider}" in the policy`)
    const p = providers[idx] as Obj
    const issuer = await createTestIssuer({
      issuer: String(p.issuer),
      ...(spec.alg ? { alg: spec.alg } : {}),
      kid: `case-${name}`,
    })
    providers[idx] = { ...p, jwks: { inline: issuer.jwks } }
    const aud = Array.isArray(p.audiences) ? (p.audiences[0] as string | undefined) : undefined
    out.set(name, { issuer, audience: aud })
  }
  return out
}

async function buildInput(
  c: CaseSpec,
  fixtures: Fixtures,
  issuers: Map<string, { issuer: TestIssuer; audience: string | undefined }>,
): Promise<unknown> {
  if (c.checkRequest !== undefined) return c.checkRequest
  const r = c.request ?? {}
  let token = r.token
  if (r.jwt !== undefined) {
    const iss = issuers.get(r.jwt.issuer)
    if (iss === undefined)
      throw new Error(`case "${c.name}": unknown issuer "${r.jwt.issuer}" (declare it in fixtures.issuers)`)
    token = await iss.issuer.sign({
      ...(iss.audience !== undefined ? { aud: iss.audience } : {}),
      ...(r.jwt.claims ?? {}),
    })
  }
  const principal =
    r.principal === undefined ? undefined : (fixtures.identities?.[r.principal] ?? r.principal)
  const common = {
    ...(r.path !== undefined ? { path: r.path } : {}),
    ...(r.host !== undefined ? { host: r.host } : {}),
    ...(r.headers !== undefined ? { headers: r.headers } : {}),
    ...(principal !== undefined ? { principal } : {}),
    ...(token !== undefined ? { token } : {}),
  }
  if (r.mcp !== undefined) {
    return mcpRequest({
      ...common,
      ...(r.mcp.method !== undefined ? { method: r.mcp.method } : {}),
      ...(r.mcp.tool !== undefined ? { tool: r.mcp.tool } : {}),
      ...(r.mcp.arguments !== undefined ? { arguments: r.mcp.arguments } : {}),
      ...(r.mcp.id !== undefined ? { id: r.mcp.id } : {}),
      ...(r.mcp.metadata !== undefined ? { metadata: r.mcp.metadata } : {}),
    })
  }
  return checkRequest({
    ...common,
    ...(r.method !== undefined ? { method: r.method } : {}),
    ...(r.body !== undefined ? { body: r.body as string | object } : {}),
  })
}

/** `allow 200`, `deny 403`, `deny`: the outcome a case states, in the demo table's words. */
export function expectationSummary(e: Expectation): string {
  const allowed =
    e.allowed ?? (e.status === undefined ? undefined : e.status === 200 && e.mcpError === undefined)
  const word = allowed === undefined ? 'any' : allowed ? 'allow' : 'deny'
  return e.status !== undefined ? `${word} ${e.status}` : word
}

/** `allow 200` / `deny 403` for a decision, to compare with `expectationSummary`. */
export function decisionSummary(d: Decision, e: Expectation | undefined = undefined): string {
  const word = d.allowed ? 'allow' : 'deny'
  return e !== undefined && e.status === undefined ? word : `${word} ${d.status}`
}

/** Compare a decision with a case's expectation; empty when it passes. */
export function diffDecision(d: Decision, e: Expectation): CaseDiff[] {
  const diffs: CaseDiff[] = []
  const check = (field: string, expected: unknown, actual: unknown) => {
    if (expected !== undefined && expected !== actual) diffs.push({ field, expected, actual })
  }
  check('allowed', e.allowed, d.allowed)
  check('status', e.status, d.status)
  check('code', e.code, d.code)
  // `rule: null` expects that no rule decided.
  if (e.rule === null) {
    if (d.rule !== undefined) diffs.push({ field: 'rule', expected: null, actual: d.rule })
  } else check('rule', e.rule, d.rule)
  if (e.headers !== undefined) {
    const got = new Map(d.headers.map((h) => [h.key.toLowerCase(), h.value]))
    for (const [k, v] of Object.entries(e.headers))
      check(`headers.${k.toLowerCase()}`, v, got.get(k.toLowerCase()))
  }
  check('body', e.body, d.body)
  if (e.bodyContains !== undefined && !(d.body ?? '').includes(e.bodyContains)) {
    diffs.push({ field: 'body (contains)', expected: e.bodyContains, actual: d.body })
  }
  if (e.reasonContains !== undefined && !d.reason.includes(e.reasonContains)) {
    diffs.push({ field: 'reason (contains)', expected: e.reasonContains, actual: d.reason })
  }
  if (e.mcpError !== undefined) {
    let err: { code?: unknown; message?: unknown } | undefined
    try {
      err = (JSON.parse(d.body ?? '') as { error?: { code?: unknown; message?: unknown } }).error
    } catch {
      err = undefined
    }
    if (err === undefined) diffs.push({ field: 'mcpError', expected: e.mcpError, actual: d.body })
    else {
      check('mcpError.code', e.mcpError.code, err.code)
      check('mcpError.message', e.mcpError.message, err.message)
    }
  }
  return diffs
}

/** The fetch of the load check above: case runs never reach an identity provider. */
const offlineFetch: typeof globalThis.fetch = () =>
  Promise.reject(new Error('verdict test does not fetch remote keys'))

function ruleIds(policy: Obj): string[] {
  const lists: unknown[] = []
  if (Array.isArray(policy.rules)) lists.push(...policy.rules)
  if (Array.isArray(policy.layers))
    for (const l of policy.layers)
      if (Array.isArray((l as Obj)?.rules)) lists.push(...((l as Obj).rules as unknown[]))
  return lists.map((r) => (r as Obj)?.id).filter((id): id is string => typeof id === 'string')
}

/**
 * Run one case file. Throws `PolicyError` (with lines) when the case file or its policy is invalid;
 * a problem in the policy (a bundle that cannot be loaded, say) or in an included fixture file has
 * the error's `file` property naming that file, and its lines and columns are that file's.
 *
 * @example
 * ```ts
 * const r = await runCaseFile('examples/003-jwt-cel/cases.yaml', { evaluators: [createCelEvaluator()] })
 * r.results.filter((c) => !c.passed)
 * ```
 */
export async function runCaseFile(path: string, options: RunCasesOptions = {}): Promise<CaseFileResult> {
  const abs = resolve(path)
  const file = await readCaseFile(abs)
  const dir = dirname(abs)
  const policyPath = resolve(dir, file.policy)
  const policyFile = await inFile(policyPath, () => loadPolicyFile(policyPath))
  const policySrc = policyFile.source
  const fixtures = await mergedFixtures(dir, file.fixtures)
  const policy = structuredClone(policySrc.value) as Obj
  const issuers = await issuersFor(policy, fixtures)
  if (issuers.size > 0) {
    // Fixture issuers replace the providers' keys in the copy the cases run against; the policy as
    // written must load too (a JWKS file that does not exist is a problem, as `verdict check` and
    // `serve` say). Remote key sets are not fetched for this: the cases run offline.
    const real = await inFile(
      policyFile.path,
      () =>
        createEngine(policySrc, {
          evaluators: options.evaluators ?? [],
          resources: policyFile.resources,
          fetch: offlineFetch,
        }),
      policySrc,
    )
    real.close()
  }
  // Keep line numbers from the policy text when nothing had to be patched.
  const engine = await inFile(
    policyFile.path,
    () =>
      createEngine(issuers.size === 0 ? policySrc : policy, {
        evaluators: options.evaluators ?? [],
        resources: policyFile.resources,
      }),
    policySrc,
  )
  const results: CaseResult[] = []
  const decided = new Set<string>()
  try {
    for (const c of file.cases) {
      const d = await engine.decide(await buildInput(c, fixtures, issuers))
      if (d.rule !== undefined) decided.add(d.rule)
      const diffs = diffDecision(d, c.expect)
      results.push({
        name: c.name,
        expected: expectationSummary(c.expect),
        expectation: c.expect,
        passed: diffs.length === 0,
        diffs,
        decision: d,
      })
    }
  } finally {
    engine.close()
  }
  const rules = ruleIds(policy)
  return {
    file: abs,
    policy: policyFile.path,
    results,
    rules,
    uncovered: rules.filter((r) => !decided.has(r)),
  }
}

/** Human-readable report: failures with their diffs, coverage, and `N passed, M failed` last. */
export function formatCaseResults(
  files: readonly CaseFileResult[],
  options: { coverage?: boolean; cwd?: string } = {},
): string {
  const lines: string[] = []
  let passed = 0
  let failed = 0
  const rel = (p: string) =>
    options.cwd !== undefined && p.startsWith(`${options.cwd}/`) ? p.slice(options.cwd.length + 1) : p
  for (const f of files) {
    for (const r of f.results) {
      if (r.passed) {
        passed++
        lines.push(`  ok    ${rel(f.file)} › ${r.name}`)
        continue
      }
      failed++
      lines.push(`  FAIL  ${rel(f.file)} › ${r.name}`)
      for (const d of r.diffs) {
        lines.push(`        ${d.field}:`)
        lines.push(`          - expected ${JSON.stringify(d.expected)}`)
        lines.push(`          + actual   ${JSON.stringify(d.actual)}`)
      }
      lines.push(
        `        (decision: ${r.decision.allowed ? 'allow' : 'deny'} ${r.decision.status}, ${r.decision.reason})`,
      )
    }
    if (options.coverage) {
      const covered = f.rules.length - f.uncovered.length
      lines.push(`  coverage ${rel(f.policy)}: ${covered}/${f.rules.length} rules decided a case`)
      for (const u of f.uncovered) lines.push(`    never decided: ${u}`)
    }
  }
  lines.push('', `${passed} passed, ${failed} failed`)
  return lines.join('\n')
}
