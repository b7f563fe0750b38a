/**
 * `createCelEvaluator`: CEL rule bodies (`cel: 'jwt.sub == "alice"'`) for verdict policies.
 */
import type {
  CompileResult,
  CompileSite,
  EvalResult,
  Evaluator,
  Problem,
  RequestContext,
} from '@verdict/core'
import { VerdictUsageError } from '@verdict/core'
import { compileCel } from './compile/compile-cel.js'
import { createCelEnvironment } from './compile/environment.js'
import { type CelLimits, DEFAULT_CEL_LIMITS } from './compile/limits.js'
import { toPlain } from './plain.js'
import { requestVariables, VARIABLE_NAMES } from './variables.js'

/** Options of the CEL evaluator: the limits of `CelLimits`, each optional. */
export type CelOptions = Partial<CelLimits> & {
  /**
   * Evaluate the common shapes of rules (field reads, string comparisons, `in`, `has()`, logic)
   * directly on the request, with `@bufbuild/cel`'s results; anything else runs on the engine.
   * Default true; false runs every expression on the engine.
   */
  readonly fastPath?: boolean
}

/** Bad options are programmer errors: a `VerdictUsageError` naming the option. */
function checkOptions(options: CelOptions): void {
  if (typeof options !== 'object' || options === null)
    throw new VerdictUsageError('options', 'createCelEvaluator takes an options object')
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue
    if (k === 'fastPath') {
      if (typeof v !== 'boolean') throw new VerdictUsageError(k, 'fastPath must be a boolean')
    } else if (!Object.hasOwn(DEFAULT_CEL_LIMITS, k)) {
      throw new VerdictUsageError(k, `unknown option "${k.slice(0, 64)}"`)
    } else if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      throw new VerdictUsageError(k, `${k} must be a positive integer, not ${String(v)}`)
    }
  }
}

const TRUE: EvalResult = Object.freeze({ ok: true, value: true })
const FALSE: EvalResult = Object.freeze({ ok: true, value: false })

/** JSON Schema of a `cel` rule body: the expression, or `{ expression }`. */
const CONFIG_SCHEMA = {
  oneOf: [
    { type: 'string', minLength: 1 },
    {
      type: 'object',
      required: ['expression'],
      properties: { expression: { type: 'string', minLength: 1 } },
      additionalProperties: false,
    },
  ],
} as const

/**
 * Create the CEL evaluator. Every expression is compiled when the policy loads: syntax errors,
 * unknown variables and functions, and limit violations are reported with the rule id, the JSON
 * path and `line:column` inside the expression. At run time an error is a value (`ok: false`)
 * that the engine turns into a fail-closed outcome.
 *
 * @example
 * ```ts
 * const engine = await createEngine(
 *   { rules: [{ id: 'alice', action: 'allow', cel: 'jwt.sub == "alice"' }] },
 *   { evaluators: [createCelEvaluator()] },
 * )
 * ```
 */
export function createCelEvaluator(options: CelOptions = {}): Evaluator {
  checkOptions(options)
  const { fastPath = true, ...limits } = options
  const cenv = createCelEnvironment(VARIABLE_NAMES, limits)
  return {
    kind: 'cel',
    configSchema: CONFIG_SCHEMA,
    compile(config: unknown, site: CompileSite): CompileResult {
      const isObject = typeof config === 'object' && config !== null
      const source = isObject ? (config as { expression?: unknown }).expression : config
      const path = isObject ? `${site.path}/expression` : site.path
      if (typeof source !== 'string') {
        const problem: Problem = {
          code: 'schema',
          message: 'a cel rule body is an expression string or { expression }',
          path: site.path,
          ruleId: site.ruleId,
        }
        return { ok: false, problems: [problem] }
      }
      const compiled = compileCel(source, cenv)
      if (!compiled.ok) {
        return {
          ok: false,
          problems: compiled.problems.map((p) => ({
            code: p.code,
            message: `cel ${p.message}`,
            path,
            ruleId: site.ruleId,
          })),
        }
      }
      const expression = compiled.expression
      const fast = fastPath ? expression.fast : undefined
      return {
        ok: true,
        program: {
          evaluate(ctx: RequestContext): EvalResult {
            if (fast !== undefined) {
              const answer = fast(ctx)
              if (answer !== undefined) return answer ? TRUE : FALSE
            }
            const r = expression.run(requestVariables(ctx))
            if (!r.ok) return r
            if (typeof r.value === 'boolean') return r
            try {
              return { ok: true, value: toPlain(r.value) }
            } catch (err) {
              return { ok: false, error: (err as Error).message }
            }
          },
          readsHeaders: expression.headerReads,
        },
      }
    },
  }
}
