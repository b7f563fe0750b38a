// The README's JavaScript examples run as written, so the docs cannot rot.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, test } from 'vitest'

const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!)
const dir = new URL('./.readme-blocks/', import.meta.url)

afterAll(() => rm(dir, { recursive: true, force: true }))

test('the README has runnable examples', () => {
  expect(blocks.length).toBeGreaterThanOrEqual(2)
})

test.each(blocks.map((b, i) => [i + 1, b] as const))('README example %i runs', async (i, code) => {
  await mkdir(dir, { recursive: true })
  const file = new URL(`block-${i}.mjs`, dir)
  await writeFile(file, code)
  await expect(import(file.href)).resolves.toBeDefined()
})

// "Rego in three commands" runs as written, in a copy of the example (the bundle it builds stays
// out of the tree), with the repository's built CLI.
const rego = /## Rego in three commands\n[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1]
const opaBin = process.env.OPA_BIN || 'opa'
const hasOpa = spawnSync(opaBin, ['version']).status === 0
if (!hasOpa)
  console.log(
    '[readme] SKIPPED running "Rego in three commands": no `opa` binary on PATH and OPA_BIN is not set',
  )

test('the README has "Rego in three commands": opa build, verdict check, verdict test', () => {
  const lines = (rego ?? '').trim().split('\n')
  expect(lines).toHaveLength(3)
  expect(lines[0]).toMatch(/^opa build -t wasm /)
  expect(lines[1]).toMatch(/^node packages\/cli\/bin\/verdict\.js check /)
  expect(lines[2]).toMatch(/^node packages\/cli\/bin\/verdict\.js test /)
})

test.skipIf(!hasOpa)('"Rego in three commands" runs and prints what its comments say', () => {
  const root = fileURLToPath(new URL('../', import.meta.url))
  const work = mkdtempSync(join(tmpdir(), 'verdict-readme-rego-'))
  try {
    cpSync(join(root, 'examples/rego/envoy-authz'), join(work, 'examples/rego/envoy-authz'), {
      recursive: true,
      filter: (src) => !src.endsWith('.tar.gz'),
    })
    symlinkSync(join(root, 'packages'), join(work, 'packages'))
    const script = (rego ?? '').replaceAll(/^opa /gm, `${JSON.stringify(opaBin)} `)
    for (const line of script.trim().split('\n')) {
      const r = spawnSync('bash', ['-c', line], { cwd: work, encoding: 'utf8' })
      expect(r.status, `${line}\n${r.stdout}${r.stderr}`).toBe(0)
      const said = /#\s*(?:\.\.\.)?(.*)$/.exec(line)?.[1]?.trim()
      if (said !== undefined) expect(r.stdout.trim()).toContain(said)
    }
    expect(existsSync(join(work, 'examples/rego/envoy-authz/bundle.tar.gz'))).toBe(true)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
})
