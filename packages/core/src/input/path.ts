/**
 * The request target: path and query split and percent-decoded, ambiguous paths (dot segments,
 * encoded slashes, NUL, ...) refused.
 */
import { type Decision, malformed } from '../decision.js'
import { bad, EMPTY_QUERY, InputProblem, nullMap, refuse } from './fields.js'
import type { HeaderAcc } from './headers.js'
import type { ResolvedInputOptions } from './types.js'

/** Percent-decode a path segment or query component; invalid encodings and invalid UTF-8 reject. */
function percentDecode(s: string, at: string): string {
  if (s.indexOf('%') === -1) return s
  try {
    return decodeURIComponent(s)
  } catch {
    return bad(at, 'has invalid percent-encoding or invalid UTF-8')
  }
}

const AMBIGUOUS_ENCODED = /%(?:2f|5c)/i

const TARGET_CHARS = /^[\x21-\x7e]*$/

const STILL_ENCODED = /%[0-9a-f]{2}/i

// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const DECODED_CONTROL = /[\x00-\x1f\x7f]/

const NUL = /%00|\0/

/** Cheap pre-filter: a path without any of these cannot be ambiguous. */
const MAYBE_AMBIGUOUS = /\/\/|\/\.|\/;|\/%2e|%2f|%5c|\\|%00|\0/i

interface SplitPath {
  readonly path: string
  readonly rawQuery: string
  readonly query: Readonly<Record<string, readonly string[]>>
}

/**
 * Split the request target into path and query. The path is percent-decoded as a whole, after
 * the ambiguity checks ran on the raw form; the query is split on `&`, `+` means space, and both
 * names and values are percent-decoded. A fragment is dropped.
 */
export function splitPath(target: string, rejectAmbiguous: boolean): SplitPath | Decision {
  try {
    return splitPathOrThrow(target, rejectAmbiguous)
  } catch (e) {
    if (e instanceof InputProblem) return e.decision
    throw e
  }
}

export function splitPathOrThrow(target: string, rejectAmbiguous: boolean): SplitPath {
  let end = target.length
  const hash = target.indexOf('#')
  if (hash !== -1) end = hash
  const q = target.indexOf('?')
  const rawPathPart = q !== -1 && q < end ? target.slice(0, q) : target.slice(0, end)
  const rawQuery = q !== -1 && q < end ? target.slice(q + 1, end) : ''
  if (rawPathPart.length === 0 || (rawPathPart.charCodeAt(0) !== 47 && rawPathPart !== '*')) {
    bad('path', 'must start with "/"')
  }
  // A request target is visible ASCII (RFC 9112 3.2): a space, a control or a raw non-ASCII byte
  // is read differently by different servers.
  if (!TARGET_CHARS.test(target)) {
    if (target.indexOf('\0') !== -1) bad('path', 'contains a NUL byte')
    refuse('invalid_path', 'the request target has a space, a control or a non-ASCII character')
  }
  const suspicious = MAYBE_AMBIGUOUS.test(rawPathPart)
  if (suspicious && NUL.test(rawPathPart)) bad('path', 'contains a NUL byte')
  if (rejectAmbiguous && suspicious) {
    if (rawPathPart.includes('\\')) bad('path', 'contains "\\" (ambiguous path)')
    if (AMBIGUOUS_ENCODED.test(rawPathPart)) bad('path', 'contains an encoded "/" or "\\" (ambiguous path)')
    // Check segments after decoding dots only, so %2e%2e counts as "..".
    const segs = rawPathPart.split('/')
    for (let i = 1; i < segs.length; i++) {
      const seg = segs[i]!
      // A path parameter does not hide a dot segment or an empty one: servlet containers resolve
      // "/..;x/" as ".." and "/;x/admin" as "//admin", that is "/admin".
      const semi = seg.indexOf(';')
      const bare = semi === -1 ? seg : seg.slice(0, semi)
      if (bare === '' && (i < segs.length - 1 || semi !== -1))
        bad('path', 'contains an empty segment "//" or "/;" (ambiguous path)')
      const dots = bare.indexOf('%') === -1 ? bare : bare.replace(/%2e/gi, '.')
      if (dots === '.' || dots === '..') bad('path', 'contains a dot segment (ambiguous path)')
    }
  }
  const path = percentDecode(rawPathPart, 'path')
  if (path !== rawPathPart) {
    // Decoded once, the path must be final: `%252e` is `%2e` to this reader and `.` to the next.
    if (rejectAmbiguous && rawPathPart.indexOf('%25') !== -1 && STILL_ENCODED.test(path))
      refuse('invalid_path', 'the path is still percent-encoded after one decoding')
    if (DECODED_CONTROL.test(path)) refuse('invalid_path', 'the path decodes to a control character')
  }
  if (rawQuery.length === 0) return { path, rawQuery, query: EMPTY_QUERY }
  const query = nullMap<string[]>()
  for (const part of rawQuery.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const k = decodeQueryPart(eq === -1 ? part : part.slice(0, eq))
    const v = eq === -1 ? '' : decodeQueryPart(part.slice(eq + 1))
    const list = query[k]
    if (list === undefined) query[k] = [v]
    else list.push(v)
  }
  return { path, rawQuery, query }
}

/**
 * The request target counts against `maxHeaderBytes` with the headers, as Envoy counts `:path` in
 * `max_request_headers_kb` (once: not again when the headers already carry `:path`). A huge query
 * would otherwise be split and decoded in full.
 */
export function checkTargetSize(target: string, acc: HeaderAcc, o: ResolvedInputOptions): void {
  if (acc.map[':path'] === undefined && acc.bytes + target.length > o.maxHeaderBytes)
    throw new InputProblem(malformed('request target and headers too large', 'headers_too_large', 431))
}

/** Form decoding of one query name or value: `+` is a space, then percent-decoding. */
function decodeQueryPart(s: string): string {
  return percentDecode(s.indexOf('+') === -1 ? s : s.replace(/\+/g, ' '), 'query')
}
