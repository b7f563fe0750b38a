/**
 * Load-time problems as the command prints them: `file:line:col: path: message [code]` for people,
 * an array of objects for machines.
 */
import { relative } from 'node:path'
import { PolicyError, type Problem } from '@verdict/core'

/** A problem with the file it belongs to. */
export interface LocatedProblem extends Problem {
  readonly file: string
}

/**
 * Problems of a failed load, in `file` unless the error names its own (`runCaseFile` names the
 * policy when the policy is what failed); a non-policy error becomes one `internal` problem.
 */
export function problemsOf(e: unknown, file: string): LocatedProblem[] {
  if (e instanceof PolicyError) {
    const own = (e as { file?: unknown }).file
    const at = typeof own === 'string' ? own : file
    return e.problems.map((p) => ({ ...p, file: at }))
  }
  return [{ code: 'internal', message: (e as Error)?.message ?? String(e), path: '', file }]
}

/** Path as shown to the user: relative to the working directory when that is shorter. */
export function displayPath(file: string): string {
  const rel = relative(process.cwd(), file)
  return rel !== '' && !rel.startsWith('..') && rel.length < file.length ? rel : file
}

/** One line per problem, `file:line:col: ...` (line and column omitted when unknown). */
export function formatLocated(problems: readonly LocatedProblem[]): string {
  return problems
    .map((p) => {
      const at = p.line !== undefined ? `:${p.line}:${p.column ?? 1}` : ''
      const where = p.path !== '' ? `${p.path}: ` : ''
      return `${displayPath(p.file)}${at}: ${where}${p.message} [${p.code}]\n`
    })
    .join('')
}
