/** For hosts: imported resources as the policy source core compiles, and core's policy importer. */
import { PolicyError } from '@verdict/core'
import type { ImportOptions } from './context.js'
import { importResources } from './import-resources.js'
import { looksLikeResources, type SourceDocument } from './read.js'

/**
 * For hosts: the policy of a text that holds Kubernetes resources, as a `SourceDocument` core
 * compiles; throws `PolicyError` with every problem (located in the text) when there is one.
 */
export function importPolicyText(text: string, options: ImportOptions = {}): SourceDocument {
  const r = importResources(text, options)
  if (r.problems.length > 0 || r.policy === undefined)
    throw new PolicyError(
      r.problems.length > 0 ? r.problems : [{ code: 'import_empty', message: 'nothing to import', path: '' }],
    )
  return r.source
}

/**
 * Install the import layer as core's policy importer (`Symbol.for('verdict.policyImporter')`,
 * read by `loadPolicyFile`, so `createEngineFromFile`, `watchPolicyFile` and case files take files
 * of Kubernetes resources). A `file.yaml#target` path overrides `options.target`. Returns a
 * function that puts back the importer that was installed before.
 *
 * @example
 * ```ts
 * installPolicyImporter({ trustDomain: 'example.org' })
 * const engine = await createEngineFromFile('xaccesspolicy.yaml', { evaluators })
 * ```
 */
export function installPolicyImporter(options: ImportOptions = {}): () => void {
  const key = Symbol.for('verdict.policyImporter')
  const g = globalThis as Record<symbol, unknown>
  const before = g[key]
  g[key] = (text: string, file: { path: string; target?: string }): SourceDocument | undefined => {
    if (!looksLikeResources(text)) return undefined
    const o = file.target === undefined ? options : { ...options, target: file.target }
    return { ...importPolicyText(text, o), origin: file.path }
  }
  return () => {
    g[key] = before
  }
}
