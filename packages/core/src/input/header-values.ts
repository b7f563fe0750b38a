/**
 * Reading headers as rules do: a header's values split at commas where its grammar allows, and the
 * refusal of a header read by a rule that arrived ambiguous.
 */
import type { Decision } from '../decision.js'
import { nullMap, refusal } from './fields.js'
import type { CheckInput } from './types.js'

/**
 * Headers whose grammar puts commas inside one value (a date, a product comment, credentials), so a
 * comma there is not a second value; a second field line still is. `cookie` lines are joined with
 * `; ` and are one cookie list.
 */
const COMMA_IN_VALUE = new Set([
  'authorization',
  'content-disposition',
  'content-type',
  'cookie',
  'date',
  'expires',
  'if-modified-since',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'proxy-authorization',
  'referer',
  'retry-after',
  'user-agent',
])

/**
 * The values of a header, as a server that reads it as a list would: every field line, each split
 * on `,` (RFC 9110 5.6.1), trimmed, empty elements dropped. Headers whose grammar allows a comma in
 * one value give one value per field line. Absent: an empty list.
 */
export function headerValues(input: CheckInput, name: string): string[] {
  const v = input.headers[name]
  if (v === undefined) return []
  if (name === 'cookie') return [v]
  if (COMMA_IN_VALUE.has(name) && !input.repeatedHeaders.includes(name)) return [v]
  const out: string[] = []
  for (const part of v.split(',')) {
    const t = part.trim()
    if (t !== '') out.push(t)
  }
  return out
}

/** Every header's values (`headerValues`), by name. */
export function allHeaderValues(input: CheckInput): Readonly<Record<string, readonly string[]>> {
  const out = nullMap<readonly string[]>()
  for (const name of Object.keys(input.headers)) out[name] = headerValues(input, name)
  return out
}

/** True when the header has more than one value in the sense of `headerValues`. */
function isMultiValued(input: CheckInput, name: string): boolean {
  const v = input.headers[name]
  if (v === undefined || v.indexOf(',') === -1 || name === 'cookie') return false
  return !COMMA_IN_VALUE.has(name) || input.repeatedHeaders.includes(name)
}

/**
 * A 400 when a header that rules read as one value has several: a deny rule on `x-role == "admin"`
 * must not be passed by `x-role: user,admin`, and an allow rule must not be met by one value while
 * another says otherwise. `reads` is what the policy's rules read (`'all'`: every header).
 */
export function ambiguousHeader(input: CheckInput, reads: Iterable<string> | 'all'): Decision | undefined {
  if (reads === 'all') {
    for (const name of Object.keys(input.headers))
      if (isMultiValued(input, name)) return ambiguous(input, name)
    return undefined
  }
  for (const name of reads) if (isMultiValued(input, name)) return ambiguous(input, name)
  return undefined
}

function ambiguous(input: CheckInput, name: string): Decision {
  const lines = input.repeatedHeaders.includes(name) ? 'arrived on several lines' : 'has a comma list'
  return refusal(
    'ambiguous_header',
    `header ${name} ${lines} and a rule reads it as one value (read every value with headerValues)`,
  )
}
