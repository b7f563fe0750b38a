// `verdict eval` as opa eval users script it: --fail / --fail-defined exit statuses, --explain, and
// the Decision JSON printed for refused inputs (400, 415) too.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Io, main } from '@verdict/cli'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'

const SEED_000 = fileURLToPath(new URL('../examples/000-istio-ext-authz/policy.yaml', import.meta.url))
const ALLOW = JSON.stringify({ method: 'GET', path: '/', headers: { 'x-ext-authz': 'allow' } })
const DENY = JSON.stringify({ method: 'GET', path: '/', headers: {} })

async function run(args: string[], stdin = '') {
  let stdout = ''
  let stderr = ''
  const io: Io = {
    stdout: (t) => {
      stdout += t
    },
    stderr: (t) => {
      stderr += t
    },
    isTTY: false,
    readStdin: async () => stdin,
  }
  const code = await main(['node', 'verdict', ...args], io)
  return { code, stdout, stderr }
}

describe('--fail and --fail-defined', () => {
  test('without them a decision exits 0 either way', async () => {
    expect((await run(['eval', '-p', SEED_000], ALLOW)).code).toBe(0)
    expect((await run(['eval', '-p', SEED_000], DENY)).code).toBe(0)
  })

  test('--fail exits 1 on a deny (opa: the result is undefined), 0 on an allow', async () => {
    const denied = await run(['eval', '-p', SEED_000, '--fail'], DENY)
    expect(denied.code).toBe(1)
    expect(JSON.parse(denied.stdout)).toMatchObject({ allowed: false, status: 403 })
    expect((await run(['eval', '-p', SEED_000, '--fail'], ALLOW)).code).toBe(0)
  })

  test('--fail-defined exits 1 on an allow (opa: the result is defined), 0 on a deny', async () => {
    const allowed = await run(['eval', '-p', SEED_000, '--fail-defined'], ALLOW)
    expect(allowed.code).toBe(1)
    expect(JSON.parse(allowed.stdout)).toMatchObject({ allowed: true })
    expect((await run(['eval', '-p', SEED_000, '--fail-defined'], DENY)).code).toBe(0)
  })

  test('they exclude each other', async () => {
    const r = await run(['eval', '-p', SEED_000, '--fail', '--fail-defined'], ALLOW)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/cannot be used with/)
  })
})

describe('the Decision for refused inputs', () => {
  test('400: printed on stdout, the reason on stderr, exit 2', async () => {
    const r = await run(['eval', '-p', SEED_000, '--fail'], JSON.stringify({ method: 'GET', headers: {} }))
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout)).toMatchObject({ allowed: false, status: 400, code: 'malformed_input' })
    expect(r.stderr).toMatch(/<stdin>: malformed input: path is required/)
  })

  test('415: a JSON-RPC body sent as text/plain', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } })
    const input = { method: 'POST', path: '/mcp', headers: { 'content-type': 'text/plain' }, body }
    const r = await run(['eval', '-p', SEED_000], JSON.stringify(input))
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout)).toMatchObject({ allowed: false, status: 415 })
  })
})

describe('--explain', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'verdict-explain-'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  test("each rule's outcome and condition, the deciding rule marked, on stderr", async () => {
    const r = await run(['eval', '-p', SEED_000, '--explain'], ALLOW)
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ allowed: true, rule: 'header-allow' })
    expect(r.stderr).toMatch(/^explain: allow 200 \(allowed\) by rule header-allow/)
    expect(r.stderr).toMatch(/\* header-allow +allow +matched, would allow +\(match: .*x-ext-authz/)
    expect(r.stderr).toMatch(/ {4}service-account-a +allow +did not match/)
  })

  test('errors and layers are shown; --json makes it one JSON object', async () => {
    const policy = join(dir, 'layers.yaml')
    writeFileSync(
      policy,
      [
        'layers:',
        '  - name: gate',
        '    rules:',
        '      - { id: blocked, action: deny, match: { paths: [{ prefix: /admin }] } }',
        '      - { id: anyone, action: allow, match: { always: true } }',
        '  - name: app',
        '    rules:',
        '      - { id: get-only, action: allow, match: { methods: [GET] } }',
        '',
      ].join('\n'),
    )
    const r = await run(
      ['eval', '-p', policy, '--explain', '--json'],
      JSON.stringify({ method: 'POST', path: '/admin/x', headers: {} }),
    )
    expect(r.code).toBe(0)
    const explained = JSON.parse(r.stderr).explain
    expect(explained.rule).toBe('blocked')
    expect(explained.rules).toEqual([
      expect.objectContaining({
        rule: 'blocked',
        layer: 'gate',
        action: 'deny',
        outcome: 'match',
        wouldDecide: 'deny',
        decided: true,
      }),
      expect.objectContaining({ rule: 'anyone', layer: 'gate', outcome: 'match', decided: false }),
      expect.objectContaining({ rule: 'get-only', layer: 'app', outcome: 'no_match', decided: false }),
    ])
  })
})
