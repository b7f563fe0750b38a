// `verdict test` validates the policy as written, not only the copy whose JWT providers the fixture
// issuers re-key: a provider whose JWKS file is missing fails `verdict test` as it fails `check`.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Io, main } from '@verdict/cli'
import { runCaseFile } from '@verdict/core/testing'
import { afterAll, beforeAll, expect, test } from 'vitest'

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'verdict-real-config-'))
  const policy = (jwks: string) =>
    [
      'name: keyed',
      'authentication:',
      '  jwt:',
      '    providers:',
      '      - name: idp',
      '        issuer: https://idp.example',
      `        jwks: ${jwks}`,
      'rules:',
      '  - id: alice',
      '    action: allow',
      '    match: { always: true }',
      '',
    ].join('\n')
  writeFileSync(join(dir, 'missing.yaml'), policy('{ file: keys/does-not-exist.json }'))
  writeFileSync(join(dir, 'remote.yaml'), policy('{ discovery: true }'))
  const cases = (p: string) =>
    [
      `policy: ${p}`,
      'fixtures:',
      '  issuers: { idp: { provider: idp } }',
      'cases:',
      '  - name: alice',
      '    request: { jwt: { issuer: idp, claims: { sub: alice } } }',
      '    expect: { allowed: true, rule: alice }',
      '',
    ].join('\n')
  writeFileSync(join(dir, 'missing.cases.yaml'), cases('missing.yaml'))
  writeFileSync(join(dir, 'remote.cases.yaml'), cases('remote.yaml'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function capture(): Io & { out: string; err: string } {
  const io = {
    out: '',
    err: '',
    isTTY: false,
    stdout(s: string) {
      io.out += s
    },
    stderr(s: string) {
      io.err += s
    },
    readStdin: async () => '',
  }
  return io
}

test('a missing JWKS file fails verdict test at the policy line, as verdict check does', async () => {
  const check = capture()
  expect(await main(['node', 'verdict', 'check', '-p', join(dir, 'missing.yaml')], check)).toBe(2)
  expect(check.err).toMatch(
    /missing\.yaml:7:\d+: \/authentication\/jwt\/providers\/0\/jwks\/file: cannot read/,
  )

  const run = capture()
  expect(await main(['node', 'verdict', 'test', join(dir, 'missing.cases.yaml')], run)).toBe(2)
  expect(run.err).toMatch(/missing\.yaml:7:\d+: \/authentication\/jwt\/providers\/0\/jwks\/file: cannot read/)
})

test('runCaseFile rejects it too', async () => {
  await expect(runCaseFile(join(dir, 'missing.cases.yaml'))).rejects.toThrow(/cannot read/)
})

test('a remote key set is still replaced offline: the cases run', async () => {
  const r = await runCaseFile(join(dir, 'remote.cases.yaml'))
  expect(r.results.map((c) => c.passed)).toEqual([true])
})
