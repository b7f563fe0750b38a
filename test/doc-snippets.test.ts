// Every ```ts and ```js snippet in README.md and docs/*.md type-checks with `tsc --strict`, against
// the built packages as users import them (test/node_modules/@verdict/* -> dist; run `pnpm build`
// first). Snippets are written to test/.doc-snippets/ so that workspace packages resolve.
// test/readme.test.ts also runs the README's JavaScript.
import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, test } from 'vitest'

const root = fileURLToPath(new URL('../', import.meta.url))
const dir = join(root, 'test/.doc-snippets')

/** `docs/x.md` -> its ts/js snippets, with the line each starts on. */
function snippets(file: string): Array<{ name: string; line: number; code: string }> {
  const text = readFileSync(join(root, file), 'utf8')
  const out: Array<{ name: string; line: number; code: string }> = []
  for (const m of text.matchAll(/^```(ts|js|typescript|javascript)\n([\s\S]*?)^```$/gm)) {
    const line = text.slice(0, m.index).split('\n').length
    out.push({ name: `${file.replace(/[/.]/g, '_')}_L${line}`, line, code: m[2]! })
  }
  return out
}

const docs = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]
const all = docs.flatMap((file) => snippets(file).map((s) => ({ ...s, file })))

afterAll(() => rmSync(dir, { recursive: true, force: true }))

test('the docs have TypeScript and JavaScript snippets to check', () => {
  expect(all.length).toBeGreaterThanOrEqual(8)
  expect(all.map((s) => s.file)).toEqual(expect.arrayContaining(['README.md', 'docs/testing.md']))
})

test('every snippet type-checks with tsc --noEmit --strict', () => {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  for (const s of all) writeFileSync(join(dir, `${s.name}.ts`), `${s.code}\nexport {}\n`)
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2023', 'DOM'],
        types: ['node'],
        strict: true,
        noEmit: true,
        skipLibCheck: true,
      },
      include: ['*.ts'],
    }),
  )
  const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc')
  const r = spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '-p', dir], {
    cwd: dir,
    encoding: 'utf8',
  })
  // Name each error by the document and line of its snippet.
  const output = `${r.stdout}${r.stderr}`.replace(
    /^(\S+?)_L(\d+)\.ts\((\d+),(\d+)\)/gm,
    (_m, name: string, start, l, c) => {
      const s = all.find((x) => x.name === `${name}_L${start}`)
      return `${s?.file ?? name}:${Number(start) + Number(l)}:${c}`
    },
  )
  expect(output).toBe('')
  expect(r.status).toBe(0)
})
