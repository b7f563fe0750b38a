/**
 * Policy file -> engine, with every evaluator the command has, or every problem with its location.
 */
import { resolve } from 'node:path'
import { createEngine, type Engine, type EngineOptions, loadPolicyFile } from '@verdict/core'
import { loadEvaluators } from './evaluators.js'
import { type LocatedProblem, problemsOf } from './problems.js'

export type LoadResult =
  | { readonly ok: true; readonly engine: Engine; readonly path: string; readonly digest: string }
  | { readonly ok: false; readonly problems: readonly LocatedProblem[]; readonly notes: readonly string[] }

/** Load and compile the policy at `path`. Never throws. */
export async function loadEngine(path: string, options: EngineOptions = {}): Promise<LoadResult> {
  const abs = resolve(path)
  const { evaluators, unavailable } = await loadEvaluators()
  try {
    const file = await loadPolicyFile(abs)
    const engine = await createEngine(file.source, {
      resources: file.resources,
      ...options,
      evaluators: [...evaluators, ...(options.evaluators ?? [])],
    })
    return { ok: true, engine, path: abs, digest: file.digest }
  } catch (e) {
    const problems = problemsOf(e, abs)
    // Say why a rule kind is unknown when its package could not provide it.
    const notes = problems.some((p) => p.code === 'unknown_rule_kind')
      ? unavailable.map((u) => `note: ${u.pkg} ${u.reason}`)
      : []
    return { ok: false, problems, notes }
  }
}
