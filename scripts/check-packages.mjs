#!/usr/bin/env node
// Packaging checks, run by `pnpm lint` (and so by .ci/run): the packages are built, packed once
// with `pnpm -r pack`, and each tarball is checked by
//   - publint (package.json fields against the packed files),
//   - Are the Types Wrong (`attw --pack --profile esm-only`, through @arethetypeswrong/core in this
//     process: the types resolve as the JavaScript does, for node16 ESM and bundlers),
//   - verdict's own rules: README.md and the root LICENSE in the package, `repository` and
//     `homepage` set, no `.tsbuildinfo`, and every source map's sources inside the tarball.
// `node scripts/check-packages.mjs [--no-build] [package-dir ...]` checks only those; exit 1 on any
// problem.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkPackage as attw, createPackageFromTarballData } from '@arethetypeswrong/core'
import { publint } from 'publint'
import { formatMessage } from 'publint/utils'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const LICENSE = readFileSync(join(ROOT, 'LICENSE'), 'utf8')

/** Every non-private package under packages/. */
export function publishedPackages() {
  return readdirSync(join(ROOT, 'packages'))
    .map((d) => join(ROOT, 'packages', d))
    .filter((d) => existsSync(join(d, 'package.json')))
    .filter((d) => JSON.parse(readFileSync(join(d, 'package.json'), 'utf8')).private !== true)
}

function walk(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? walk(p) : [p]
  })
}

/** verdict's own rules on an unpacked package (`root` holds its package.json). */
export function ownProblems(root) {
  const problems = []
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  if (!existsSync(join(root, 'README.md'))) problems.push('no README.md in the package')
  if (!existsSync(join(root, 'LICENSE'))) problems.push('no LICENSE in the package')
  else if (readFileSync(join(root, 'LICENSE'), 'utf8') !== LICENSE)
    problems.push('LICENSE differs from the repository root LICENSE')
  if (typeof pkg.repository?.url !== 'string' || typeof pkg.repository?.directory !== 'string')
    problems.push('package.json has no repository { url, directory }')
  if (typeof pkg.homepage !== 'string') problems.push('package.json has no homepage')
  const files = walk(root)
  for (const f of files) {
    const rel = relative(root, f)
    if (rel.endsWith('.tsbuildinfo')) problems.push(`${rel} is packed`)
    if (!rel.endsWith('.map')) continue
    const map = JSON.parse(readFileSync(f, 'utf8'))
    for (const s of map.sources ?? []) {
      const target = resolve(dirname(f), map.sourceRoot ?? '', s)
      if (!existsSync(target)) problems.push(`${rel}: source ${s} is not in the package`)
    }
  }
  return problems
}

/** Resolutions an ES-module-only package does not serve (attw's `esm-only` profile). */
const IGNORED_RESOLUTIONS = new Set(['node10', 'node16-cjs'])

/** The problems of one package, packed in `out` by `pnpm -r pack`. */
async function checkPackage(dir, out) {
  const { name, version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  const lines = []
  const tgz = join(out, `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`)
  const unpacked = mkdtempSync(join(out, 'unpacked-'))
  execFileSync('tar', ['-xzf', tgz, '-C', unpacked])
  const root = join(unpacked, 'package')

  // The unpacked tarball is exactly what ships, so publint reads it as is.
  const pl = await publint({ pkgDir: root, pack: false, level: 'suggestion', strict: true })
  for (const m of pl.messages) lines.push(`publint ${m.type}: ${formatMessage(m, pl.pkg) ?? m.code}`)

  // Are the types wrong (as `attw --pack --profile esm-only`, one TypeScript for every package).
  const analysis = await attw(createPackageFromTarballData(new Uint8Array(readFileSync(tgz))))
  if (!analysis.types) lines.push('attw: the package has no types')
  else
    for (const p of analysis.problems)
      if (!('resolutionKind' in p) || !IGNORED_RESOLUTIONS.has(p.resolutionKind))
        lines.push(`attw ${p.kind}: ${p.entrypoint ?? ''} ${p.resolutionKind ?? ''}`.trimEnd())

  for (const p of ownProblems(root)) lines.push(p)
  let tracked = true
  try {
    execFileSync('git', ['ls-files', '--error-unmatch', 'package.json'], { cwd: dir, stdio: 'ignore' })
  } catch {
    tracked = false
  }
  return { name, lines, tracked }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = Date.now()
  const args = process.argv.slice(2).filter((a) => a !== '--no-build')
  const dirs = args.length > 0 ? args.map((a) => resolve(a)) : publishedPackages()
  // The packages are packed from their build output: bring it up to date first (incremental).
  if (!process.argv.includes('--no-build')) {
    try {
      execFileSync('pnpm', ['exec', 'tsc', '-b', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' })
    } catch {
      console.error('packages: the build failed, nothing packed')
      process.exit(1)
    }
  }
  const out = mkdtempSync(join(tmpdir(), 'verdict-pack-'))
  try {
    // One pnpm for every package: workspace: ranges become versions, as on publish.
    execFileSync('pnpm', ['-r', 'pack', '--pack-destination', out], { cwd: ROOT, stdio: 'ignore' })
    const results = []
    for (const d of dirs) results.push(await checkPackage(d, out))
    let failed = 0
    for (const r of results) {
      if (r.lines.length === 0) continue
      if (!r.tracked) {
        // A package still being written (not in git yet): reported, enforced once committed.
        console.warn(`${r.name} (not committed yet, not enforced):\n  ${r.lines.length} problems`)
        continue
      }
      failed++
      console.error(`${r.name}:\n${r.lines.map((l) => `  ${l.replaceAll('\n', '\n    ')}`).join('\n')}`)
    }
    const s = ((Date.now() - started) / 1000).toFixed(1)
    console.log(
      `packages: ${results.length - failed} of ${results.length} pass publint, attw and the packing rules (${s} s)`,
    )
    if (failed > 0) process.exitCode = 1
  } finally {
    rmSync(out, { recursive: true, force: true })
  }
}
