/**
 * The Rego examples, compiled with `opa build -t wasm` and decided by verdict against their case
 * tables; their Rego unit tests run with `opa test`. Both need an `opa` binary (on PATH or in
 * OPA_BIN); without one these tests are skipped and say so.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createEngine, createFileResourceLoader, type HeaderEntry, normalizeInput } from '@verdict/core'
import { createRegoEvaluator } from '@verdict/rego-adapter'
import { describe, expect, test } from 'vitest'

interface Case {
  readonly name: string
  readonly request: Record<string, unknown>
  readonly expect: {
    readonly allowed: boolean
    readonly status?: number
    readonly body?: string
    readonly headers?: Record<string, string>
    readonly headersToRemove?: string[]
    readonly responseHeadersToAdd?: Record<string, string>
  }
}

const here = fileURLToPath(new URL('.', import.meta.url))

function findOpa(): { bin: string; why?: undefined } | { bin?: undefined; why: string } {
  const bin = process.env.OPA_BIN || 'opa'
  const r = spawnSync(bin, ['version'], { encoding: 'utf8' })
  if (r.error === undefined && r.status === 0) return { bin }
  return {
    why: process.env.OPA_BIN
      ? `OPA_BIN=${bin} does not run (${r.error?.message ?? r.stderr.trim()})`
      : 'no `opa` binary on PATH and OPA_BIN is not set',
  }
}

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

const headerValues = (list: readonly HeaderEntry[], key: string) =>
  list.filter((h) => h.key === key).map((h) => h.value)

describe.each(examples)('examples/rego/$dir', ({ dir, entrypoint }) => {
  const root = join(here, dir)
  const cases = JSON.parse(readFileSync(join(root, 'cases.json'), 'utf8')) as Case[]

  test('every case is a request verdict accepts', () => {
    expect(cases.length).toBeGreaterThan(3)
    for (const c of cases) expect('allowed' in normalizeInput(c.request), c.name).toBe(false)
  })

  test.skipIf(opa.bin === undefined)('opa test passes', () => {
    const r = spawnSync(opa.bin!, ['test', '-v', '-b', join(root, 'bundle')], { encoding: 'utf8' })
    expect(r.status, r.stdout + r.stderr).toBe(0)
  })

  test.skipIf(opa.bin === undefined)(
    'compiled with opa build -t wasm, verdict decides the case table',
    async () => {
      const out = mkdtempSync(join(tmpdir(), `verdict-rego-${dir}-`))
      try {
        const r = spawnSync(
          opa.bin!,
          [
            'build',
            '-t',
            'wasm',
            '-e',
            entrypoint,
            '-o',
            join(out, 'bundle.tar.gz'),
            '-b',
            join(root, 'bundle'),
          ],
          { encoding: 'utf8' },
        )
        expect(r.status, r.stderr).toBe(0)
        const engine = await createEngine(readFileSync(join(root, 'policy.yaml'), 'utf8'), {
          evaluators: [createRegoEvaluator()],
          resources: createFileResourceLoader({ baseDir: out }),
        })
        try {
          for (const c of cases) {
            const d = await engine.decide(c.request)
            const e = c.expect
            expect(d.allowed, `${c.name}: ${d.reason}`).toBe(e.allowed)
            if (e.status !== undefined) expect(d.status, c.name).toBe(e.status)
            if (e.body !== undefined) expect(d.body, c.name).toBe(e.body)
            for (const [k, v] of Object.entries(e.headers ?? {}))
              expect(headerValues(d.headers, k), c.name).toEqual([v])
            if (e.headersToRemove !== undefined) expect(d.headersToRemove, c.name).toEqual(e.headersToRemove)
            for (const [k, v] of Object.entries(e.responseHeadersToAdd ?? {}))
              expect(headerValues(d.responseHeadersToAdd, k), c.name).toEqual([v])
          }
        } finally {
          engine.close()
        }
      } finally {
        rmSync(out, { recursive: true, force: true })
      }
    },
  )
})
