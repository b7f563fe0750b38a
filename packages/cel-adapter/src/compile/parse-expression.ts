/**
 * Parse one expression within the limits: its length and bracket nesting are checked before the
 * parser runs (the parser recurses per bracket), and a syntax error is described in plain words at
 * its line and column.
 */
import { parse } from '@bufbuild/cel'
import type { Expr, ParsedExpr } from '@bufbuild/cel-spec/cel/expr/syntax_pb.js'
import type { CelLimits } from './limits.js'
import { type CelProblem, lineColumn, lineStarts } from './problems.js'
import { diagnoseSyntax, plainParserMessage } from './syntax-message.js'

type ParseOutcome = { ok: true; parsed: ParsedExpr & { expr: Expr } } | { ok: false; problem: CelProblem }

export function parseExpression(source: string, limits: CelLimits): ParseOutcome {
  if (source.length > limits.maxExpressionLength) {
    const message = `1:1: expression is longer than ${limits.maxExpressionLength} characters`
    return { ok: false, problem: { code: 'cel_limit', message, line: 1, column: 1 } }
  }
  const deep = tooDeepAt(source, limits.maxDepth)
  if (deep !== -1) {
    const { line, column } = lineColumn(lineStarts(source), deep)
    const message = `${line}:${column}: expression is nested deeper than ${limits.maxDepth}`
    return { ok: false, problem: { code: 'cel_limit', message, line, column } }
  }
  try {
    return { ok: true, parsed: parse(source) }
  } catch (err) {
    if (err instanceof RangeError) {
      const message = `1:1: expression is nested too deeply to parse`
      return { ok: false, problem: { code: 'cel_limit', message, line: 1, column: 1 } }
    }
    return { ok: false, problem: syntaxProblem(err, source) }
  }
}

/**
 * Offset of the first bracket nested deeper than `max`, outside string literals; -1 if none.
 * The parser recurses per bracket and overflows the stack near 800 levels, so this runs first.
 */
function tooDeepAt(s: string, max: number): number {
  let depth = 0
  for (let i = 0; i < s.length; i++) {
    const c = s[i]
    if (c === '"' || c === "'") {
      const triple = s.startsWith(c.repeat(3), i)
      const close = triple ? c.repeat(3) : c
      const raw = i > 0 && (s[i - 1] === 'r' || s[i - 1] === 'R')
      i += close.length
      while (i < s.length && !s.startsWith(close, i)) i += !raw && s[i] === '\\' ? 2 : 1
      i += close.length - 1
    } else if (c === '(' || c === '[' || c === '{') {
      if (++depth > max) return i
    } else if (c === ')' || c === ']' || c === '}') depth--
  }
  return -1
}

/**
 * A parse failure in words, where it is: the token scan of syntax-message.ts names the unclosed
 * bracket or the operator without an operand; else the parser's own message, made plainer.
 */
function syntaxProblem(err: unknown, source: string): CelProblem {
  const diagnosis = diagnoseSyntax(source)
  if (diagnosis !== undefined) {
    const { line, column } = lineColumn(lineStarts(source), diagnosis.offset)
    return {
      code: 'cel_syntax',
      message: `${line}:${column}: syntax error: ${diagnosis.message}`,
      line,
      column,
    }
  }
  const e = err as { message?: string; location?: { start?: { line?: number; column?: number } } }
  const line = e.location?.start?.line ?? 1
  const column = e.location?.start?.column ?? 1
  const text = plainParserMessage((e.message ?? String(err)).replace(/^<input>:\d+:\d+:\s*/, ''))
  return { code: 'cel_syntax', message: `${line}:${column}: syntax error: ${text}`, line, column }
}
