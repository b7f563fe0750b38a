/**
 * CEL syntax errors in words. The parser (a PEG) reports where it backtracked to, often the start
 * of the expression, with "found X but expecting end of input" or a list of twenty token classes.
 * A scan of the tokens finds what is wrong and where: an unclosed bracket or string, an operator
 * without an operand, `=` for `==`, two values without an operator between them.
 */

/** A syntax problem: 0-based offset into the expression and the message. */
export interface SyntaxDiagnosis {
  readonly offset: number
  readonly message: string
}

type Kind = 'value' | 'ident' | 'op' | 'open' | 'close' | 'comma' | 'dot' | 'colon' | 'question' | 'bad'

interface Token {
  readonly kind: Kind
  readonly text: string
  readonly at: number
}

const OPERATORS = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '+', '-', '*', '/', '%', '!']
const PAIRS: Readonly<Record<string, string>> = { '(': ')', '[': ']', '{': '}' }
const UNARY = new Set(['!', '-'])

/** Tokens of `s`, or the diagnosis of an unterminated string. */
function tokenize(s: string): Token[] | SyntaxDiagnosis {
  const out: Token[] = []
  let i = 0
  while (i < s.length) {
    const c = s[i]!
    if (/\s/.test(c)) {
      i++
      continue
    }
    if (c === '/' && s[i + 1] === '/') {
      while (i < s.length && s[i] !== '\n') i++
      continue
    }
    const prefix = /^(?:[rR][bB]?|[bB][rR]?)(?=["'])/.exec(s.slice(i))?.[0] ?? ''
    const q = s[i + prefix.length]
    if (q === '"' || q === "'") {
      const start = i
      const triple = s.startsWith(q.repeat(3), i + prefix.length)
      const close = triple ? q.repeat(3) : q
      const raw = /r/i.test(prefix)
      let j = i + prefix.length + close.length
      while (j < s.length && !s.startsWith(close, j)) {
        if (!triple && s[j] === '\n') break
        j += !raw && s[j] === '\\' ? 2 : 1
      }
      if (j >= s.length || !s.startsWith(close, j))
        return {
          offset: start,
          message: `the string starting here is not closed: expected a closing ${close}`,
        }
      i = j + close.length
      out.push({ kind: 'value', text: s.slice(start, i), at: start })
      continue
    }
    const num = /^(?:0x[0-9a-fA-F]+u?|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?u?|\.\d+(?:[eE][+-]?\d+)?)/.exec(
      s.slice(i),
    )?.[0]
    if (num !== undefined && (c !== '.' || /\d/.test(s[i + 1] ?? ''))) {
      out.push({ kind: 'value', text: num, at: i })
      i += num.length
      continue
    }
    const ident = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i))?.[0]
    if (ident !== undefined) {
      const kind: Kind = ['true', 'false', 'null'].includes(ident) ? 'value' : ident === 'in' ? 'op' : 'ident'
      out.push({ kind, text: ident, at: i })
      i += ident.length
      continue
    }
    const op = OPERATORS.find((o) => s.startsWith(o, i))
    if (op !== undefined) {
      out.push({ kind: 'op', text: op, at: i })
      i += op.length
      continue
    }
    const single: Record<string, Kind> = {
      '(': 'open',
      '[': 'open',
      '{': 'open',
      ')': 'close',
      ']': 'close',
      '}': 'close',
      ',': 'comma',
      '.': 'dot',
      ':': 'colon',
      '?': 'question',
    }
    out.push({ kind: single[c] ?? 'bad', text: c, at: i })
    i++
  }
  return out
}

const quote = (t: string) => `'${t}'`

/** What is wrong with `s` in words, or undefined when the scan finds nothing. */
export function diagnoseSyntax(s: string): SyntaxDiagnosis | undefined {
  const tokens = tokenize(s)
  if (!Array.isArray(tokens)) return tokens
  if (tokens.length === 0) return { offset: 0, message: 'the expression is empty' }
  const stack: Token[] = []
  for (let n = 0; n < tokens.length; n++) {
    const t = tokens[n]!
    const prev = tokens[n - 1]
    const next = tokens[n + 1]
    if (t.kind === 'bad') {
      if (t.text === '=') return { offset: t.at, message: "'=' is not a CEL operator: write '==' to compare" }
      if (t.text === '&' || t.text === '|')
        return { offset: t.at, message: `'${t.text}' is not a CEL operator: write '${t.text.repeat(2)}'` }
      return { offset: t.at, message: `unexpected character ${quote(t.text)}` }
    }
    if (t.kind === 'open') stack.push(t)
    if (t.kind === 'close') {
      const open = stack.pop()
      if (open === undefined) return { offset: t.at, message: `${quote(t.text)} closes nothing` }
      if (PAIRS[open.text] !== t.text)
        return {
          offset: t.at,
          message: `expected ${quote(PAIRS[open.text]!)} to close the ${quote(open.text)} at column ${open.at + 1}, found ${quote(t.text)}`,
        }
    }
    // A binary operator needs a value on each side; `!` and `-` may start one.
    const operandFollows = next !== undefined && ['value', 'ident', 'open'].includes(next.kind)
    const unaryNext = next?.kind === 'op' && UNARY.has(next.text)
    if (
      t.kind === 'op' &&
      !(UNARY.has(t.text) && (prev === undefined || !['value', 'ident', 'close'].includes(prev.kind)))
    ) {
      if (prev === undefined || !['value', 'ident', 'close'].includes(prev.kind))
        return { offset: t.at, message: `expected a value before ${quote(t.text)}` }
      if (next === undefined)
        return { offset: t.at, message: `expected a value after ${quote(t.text)}, but the expression ends` }
      if (!operandFollows && !unaryNext)
        return {
          offset: next.at,
          message: `expected a value after ${quote(t.text)}, found ${quote(next.text)}`,
        }
    }
    if (t.kind === 'op' && UNARY.has(t.text) && next === undefined)
      return { offset: t.at, message: `expected a value after ${quote(t.text)}, but the expression ends` }
    if (t.kind === 'dot' && next?.kind !== 'ident')
      return {
        offset: t.at,
        message: `expected a field or method name after '.'${next === undefined ? ', but the expression ends' : `, found ${quote(next.text)}`}`,
      }
    // Two values in a row: an operator is missing (`a b`, `"x" "y"`, `f(x) y`).
    if (
      (t.kind === 'value' || t.kind === 'ident' || t.kind === 'close') &&
      (next?.kind === 'value' || next?.kind === 'ident')
    )
      return {
        offset: next.at,
        message: `expected an operator (such as ==, &&, +) or the end of the expression before ${quote(next.text)}`,
      }
  }
  const open = stack.pop()
  if (open !== undefined)
    return {
      offset: open.at,
      message: `${quote(open.text)} is not closed: expected ${quote(PAIRS[open.text]!)}`,
    }
  return undefined
}

/** The parser's own message in words: its token classes and "end of input" are made plainer. */
export function plainParserMessage(message: string): string {
  const m = /^found (.*?) but expecting (.*)$/s.exec(message)
  if (m === null) return message
  const found = m[1] === '' ? 'the end of the expression' : quote(m[1]!)
  const expecting = m[2]!
  if (expecting === 'end of input')
    return `unexpected ${found}: expected an operator (such as ==, &&, +) or the end of the expression`
  if (expecting.includes('identifier') && expecting.includes('literal'))
    return `unexpected ${found}: expected a value (a literal, a variable, '(', '[', '{', '!' or '-')`
  return `unexpected ${found}: expected ${expecting}`
}
