/**
 * The tokens of a Rego module for `rego.parse_module` (`rego-parse.ts`): identifiers, numbers and
 * strings with their source text, punctuation, and the comments, which OPA's module JSON lists
 * with their row, column (in characters) and bytes. Anything the scanner does not know is an
 * error (`RegoSyntaxError`), never a guess.
 */

/** A module `rego.parse_module` refuses; the builtin answers undefined, as OPA's parse error does. */
export class RegoSyntaxError extends Error {}

export type TokenKind = 'ident' | 'num' | 'str' | 'op' | 'eof'

export interface Token {
  readonly kind: TokenKind
  /** Identifier name, operator, number text as written, or the decoded string. */
  readonly text: string
  /** Whitespace or a comment came before this token. */
  readonly space: boolean
  /** A line break came before this token. */
  readonly newline: boolean
}

export interface Comment {
  readonly row: number
  readonly col: number
  /** The text after `#`, without the line break. */
  readonly text: string
}

const OPERATORS = [
  ':=',
  '==',
  '!=',
  '<=',
  '>=',
  '{',
  '}',
  '[',
  ']',
  '(',
  ')',
  '.',
  ',',
  ';',
  ':',
  '=',
  '<',
  '>',
  '+',
  '-',
  '*',
  '/',
  '%',
  '|',
  '&',
]

const isLetter = (c: string) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_'
const isDigit = (c: string) => c >= '0' && c <= '9'
const NUMBER = /(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y

/** Surrogates without their pair become U+FFFD, as Go's JSON decoder makes them. */
function wellFormed(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
}

/** A double-quoted string's body (between the quotes) decoded with JSON's escapes only. */
function decodeString(body: string): string {
  for (let i = 0; i < body.length; i++)
    if (body.charCodeAt(i) < 0x20) throw new RegoSyntaxError('control character in string')
  if (!/^(?:[^\\]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*$/.test(body))
    throw new RegoSyntaxError('bad escape in string')
  return wellFormed(JSON.parse(`"${body}"`) as string)
}

/** The tokens of `src`, ending with an `eof` token, and its comments. */
export function tokenize(src: string): { tokens: Token[]; comments: Comment[] } {
  const tokens: Token[] = []
  const comments: Comment[] = []
  // A byte order mark at the start is skipped, as OPA does; anywhere else OPA refuses it.
  let i = src.startsWith('\ufeff') ? 1 : 0
  if (src.includes('\ufeff', i)) throw new RegoSyntaxError('byte order mark inside the module')
  let row = 1
  let lineStart = i
  let space = false
  let newline = false
  const col = (at: number) => {
    // Columns count characters (code points), not UTF-16 units.
    let n = 1
    for (let k = lineStart; k < at; k++) {
      const c = src.charCodeAt(k)
      if (
        !(
          c >= 0xdc00 &&
          c <= 0xdfff &&
          k > lineStart &&
          src.charCodeAt(k - 1) >= 0xd800 &&
          src.charCodeAt(k - 1) <= 0xdbff
        )
      )
        n++
    }
    return n
  }
  const push = (kind: TokenKind, text: string) => {
    tokens.push({ kind, text, space, newline })
    space = false
    newline = false
  }
  while (i < src.length) {
    const c = src[i]!
    if (c === '\n') {
      i++
      row++
      lineStart = i
      space = true
      newline = true
      continue
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++
      space = true
      continue
    }
    if (c === '#') {
      let end = src.indexOf('\n', i)
      if (end < 0) end = src.length
      let text = src.slice(i + 1, end)
      if (text.endsWith('\r')) text = text.slice(0, -1)
      comments.push({ row, col: col(i), text })
      i = end
      space = true
      continue
    }
    if (isLetter(c)) {
      let j = i + 1
      while (j < src.length && (isLetter(src[j]!) || isDigit(src[j]!))) j++
      push('ident', src.slice(i, j))
      i = j
      continue
    }
    if (isDigit(c)) {
      NUMBER.lastIndex = i
      const m = NUMBER.exec(src)
      if (m === null) throw new RegoSyntaxError('bad number')
      const j = i + m[0].length
      const after = src[j]
      if (after !== undefined && (isLetter(after) || isDigit(after) || after === '.'))
        throw new RegoSyntaxError('bad number')
      if (!Number.isFinite(Number(m[0]))) throw new RegoSyntaxError('number out of range')
      push('num', m[0])
      i = j
      continue
    }
    if (c === '"') {
      let j = i + 1
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\\') j++
        j++
      }
      if (j >= src.length) throw new RegoSyntaxError('unterminated string')
      push('str', decodeString(src.slice(i + 1, j)))
      i = j + 1
      continue
    }
    if (c === '`') {
      const j = src.indexOf('`', i + 1)
      if (j < 0) throw new RegoSyntaxError('unterminated raw string')
      const body = src.slice(i + 1, j)
      // Go drops carriage returns from raw strings; refused rather than guessed.
      if (body.includes('\r')) throw new RegoSyntaxError('carriage return in raw string')
      row += body.split('\n').length - 1
      const lastNl = body.lastIndexOf('\n')
      if (lastNl >= 0) lineStart = i + 1 + lastNl + 1
      push('str', wellFormed(body))
      i = j + 1
      continue
    }
    const op = OPERATORS.find((o) => src.startsWith(o, i))
    if (op === undefined) throw new RegoSyntaxError(`unexpected character ${JSON.stringify(c)}`)
    push('op', op)
    i += op.length
  }
  push('eof', '')
  return { tokens, comments }
}
