/**
 * Issue 18 part 1, the proof that core has no host in it. The README's "Use 1" (core + CEL) and the
 * Rego example examples/rego/envoy-authz (its Rego compiled here by the real `opa build -t wasm`)
 * are bundled by esbuild for the browser with no Node polyfills: a `node:` import, a Node builtin
 * such as `events`, or a package's Node-only entry fails the build. The bundle runs in a real
 * headless Chromium (Debian's `chromium`, driven by puppeteer-core), and under Deno and Bun (the npm
 * packages `deno` and `bun`), which also run the README snippet as written, resolving the packages
 * themselves: Deno through core's "deno" export condition (the portable entry), Bun through "node"
 * (Deno with `--allow-env` only: the yaml package reads LOG_TOKENS through Deno's `process`).
 * Every run asserts an allow and a deny decision. A runtime that cannot be found is skipped with the
 * reason printed. Needs the packages built (`pnpm build`), as users import them.
 *
 * Chromium is the strict check: a page has no Node global at all, so a `Buffer` or `process` left on
 * the decision path makes its decisions fail. Deno and Bun give code under node_modules Node's globals
 * (`Buffer`, `process`), so there the runs show that the packages work, not that they avoid Node.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, type Metafile } from 'esbuild'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { findOpa, runOpa } from '../packages/rego-adapter/src/testing/find-opa.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
// Inside test/, so that Deno and Bun find @verdict/* in test/node_modules as an application would.
const DIR = join(ROOT, 'test/.portable-runtimes')
const require = createRequire(join(ROOT, 'package.json'))
const log = (why: string) => console.log(`[portable-runtimes] SKIPPED ${why}`)

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
const USE_1 = /## Use 1[^\n]*\n[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1] ?? ''
const ASSERT_IMPORT = "import assert from 'node:assert/strict'\n"

/** What each run reports, read back from the page or from stdout. */
interface Outcome {
  readonly allowed: boolean
  readonly rule: string | undefined
  readonly status: number
}
interface Report {
  readonly use1?: { readonly allow: Outcome; readonly deny: Outcome }
  readonly rego?: {
    readonly allow: Outcome & { readonly headers: Record<string, string> }
    readonly deny: Outcome
  }
  readonly error?: string
}

/** Appended to the README snippet: its two decisions, as plain data. */
const REPORT_USE_1 = `
const outcome = (d) => ({ allowed: d.allowed, rule: d.rule, status: d.status })
export const report = { allow: outcome(decision), deny: outcome(denied) }
`

/**
 * The snippet in the browser: `node:assert/strict` is the README's own test harness, not part of
 * verdict, so the bundle gets a few lines with the same two checks instead of a Node polyfill.
 */
const BROWSER_ASSERT = `const same = (a, b) => JSON.stringify(a) === JSON.stringify(b)
const fail = (a, b) => { throw new Error('assertion failed: ' + JSON.stringify(a) + ' vs ' + JSON.stringify(b)) }
export default { equal: (a, b) => a === b || fail(a, b), deepEqual: (a, b) => same(a, b) || fail(a, b) }
`

/** The Rego example with its compiled bundle, read through a ResourceLoader (no file system). */
const REGO = `import { createEngine } from '@verdict/core'
import { createRegoEvaluator } from '@verdict/rego-adapter'
import { BUNDLE_BASE64, POLICY } from './rego-inputs.mjs'

const bundle = Uint8Array.from(atob(BUNDLE_BASE64), (c) => c.charCodeAt(0))
const engine = await createEngine(POLICY, {
  evaluators: [createRegoEvaluator()],
  resources: {
    async read(location) {
      if (location !== 'bundle.tar.gz') throw new Error('no resource ' + location)
      return bundle
    },
  },
})
const request = { method: 'GET', path: '/api/items', host: 'api.example.com' }
const allow = await engine.decide({ ...request, headers: { 'x-ext-authz': 'allow' } })
const deny = await engine.decide({ ...request, headers: {} })
const outcome = (d) => ({ allowed: d.allowed, rule: d.rule, status: d.status })
const headers = Object.fromEntries(allow.headers.map((h) => [h.key, h.value]))
export const report = { allow: { ...outcome(allow), headers }, deny: outcome(deny) }
`

/** The bundle's entry: runs both, leaves the report on globalThis and prints it outside a page. */
const main = (withRego: boolean) => `const out = {}
try {
  out.use1 = (await import('./use1-browser.mjs')).report
  ${withRego ? "out.rego = (await import('./rego.mjs')).report" : ''}
} catch (e) {
  out.error = String(e && e.stack ? e.stack : e)
}
globalThis.__verdictReport = out
if (typeof document === 'undefined') console.log(JSON.stringify(out))
`

const opa = findOpa()
if (opa.why !== undefined) log(`the Rego example in every runtime: ${opa.why}`)

function chromiumPath(): string | { why: string } {
  const candidates = [process.env.CHROMIUM_BIN, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(
    (p): p is string => typeof p === 'string' && p !== '',
  )
  const found = candidates.find((p) => existsSync(p))
  return (
    found ?? { why: `no Chromium at ${candidates.join(', ')} (apt-get install -y chromium, or CHROMIUM_BIN)` }
  )
}

/** The deno binary of the npm package `deno` (its bin script needs no install step). */
function denoCommand(): string[] | { why: string } {
  try {
    const bin = require.resolve('deno/bin.cjs')
    const r = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8' })
    if (r.status === 0) return [process.execPath, bin]
    return {
      why: `the npm package deno does not run: ${(r.stderr || r.error?.message || '').trim().slice(0, 200)}`,
    }
  } catch (e) {
    return { why: `the npm package deno is not installed: ${(e as Error).message.split('\n')[0]}` }
  }
}

/**
 * The bun binary of the npm package `bun`: its platform package holds the executable (the
 * package's own postinstall, which pnpm does not run here, only copies it).
 */
function bunCommand(): string[] | { why: string } {
  let bunPkg: string
  try {
    bunPkg = require.resolve('bun/package.json')
  } catch (e) {
    return { why: `the npm package bun is not installed: ${(e as Error).message.split('\n')[0]}` }
  }
  const fromBun = createRequire(bunPkg)
  const names = [
    `bun-${process.platform}-${process.arch}`,
    `bun-${process.platform}-${process.arch}-baseline`,
  ]
  for (const name of names) {
    try {
      const bin = join(fromBun.resolve(`@oven/${name}/package.json`), '..', 'bin', 'bun')
      if (spawnSync(bin, ['--version']).status === 0) return [bin]
    } catch {
      // Not this variant.
    }
  }
  return { why: `no runnable @oven/bun-${process.platform}-${process.arch} beside the npm package bun` }
}

function run(command: string[], args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(command[0] as string, [...command.slice(1), ...args], {
    cwd: DIR,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' },
  })
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' }
}

/** The last stdout line as JSON, or the whole output in the failure. */
function lastJson(r: { status: number | null; stdout: string; stderr: string }): Report {
  const line = r.stdout.trim().split('\n').at(-1) ?? ''
  try {
    return JSON.parse(line) as Report
  } catch {
    return { error: `exit ${r.status}\n${r.stdout}\n${r.stderr}` }
  }
}

function expectUse1(report: Report['use1']): void {
  expect(report?.allow).toEqual({ allowed: true, rule: 'alice', status: 200 })
  expect(report?.deny).toMatchObject({ allowed: false, status: 403 })
}

function expectRego(report: Report['rego']): void {
  expect(report?.allow).toMatchObject({ allowed: true, rule: 'opa-envoy', status: 200 })
  expect(report?.allow.headers).toMatchObject({
    'x-ext-authz-check-result': 'allowed',
    'x-user': 'anonymous',
  })
  expect(report?.deny).toEqual({ allowed: false, rule: 'opa-envoy', status: 403 })
}

let bundlePath = ''
let metafile: Metafile | undefined

beforeAll(async () => {
  rmSync(DIR, { recursive: true, force: true })
  mkdirSync(DIR, { recursive: true })
  expect(USE_1).toContain(ASSERT_IMPORT)
  writeFileSync(join(DIR, 'use1.mjs'), `${USE_1}${REPORT_USE_1}`)
  writeFileSync(
    join(DIR, 'use1-run.mjs'),
    "const { report } = await import('./use1.mjs')\nconsole.log(JSON.stringify({ use1: report }))\n",
  )
  writeFileSync(join(DIR, 'assert.mjs'), BROWSER_ASSERT)
  writeFileSync(
    join(DIR, 'use1-browser.mjs'),
    `${USE_1.replace(ASSERT_IMPORT, "import assert from './assert.mjs'\n")}${REPORT_USE_1}`,
  )
  if (opa.bin !== undefined) {
    const example = join(ROOT, 'examples/rego/envoy-authz')
    const out = join(DIR, 'bundle.tar.gz')
    runOpa(opa.bin, [
      'build',
      '-t',
      'wasm',
      '-e',
      'envoy/authz/allow',
      '-o',
      out,
      '-b',
      join(example, 'bundle'),
    ])
    writeFileSync(
      join(DIR, 'rego-inputs.mjs'),
      `export const POLICY = ${JSON.stringify(readFileSync(join(example, 'policy.yaml'), 'utf8'))}\n` +
        `export const BUNDLE_BASE64 = ${JSON.stringify(readFileSync(out).toString('base64'))}\n`,
    )
    writeFileSync(join(DIR, 'rego.mjs'), REGO)
  }
  writeFileSync(join(DIR, 'main.mjs'), main(opa.bin !== undefined))
  // platform 'browser': the "browser" export conditions, no Node builtins; nothing is external, so
  // anything Node-only is a build error here.
  bundlePath = join(DIR, 'bundle.mjs')
  const result = await build({
    entryPoints: [join(DIR, 'main.mjs')],
    metafile: true,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    outfile: bundlePath,
    logLevel: 'silent',
  })
  metafile = result.metafile
}, 180_000)

afterAll(() => {
  if (process.env.KEEP_PORTABLE_RUNTIMES === undefined) rmSync(DIR, { recursive: true, force: true })
})

describe('core runs outside Node', () => {
  test('the browser bundle is self-contained: portable entries, no Node module, no host package', () => {
    const inputs = Object.keys(metafile?.inputs ?? {}).map((p) => p.replaceAll('\\', '/'))
    const outputs = Object.values(metafile?.outputs ?? {})
    // Nothing left for the runtime to resolve: every import was bundled.
    expect(outputs.flatMap((o) => o.imports)).toEqual([])
    expect(
      inputs.filter((p) => p.startsWith('node:') || /node_modules\/(events|buffer|process|util)\//.test(p)),
    ).toEqual([])
    expect(inputs.filter((p) => p.endsWith('packages/core/dist/index.js'))).toHaveLength(1)
    expect(
      inputs.filter((p) => p.includes('packages/node/') || p.includes('packages/core/dist/node/')),
    ).toEqual([])
  })

  const chromium = chromiumPath()
  const chromiumSkip = typeof chromium === 'string' ? undefined : chromium.why
  if (chromiumSkip !== undefined) log(`headless Chromium: ${chromiumSkip}`)

  test.skipIf(chromiumSkip !== undefined)(
    'decide() in headless Chromium: README Use 1 and the Rego example allow and deny',
    async () => {
      const { launch } = await import('puppeteer-core')
      const page = `<!doctype html><meta charset="utf-8"><script type="module" src="/bundle.mjs"></script>`
      const server: Server = createServer((req, res) => {
        if (req.url === '/bundle.mjs') {
          res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(bundlePath))
        } else res.writeHead(200, { 'content-type': 'text/html' }).end(page)
      })
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      const browser = await launch({
        executablePath: chromium as string,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
      })
      try {
        const tab = await browser.newPage()
        const errors: string[] = []
        tab.on('pageerror', (e) => errors.push(String(e)))
        // http://127.0.0.1 is a secure context: crypto.subtle and crypto.randomUUID exist, as on https.
        await tab.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
        await tab.waitForFunction('globalThis.__verdictReport !== undefined', { timeout: 60_000 })
        const report = (await tab.evaluate('globalThis.__verdictReport')) as Report
        expect(errors).toEqual([])
        expect(report.error).toBeUndefined()
        // In a page, the packages resolve to their portable entries: no Node host functions.
        expect(await tab.evaluate('typeof process')).toBe('undefined')
        expectUse1(report.use1)
        if (opa.bin !== undefined) expectRego(report.rego)
      } finally {
        await browser.close()
        await new Promise<void>((r) => server.close(() => r()))
      }
    },
    120_000,
  )

  const deno = denoCommand()
  const denoSkip = Array.isArray(deno) ? undefined : deno.why
  if (denoSkip !== undefined) log(`Deno: ${denoSkip}`)

  test.skipIf(denoSkip !== undefined)(
    'Deno (environment read only, for the yaml package): the README snippet as written (core through its "deno" condition) and the browser bundle',
    () => {
      const cmd = deno as string[]
      const snippet = run(cmd, ['run', '--no-prompt', '--allow-env', 'use1-run.mjs'])
      expect(snippet.stderr).not.toMatch(/error/i)
      expectUse1(lastJson(snippet).use1)
      // The portable entry: Deno does not get the Node host functions.
      const entry = run(cmd, [
        'eval',
        "const c = await import('@verdict/core'); console.log(JSON.stringify({ file: typeof c.createEngineFromFile, engine: typeof c.createEngine }))",
      ])
      expect(lastJson(entry)).toEqual({ file: 'undefined', engine: 'function' })
      const bundled = lastJson(run(cmd, ['run', '--no-prompt', '--allow-env', 'bundle.mjs']))
      expect(bundled.error).toBeUndefined()
      expectUse1(bundled.use1)
      if (opa.bin !== undefined) expectRego(bundled.rego)
    },
    120_000,
  )

  const bun = bunCommand()
  const bunSkip = Array.isArray(bun) ? undefined : bun.why
  if (bunSkip !== undefined) log(`Bun: ${bunSkip}`)

  test.skipIf(bunSkip !== undefined)(
    'Bun: the README snippet as written and the browser bundle',
    () => {
      const cmd = bun as string[]
      expectUse1(lastJson(run(cmd, ['use1-run.mjs'])).use1)
      const bundled = lastJson(run(cmd, ['bundle.mjs']))
      expect(bundled.error).toBeUndefined()
      expectUse1(bundled.use1)
      if (opa.bin !== undefined) expectRego(bundled.rego)
    },
    120_000,
  )
})
