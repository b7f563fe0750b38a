// The README's JavaScript examples run as written, so the docs cannot rot.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
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
