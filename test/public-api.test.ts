/**
 * Issue 18 part 3: what each package makes public, and how it ships. The runtime names of each
 * entry are listed here, so a change to a public API is a deliberate edit of this file and of
 * docs/architecture.md ("Public API and codes"). Packing itself is checked by `pnpm lint`
 * (scripts/check-packages.mjs: publint, Are the Types Wrong, source maps, LICENSE).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as cel from '@verdict/cel-adapter'
import * as cli from '@verdict/cli'
import * as core from '@verdict/core'
import * as internal from '@verdict/core/internal'
import * as envoy from '@verdict/envoy'
import * as node from '@verdict/node'
import { describe, expect, it } from 'vitest'
// core's portable entry, what browsers, Deno and workers import (the vitest alias gives the Node one)
import * as portable from '../packages/core/src/index.js'
// @ts-expect-error: a plain ES module script without types
import { ownProblems } from '../scripts/check-packages.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PACKAGES = ['core', 'node', 'cel-adapter', 'rego-adapter', 'mcp', 'envoy', 'cli', 'fleet', 'import']

describe('public entries', () => {
  it('@verdict/core exports what users need, about 25 runtime names', () => {
    expect(Object.keys(core).sort()).toEqual(
      [
        'AUTH_FAILURE_CODES',
        'DECISION_CODES',
        'DEFAULT_TIMEOUT_MS',
        'DETAIL_CODES',
        'ERROR_CODES',
        'GRPC_OK',
        'GRPC_PERMISSION_DENIED',
        'GRPC_UNAUTHENTICATED',
        'INPUT_REFUSALS',
        'JWT_FAILURE_CODES',
        'POLICY_SCHEMA',
        'PROBLEM_CODES',
        'PolicyError',
        'VerdictError',
        'VerdictUsageError',
        'compilePolicy',
        'createEngine',
        'createEngineFromFile',
        'createFileResourceLoader',
        'decisionEvent',
        'fail',
        'formatProblems',
        'loadPolicyFile',
        'loggableReason',
        'ok',
        'pointer',
        'toCheckResponse',
        'watchPolicyFile',
      ].sort(),
    )
  })

  it('@verdict/core/internal holds the sibling plumbing and everything public', () => {
    for (const name of Object.keys(core)) expect(internal).toHaveProperty(name)
    for (const name of [
      'normalizeInput',
      'deny',
      'malformed',
      'extractMcp',
      'isValidHttpStatus',
      'readLimited',
    ])
      expect(internal).toHaveProperty(name)
    for (const name of [
      'normalizeInput',
      'deny',
      'malformed',
      'extractMcp',
      'isValidHttpStatus',
      'readLimited',
    ])
      expect(core).not.toHaveProperty(name)
    const pkg = JSON.parse(readFileSync(join(ROOT, 'packages/core/package.json'), 'utf8'))
    const portableInternal = { types: './dist/internal.d.ts', default: './dist/internal.js' }
    expect(pkg.exports['./internal']).toEqual({
      deno: portableInternal,
      browser: portableInternal,
      worker: portableInternal,
      node: { types: './dist/node/internal.d.ts', default: './dist/node/internal.js' },
      ...portableInternal,
    })
    expect(pkg.exports['./internal/portable']).toEqual(portableInternal)
  })

  it("@verdict/core's portable entry is the Node entry without the four Node host functions", () => {
    const host = ['createEngineFromFile', 'createFileResourceLoader', 'loadPolicyFile', 'watchPolicyFile']
    expect(Object.keys(portable).sort()).toEqual(
      Object.keys(core)
        .filter((name) => !host.includes(name))
        .sort(),
    )
    expect(core.createEngineFromFile).toBe(node.createEngineFromFile)
    expect(core.createFileResourceLoader).toBe(node.createFileResourceLoader)
    expect(core.loadPolicyFile).toBe(node.loadPolicyFile)
    expect(core.watchPolicyFile).toBe(node.watchPolicyFile)
    const pkg = JSON.parse(readFileSync(join(ROOT, 'packages/core/package.json'), 'utf8'))
    const entry = { types: './dist/index.d.ts', default: './dist/index.js' }
    expect(pkg.exports['.']).toEqual({
      deno: entry,
      browser: entry,
      worker: entry,
      node: { types: './dist/node/index.d.ts', default: './dist/node/index.js' },
      ...entry,
    })
  })

  it('@verdict/node exports the Node host pieces', () => {
    expect(Object.keys(node).sort()).toEqual([
      'createEngineFromFile',
      'createFileResourceLoader',
      'createHttpMiddleware',
      'headerFieldLines',
      'loadPolicyFile',
      'readSourceFile',
      'tlsPeerPrincipal',
      'watchPolicyFile',
    ])
  })

  it('@verdict/cli exports main only; CEL and Envoy internals are not public', () => {
    expect(Object.keys(cli)).toEqual(['main'])
    expect(Object.keys(cel).sort()).toEqual(['DEFAULT_CEL_LIMITS', 'createCelEvaluator'])
    expect(Object.keys(envoy).sort()).toEqual([
      'clusterMetricsSource',
      'createCheckClient',
      'createExtAuthzServer',
      'createOpsHandler',
      'createTelemetry',
      'shareMetricsWithPrimary',
    ])
  })
})

describe('each package', () => {
  it.each(PACKAGES)('%s ships a README, the LICENSE, repository and homepage', (name) => {
    const dir = join(ROOT, 'packages', name)
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    expect(pkg.license).toBe('Apache-2.0')
    expect(pkg.repository).toMatchObject({ type: 'git', directory: `packages/${name}` })
    expect(typeof pkg.homepage).toBe('string')
    expect(pkg.files).toEqual(
      expect.arrayContaining(['dist', '!dist/.tsbuildinfo', 'src', 'README.md', 'LICENSE']),
    )
    expect(existsSync(join(dir, 'README.md'))).toBe(true)
    expect(readFileSync(join(dir, 'LICENSE'), 'utf8')).toBe(readFileSync(join(ROOT, 'LICENSE'), 'utf8'))
  })

  it('the root LICENSE is the Apache License 2.0', () => {
    const text = readFileSync(join(ROOT, 'LICENSE'), 'utf8')
    expect(text).toContain('Apache License\n                           Version 2.0, January 2004')
    expect(text).toContain('END OF TERMS AND CONDITIONS')
  })

  it('the packing rules catch a missing LICENSE, a packed .tsbuildinfo and a map without its source', () => {
    const dir = mkdtempSync(join(tmpdir(), 'verdict-pkg-'))
    try {
      mkdirSync(join(dir, 'dist'))
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'x', version: '1.0.0' }))
      writeFileSync(join(dir, 'dist/.tsbuildinfo'), '{}')
      writeFileSync(
        join(dir, 'dist/a.js.map'),
        JSON.stringify({ version: 3, sources: ['../src/a.ts'], mappings: '' }),
      )
      expect(ownProblems(dir)).toEqual([
        'no README.md in the package',
        'no LICENSE in the package',
        'package.json has no repository { url, directory }',
        'package.json has no homepage',
        'dist/.tsbuildinfo is packed',
        'dist/a.js.map: source ../src/a.ts is not in the package',
      ])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
