/**
 * Policy case files: YAML or JSON next to a policy, each case an input and the decision it must
 * get. `runCaseFile` runs one and reports per-case diffs and rule coverage; `verdict test` and
 * `describeCaseFile` (vitest) are thin layers over it. The file format is case-file.ts, inputs
 * case-input.ts, comparisons case-diff.ts.
 */
import { dirname, resolve } from 'node:path'
import { loadPolicyFile } from '@verdict/node'
import type { Decision } from '../decision.js'
import { createEngine } from '../engine.js'
import type { Evaluator } from '../evaluator.js'
import { type CaseDiff, diffDecision, expectationSummary } from './case-diff.js'
import { type Expectation, inFile, mergedFixtures, readCaseFile } from './case-file.js'
import { buildInput, issuersFor } from './case-input.js'

type Obj = Record<string, unknown>

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
