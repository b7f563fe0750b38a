/**
 * The policy source as a located document, the compile environment checked (a bad option is a
 * `VerdictUsageError`), and response specs (status, headers, body) read with their problems.
 */
import type { HeaderEntry } from '../decision.js'
import { parsePolicyText, type SourceDocument, sourceFromValue } from '../document.js'
import { type Problem, VerdictUsageError } from '../errors.js'
import type { Evaluator, ResourceLoader } from '../evaluator.js'
import { isValidHttpStatus } from '../status.js'
import type { CompileEnvironment, PolicySource, ResponseSpec } from './compiled.js'

export type Obj = Record<string, unknown>

function isSource(p: PolicySource): p is SourceDocument {
  return (
    typeof p === 'object' && p !== null && 'locate' in p && typeof p.locate === 'function' && 'value' in p
  )
}

export function toSource(p: PolicySource): SourceDocument {
  if (typeof p === 'string') return parsePolicyText(p)
  if (isSource(p)) return p
  return sourceFromValue(p)
}

export function headerList(map: unknown): HeaderEntry[] {
  if (typeof map !== 'object' || map === null) return []
  return Object.entries(map as Record<string, string>).map(([key, value]) => ({
    key: key.toLowerCase(),
    value,
  }))
}

export function responseSpec(
  v: unknown,
  path: string,
  problems: Problem[],
  locate: SourceDocument['locate'],
): ResponseSpec | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const r = v as Obj
  if (r.status !== undefined && !isValidHttpStatus(r.status)) {
    problems.push({
      code: 'invalid_status',
      message: `status ${String(r.status)} is not one of Envoy's HTTP status codes`,
      path: `${path}/status`,
      ...(locate(`${path}/status`) ?? {}),
    })
  }
  return {
    status: typeof r.status === 'number' ? r.status : undefined,
    headers: headerList(r.headers),
    body: typeof r.body === 'string' ? r.body : undefined,
  }
}

/**
 * Compile a policy. Throws `PolicyError` listing every problem; otherwise the result is ready to
 * decide with. Evaluators' resources are released through `dispose()`.
 */
/** Programmer errors in what the host passed (`createEngine`'s options): a `VerdictUsageError`. */
export function checkEnvironment(env: CompileEnvironment): void {
  const fn = (v: unknown) => typeof v === 'function'
  if (!Array.isArray(env.evaluators))
    throw new VerdictUsageError('evaluators', 'evaluators must be a list of evaluators')
  const kinds = new Set<string>()
  env.evaluators.forEach((e: Partial<Evaluator> | undefined, i) => {
    if (typeof e !== 'object' || e === null || typeof e.kind !== 'string' || !fn(e.compile))
      throw new VerdictUsageError(
        `evaluators[${i}]`,
        `evaluators[${i}] is not an evaluator (an object with kind and compile; call the factory, e.g. createCelEvaluator())`,
      )
    if (e.kind === 'match' || kinds.has(e.kind))
      throw new VerdictUsageError(
        `evaluators[${i}]`,
        `evaluators[${i}]: a second evaluator of kind "${e.kind}"`,
      )
    kinds.add(e.kind)
  })
  if (env.fetch !== undefined && !fn(env.fetch))
    throw new VerdictUsageError('fetch', 'fetch must be a function')
  if (!fn(env.now)) throw new VerdictUsageError('now', 'now must be a function returning milliseconds')
  if (env.resources !== undefined && (typeof env.resources !== 'object' || !fn(env.resources?.read)))
    throw new VerdictUsageError('resources', 'resources must be a ResourceLoader (an object with read)')
}

export function sortProblems(p: Problem[]): Problem[] {
  return p.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || a.path.localeCompare(b.path))
}

export const noResources: ResourceLoader = {
  read(location: string): Promise<Uint8Array> {
    return Promise.reject(new Error(`no resource loader configured to read ${location}`))
  },
}
