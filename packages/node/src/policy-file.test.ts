import { execFileSync } from 'node:child_process'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PolicyError } from '@verdict/core'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { createEngineFromFile, loadPolicyFile, watchPolicyFile } from './policy-file.js'

const allowHeader = (v: string) =>
  `name: p\nrules:\n  - id: hdr\n    action: allow\n    match: { headers: [{ name: x-key, exact: ${v} }] }\n`

async function until(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error('condition not reached in time')
}

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verdict-policy-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('policy files', () => {
  test('loadPolicyFile reports unreadable files and parse errors with lines', async () => {
    await expect(loadPolicyFile(join(dir, 'missing.yaml'))).rejects.toBeInstanceOf(PolicyError)
    const p = join(dir, 'bad.yaml')
    await writeFile(p, 'rules:\n  - id: a\n    id: b\n')
    const err = (await loadPolicyFile(p).catch((e: unknown) => e)) as PolicyError
    expect(err.problems[0]).toMatchObject({ code: 'policy_parse', line: 3 })
  })

  test('resources resolve next to the file', async () => {
    const p = join(dir, 'policy.yaml')
    await writeFile(p, allowHeader('a'))
    await writeFile(join(dir, 'data.txt'), 'hello')
    const f = await loadPolicyFile(p)
    expect(new TextDecoder().decode(await f.resources.read('data.txt'))).toBe('hello')
    await expect(f.resources.read('https://example.invalid/x')).rejects.toThrow(/not enabled/)
  })

  test('the watcher applies edits, keeps the old policy on invalid ones, and reloads on demand', async () => {
    const p = join(dir, 'policy.yaml')
    await writeFile(p, allowHeader('one'))
    const engine = await createEngineFromFile(p)
    const errors: unknown[] = []
    const reloads: number[] = []
    const w = watchPolicyFile(p, engine, {
      intervalMs: 50,
      onError: (e) => errors.push(e),
      onReload: (i) => reloads.push(i.generation),
    })
    try {
      const allowedWith = async (v: string) =>
        (await engine.decide({ path: '/', headers: { 'x-key': v } })).allowed
      expect(await allowedWith('one')).toBe(true)
      // Replace the file by renaming a new one over it, as editors do.
      await writeFile(`${p}.tmp`, allowHeader('two'))
      await rename(`${p}.tmp`, p)
      await until(async () => (await allowedWith('two')) && !(await allowedWith('one')))
      expect(reloads.length).toBeGreaterThanOrEqual(1)
      await writeFile(p, 'rules: [ { id: x, action: nope } ]\n')
      await until(async () => errors.length > 0)
      expect(errors[0]).toBeInstanceOf(PolicyError)
      expect(await allowedWith('two')).toBe(true)
      await writeFile(p, allowHeader('three'))
      expect(await w.reload()).toBe(true)
      expect(await allowedWith('three')).toBe(true)
      // On demand the policy is compiled again even with its text unchanged: files it names may
      // have changed. After close() too (`serve --no-watch` reloads on SIGHUP).
      const generation = engine.info.generation
      expect(await w.reload()).toBe(true)
      expect(engine.info.generation).toBe(generation + 1)
      w.close()
      expect(await w.reload()).toBe(true)
      expect(engine.info.generation).toBe(generation + 2)
    } finally {
      w.close()
      engine.close()
    }
  })

  test('a FIFO or a device as the policy or a file it names fails at once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'verdict-fifo-'))
    const fifo = join(dir, 'pipe')
    execFileSync('mkfifo', [fifo])
    const policy = join(dir, 'p.yaml')
    await writeFile(
      policy,
      `authentication: { jwt: { providers: [{ issuer: https://i, jwks: { file: ${fifo} } }] } }\ndefault: allow\nrules: []\n`,
    )
    await expect(loadPolicyFile(fifo)).rejects.toThrow(/not a regular file/)
    await expect(loadPolicyFile('/dev/zero')).rejects.toThrow(/not a regular file/)
    await expect(createEngineFromFile(policy)).rejects.toThrow(/not a regular file/)
  })
})
