// `pnpm test` (scripts/test.mjs) runs vitest's bin with this node, not through `npx`: npx spawned
// under pnpm prints `npm warn Unknown env config` for each of pnpm's npm_config_* variables.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, test } from 'vitest'

test('scripts/test.mjs prints no npm warnings under pnpm-style npm_config_* variables', () => {
  const script = fileURLToPath(new URL('../scripts/test.mjs', import.meta.url))
  const work = mkdtempSync(join(tmpdir(), 'verdict-test-script-'))
  try {
    // An empty directory: vitest finds no test, which passes with --passWithNoTests.
    const r = spawnSync(process.execPath, [script, '--coverage.enabled=false', '--passWithNoTests'], {
      cwd: work,
      encoding: 'utf8',
      env: { ...process.env, npm_config_verify_deps_before_run: 'false', npm_config__jsr_registry: 'x' },
    })
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/npm (warn|error)/)
    expect(r.stdout).toContain('0 passed, 0 failed, 0 skipped')
    expect(r.status).toBe(0)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
})
