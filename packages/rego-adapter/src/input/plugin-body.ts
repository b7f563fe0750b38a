/**
 * The body as the OPA-Envoy plugin reads it: `parsed_body` and `truncated_body` of its input
 * document, or the parse error that answers 400 `request_parse_error` before any policy runs.
 */
import type { CheckInput, Decision } from '@verdict/core'
import { hasDuplicateMember, hasNonFinite, parseJsonLimited, refusal } from '@verdict/core/internal'
import { bytesOf, hasKeys, type Obj, pick, rawHttp, str } from './attributes.js'
import { latin1, utf8Encoder, utf8Length } from './bytes.js'
import { goJsonError, goQuote, parseGoForm } from './go-json.js'

/** What the plugin makes of the body: `parsed_body`, `truncated_body`, or a parse error (400). */
export interface PluginBody {
  readonly parsed: unknown
  readonly truncated: boolean
  /** `request_parse_error: <error>` answers the request (400) before the policy's answer counts. */
  readonly error?: string
  /** A canonical-request refusal (duplicate keys, a number no double holds). */
  readonly refusal?: Decision
  /**
   * The body's own text, when it is plain, complete JSON whose value is `parsed`: JSON text of
   * `parsed_body` as good as serializing `parsed` (the module parses the same value from it, the
   * numbers with the digits the client sent, as the plugin's decoder keeps them).
   */
  readonly text?: string
  /**
   * With `text` read after core's MCP extraction: where the top-level `params` object and its
   * `arguments` object lie in it (the `mcp` addition's `params` and `tool.arguments`, as written).
   */
  readonly params?: Span
  readonly args?: Span | undefined
}

const NO_BODY: PluginBody = Object.freeze({ parsed: null, truncated: false })

/**
 * The body the plugin reads (`body`, else `raw_body`), as the string or bytes given (not copied),
 * and the headers it looks in: only the `headers` map (a CheckRequest that carries `header_map`
 * alone is never parsed).
 */
function pluginBodySource(
  i: CheckInput,
): { body: string | Uint8Array; headers: Readonly<Record<string, string>> } | undefined {
  const h = rawHttp(i)
  if (h === undefined) return { body: i.body ?? '', headers: i.headers }
  if (!hasKeys(h.headers)) return undefined
  const body = str(h.body)
  if (body !== undefined) return { body, headers: i.headers }
  return { body: bytesOf(pick(h, 'rawBody', 'raw_body')) ?? EMPTY_BYTES, headers: i.headers }
}

const EMPTY_BYTES = new Uint8Array(0)

/** Go's `strconv.ParseInt(s, 10, 64)`: the value, or its error text. */
function parseGoInt(s: string): bigint | string {
  if (!/^[+-]?\d+$/.test(s)) return `strconv.ParseInt: parsing ${goQuote(s)}: invalid syntax`
  const v = BigInt(s)
  if (v > 9223372036854775807n || v < -9223372036854775808n)
    return `strconv.ParseInt: parsing ${goQuote(s)}: value out of range`
  return v
}

const SHORT_DIGITS = /^\d{1,15}$/

/**
 * `content-length` against the body: the plugin's truncation test, or a parse error. The body's
 * length in bytes is only worked out when the header is there.
 */
function cutShort(headers: Readonly<Record<string, string>>, body: string | Uint8Array): boolean | string {
  const cl = headers['content-length']
  if (cl === undefined) return false
  const length = typeof body === 'string' ? utf8Length(body) : body.length
  // The common case, digits only: exact as a double up to 15 digits.
  if (SHORT_DIGITS.test(cl)) return Number(cl) > length
  const v = parseGoInt(cl)
  if (typeof v === 'string') return v
  return v !== -1n && v > BigInt(length)
}

/** UTF-8 that must be valid (a body given as bytes is read as text without a second copy). */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
/** Invalid UTF-8 as U+FFFD. */
const goUtf8 = new TextDecoder('utf-8')

/**
 * The body as well-formed text with no byte order mark, when it is one: then its UTF-8 bytes are
 * exactly the bytes the plugin reads, and JSON.parse accepting the whole text means Go's decoder
 * accepts it too, with the same value (the two grammars agree on a complete document). Else
 * undefined: the body takes the byte-by-byte reading of Go's scanner.
 */
function plainText(body: string | Uint8Array): string | undefined {
  let text: string
  if (typeof body === 'string') {
    if (!(body as unknown as { isWellFormed(): boolean }).isWellFormed()) return undefined
    text = body
  } else {
    try {
      text = strictUtf8.decode(body)
    } catch {
      return undefined
    }
  }
  return text.charCodeAt(0) === 0xfeff ? undefined : text
}

/** The parsed JSON value of a complete body, or the canonical request's refusal of it. */
function parsedJson(r: { value: unknown }, text: string): PluginBody {
  if (typeof r.value === 'object' && r.value !== null && hasDuplicateMember(text))
    return {
      parsed: null,
      truncated: false,
      refusal: refusal(
        'duplicate_json_key',
        'an object in the JSON body has the same key twice (parsers disagree on which one counts)',
      ),
    }
  return { parsed: r.value, truncated: false }
}

/** The closing quote of the string opening at `open`: the next `"` after an even run of backslashes; -1 if none. */
function closingQuote(text: string, open: number): number {
  let j = open
  for (;;) {
    j = text.indexOf('"', j + 1)
    if (j === -1) return -1
    let k = j - 1
    while (text.charCodeAt(k) === 92) k--
    if ((j - 1 - k) % 2 === 0) return j
  }
}

/**
 * A complete JSON body in one pass over the text (nesting, numbers that may overflow, member
 * count) and one JSON.parse. Undefined for anything that is not plainly valid, which the full
 * reading then answers: too deep, not JSON, a number no double holds.
 *
 * Duplicate names: every `:` outside strings ends one member name, so the text has as many members
 * as colons; JSON.parse keeps one key per name (after unescaping), so the parsed objects hold
 * fewer keys exactly when some object names a member twice.
 */
function quickJson(text: string, maxDepth: number): PluginBody | undefined {
  let depth = 0
  let members = 0
  let maybeHuge = false
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      const j = closingQuote(text, i)
      if (j === -1) return undefined
      i = j
    } else if (c === 58) members++
    else if (c === 123 || c === 91) {
      if (++depth > maxDepth) return undefined
    } else if (c === 125 || c === 93) depth--
    else if (c === 101 || c === 69) {
      // An exponent (not the `e` of true or false).
      const p = text.charCodeAt(i - 1)
      if ((p >= 48 && p <= 57) || p === 46) maybeHuge = true
    } else if (c >= 48 && c <= 57 && !maybeHuge) {
      // More than 308 digits in a row can overflow a double too.
      let k = i
      while (k < n && text.charCodeAt(k) >= 48 && text.charCodeAt(k) <= 57) k++
      if (k - i > 308) maybeHuge = true
      i = k - 1
    }
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (maybeHuge && hasNonFinite(value)) return undefined
  if (typeof value === 'object' && value !== null && countKeys(value) !== members)
    return {
      parsed: null,
      truncated: false,
      refusal: refusal(
        'duplicate_json_key',
        'an object in the JSON body has the same key twice (parsers disagree on which one counts)',
      ),
    }
  return { parsed: value, truncated: false, text }
}

/** Keys of every object in a parsed JSON value (iterative). */
function countKeys(root: object): number {
  let count = 0
  const stack: unknown[] = [root]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v !== 'object' || v === null) continue
    if (Array.isArray(v)) {
      for (const x of v) if (typeof x === 'object' && x !== null) stack.push(x)
    } else {
      const keys = Object.keys(v)
      count += keys.length
      for (const k of keys) {
        const x = (v as Obj)[k]
        if (typeof x === 'object' && x !== null) stack.push(x)
      }
    }
  }
  return count
}

/** Where the text of a JSON value lies in the body: `[start, end)`. */
export type Span = readonly [number, number]

/** What one pass over a body JSON.parse accepted finds. */
interface MemberScan {
  /** Some object names a member twice (compared after unescaping). */
  readonly repeated: boolean
  /** The top-level object's `params` object, and that object's `arguments` object. */
  readonly params?: Span
  readonly args?: Span
}

const REPEATED: MemberScan = Object.freeze({ repeated: true })

/** Names an object keeps in a list before they move to a set. */
const SHORT_OBJECT = 16

/**
 * One pass over text that JSON.parse accepts: a member name repeated in some object, and where the
 * top-level `params` object and its `arguments` object lie (a JSON-RPC call's, which verdict's
 * `mcp` addition repeats). Strings are skipped with `indexOf`; the names of each open object are
 * kept in a short list, or a set once there are many.
 */
function scanMembers(text: string): MemberScan {
  // Per open bracket: the names seen so far in an object, null for an array; past SHORT_OBJECT
  // names, the object's names are in `sets` instead.
  const stack: Array<string[] | null> = []
  let sets: Map<string[], Set<string>> | undefined
  let expectName = false
  // The member name just read, until its value starts.
  let lastName: string | undefined
  let paramsStart = -1
  let paramsEnd = -1
  let argsStart = -1
  let argsEnd = -1
  const n = text.length
  // Most bodies have no escape at all: one search spares looking for one in every name.
  let nextEscape = text.indexOf('\\')
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      const j = closingQuote(text, i)
      if (j === -1) return REPEATED
      if (expectName) {
        const names = stack[stack.length - 1]
        if (names !== null && names !== undefined) {
          if (nextEscape !== -1 && nextEscape < i) nextEscape = text.indexOf('\\', i)
          let name: string
          try {
            // One string literal: JSON.parse does not recurse on it.
            name =
              nextEscape !== -1 && nextEscape < j
                ? (JSON.parse(text.slice(i, j + 1)) as string)
                : text.slice(i + 1, j)
          } catch {
            return REPEATED
          }
          if (names.length < SHORT_OBJECT) {
            if (names.includes(name)) return REPEATED
            names.push(name)
          } else {
            // A long object: its names move to a set, so the pass stays linear.
            sets ??= new Map()
            let set = sets.get(names)
            if (set === undefined) {
              set = new Set(names)
              sets.set(names, set)
            }
            if (set.has(name)) return REPEATED
            set.add(name)
          }
          lastName = name
        }
        expectName = false
      } else lastName = undefined
      i = j
    } else if (c === 123) {
      const depth = stack.length
      if (lastName === 'params' && depth === 1 && paramsStart === -1) paramsStart = i
      else if (lastName === 'arguments' && depth === 2 && paramsStart !== -1 && paramsEnd === -1)
        argsStart = i
      lastName = undefined
      stack.push([])
      expectName = true
    } else if (c === 91) {
      lastName = undefined
      stack.push(null)
      expectName = false
    } else if (c === 125 || c === 93) {
      const depth = stack.length
      if (depth === 2 && paramsStart !== -1 && paramsEnd === -1) paramsEnd = i + 1
      else if (depth === 3 && argsStart !== -1 && argsEnd === -1) argsEnd = i + 1
      stack.pop()
      expectName = false
    } else if (c === 44) {
      const top = stack[stack.length - 1]
      expectName = top !== null && top !== undefined
    }
  }
  if (paramsEnd === -1) return { repeated: false }
  return argsEnd === -1
    ? { repeated: false, params: [paramsStart, paramsEnd] }
    : { repeated: false, params: [paramsStart, paramsEnd], args: [argsStart, argsEnd] }
}

const DUPLICATE_KEY_REFUSAL = (): PluginBody => ({
  parsed: null,
  truncated: false,
  refusal: refusal(
    'duplicate_json_key',
    'an object in the JSON body has the same key twice (parsers disagree on which one counts)',
  ),
})

/**
 * The body as the plugin reads it. `parsedByCore`: core's MCP extraction parsed this very body
 * text (`input.body`) and accepted it (JSON.parse took it whole, nesting within `maxDepth`, no
 * number beyond a double). Then, for the input document's text only (`parsed` is left
 * undefined), the body's own text stands for `parsed_body` after one search for a repeated member
 * name, without parsing it a second time.
 */
export function pluginBody(i: CheckInput, maxDepth: number, parsedByCore = false): PluginBody {
  const src = pluginBodySource(i)
  if (src === undefined) return NO_BODY
  const ct = src.headers['content-type']
  if (ct === undefined) return NO_BODY
  const json = ct.includes('application/json')
  if (!json && !ct.includes('application/x-www-form-urlencoded')) return NO_BODY
  const body = src.body
  if (body.length === 0) return NO_BODY
  const cut = cutShort(src.headers, body)
  if (typeof cut === 'string') return { parsed: null, truncated: false, error: cut }
  // Deliberate: Envoy's partial-body header also marks the body cut (docs/rego.md).
  if (cut || i.bodyTruncated) return { parsed: null, truncated: true }
  if (
    json &&
    parsedByCore &&
    body === i.body &&
    body.charCodeAt(0) !== 0xfeff &&
    (body as unknown as { isWellFormed(): boolean }).isWellFormed()
  ) {
    const scan = scanMembers(body)
    if (scan.repeated) return DUPLICATE_KEY_REFUSAL()
    return scan.params === undefined
      ? { parsed: undefined, truncated: false, text: body }
      : { parsed: undefined, truncated: false, text: body, params: scan.params, args: scan.args }
  }
  if (json) {
    // Most bodies are valid JSON: one scan and one parse answer, and only a body they refuse is
    // read again by Go's rules below, for the error text the plugin would send.
    const text = plainText(body)
    const fast = text === undefined ? undefined : quickJson(text, maxDepth)
    if (fast !== undefined) return fast
  }
  const bytes = typeof body === 'string' ? utf8Encoder.encode(body) : body
  if (!json) {
    const form = parseGoForm(latin1(bytes))
    return typeof form === 'string'
      ? { parsed: null, truncated: false, error: form }
      : { parsed: form, truncated: false }
  }
  const syntax = goJsonError(bytes)
  if ('error' in syntax) return { parsed: null, truncated: false, error: syntax.error }
  // Valid for Go, which reads the first value only (a trailing `null` token passes); invalid
  // UTF-8 reads as U+FFFD, as Go's decoder reads it.
  const text = goUtf8.decode(bytes.subarray(0, syntax.end))
  const r = parseJsonLimited(text, maxDepth)
  if ('error' in r) {
    if (r.refusal !== undefined)
      return { parsed: null, truncated: false, refusal: refusal(r.refusal, r.error) }
    return { parsed: null, truncated: false, error: r.error }
  }
  // parseJsonLimited refused a number no double holds (non_finite_number) already.
  return parsedJson(r, text)
}
