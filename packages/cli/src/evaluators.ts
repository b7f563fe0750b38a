/**
 * The registry of rule engines the command offers: every evaluator package that is installed and
 * exports its factory. A package that is missing, fails to load or lacks the factory is reported,
 * not fatal; policies using its rule kind then fail `check` with "unknown rule body".
 */
import type { Evaluator } from '@verdict/core'

/** One evaluator source: the package and the name of its factory. */
export interface EvaluatorSource {
  readonly pkg: string
  readonly factory: string
  readonly load: () => Promise<Record<string, unknown>>
}

/** Where the evaluators come from, in registration order. */
const EVALUATOR_SOURCES: readonly EvaluatorSource[] = [
  {
    pkg: '@verdict/cel-adapter',
    factory: 'createCelEvaluator',
    load: () => import('@verdict/cel-adapter') as Promise<Record<string, unknown>>,
  },
  {
    pkg: '@verdict/rego-adapter',
    factory: 'createRegoEvaluator',
    load: () => import('@verdict/rego-adapter') as Promise<Record<string, unknown>>,
  },
  {
    pkg: '@verdict/mcp',
    factory: 'createMcpEvaluator',
    load: () => import('@verdict/mcp') as Promise<Record<string, unknown>>,
  },
]

export interface LoadedEvaluators {
  readonly evaluators: readonly Evaluator[]
  /** Sources that gave no evaluator, with why. */
  readonly unavailable: ReadonlyArray<{ readonly pkg: string; readonly reason: string }>
}

function isEvaluator(v: unknown): v is Evaluator {
  const e = v as Partial<Evaluator> | null
  return typeof e === 'object' && e !== null && typeof e.kind === 'string' && typeof e.compile === 'function'
}

/**
 * Load every available evaluator.
 *
 * @example
 * ```ts
 * const { evaluators } = await loadEvaluators()
 * const engine = await createEngine(policy, { evaluators })
 * ```
 */
export async function loadEvaluators(
  sources: readonly EvaluatorSource[] = EVALUATOR_SOURCES,
): Promise<LoadedEvaluators> {
  const evaluators: Evaluator[] = []
  const unavailable: Array<{ pkg: string; reason: string }> = []
  for (const s of sources) {
    try {
      const mod = await s.load()
      const factory = mod[s.factory]
      if (typeof factory !== 'function') {
        unavailable.push({ pkg: s.pkg, reason: `does not export ${s.factory}` })
        continue
      }
      const made: unknown = await (factory as () => unknown)()
      if (!isEvaluator(made)) {
        unavailable.push({ pkg: s.pkg, reason: `${s.factory}() did not return an evaluator` })
        continue
      }
      evaluators.push(made)
    } catch (e) {
      unavailable.push({ pkg: s.pkg, reason: `failed to load: ${(e as Error)?.message ?? String(e)}` })
    }
  }
  return { evaluators, unavailable }
}
