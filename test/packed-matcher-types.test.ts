// `toAllow` / `toDeny` type-check from the PACKED @verdict/core (what npm users install), with the
// imports in the order the docs use and an import sorter produces: @verdict/core/testing before
// vitest. The package is packed with `pnpm pack`, unpacked into a scratch project's node_modules,
// and its dependencies, vitest and typescript are linked from this workspace (no network).
import { execFileSync, spawnSync } from 'node:child_process'
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, test } from 'vitest'

const root = fileURLToPath(new URL('../', import.meta.url))
const core = join(root, 'packages/core')
let work: string

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'verdict-packed-'))
  const packs = join(work, 'packs')
  mkdirSync(packs)
  execFileSync('pnpm', ['pack', '--pack-destination', packs], { cwd: core, stdio: 'pipe' })
  const tarball = readdirSync(packs).find((f) => f.endsWith('.tgz'))!
  const target = join(work, 'node_modules/@verdict/core')
  mkdirSync(target, { recursive: true })
  execFileSync('tar', ['-xzf', join(packs, tarball), '-C', target, '--strip-components=1'])
  const link = (name: string, from: string) => {
    mkdirSync(join(work, 'node_modules', name, '..'), { recursive: true })
    symlinkSync(realpathSync(join(from, 'node_modules', name)), join(work, 'node_modules', name), 'dir')
  }
  for (const dep of ['ajv', 'bcryptjs', 'jose', 'yaml']) link(dep, core)
  for (const dep of ['vitest', 'typescript', '@types/node']) link(dep, root)
  writeFileSync(
    join(work, 'package.json'),
    JSON.stringify({ name: 'scratch', private: true, type: 'module' }),
  )
  writeFileSync(
    join(work, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        types: ['node'],
        skipLibCheck: true,
      },
      include: ['*.ts'],
    }),
  )
}, 120_000)
afterAll(() => rmSync(work, { recursive: true, force: true }))

function typecheck(file: string, code: string): { status: number | null; output: string } {
  writeFileSync(join(work, file), code)
  const tsc = join(work, 'node_modules/typescript/bin/tsc')
  const r = spawnSync(process.execPath, [tsc, '--noEmit', '-p', work], { cwd: work, encoding: 'utf8' })
  rmSync(join(work, file))
  return { status: r.status, output: `${r.stdout}${r.stderr}` }
}

const body = `
import { createEngine } from '@verdict/core'
import { checkRequest, verdictMatchers } from '@verdict/core/testing'
import { expect, test } from 'vitest'

expect.extend(verdictMatchers)

test('header rule', async () => {
  const engine = await createEngine({ default: 'deny' })
  expect(await engine.decide(checkRequest())).toDeny({ status: 403 })
  expect(await engine.decide(checkRequest())).not.toAllow({ rule: 'x' })
})
`

test('the docs import order: @verdict/core/testing, then vitest', () => {
  const r = typecheck('docs-order.test.ts', body)
  expect(r.output).toBe('')
  expect(r.status).toBe(0)
})

test('vitest first works too', () => {
  const first = body.replace("import { expect, test } from 'vitest'\n", '')
  const r = typecheck('vitest-first.test.ts', `import { expect, test } from 'vitest'\n${first}`)
  expect(r.output).toBe('')
  expect(r.status).toBe(0)
})

test('a matcher that does not exist is still an error (the check is real)', () => {
  const r = typecheck('wrong.test.ts', body.replace('.toDeny({ status: 403 })', '.toDenyy({ status: 403 })'))
  expect(r.output).toMatch(/toDenyy/)
  expect(r.status).not.toBe(0)
})
