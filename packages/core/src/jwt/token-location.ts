/**
 * Finding the bearer token in a request (header with prefix, query parameter, cookie), and what
 * to strip so the credential does not travel upstream.
 */
import type { HeaderEntry } from '../decision.js'
import type { CheckInput } from '../input/index.js'
import type { TokenLocation } from './config.js'

/** A token found in the request, with the location it came from. */
export interface FoundToken {
  readonly token: string
  readonly location: TokenLocation
  /** `locationKey(location)`. */
  readonly key: string
}

/** A location to search, with its precomputed key. */
export interface SearchLocation {
  readonly location: TokenLocation
  readonly key: string
  /** Header locations: the prefix trimmed at its end and lower-cased. */
  readonly prefix: string
  /** Header locations: the prefix ended in whitespace, so the token must be separated from it. */
  readonly needsSpace: boolean
}

/** The search entry for `location`. */
export function searchLocation(location: TokenLocation): SearchLocation {
  const raw = location.kind === 'header' ? location.prefix : ''
  const prefix = raw.trimEnd().toLowerCase()
  return { location, key: locationKey(location), prefix, needsSpace: prefix.length < raw.length }
}

export type Extraction =
  | { readonly kind: 'none' }
  | { readonly kind: 'multiple' }
  | { readonly kind: 'one'; readonly found: FoundToken }

/** Identity of a location, so providers sharing one are searched once. */
export function locationKey(l: TokenLocation): string {
  return l.kind === 'header' ? `header:${l.name}:${l.prefix.trim().toLowerCase()}` : `${l.kind}:${l.name}`
}

/** `s` starts with `lower` (lower-case) in any case; compared in place. */
function startsWithFolded(s: string, lower: string): boolean {
  if (s.length < lower.length) return false
  for (let i = 0; i < lower.length; i++) {
    const c = s.charCodeAt(i)
    if ((c >= 65 && c <= 90 ? c + 32 : c) !== lower.charCodeAt(i)) return false
  }
  return true
}

/** A printable ASCII character other than space: never trimmed by `String.prototype.trim`. */
const isVisible = (c: number): boolean => c > 32 && c < 127

/** The token in one part of a header value (its prefix removed), or undefined when it has none. */
function tokenIn(raw: string, at: SearchLocation): string | undefined {
  const p = at.prefix
  const n = p.length
  // The usual `Bearer <token>`: nothing to trim at either end, one space after the prefix, then
  // the token. What the general path below returns for it, with one slice and no trimming.
  if (
    at.needsSpace &&
    raw.length > n + 1 &&
    isVisible(raw.charCodeAt(0)) &&
    isVisible(raw.charCodeAt(raw.length - 1)) &&
    raw.charCodeAt(n) === 32 &&
    isVisible(raw.charCodeAt(n + 1))
  )
    return startsWithFolded(raw, p) ? raw.slice(n + 1) : undefined
  const part = raw.trim()
  if (p === '') return part
  if (!startsWithFolded(part, p)) return undefined
  const rest = part.slice(p.length)
  if (at.needsSpace && rest !== '') {
    // The prefix must be followed by a space or a tab.
    const c = rest.charCodeAt(0)
    if (c !== 32 && c !== 9) return undefined
  }
  return rest.trim()
}

/** Tokens in a header value. Repeated headers arrive joined with `,`, which no JWT contains. */
function fromHeader(value: string, at: SearchLocation, out: string[]): number {
  const parts = value.split(',')
  let count = 0
  for (const raw of parts) {
    const t = tokenIn(raw, at)
    if (t === undefined) continue
    out.push(t)
    count++
  }
  // Any credential next to another header value is ambiguous: two Authorization headers.
  return count > 0 && parts.length > 1 ? 2 : count
}

function cookieValues(header: string | undefined, name: string): string[] {
  const out: string[] = []
  if (header === undefined) return out
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    if (eq > 0 && pair.slice(0, eq).trim() === name) out.push(pair.slice(eq + 1).trim())
  }
  return out
}

const MULTIPLE: Extraction = Object.freeze({ kind: 'multiple' })
const NONE_FOUND: Extraction = Object.freeze({ kind: 'none' })

/** Find every token at `locations`; more than one in total is `multiple`. */
export function extractToken(input: CheckInput, locations: readonly SearchLocation[]): Extraction {
  let found: FoundToken | undefined
  let total = 0
  for (const at of locations) {
    const { location: loc, key } = at
    let n = 0
    if (loc.kind === 'header') {
      const v = input.headers[loc.name]
      if (v === undefined) continue
      if (v.indexOf(',') === -1) {
        // One value (the usual case): no list to build.
        const t = tokenIn(v, at)
        if (t === undefined) continue
        if (++total > 1) return MULTIPLE
        found = { token: t, location: loc, key }
        continue
      }
    }
    const tokens: string[] = []
    if (loc.kind === 'header') n = fromHeader(input.headers[loc.name]!, at, tokens)
    else if (loc.kind === 'query') {
      const v = input.query[loc.name]
      if (v !== undefined) for (const t of v) tokens.push(t)
      n = tokens.length
    } else {
      for (const t of cookieValues(input.headers.cookie, loc.name)) tokens.push(t)
      n = tokens.length
    }
    total += n
    if (total > 1) return MULTIPLE
    if (n === 1) found = { token: tokens[0]!, location: loc, key }
  }
  return found === undefined ? NONE_FOUND : { kind: 'one', found }
}

/** Upstream changes that remove the credential at `loc`. */
export interface Removal {
  readonly headersToRemove: readonly string[]
  readonly queryParametersToRemove: readonly string[]
  /** A rewritten Cookie header without the token cookie. */
  readonly headers: readonly HeaderEntry[]
}

const NONE: readonly never[] = Object.freeze([])

/** Precomputed removals for header and query locations (they do not depend on the request). */
export function staticRemoval(loc: TokenLocation): Removal | undefined {
  if (loc.kind === 'header')
    return { headersToRemove: [loc.name], queryParametersToRemove: NONE, headers: NONE }
  if (loc.kind === 'query')
    return { headersToRemove: NONE, queryParametersToRemove: [loc.name], headers: NONE }
  return undefined
}

/** The Cookie header without the token cookie; removed entirely when nothing else is left. */
export function cookieRemoval(input: CheckInput, name: string): Removal {
  const rest: string[] = []
  for (const pair of (input.headers.cookie ?? '').split(';')) {
    const eq = pair.indexOf('=')
    const trimmed = pair.trim()
    if (trimmed === '') continue
    if (eq > 0 && pair.slice(0, eq).trim() === name) continue
    rest.push(trimmed)
  }
  if (rest.length === 0) return { headersToRemove: ['cookie'], queryParametersToRemove: NONE, headers: NONE }
  return {
    headersToRemove: NONE,
    queryParametersToRemove: NONE,
    headers: [{ key: 'cookie', value: rest.join('; '), append: 'overwrite' }],
  }
}

export const NO_REMOVAL: Removal = { headersToRemove: NONE, queryParametersToRemove: NONE, headers: NONE }
