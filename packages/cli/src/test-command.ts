/**
 * `verdict test [paths...]`: run policy case files (see docs/testing.md) and report failures with
 * diffs, a final `N passed, M failed`, and with `--coverage` the rules no case made decide.
 */
import { readdir, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { loadPolicyFile } from '@verdict/core'
import type { CaseFileResult } from '@verdict/core/testing'
import { formatCaseResults, runCaseFile } from '@verdict/core/testing'
import type { Command } from 'commander'
import { EXIT_INVALID } from './eval-command.js'
import { loadEvaluators } from './evaluators.js'
import type { Io } from './io.js'
import { prepareRegoBundles } from './opa-build.js'
import { displayPath, formatLocated, type LocatedProblem, problemsOf } from './problems.js'

interface TestOptions {
  readonly json?: boolean
  readonly coverage?: boolean
  /** Build missing or stale Rego bundles with `opa build` (default true; `--no-build`). */
  readonly build?: boolean
}

/** A case file that did not run, and why. */
interface Skipped {
  readonly file: string
  readonly cases: number
  readonly reason: string
}

async function caseCount(file: string): Promise<number> {
  try {
    const v = (await loadPolicyFile(file)).source.value as { cases?: unknown }
    return Array.isArray(v.cases) ? v.cases.length : 0
  } catch {
    return 0
  }
}

/** Exit status when a case failed. */
const EXIT_FAILED = 1

const CASE_FILE = /^(?:cases|.+\.cases)\.(?:ya?ml|json)$/
const SKIP_DIRS = new Set(['node_modules', 'dist', 'coverage', '.git'])

/** Case files under `path`: the file itself, or every matching file below a directory. */
async function findCaseFiles(path: string): Promise<string[]> {
  const abs = resolve(path)
  const s = await stat(abs)
  if (!s.isDirectory()) return [abs]
  const out: string[] = []
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true })
    entries.sort((a, b) => a.name.localeCompare(b.name))
    for (const e of entries) {
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name) && !e.name.startsWith('.')) await walk(join(dir, e.name))
      } else if (CASE_FILE.test(e.name) && e.name !== 'cases.json') out.push(join(dir, e.name))
    }
  }
  await walk(abs)
  return out
}

function summary(r: CaseFileResult) {
  return {
    file: displayPath(r.file),
    policy: displayPath(r.policy),
    cases: r.results.map((c) => ({
      name: c.name,
      passed: c.passed,
      diffs: c.diffs,
      decision: {
        allowed: c.decision.allowed,
        status: c.decision.status,
        code: c.decision.code,
        rule: c.decision.rule,
        reason: c.decision.reason,
      },
    })),
    uncovered: r.uncovered,
  }
}

/** Run `verdict test`; returns 0 when every case passed, 1 when one failed, 2 for invalid files. */
async function runTest(paths: readonly string[], o: TestOptions, io: Io): Promise<number> {
  const files: string[] = []
  const problems: LocatedProblem[] = []
  for (const p of paths.length > 0 ? paths : ['.']) {
    try {
      files.push(...(await findCaseFiles(p)))
    } catch (e) {
      problems.push({
        code: 'not_found',
        message: `cannot read ${p}: ${(e as Error).message}`,
        path: '',
        file: resolve(p),
      })
    }
  }
  if (files.length === 0 && problems.length === 0) {
    problems.push({
      code: 'not_found',
      message: 'no case files (cases.yaml or *.cases.yaml) found',
      path: '',
      file: resolve(paths[0] ?? '.'),
    })
  }
  const { evaluators } = await loadEvaluators()
  const results: CaseFileResult[] = []
  const skipped: Skipped[] = []
  const built: string[] = []
  const notes: string[] = []
  for (const f of files) {
    const prepared = await prepareRegoBundles(f, { build: o.build !== false })
    built.push(...prepared.built)
    notes.push(...prepared.notes)
    problems.push(...prepared.problems)
    if (prepared.problems.length > 0) continue
    if (prepared.skip !== undefined) {
      skipped.push({ file: f, cases: await caseCount(f), reason: prepared.skip })
      continue
    }
    try {
      results.push(await runCaseFile(f, { evaluators }))
    } catch (e) {
      problems.push(...problemsOf(e, f))
    }
  }
  const failed = results.reduce((n, r) => n + r.results.filter((c) => !c.passed).length, 0)
  const passed = results.reduce((n, r) => n + r.results.length, 0) - failed
  const skippedCases = skipped.reduce((n, s) => n + s.cases, 0)
  if (o.json) {
    const skips = skipped.map((s) => ({ ...s, file: displayPath(s.file) }))
    io.stdout(
      `${JSON.stringify({ passed, failed, skipped: skippedCases, files: results.map(summary), skippedFiles: skips, built, notes, problems })}\n`,
    )
  } else {
    if (problems.length > 0) io.stderr(formatLocated(problems))
    const head = [
      ...built.map((c) => `  built ${c}`),
      ...notes.map((n) => `  note  ${n}`),
      ...skipped.map((s) => `  SKIP  ${displayPath(s.file)} (${s.cases} cases): ${s.reason}`),
    ]
    if (head.length > 0) io.stdout(`${head.join('\n')}\n`)
    const report = formatCaseResults(results, { coverage: o.coverage === true, cwd: process.cwd() })
    // The closing `N passed, M failed` line says how many cases did not run.
    io.stdout(`${skippedCases > 0 ? `${report}, ${skippedCases} skipped` : report}\n`)
  }
  if (problems.length > 0) return EXIT_INVALID
  return failed > 0 ? EXIT_FAILED : 0
}

/** Register `test` on the program. */
export function registerTest(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('test')
    .description('run policy case files (cases.yaml, *.cases.yaml) and report failures with diffs')
    .argument('[paths...]', 'case files or directories to search (default: .)')
    .option('--coverage', 'list the rules no case made decide')
    .option('--json', 'print {passed, failed, skipped, files, problems, ...} as JSON on stdout')
    .option('--no-build', 'do not build missing or stale Rego bundles with `opa build -t wasm`')
    .addHelpText(
      'after',
      [
        '',
        'A policy bundle { path: X.tar.gz } with Rego sources in a directory X/ beside it is built',
        'with `opa build -t wasm -e <each entrypoint its rules name> -o X.tar.gz -b X` when missing or',
        'older than X/ or the policy (opa from OPA_BIN or PATH). Without opa such a case file is',
        'skipped and the reason printed (SKIP); it does not fail the run.',
        '',
        'Exit status: 0 when every case passed, 1 when one failed, 2 when a case file or policy is invalid.',
      ].join('\n'),
    )
    .action(async (paths: string[], opts: TestOptions) => setExit(await runTest(paths, opts, io)))
}
