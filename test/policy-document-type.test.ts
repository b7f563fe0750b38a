/**
 * Issue 18 part 3: `PolicyDocument` is generated from policy.schema.json by
 * scripts/gen-policy-types.mjs, so the type cannot drift from what the loader accepts. The file
 * checked in must be what the generator makes of the schema today; documents typed with it load.
 */
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createEngine, type DecideInput, POLICY_SCHEMA, type PolicyDocument } from '@verdict/core'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const GENERATED = join(ROOT, 'packages/core/src/policy-document.ts')

describe('PolicyDocument', () => {
  it('is what scripts/gen-policy-types.mjs generates from the schema (pnpm gen:types)', () => {
    const out = execFileSync(process.execPath, ['scripts/gen-policy-types.mjs', '--print'], {
      cwd: ROOT,
      encoding: 'utf8',
    })
    expect(out).toBe(readFileSync(GENERATED, 'utf8'))
  }, 60_000)

  it('goes stale when the schema changes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'verdict-schema-'))
    try {
      const schema = JSON.parse(readFileSync(join(ROOT, 'packages/core/src/policy.schema.json'), 'utf8'))
      schema.properties.owner = { description: 'Who owns the policy.', type: 'string' }
      writeFileSync(join(dir, 'policy.schema.json'), JSON.stringify(schema))
      copyFileSync(GENERATED, join(dir, 'policy-document.ts'))
      const run = () =>
        execFileSync(process.execPath, ['scripts/gen-policy-types.mjs', '--check'], {
          cwd: ROOT,
          stdio: 'pipe',
          env: { ...process.env, VERDICT_SCHEMA_DIR: dir },
        })
      expect(run).toThrow(/stale/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)

  it('types every top-level field of the schema, and typed documents load', async () => {
    const text = readFileSync(GENERATED, 'utf8')
    const body = text.slice(text.indexOf('export interface PolicyDocument {'))
    const top = body.slice(0, body.indexOf('\n}\n'))
    for (const key of Object.keys((POLICY_SCHEMA as { properties: object }).properties))
      expect(top).toMatch(new RegExp(`\\n  (?:'${key}'|${key})\\??:`))

    const policy: PolicyDocument = {
      version: 'verdict/v1',
      name: 'typed',
      rules: [
        { id: 'health', action: 'allow', match: { paths: [{ prefix: '/health' }] } },
        { id: 'admins', action: 'deny', match: { headers: [{ name: 'x-role', exact: 'admin' }] } },
      ],
      default: 'deny',
    }
    // @ts-expect-error: the version is a constant in the schema, so in the type.
    const wrong: PolicyDocument = { version: 'verdict/v2' }
    expect(wrong.version).toBe('verdict/v2')
    const engine = await createEngine(policy)
    const input: DecideInput = { method: 'GET', path: '/health/live', headers: { 'x-role': 'user' } }
    expect((await engine.decide(input)).rule).toBe('health')
    const check: DecideInput = {
      attributes: { request: { http: { method: 'GET', path: '/x', headers: { 'x-role': 'admin' } } } },
    }
    expect((await engine.decide(check)).code).toBe('denied')
    engine.close()
  })
})
