/**
 * Every example case file with CEL rules passes with the CEL adapter's direct path on (the
 * default) and off (every expression on @bufbuild/cel), and both give each case the same decision.
 */
import { fileURLToPath } from 'node:url'
import { createCelEvaluator } from '@verdict/cel-adapter'
import { runCaseFile } from '@verdict/core/testing'
import { createMcpEvaluator } from '@verdict/mcp'
import { describe, expect, test } from 'vitest'

const FILES = [
  'examples/001-mcp-tools/remote-cel.cases.yaml',
  'examples/003-jwt-cel/cases.yaml',
  'examples/004-auth-service/cases.yaml',
]

describe('CEL direct path and engine agree on the examples', () => {
  test.each(FILES)('%s', async (file) => {
    const path = fileURLToPath(new URL(`../${file}`, import.meta.url))
    const run = (fastPath: boolean) =>
      runCaseFile(path, { evaluators: [createMcpEvaluator(), createCelEvaluator({ fastPath })] })
    const [direct, engine] = await Promise.all([run(true), run(false)])
    expect(direct.results.length).toBeGreaterThan(3)
    expect(direct.results.filter((r) => !r.passed)).toEqual([])
    expect(engine.results.filter((r) => !r.passed)).toEqual([])
    const summary = (r: (typeof direct.results)[number]) => {
      const { allowed, status, code, rule, reason, body } = r.decision
      return { name: r.name, allowed, status, code, rule, reason, body }
    }
    expect(direct.results.map(summary)).toEqual(engine.results.map(summary))
  })
})
