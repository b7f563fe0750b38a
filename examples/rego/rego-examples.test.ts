/**
 * The Rego examples: their Rego unit tests (`opa test`), and their case files (`cases.yaml`, what
 * `verdict test` runs) decided by verdict on bundles compiled with `opa build -t wasm` in a
 * temporary copy (nothing is built in the tree, nothing built is committed). Both need an `opa`
 * binary (on PATH or in OPA_BIN); without one these tests are skipped and say so, and only the
 * case files themselves are checked.
 */
import { spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createEngine, createFileResourceLoader, loadPolicyFile } from '@verdict/core'
import { checkRequest, runCaseFile } from '@verdict/core/testing'
import { createRegoEvaluator } from '@verdict/rego-adapter'
import { describe, expect, test } from 'vitest'
import { findOpa } from '../../packages/rego-adapter/src/testing/find-opa.js'

const here = fileURLToPath(new URL('.', import.meta.url))

const opa = findOpa()
if (opa.why !== undefined)
  console.log(
    `[examples/rego] SKIPPED the opa test and opa build -t wasm checks: ${opa.why}. ` +
      'Install OPA (https://www.openpolicyagent.org/docs/#running-opa) or set OPA_BIN to run them.',
  )

const examples = [
  { dir: 'repo-allowlist', entrypoint: 'mcp/repos/allow' },
  { dir: 'envoy-authz', entrypoint: 'envoy/authz/allow' },
]

/** A copy of an example (policy, case file, Rego sources) in a temporary directory. */
function copyOf(dir: string): string {
  const out = mkdtempSync(join(tmpdir(), `verdict-rego-${dir}-`))
  for (const f of ['policy.yaml', 'cases.yaml', 'bundle'])
    cpSync(join(here, dir, f), join(out, f), { recursive: true })
  return out
}

function opaBuild(entrypoint: string, root: string): void {
  const r = spawnSync(
    opa.bin!,
    ['build', '-t', 'wasm', '-e', entrypoint, '-o', join(root, 'bundle.tar.gz'), '-b', join(root, 'bundle')],
    { encoding: 'utf8' },
  )
  expect(r.status, r.stderr + r.stdout).toBe(0)
}

describe.each(examples)('examples/rego/$dir', ({ dir, entrypoint }) => {
  const root = join(here, dir)

  test('the case file names the policy beside it and every case is a request verdict accepts', async () => {
    const file = (await loadPolicyFile(join(root, 'cases.yaml'))).source.value as {
      policy: string
      cases: unknown[]
    }
    expect(file.policy).toBe('policy.yaml')
    expect(file.cases.length).toBeGreaterThan(3)
    // Against a stand-in policy (no bundle needed): the file is valid and no input is refused.
    const copy = copyOf(dir)
    try {
      writeFileSync(
        join(copy, 'policy.yaml'),
        'rules: [{ id: none, action: allow, match: { methods: [NONE] } }]\n',
      )
      const r = await runCaseFile(join(copy, 'cases.yaml'))
      expect(r.results).toHaveLength(file.cases.length)
      for (const c of r.results) expect(c.decision.status, `${c.name}: ${c.decision.reason}`).toBe(403)
    } finally {
      rmSync(copy, { recursive: true, force: true })
    }
  })

  test.skipIf(opa.bin === undefined)('opa test passes', () => {
    const r = spawnSync(opa.bin!, ['test', '-v', '-b', join(root, 'bundle')], { encoding: 'utf8' })
    expect(r.status, r.stdout + r.stderr).toBe(0)
  })

  test.skipIf(opa.bin === undefined)(
    'compiled with opa build -t wasm, verdict passes every case of cases.yaml',
    async () => {
      const copy = copyOf(dir)
      try {
        opaBuild(entrypoint, copy)
        const r = await runCaseFile(join(copy, 'cases.yaml'), { evaluators: [createRegoEvaluator()] })
        for (const c of r.results)
          expect(
            c.diffs,
            `${c.name}: ${c.decision.allowed} ${c.decision.status} ${c.decision.reason}`,
          ).toEqual([])
        expect(r.uncovered).toEqual([])
      } finally {
        rmSync(copy, { recursive: true, force: true })
      }
    },
  )
})

// What a case file cannot state: the header removal and the response header of the allow object.
test.skipIf(opa.bin === undefined)(
  'examples/rego/envoy-authz: the allow object removes x-ext-authz and adds a response header',
  async () => {
    const copy = copyOf('envoy-authz')
    try {
      opaBuild('envoy/authz/allow', copy)
      const engine = await createEngine(readFileSync(join(copy, 'policy.yaml'), 'utf8'), {
        evaluators: [createRegoEvaluator()],
        resources: createFileResourceLoader({ baseDir: copy }),
      })
      try {
        const d = await engine.decide(
          checkRequest({ path: '/api/items', headers: { 'x-ext-authz': 'allow' } }),
        )
        expect(d.allowed, d.reason).toBe(true)
        expect(d.headersToRemove).toEqual(['x-ext-authz'])
        expect(d.responseHeadersToAdd.filter((h) => h.key === 'x-checked-by').map((h) => h.value)).toEqual([
          'opa-wasm',
        ])
      } finally {
        engine.close()
      }
    } finally {
      rmSync(copy, { recursive: true, force: true })
    }
  },
)

// `pnpm demo` (scripts/demo.mjs, on the built packages) has a Rego scenario with opa, and says how
// to get opa without it; either way it exits 0.
describe('pnpm demo', () => {
  const demo = fileURLToPath(new URL('../../scripts/demo.mjs', import.meta.url))

  test('without opa: says how to get it, no Rego rows, exit 0', () => {
    const r = spawnSync(process.execPath, [demo], {
      encoding: 'utf8',
      env: { ...process.env, OPA_BIN: '/nonexistent/opa' },
    })
    expect(r.status, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toContain(
      'note: rego: the Rego examples (examples/rego) did not run: OPA_BIN=/nonexistent/opa',
    )
    expect(r.stdout).toContain('https://www.openpolicyagent.org/docs/#running-opa')
    expect(r.stdout).not.toMatch(/^rego\//m)
  }, 120_000)

  test.skipIf(opa.bin === undefined)(
    'with opa: both Rego examples are rows of the table, all ok',
    () => {
      const r = spawnSync(process.execPath, [demo], { encoding: 'utf8' })
      expect(r.status, r.stdout + r.stderr).toBe(0)
      const rego = r.stdout.split('\n').filter((l) => l.startsWith('rego/'))
      expect(rego.filter((l) => l.startsWith('rego/envoy-authz '))).toHaveLength(5)
      expect(rego.filter((l) => l.startsWith('rego/repo-allowlist '))).toHaveLength(8)
      for (const l of rego) expect(l).toMatch(/ ok$/)
      expect(r.stdout).not.toContain('did not run')
    },
    120_000,
  )
})
