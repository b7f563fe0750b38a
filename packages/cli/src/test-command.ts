/**
 * `verdict test [paths...]`: run policy case files (see docs/testing.md) and report failures with
 * diffs, a final `N passed, M failed`, and with `--coverage` the rules no case made decide.
 */
import { readdir, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { CaseFileResult } from '@verdict/core/testing'
import { formatCaseResults, runCaseFile } from '@verdict/core/testing'
import type { Command } from 'commander'
import { EXIT_INVALID } from './eval-command.js'
import { loadEvaluators } from './evaluators.js'
import type { Io } from './io.js'
import { displayPath, formatLocated, type LocatedProblem, problemsOf } from './problems.js'

export interface TestOptions {
  readonly json?: boolean
  readonly coverage?: boolean
}

/** Exit status when a case failed. */
export const EXIT_FAILED = 1

const CASE_FILE = /^(?:cases|.+\.cases)\.(?:ya?ml|json)$/
const SKIP_DIRS = new Set(['node_modules', 'dist', 'coverage', '.git'])

/** Case files under `path`: the file itself, or every matching file below a directory. */
export async function findCaseFiles(path: string): Promise<string[]> {
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
export async function runTest(paths: readonly string[], o: TestOptions, io: Io): Promise<number> {
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
  for (const f of files) {
    try {
      results.push(await runCaseFile(f, { evaluators }))
    } catch (e) {
      problems.push(...problemsOf(e, f))
    }
  }
  const failed = results.reduce((n, r) => n + r.results.filter((c) => !c.passed).length, 0)
  const passed = results.reduce((n, r) => n + r.results.length, 0) - failed
  if (o.json) {
    io.stdout(`${JSON.stringify({ passed, failed, files: results.map(summary), problems })}\n`)
  } else {
    if (problems.length > 0) io.stderr(formatLocated(problems))
    io.stdout(`${formatCaseResults(results, { coverage: o.coverage === true, cwd: process.cwd() })}\n`)
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
    .option('--json', 'print {passed, failed, files, problems} as JSON on stdout')
    .addHelpText(
      'after',
      '\nExit status: 0 when every case passed, 1 when one failed, 2 when a case file or policy is invalid.',
    )
    .action(async (paths: string[], opts: TestOptions) => setExit(await runTest(paths, opts, io)))
}
