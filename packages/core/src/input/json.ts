/**
 * JSON bodies and values: content types, parsing within a depth limit, duplicate member names and
 * non-finite numbers refused.
 */

import { hasDuplicateMember } from '../jwt/json-members.js'
import { type InputRefusal, type Obj, refuse } from './fields.js'
import type { CheckInput } from './types.js'

/**
 * A body the host gives as a parsed value must be one JSON can carry: JSON.stringify would drop a
 * function or a symbol, turn `undefined` in a list or NaN into null, and throw on a BigInt, so the
 * text the rules see would not be the value the host holds. Iterative, depth-limited.
 */
export function checkJsonValue(root: object, maxDepth: number): void {
  const stack: Array<[unknown, number]> = [[root, 0]]
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!
    switch (typeof v) {
      case 'string':
      case 'boolean':
        continue
      case 'number':
        if (!Number.isFinite(v)) refuse('unserializable_body', `the body holds ${v}, which JSON cannot`)
        continue
      case 'object': {
        if (v === null) continue
        if (depth >= maxDepth) refuse('unserializable_body', `the body is nested deeper than ${maxDepth}`)
        if (Array.isArray(v)) {
          for (let i = 0; i < v.length; i++) {
            if (!(i in v) || v[i] === undefined)
              refuse('unserializable_body', 'the body has undefined in a list, which JSON cannot hold')
            stack.push([v[i], depth + 1])
          }
          continue
        }
        const proto = Object.getPrototypeOf(v)
        if (proto !== Object.prototype && proto !== null)
          refuse('unserializable_body', 'the body must be a string, bytes or a parsed JSON value')
        for (const k of Object.keys(v)) {
          const x = (v as Obj)[k]
          // An absent property and one set to undefined are the same JSON object.
          if (x !== undefined) stack.push([x, depth + 1])
        }
        continue
      }
      default:
        refuse('unserializable_body', `the body holds a ${typeof v}, which JSON cannot`)
    }
  }
}

/** Parse the body as JSON when the content type says JSON; undefined otherwise or when invalid. */
export function parseJsonBody(input: CheckInput, maxDepth: number): JsonParse | undefined {
  const body = input.body
  if (body === undefined || input.bodyTruncated) return undefined
  const ct = input.headers['content-type']
  if (ct === undefined || !isJsonContentType(ct)) return undefined
  const r = parseJsonLimited(body, maxDepth)
  // `{"amount": 5000, "amount": 1}`: JSON.parse keeps the last, other parsers the first.
  if ('value' in r && typeof r.value === 'object' && r.value !== null && hasDuplicateMember(body))
    return DUPLICATE_KEY
  return r
}

const DUPLICATE_KEY: JsonParse = Object.freeze({
  error: 'an object in the JSON body has the same key twice (parsers disagree on which one counts)',
  refusal: 'duplicate_json_key',
})

/** `application/json`, `application/*+json`, with or without parameters. */
export function isJsonContentType(ct: string): boolean {
  const semi = ct.indexOf(';')
  const mt = (semi === -1 ? ct : ct.slice(0, semi)).trim().toLowerCase()
  return mt === 'application/json' || (mt.startsWith('application/') && mt.endsWith('+json'))
}

/**
 * "invalid JSON", with the position when JSON.parse gives one. Its message also quotes the text
 * around the error, which may be a secret from the body, so that part is left out.
 */
export function jsonSyntaxError(e: unknown): string {
  const m = e instanceof Error ? e.message : ''
  const at = /position (\d+)/.exec(m)
  if (at !== null) return `invalid JSON at position ${at[1]}`
  const token = /^Unexpected token '(.)'/.exec(m)
  if (token !== null) return `invalid JSON: unexpected ${JSON.stringify(token[1])}`
  return m.startsWith('Unexpected end') ? 'invalid JSON: unexpected end' : 'invalid JSON'
}

/** `text` without a leading byte order mark, which decoders skip (TextDecoder, most servers). */
export function withoutBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

/** The outcome of `parseJsonLimited`: a value, or why there is none. */
export type JsonParse =
  | { readonly value: unknown }
  | { readonly error: string; readonly refusal?: InputRefusal }

/**
 * JSON.parse with a nesting limit checked on the text before parsing (an iterative scan, so deep
 * documents never reach a recursive walker). A leading byte order mark is skipped, as the
 * upstream's decoder would. A number JSON.parse turns into Infinity (`1e400`, 400 digits) is an
 * error with `refusal: 'non_finite_number'`: the text says a number no double holds, and a rule
 * comparing Infinity (`amount <= 1000` with `-1e400`) would decide on something the sender did not
 * write.
 */
export function parseJsonLimited(raw: string, maxDepth: number): JsonParse {
  const text = withoutBom(raw)
  let depth = 0
  let run = 0
  let maybeHuge = false
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c >= 48 && c <= 57) {
      // Only a literal with an exponent or more than 308 digits can overflow a double.
      if (++run > 308) maybeHuge = true
      continue
    }
    run = 0
    if (c === 34) {
      // Jump over the string: find the closing quote that is not escaped (an even run of
      // backslashes before it), without looking at every character in between.
      let j = i
      for (;;) {
        j = text.indexOf('"', j + 1)
        if (j === -1) return { error: 'invalid JSON: unterminated string' }
        let k = j - 1
        while (text.charCodeAt(k) === 92) k--
        if ((j - 1 - k) % 2 === 0) break
      }
      i = j
    } else if (c === 123 || c === 91) {
      if (++depth > maxDepth) return { error: `JSON nested deeper than ${maxDepth}` }
    } else if (c === 125 || c === 93) depth--
    else if (c === 101 || c === 69) {
      const p = text.charCodeAt(i - 1)
      if ((p >= 48 && p <= 57) || p === 46) maybeHuge = true
    }
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    return { error: jsonSyntaxError(e) }
  }
  if (maybeHuge && hasNonFinite(value)) return NON_FINITE
  return { value }
}

const NON_FINITE: JsonParse = Object.freeze({
  error: 'a number in the JSON body is too large for a double (it would read as Infinity)',
  refusal: 'non_finite_number',
})

/** True when a parsed JSON value holds a number that is not finite (iterative). */
export function hasNonFinite(root: unknown): boolean {
  const stack: unknown[] = [root]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return true
    } else if (typeof v === 'object' && v !== null) {
      if (Array.isArray(v)) for (const x of v) stack.push(x)
      else for (const k of Object.keys(v)) stack.push((v as Obj)[k])
    }
  }
  return false
}
