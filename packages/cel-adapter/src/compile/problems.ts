/** Load-time problems of an expression, and where in the expression they are. */

/** Stable codes of CEL load-time problems. */
export type CelProblemCode =
  | 'cel_syntax'
  | 'cel_unknown_variable'
  | 'cel_unknown_function'
  | 'cel_limit'
  | 'cel_regex'
  | 'cel_unavailable_variable'
  | 'cel_type'

/** One problem in an expression; `line`/`column` are 1-based, inside the expression. */
export interface CelProblem {
  readonly code: CelProblemCode
  readonly message: string
  readonly line: number
  readonly column: number
}

/** Offsets of line starts, for turning an offset into line and column. */
export function lineStarts(s: string): number[] {
  const starts = [0]
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 10) starts.push(i + 1)
  return starts
}

export function lineColumn(starts: readonly number[], offset: number): { line: number; column: number } {
  let lo = 0
  let hi = starts.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (starts[mid]! <= offset) lo = mid
    else hi = mid - 1
  }
  return { line: lo + 1, column: offset - starts[lo]! + 1 }
}

/** A problem at `offset` of the expression whose line starts are `starts`; the message gets `line:column: `. */
export function problemAt(
  code: CelProblemCode,
  starts: readonly number[],
  offset: number,
  what: string,
): CelProblem {
  const { line, column } = lineColumn(starts, offset)
  return { code, message: `${line}:${column}: ${what}`, line, column }
}
