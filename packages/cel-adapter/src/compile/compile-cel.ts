/**
 * Compile one CEL expression on `@bufbuild/cel`: parse within the limits (parse-expression.ts),
 * check types (check-types.ts), check names, arities and literals while applying verdict's rewrites
 * (check-expression.ts, rewrites.ts), then plan it once. Compiled expressions are cached by source.
 *
 * This folder, `functions.ts` and `value-view.ts` are the only code that knows which CEL engine
 * runs underneath.
 */
import { type CelValue, isCelError, plan } from '@bufbuild/cel'
import { compileFast, type FastProgram } from '../fast-path.js'
import { withBudget } from '../value-view.js'
import { checkExpression } from './check-expression.js'
import { typeProblems } from './check-types.js'
import type { CelEnvironment } from './environment.js'
import { headerReads } from './header-reads.js'
import { parseExpression } from './parse-expression.js'
import { type CelProblem, lineColumn, lineStarts, problemAt } from './problems.js'

/** Result of running a compiled expression. Errors carry `line:column:` of the failing part. */
type CelRunResult =
  | { readonly ok: true; readonly value: CelValue }
  | { readonly ok: false; readonly error: string }

/** A compiled expression. */
interface CompiledExpression {
  readonly source: string
  /** The declared variables the expression reads, in first-use order. */
  readonly variables: readonly string[]
  /** Headers read as one value, or `'all'` (see header-reads.ts). */
  readonly headerReads: readonly string[] | 'all'

  /** Evaluate with `bindings[name]` for each variable; an absent binding is an absent variable. */
  run(bindings: object): CelRunResult
  /**
   * @internal The direct evaluator over a request (fast-path.ts), when the expression's shape
   * allows one: a boolean, or undefined when `run` must answer.
   */
  readonly fast: FastProgram | undefined
}

export type CompileOutcome =
  | { ok: true; expression: CompiledExpression }
  | { ok: false; problems: CelProblem[] }

const COMPILE_CACHE_MAX = 10_000

/**
 * Compile `source` against `cenv`. Never throws. Results are cached per environment (compiled
 * expressions are stateless), so a reloaded policy only compiles the expressions that changed.
 */
export function compileCel(source: string, cenv: CelEnvironment): CompileOutcome {
  const hit = cenv.compiled.get(source)
  if (hit !== undefined) return hit
  const outcome = compileUncached(source, cenv)
  if (cenv.compiled.size >= COMPILE_CACHE_MAX)
    cenv.compiled.delete(cenv.compiled.keys().next().value as string)
  cenv.compiled.set(source, outcome)
  return outcome
}

function compileUncached(source: string, cenv: CelEnvironment): CompileOutcome {
  const limits = cenv.limits
  const parsing = parseExpression(source, limits)
  if (!parsing.ok) return { ok: false, problems: [parsing.problem] }
  const parsed = parsing.parsed
  const starts = lineStarts(source)
  // Types first, on the tree as written (the check below rewrites parts of it).
  const mistyped = typeProblems(parsed.expr, cenv.variables)
  const checked = checkExpression(cenv, parsed, starts)
  if (checked.problems.length > 0) return { ok: false, problems: checked.problems }
  if (mistyped.length > 0) {
    const positions = parsed.sourceInfo?.positions ?? {}
    const problems = mistyped.map((p) =>
      problemAt('cel_type', starts, positions[String(p.id)] ?? 0, p.message),
    )
    return { ok: false, problems }
  }
  let fn: (bindings?: Record<string, unknown>) => unknown
  try {
    fn = plan(cenv.env, parsed) as typeof fn
  } catch (err) {
    const message = `1:1: cannot plan expression: ${(err as Error).message}`
    return { ok: false, problems: [{ code: 'cel_syntax', message, line: 1, column: 1 }] }
  }
  const positions = parsed.sourceInfo?.positions ?? {}
  const where = (id: bigint | undefined): string => {
    if (id === undefined) return ''
    const off = positions[String(id)]
    if (off === undefined) return ''
    const { line, column } = lineColumn(starts, off)
    return `${line}:${column}: `
  }
  const maxIterations = limits.maxIterations
  const fast = compileFast(parsed.expr, { sets: cenv.constSets.list, regex: cenv.regex, maxIterations })
  const expression: CompiledExpression = {
    source,
    fast,
    variables: checked.roots,
    headerReads: headerReads(parsed.expr),
    run(bindings: object): CelRunResult {
      let v: unknown
      try {
        v = withBudget(maxIterations, () => fn(bindings as Record<string, unknown>))
      } catch (err) {
        return { ok: false, error: `evaluation failed: ${(err as Error)?.message ?? String(err)}` }
      }
      if (isCelError(v)) return { ok: false, error: `${where(v.exprId)}${v.message}` }
      return { ok: true, value: v as CelValue }
    },
  }
  return { ok: true, expression }
}
