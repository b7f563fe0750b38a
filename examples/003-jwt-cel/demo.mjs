// pnpm demo rows for seed 003: the case file, run through verdict's case runner.
import { fileURLToPath } from 'node:url'
import { createCelEvaluator } from '@verdict/cel-adapter'
import { decisionSummary, runCaseFile } from '@verdict/core/testing'

export default async function scenarios() {
  const r = await runCaseFile(fileURLToPath(new URL('./cases.yaml', import.meta.url)), {
    evaluators: [createCelEvaluator()],
  })
  return r.results.map((c) => ({
    request: c.name,
    expected: c.expected,
    got: c.passed
      ? decisionSummary(c.decision, c.expectation)
      : `${decisionSummary(c.decision)} (${c.diffs.map((d) => d.field).join(', ')} differ)`,
  }))
}
