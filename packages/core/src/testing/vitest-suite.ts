/** Run a case file as a vitest suite: one test per case, failing with the case's diff. */
import { basename } from 'node:path'
import { type RunCasesOptions, runCaseFile } from './cases.js'

/**
 * Declare a vitest suite from a case file (call with top-level await in a test file).
 *
 * @example
 * ```ts
 * await describeCaseFile(new URL('./cases.yaml', import.meta.url).pathname, { evaluators: [createCelEvaluator()] })
 * ```
 */
export async function describeCaseFile(path: string, options: RunCasesOptions = {}): Promise<void> {
  const { describe, expect, test } = await import('vitest')
  const result = await runCaseFile(path, options)
  describe(basename(path), () => {
    for (const r of result.results) {
      test(r.name, () => {
        expect(r.diffs, `${r.name}: ${r.decision.reason}`).toEqual([])
      })
    }
  })
}
