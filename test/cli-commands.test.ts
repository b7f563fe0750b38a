/**
 * The `verdict` command in-process (`main(argv, io)`): eval, check, help, exit statuses.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Io, main } from '@verdict/cli'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadEvaluators } from '../packages/cli/src/evaluators.js'
import { parseListenAddress } from '../packages/cli/src/listen-address.js'

const SEED_000 = fileURLToPath(new URL('../examples/000-istio-ext-authz/policy.yaml', import.meta.url))

interface Run {
  code: number
  stdout: string
  stderr: string
}

async function run(args: string[], stdin = '', isTTY = false): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const io: Io = {
    stdout: (t) => {
      stdout += t
    },
    stderr: (t) => {
      stderr += t
    },
    isTTY,
    readStdin: async () => stdin,
  }
  const code = await main(['node', 'verdict', ...args], io)
  return { code, stdout, stderr }
}

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verdict-cli-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const file = async (name: string, text: string): Promise<string> => {
  const p = join(dir, name)
  await writeFile(p, text)
  return p
}

// Two problems on known lines: an unknown match field (line 5) and an invalid status (line 8).
const BROKEN = `rules:
  - id: a
    action: allow
    match:
      nosuch: true
responses:
  denied:
    status: 418
`

describe('verdict eval', () => {
  it('prints the allow Decision for seed 000 and exits 0', async () => {
    const input = await file(
      'allow.json',
      JSON.stringify({ method: 'GET', path: '/', headers: { 'x-ext-authz': 'allow' } }),
    )
    const r = await run(['eval', '--policy', SEED_000, '--input', input])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({
      allowed: true,
      rule: 'header-allow',
      headers: [{ key: 'x-ext-authz-check-result', value: 'allowed' }],
    })
  })

  it('prints a deny Decision (still exit 0) from standard input, indented on a terminal', async () => {
    const r = await run(['eval', '-p', SEED_000], JSON.stringify({ method: 'GET', path: '/' }), true)
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('\n  "allowed": false')
    expect(JSON.parse(r.stdout)).toMatchObject({
      status: 403,
      body: 'denied by ext_authz for not found header `x-ext-authz: allow` in the request',
    })
  })

  it('reads a CheckRequest in protobuf JSON too', async () => {
    const req = {
      attributes: { request: { http: { method: 'GET', path: '/', headers: { 'x-ext-authz': 'allow' } } } },
    }
    const r = await run(['eval', '-p', SEED_000, '--json'], JSON.stringify(req), true)
    expect(r.stdout.trim().split('\n')).toHaveLength(1)
    expect(JSON.parse(r.stdout).allowed).toBe(true)
  })

  it('exits 2 with every policy problem and its location on stderr', async () => {
    const policy = await file('broken.yaml', BROKEN)
    const r = await run(['eval', '-p', policy], '{"path":"/"}')
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/broken\.yaml:5:\d+: .*nosuch/)
    expect(r.stderr).toMatch(/broken\.yaml:8:\d+: .*418/)
  })

  it('exits 2 for input that is not JSON, with line and column', async () => {
    const input = await file('bad.json', '{\n  "path": "/",\n  oops\n}')
    const r = await run(['eval', '-p', SEED_000, '-i', input])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/bad\.json:3:\d+: invalid JSON/)
  })

  it('exits 2 for input that is not a request', async () => {
    const r = await run(['eval', '-p', SEED_000], JSON.stringify({ method: 'GET', headers: {} }))
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/<stdin>: malformed input: path is required/)
  })

  it('exits 2 when the policy file does not exist', async () => {
    const r = await run(['eval', '-p', join(dir, 'missing.yaml')], '{}')
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/cannot read/)
  })
})

describe('verdict check', () => {
  it('accepts a valid policy', async () => {
    const r = await run(['check', '-p', SEED_000])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/ok \(policy "istio-ext-authz-sample"\)/)
  })

  it('reports every problem with file:line:col and a count', async () => {
    const policy = await file('broken2.yaml', BROKEN)
    const r = await run(['check', '-p', policy])
    expect(r.code).toBe(2)
    const lines = r.stderr.trim().split('\n')
    expect(lines.filter((l) => /broken2\.yaml:\d+:\d+: /.test(l))).toHaveLength(2)
    expect(lines.at(-1)).toBe('2 problems')
  })

  it('reports a YAML syntax error with its position', async () => {
    const policy = await file('syntax.yaml', 'rules:\n  - id: a\n   action: [allow\n')
    const r = await run(['check', '-p', policy])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/syntax\.yaml:\d+:\d+: .*\[policy_parse\]/)
  })

  it('prints machine-readable problems with --json', async () => {
    const policy = await file('broken3.yaml', BROKEN)
    const r = await run(['check', '-p', policy, '--json'])
    expect(r.code).toBe(2)
    const out = JSON.parse(r.stdout)
    expect(out.ok).toBe(false)
    expect(out.problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ line: 5, code: 'schema', path: '/rules/0/match' }),
        expect.objectContaining({ line: 8, code: 'invalid_status', path: '/responses/denied/status' }),
      ]),
    )
  })
})

describe('help and usage', () => {
  it.each([[[]], [['eval']], [['check']], [['serve']]])('--help works for %j', async (cmd) => {
    const r = await run([...cmd, '--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^Usage: verdict/)
  })

  it('serve --help lists the listeners and their loopback defaults', async () => {
    const r = await run(['serve', '--help'])
    expect(r.stdout).toContain('--grpc <host:port|unix:path>')
    expect(r.stdout).toContain('--http <host:port|unix:path>')
    expect(r.stdout).toContain('(default: 127.0.0.1:9464)')
  })

  it('exits 2 on a usage error', async () => {
    const r = await run(['eval', '--nope'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/required option|unknown option/)
    expect((await run(['serve', '-p', SEED_000, '--grpc', 'nohost:99999'])).code).toBe(2)
  })
})

describe('pieces', () => {
  it('parses listen addresses, defaulting to loopback', () => {
    expect(parseListenAddress('9000')).toEqual({ host: '127.0.0.1', port: 9000 })
    expect(parseListenAddress(':0')).toEqual({ host: '127.0.0.1', port: 0 })
    expect(parseListenAddress('0.0.0.0:8000')).toEqual({ host: '0.0.0.0', port: 8000 })
    expect(parseListenAddress('[::1]:9191')).toEqual({ host: '::1', port: 9191 })
    expect(() => parseListenAddress('localhost:http')).toThrow(/host:port/)
  })

  it('registers what evaluator packages provide and reports the rest', async () => {
    const { evaluators, unavailable } = await loadEvaluators([
      {
        pkg: 'ok',
        factory: 'make',
        load: async () => ({ make: () => ({ kind: 'x', compile: () => ({ ok: true }) }) }),
      },
      { pkg: 'no-factory', factory: 'make', load: async () => ({}) },
      {
        pkg: 'broken',
        factory: 'make',
        load: async () => {
          throw new Error('cannot load')
        },
      },
    ])
    expect(evaluators.map((e) => e.kind)).toEqual(['x'])
    expect(unavailable).toEqual([
      { pkg: 'no-factory', reason: 'does not export make' },
      { pkg: 'broken', reason: 'failed to load: cannot load' },
    ])
  })
})
