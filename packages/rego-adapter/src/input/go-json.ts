/**
 * Go's readings the OPA-Envoy plugin applies to a body, for the texts of its errors: encoding/json's
 * scanner (where a value ends, or the error it reports), `strconv.Quote`, `strconv.ParseInt` and
 * `url.ParseQuery` on a form body.
 */

export function goQuote(s: string): string {
  let out = '"'
  for (const ch of s) out += ch === '"' ? '\\"' : goEscape(ch.charCodeAt(0))
  return `${out}"`
}

/** One rune as `strconv.Quote` writes it inside quotes (runes up to U+00FF only). */
function goEscape(c: number): string {
  switch (c) {
    case 7:
      return '\\a'
    case 8:
      return '\\b'
    case 9:
      return '\\t'
    case 10:
      return '\\n'
    case 11:
      return '\\v'
    case 12:
      return '\\f'
    case 13:
      return '\\r'
    case 92:
      return '\\\\'
  }
  if (c < 0x20 || c === 0x7f) return `\\x${c.toString(16).padStart(2, '0')}`
  if ((c >= 0x80 && c <= 0xa0) || c === 0xad) return `\\u${c.toString(16).padStart(4, '0')}`
  if (c > 0xff) return String.fromCharCode(c)
  return String.fromCharCode(c)
}

/** encoding/json's `quoteChar`: the byte that stopped the scanner, as its error shows it. */
function quoteChar(c: number): string {
  if (c === 0x27) return "'\\''"
  if (c === 0x22) return `'"'`
  return `'${goEscape(c)}'`
}

/** UTF-8 with invalid sequences as U+FFFD, as Go reads them; a byte order mark is kept. */
const lenientUtf8 = new TextDecoder('utf-8', { ignoreBOM: true })
const formUtf8 = new TextDecoder('utf-8')

enum P {
  ObjectKey,
  ObjectValue,
  ArrayValue,
}

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)
}

type Scan = { end: number } | { error: string }

/**
 * One JSON value from `at`, as Go's encoding/json scanner reads it (iterative): where it ends, or
 * the scanner's error text. A value that stops at the end of the bytes is `unexpected EOF`.
 */
function scanGoValue(b: Uint8Array, at: number): Scan {
  const n = b.length
  const stack: P[] = []
  let i = at
  const err = (c: number, ctx: string): Scan => ({ error: `invalid character ${quoteChar(c)} ${ctx}` })
  const EOF: Scan = { error: 'unexpected EOF' }
  for (;;) {
    // Begin a value at i (whitespace allowed).
    while (i < n && isWs(b[i]!)) i++
    if (i >= n) return EOF
    let c = b[i]!
    let scalarEnd = -1
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      i++
      while (i < n && isWs(b[i]!)) i++
      if (i >= n) return EOF
      const close = c === 0x7b ? 0x7d : 0x5d
      if (b[i] === close) {
        i++
        scalarEnd = i
      } else if (c === 0x7b) {
        if (b[i] !== 0x22) return err(b[i]!, 'looking for beginning of object key string')
        stack.push(P.ObjectKey)
        const s = scanGoString(b, i)
        if ('error' in s) return s
        i = s.end
        // After a key: `:`.
        while (i < n && isWs(b[i]!)) i++
        if (i >= n) return EOF
        if (b[i] !== 0x3a) return err(b[i]!, 'after object key')
        i++
        stack[stack.length - 1] = P.ObjectValue
        continue
      } else {
        stack.push(P.ArrayValue)
        continue
      }
    } else if (c === 0x22) {
      const s = scanGoString(b, i)
      if ('error' in s) return s
      scalarEnd = s.end
    } else if (c === 0x2d || isDigit(c)) {
      const s = scanGoNumber(b, i)
      if ('error' in s) return s
      scalarEnd = s.end
    } else if (c === 0x74 || c === 0x66 || c === 0x6e) {
      const word = c === 0x74 ? 'true' : c === 0x66 ? 'false' : 'null'
      for (let k = 1; k < word.length; k++) {
        if (i + k >= n) return EOF
        if (b[i + k] !== word.charCodeAt(k))
          return err(b[i + k]!, `in literal ${word} (expecting '${word[k]}')`)
      }
      scalarEnd = i + word.length
    } else return err(c, 'looking for beginning of value')
    i = scalarEnd
    // End of a value: close containers or go on with the next element.
    for (;;) {
      if (stack.length === 0) return { end: i }
      while (i < n && isWs(b[i]!)) i++
      if (i >= n) return EOF
      c = b[i]!
      const top = stack[stack.length - 1]!
      if (top === P.ObjectValue) {
        if (c === 0x2c) {
          i++
          while (i < n && isWs(b[i]!)) i++
          if (i >= n) return EOF
          if (b[i] !== 0x22) return err(b[i]!, 'looking for beginning of object key string')
          const s = scanGoString(b, i)
          if ('error' in s) return s
          i = s.end
          while (i < n && isWs(b[i]!)) i++
          if (i >= n) return EOF
          if (b[i] !== 0x3a) return err(b[i]!, 'after object key')
          i++
          break
        }
        if (c === 0x7d) {
          stack.pop()
          i++
          continue
        }
        return err(c, 'after object key:value pair')
      }
      if (c === 0x2c) {
        i++
        break
      }
      if (c === 0x5d) {
        stack.pop()
        i++
        continue
      }
      return err(c, 'after array element')
    }
  }
}

function scanGoString(b: Uint8Array, at: number): Scan & { text?: string } {
  const n = b.length
  let i = at + 1
  while (i < n) {
    const c = b[i]!
    if (c === 0x22) return { end: i + 1 }
    if (c === 0x5c) {
      i++
      if (i >= n) return { error: 'unexpected EOF' }
      const e = b[i]!
      if (e === 0x75) {
        for (let k = 1; k <= 4; k++) {
          if (i + k >= n) return { error: 'unexpected EOF' }
          if (!isHex(b[i + k]!))
            return { error: `invalid character ${quoteChar(b[i + k]!)} in \\u hexadecimal character escape` }
        }
        i += 5
        continue
      }
      if (!'bfnrt\\/"'.includes(String.fromCharCode(e)))
        return { error: `invalid character ${quoteChar(e)} in string escape code` }
      i++
      continue
    }
    if (c < 0x20) return { error: `invalid character ${quoteChar(c)} in string literal` }
    i++
  }
  return { error: 'unexpected EOF' }
}

/** A number from `at`; it ends at the first byte that cannot continue it. */
function scanGoNumber(b: Uint8Array, at: number): Scan {
  const n = b.length
  let i = at
  const EOF: Scan = { error: 'unexpected EOF' }
  if (b[i] === 0x2d) {
    i++
    if (i >= n) return EOF
    if (!isDigit(b[i]!)) return { error: `invalid character ${quoteChar(b[i]!)} in numeric literal` }
  }
  if (b[i] === 0x30) i++
  else while (i < n && isDigit(b[i]!)) i++
  if (i < n && b[i] === 0x2e) {
    i++
    if (i >= n) return EOF
    if (!isDigit(b[i]!))
      return { error: `invalid character ${quoteChar(b[i]!)} after decimal point in numeric literal` }
    while (i < n && isDigit(b[i]!)) i++
  }
  if (i < n && (b[i] === 0x65 || b[i] === 0x45)) {
    i++
    if (i < n && (b[i] === 0x2b || b[i] === 0x2d)) i++
    if (i >= n) return EOF
    if (!isDigit(b[i]!))
      return { error: `invalid character ${quoteChar(b[i]!)} in exponent of numeric literal` }
    while (i < n && isDigit(b[i]!)) i++
  }
  return { end: i }
}

/**
 * The error the plugin reports for a JSON body, or where its value ends when it reads it: OPA
 * decodes one value with Go's decoder, then reads one more token and refuses anything but the end
 * of the text (or a `null`, which Go's tokenizer reports as no token).
 */
export function goJsonError(b: Uint8Array): { error: string } | { end: number } {
  let i = 0
  while (i < b.length && isWs(b[i]!)) i++
  if (i >= b.length) return { error: 'EOF' }
  const first = scanGoValue(b, i)
  if ('error' in first) return first
  const end = first.end
  i = end
  while (i < b.length && isWs(b[i]!)) i++
  if (i >= b.length) return { end }
  const c = b[i]!
  if (c === 0x5d || c === 0x7d || c === 0x3a || c === 0x2c)
    return { error: `invalid character ${quoteChar(c)} looking for beginning of value` }
  if (c === 0x5b || c === 0x7b)
    return { error: `error: invalid character '${String.fromCharCode(c)}' after top-level value` }
  const next = scanGoValue(b, i)
  if ('error' in next) return next
  const token = lenientUtf8.decode(b.subarray(i, next.end))
  if (token === 'null') return { end }
  // OPA names the token as Go prints it: a string unquoted, a number or literal as written.
  const text = c === 0x22 ? (JSON.parse(token) as string) : token
  return { error: `error: invalid character '${text}' after top-level value` }
}

/** Go's `url.QueryUnescape`: the text (bytes as UTF-8, invalid sequences U+FFFD) or the error. */
function goUnescape(s: string): string | { error: string } {
  const bytes: number[] = []
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0x25) {
      if (i + 2 >= s.length || !isHex(s.charCodeAt(i + 1)) || !isHex(s.charCodeAt(i + 2)))
        return { error: `invalid URL escape ${goQuote(s.slice(i, i + 3))}` }
      bytes.push(Number.parseInt(s.slice(i + 1, i + 3), 16))
      i += 2
    } else if (c === 0x2b) bytes.push(0x20)
    else bytes.push(c)
  }
  return formUtf8.decode(Uint8Array.from(bytes))
}

/** Go's `url.ParseQuery` on a form body (bytes as Latin-1 characters): name -> values, or the first error. */
export function parseGoForm(text: string): Record<string, string[]> | string {
  const out: Record<string, string[]> = Object.create(null)
  let first: string | undefined
  for (const part of text.split('&')) {
    if (part.includes(';')) {
      // Go sets this one whatever error came before.
      first = 'invalid semicolon separator in query'
      continue
    }
    if (part === '') continue
    const eq = part.indexOf('=')
    const k = goUnescape(eq === -1 ? part : part.slice(0, eq))
    if (typeof k !== 'string') {
      first ??= k.error
      continue
    }
    const v = goUnescape(eq === -1 ? '' : part.slice(eq + 1))
    if (typeof v !== 'string') {
      first ??= v.error
      continue
    }
    const list = out[k]
    if (list === undefined) out[k] = [v]
    else list.push(v)
  }
  return first ?? out
}
