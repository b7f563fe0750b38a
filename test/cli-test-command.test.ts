// `verdict test`: the runner as users meet it, through the command's entry point.
import { spawnSync } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Io, main } from '@verdict/cli'
import { describe, expect, test } from 'vitest'

const fixtures = fileURLToPath(new URL('../packages/core/src/testing/fixtures/', import.meta.url))
const examples = fileURLToPath(new URL('../examples/', import.meta.url))

const opaBin = process.env.OPA_BIN || 'opa'
const hasOpa = spawnSync(opaBin, ['version']).status === 0
if (!hasOpa)
  console.log(
    '[cli-test-command] SKIPPED the tests that build Rego bundles with opa: no `opa` on PATH and OPA_BIN ' +
      'is not set (the skip path of `verdict test` is tested either way).',
  )

/** Run `fn` with OPA_BIN set to `value` (undefined: unset). */
async function withOpaBin<T>(value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const before = process.env.OPA_BIN
  if (value === undefined) delete process.env.OPA_BIN
  else process.env.OPA_BIN = value
  try {
    return await fn()
  } finally {
    if (before === undefined) delete process.env.OPA_BIN
    else process.env.OPA_BIN = before
  }
}

async function run(...args: string[]) {
  let out = ''
  let err = ''
  const io: Io = {
    stdout: (t) => {
      out += t
    },
    stderr: (t) => {
      err += t
    },
    isTTY: false,
    readStdin: async () => '',
  }
  const code = await main(['node', 'verdict', 'test', ...args], io)
  return { code, out, err, last: out.trim().split('\n').at(-1) }
}

describe('verdict test', () => {
  test('every example case file passes', async () => {
    const r = await run(fileURLToPath(new URL('../examples', import.meta.url)))
    expect(r.err).toBe('')
    expect(r.code).toBe(0)
    // 001 (three files), 002, 003 and the rest were all found.
    expect(r.out).toContain('001-mcp-tools/remote-cel.cases.yaml')
    expect(r.out).toContain('003-jwt-cel/cases.yaml')
    if (hasOpa) {
      // The Rego examples' bundles were built (or were up to date) and their cases ran.
      expect(r.last).toMatch(/^\d+ passed, 0 failed$/)
      expect(r.out).not.toContain('SKIP')
      expect(r.out).toContain('ok    examples/rego/envoy-authz/cases.yaml')
      expect(r.out).toContain('ok    examples/rego/repo-allowlist/cases.yaml')
    } else {
      // Skipped with the reason, unless a bundle built earlier (gitignored) is still up to date.
      expect(r.last).toMatch(/^\d+ passed, 0 failed(, \d+ skipped)?$/)
      for (const ex of ['envoy-authz', 'repo-allowlist'])
        expect(r.out).toMatch(
          new RegExp(
            `ok {4}examples/rego/${ex}/cases\\.yaml|SKIP {2}examples/rego/${ex}/cases\\.yaml \\(\\d+ cases\\): .*no \`opa\` binary on PATH`,
          ),
        )
    }
  })

  describe('Rego bundles built from the sources beside them', () => {
    /** A copy of examples/rego/envoy-authz in a temporary directory, without a built bundle. */
    const copy = () => {
      const dir = mkdtempSync(join(tmpdir(), 'verdict-test-rego-'))
      for (const f of ['policy.yaml', 'cases.yaml', 'bundle'])
        cpSync(join(examples, 'rego/envoy-authz', f), join(dir, f), { recursive: true })
      return dir
    }

    test('without opa the case file is skipped with the reason and the command to run, exit 0', async () => {
      const dir = copy()
      try {
        const r = await withOpaBin('/nonexistent/opa', () => run(dir))
        expect(r.code).toBe(0)
        expect(r.err).toBe('')
        expect(r.out).toContain(`SKIP  ${dir}/cases.yaml (5 cases): `)
        expect(r.out).toContain(
          'bundle.tar.gz is not built and cannot be: OPA_BIN=/nonexistent/opa does not run',
        )
        expect(r.out).toContain('run: opa build -t wasm -e envoy/authz/allow -o ')
        expect(r.last).toBe('0 passed, 0 failed, 5 skipped')
        const j = JSON.parse((await withOpaBin('/nonexistent/opa', () => run(dir, '--json'))).out)
        expect(j).toMatchObject({ passed: 0, failed: 0, skipped: 5, built: [], problems: [] })
        expect(j.skippedFiles[0].reason).toContain('OPA_BIN=/nonexistent/opa does not run')
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })

    test('--no-build skips too', async () => {
      const dir = copy()
      try {
        const r = await run(dir, '--no-build')
        expect(r.code).toBe(0)
        expect(r.out).toContain('cannot be: building is off (--no-build)')
        expect(existsSync(join(dir, 'bundle.tar.gz'))).toBe(false)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })

    test.skipIf(!hasOpa)(
      'with opa: built once, rebuilt when the Rego changes, then the cases run',
      async () => {
        const dir = copy()
        try {
          const first = await run(dir)
          expect(first.err).toBe('')
          expect(first.code).toBe(0)
          expect(first.out).toMatch(
            /built opa build -t wasm -e envoy\/authz\/allow -o .*bundle\.tar\.gz -b .*bundle\n/,
          )
          expect(first.last).toBe('5 passed, 0 failed')
          const out = join(dir, 'bundle.tar.gz')
          expect(readFileSync(out).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]))
          // Up to date: not built again.
          const second = await run(dir)
          expect(second.out).not.toContain('built')
          expect(second.last).toBe('5 passed, 0 failed')
          // A Rego change makes it stale: the 429 tenant is no longer over quota, and a case fails.
          const rego = join(dir, 'bundle/policy.rego')
          writeFileSync(rego, readFileSync(rego, 'utf8').replace('"acme-trial"', '"someone-else"'))
          const later = (statSync(out).mtimeMs + 5000) / 1000
          utimesSync(rego, later, later)
          const third = await run(dir)
          expect(third.out).toContain('built opa build')
          expect(third.code).toBe(1)
          expect(third.last).toBe('4 passed, 1 failed')
          // Stale and no opa: the old bundle is used, with a note.
          utimesSync(rego, later + 10, later + 10)
          const fourth = await withOpaBin('/nonexistent/opa', () => run(dir))
          expect(fourth.out).toMatch(
            /note {2}.*bundle\.tar\.gz is older than .*bundle or the policy; not rebuilt: OPA_BIN/,
          )
        } finally {
          rmSync(dir, { recursive: true, force: true })
        }
      },
    )

    test.skipIf(!hasOpa)(
      'with opa: a Rego compile error is reported at the bundle in the policy, exit 2',
      async () => {
        const dir = copy()
        try {
          writeFileSync(join(dir, 'bundle/broken.rego'), 'package broken\n\nallow if {\n')
          const r = await run(dir)
          expect(r.code).toBe(2)
          expect(r.err).toMatch(
            new RegExp(
              `^${dir}/policy\\.yaml:5:18: /bundles/authz/path: opa build -t wasm .* failed: .*rego_parse_error.* \\[opa_build\\]\\n$`,
            ),
          )
          expect(existsSync(join(dir, 'bundle.tar.gz'))).toBe(false)
        } finally {
          rmSync(dir, { recursive: true, force: true })
        }
      },
    )
  })

  test('a failing case shows a diff and exits 1', async () => {
    const r = await run(`${fixtures}failing.yaml`)
    expect(r.code).toBe(1)
    expect(r.out).toContain('FAIL')
    expect(r.out).toContain('- expected true')
    expect(r.last).toBe('1 passed, 1 failed')
  })

  test('--coverage names the rule no case made decide', async () => {
    const r = await run(`${fixtures}cases.yaml`, '--coverage')
    expect(r.code).toBe(0)
    expect(r.out).toContain('never decided: never-used')
  })

  test('a malformed case file reports its path and line, exit 2', async () => {
    const r = await run(`${fixtures}malformed.yaml`)
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/malformed\.yaml:6:\d+: \/cases\/1\/expect: unknown field "alowed"/)
  })

  test('--json for machines', async () => {
    const r = await run(`${fixtures}failing.yaml`, '--json')
    const j = JSON.parse(r.out)
    expect(j).toMatchObject({ passed: 1, failed: 1, problems: [] })
    expect(j.files[0].cases[0].diffs[0]).toEqual({ field: 'allowed', expected: true, actual: false })
  })

  test('no case files is an error', async () => {
    const r = await run(fileURLToPath(new URL('../packages/cli/src', import.meta.url)))
    expect(r.code).toBe(2)
  })

  describe("a bundle that cannot be loaded is reported at the policy file's line and column", () => {
    const policy = (bundle: string, jwt = false) =>
      [
        'name: rego-bundle-error',
        ...(jwt
          ? [
              'authentication:',
              '  jwt:',
              '    providers:',
              '      - { name: idp, issuer: https://idp.test, jwks: { inline: { keys: [] } } }',
            ]
          : []),
        'bundles:',
        `  authz: { path: ${bundle} }`,
        'rules:',
        '  - id: r',
        '    action: allow',
        '    rego: { bundle: authz, entrypoint: x/allow }',
        '',
      ].join('\n')
    const cases = (jwt = false) =>
      [
        '# the case file: its own lines must not be blamed',
        'policy: policy.yaml',
        ...(jwt ? ['fixtures:', '  issuers: { idp: { provider: idp } }'] : []),
        'cases:',
        '  - name: any',
        '    request: { method: GET }',
        '    expect: { allowed: false }',
        '',
      ].join('\n')
    const inDir = async (files: Record<string, string>) => {
      const dir = mkdtempSync(join(tmpdir(), 'verdict-test-bundle-'))
      try {
        for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
        return { dir, ...(await run(join(dir, 'cases.yaml'))) }
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }

    test('a bundle file that does not exist', async () => {
      const r = await inDir({ 'policy.yaml': policy('missing.tar.gz'), 'cases.yaml': cases() })
      expect(r.code).toBe(2)
      // Line 3, column 18 is `missing.tar.gz` in the policy; the case file has no line 3 column 18.
      expect(r.err).toBe(
        `${r.dir}/policy.yaml:3:18: /bundles/authz/path: cannot read missing.tar.gz: ENOENT: no such file or directory, open '${r.dir}/missing.tar.gz' [resource]\n`,
      )
    })

    test('a file that is not a bundle', async () => {
      const r = await inDir({
        'policy.yaml': policy('bundle.tar.gz'),
        'bundle.tar.gz': 'not gzip',
        'cases.yaml': cases(),
      })
      expect(r.code).toBe(2)
      expect(r.err).toMatch(
        /\/policy\.yaml:3:18: \/bundles\/authz\/path: .*bundle\.tar\.gz is neither a gzipped bundle/,
      )
      expect(r.err).not.toContain('cases.yaml')
    })

    test('also when fixture issuers patched the policy before compiling it', async () => {
      const r = await inDir({ 'policy.yaml': policy('missing.tar.gz', true), 'cases.yaml': cases(true) })
      expect(r.code).toBe(2)
      expect(r.err).toMatch(/\/policy\.yaml:7:18: \/bundles\/authz\/path: cannot read missing\.tar\.gz/)
      expect(r.err).not.toContain('cases.yaml')
    })

    test('a policy file that does not parse', async () => {
      const r = await inDir({ 'policy.yaml': 'rules: [\n', 'cases.yaml': cases() })
      expect(r.code).toBe(2)
      expect(r.err).toMatch(/\/policy\.yaml:\d+:\d+: .*\[policy_parse\]/)
      expect(r.err).not.toContain('cases.yaml')
    })
  })
})
