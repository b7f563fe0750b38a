/**
 * What both input shapes share: the method, the authority (host canonicalization and its checks
 * against `:authority` and `host`), pseudo-headers, the body and its declared length.
 */
import { utf8Length } from '../bytes.js'
import { malformed } from '../decision.js'
import { bad, bytesOf, decimal, decodeUtf8, InputProblem, refuse } from './fields.js'
import { type HeaderAcc, TOKEN_PUNCT } from './headers.js'
import type { ResolvedInputOptions } from './types.js'

/** A method: an RFC 9110 token, upper-cased (rules compare upper case; `delete` is DELETE). */
function canonicalMethod(m: string): string {
  const n = m.length
  // A CheckRequest without a method (hand-written, in a case file) stays without one; Envoy always
  // sends one.
  if (n === 0) return m
  let upper = true
  for (let i = 0; i < n; i++) {
    const c = m.charCodeAt(i)
    if (c >= 65 && c <= 90) continue
    if (c >= 97 && c <= 122) upper = false
    else if (c >= 128 || TOKEN_PUNCT[c] !== 1)
      refuse('invalid_method', `the method ${JSON.stringify(m.slice(0, 32))} is not a token`)
  }
  return upper ? m : m.toUpperCase()
}

/**
 * The canonical form of an authority: lower case, no trailing dot, no port when it is the
 * scheme's default (80 and 443 both when the scheme is unknown). Anything that is not a host name,
 * an IPv4 address or a bracketed IPv6 address, with an optional port, is refused.
 */
export function canonicalHost(raw: string, scheme: string): string {
  // Most traffic names few hosts: a one-entry cache (only valid hosts reach it).
  if (raw === lastHost && scheme === lastScheme) return lastCanonical
  const c = canonicalHostUncached(raw, scheme)
  lastHost = raw
  lastScheme = scheme
  lastCanonical = c
  return c
}

let lastHost: string | undefined

let lastScheme = ''

let lastCanonical = ''

function canonicalHostUncached(raw: string, scheme: string): string {
  const n = raw.length
  let i = 0
  let upper = false
  if (raw.charCodeAt(0) === 91) {
    const close = raw.indexOf(']')
    if (close === -1 || !IPV6.test(raw.slice(1, close))) badHost(raw)
    i = close + 1
    upper = /[A-F]/.test(raw.slice(0, i))
  } else {
    for (; i < n; i++) {
      const c = raw.charCodeAt(i)
      if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95 || c === 126)
        continue
      if (c >= 65 && c <= 90) upper = true
      else if (c === 58) break
      else badHost(raw)
    }
  }
  let name = i === n ? raw : raw.slice(0, i)
  if (upper) name = name.toLowerCase()
  if (name.charCodeAt(name.length - 1) === 46) name = name.slice(0, -1)
  if (name === '' || name.charCodeAt(0) === 46 || name.indexOf('..') !== -1) badHost(raw)
  if (i === n) return name
  if (raw.charCodeAt(i) !== 58) badHost(raw)
  const portText = raw.slice(i + 1)
  if (portText === '') return name
  if (!/^\d{1,5}$/.test(portText)) badHost(raw)
  const port = Number(portText)
  if (port > 65535) badHost(raw)
  if ((port === 443 && scheme !== 'http') || (port === 80 && scheme !== 'https')) return name
  return `${name}:${port}`
}

const IPV6 = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$/

function badHost(raw: string): never {
  return refuse('invalid_host', `the host ${JSON.stringify(raw.slice(0, 64))} is not a valid authority`)
}

/**
 * One host from the request's field and its `:authority` / `host` headers, which must agree once
 * canonical. The headers are rewritten to the canonical host, so every reader sees one spelling.
 */
function resolveHost(field: string | undefined, acc: HeaderAcc, scheme: string): string {
  const map = acc.map
  const authority = map[':authority']
  const hostHeader = map.host
  const from =
    field !== undefined && field !== ''
      ? field
      : authority !== undefined && authority !== ''
        ? authority
        : hostHeader
  if (from === undefined || from === '') return ''
  const host = canonicalHost(from, scheme)
  // Usually the field and `:authority` are the same string: compared, not canonicalized again.
  if (authority !== undefined && authority !== '' && authority !== from)
    sameHost(authority, host, scheme, ':authority')
  if (hostHeader !== undefined && hostHeader !== '' && hostHeader !== from)
    sameHost(hostHeader, host, scheme, 'the host header')
  if (authority !== undefined && authority !== host) map[':authority'] = host
  if (hostHeader !== undefined && hostHeader !== host) map.host = host
  return host
}

function sameHost(v: string, host: string, scheme: string, what: string): void {
  const c = canonicalHost(v, scheme)
  if (c !== host)
    refuse('invalid_host', `${what} ${JSON.stringify(c)} is not the request's host ${JSON.stringify(host)}`)
}

/** `:method`, `:path` and `:scheme` in the headers must say what the request's fields say. */
function checkPseudoHeaders(
  map: Record<string, string>,
  method: string,
  target: string,
  scheme: string,
): void {
  const m = map[':method']
  if (m !== undefined && m !== method && canonicalMethod(m) !== method)
    refuse('pseudo_header_mismatch', `:method ${JSON.stringify(m.slice(0, 32))} is not the request's method`)
  const p = map[':path']
  if (p !== undefined && p !== target) refuse('pseudo_header_mismatch', ":path is not the request's path")
  const sc = map[':scheme']
  if (sc !== undefined && scheme !== '' && sc.toLowerCase() !== scheme)
    refuse('pseudo_header_mismatch', ":scheme is not the request's scheme")
  if (
    map['x-http-method-override'] !== undefined ||
    map['x-http-method'] !== undefined ||
    map['x-method-override'] !== undefined
  )
    refuse(
      'method_override',
      'a method-override header would make the upstream act on another method than the rules saw',
    )
}

/**
 * A body that is not the whole request must not be decided on as if it were: `content-length` (or
 * the CheckRequest's `size`) that disagrees with the body received, without Envoy's partial-body
 * header, is a cut-short body. Both `content-length` and `transfer-encoding` is request smuggling.
 */
export function checkBodyLength(
  map: Readonly<Record<string, string>>,
  size: number,
  body: string | undefined,
  truncated: boolean,
): void {
  const cl = map['content-length']
  if (cl === undefined && size < 0) return
  if (cl !== undefined && map['transfer-encoding'] !== undefined)
    refuse('body_length_mismatch', 'both content-length and transfer-encoding are given')
  // No body received (Envoy was not asked to buffer it) is not a cut-short body.
  if (body === undefined || body === '' || truncated) return
  const bodyBytes = utf8Length(body)
  if (cl !== undefined && decimal(cl) !== bodyBytes)
    refuse('body_length_mismatch', `content-length is not the size of the body received (${bodyBytes} bytes)`)
  if (size >= 0 && size !== bodyBytes)
    refuse('body_length_mismatch', `size is not the size of the body received (${bodyBytes} bytes)`)
}

export function bodyFrom(
  body: unknown,
  rawBody: unknown,
  at: string,
  o: ResolvedInputOptions,
): string | undefined {
  let text: string | undefined
  if (body !== undefined && body !== null && body !== '') {
    if (typeof body !== 'string') bad(`${at}.body`, 'must be a string')
    // A string's UTF-8 size is at most 3x its length; only measure when it could be over.
    if (body.length * 3 > o.maxBodyBytes && utf8Length(body) > o.maxBodyBytes) {
      throw new InputProblem(malformed('body too large', 'body_too_large', 413))
    }
    text = body
  } else if (rawBody !== undefined && rawBody !== null && rawBody !== '') {
    if (typeof rawBody === 'string' && (rawBody.length * 3) / 4 > o.maxBodyBytes + 3) {
      throw new InputProblem(malformed('body too large', 'body_too_large', 413))
    }
    const bytes = bytesOf(rawBody, `${at}.raw_body`)
    if (bytes.length > o.maxBodyBytes)
      throw new InputProblem(malformed('body too large', 'body_too_large', 413))
    text = decodeUtf8(bytes, `${at}.raw_body`)
  }
  return text
}

export function sizeOf(v: unknown, at: string): number {
  if (v === undefined || v === null) return -1
  const n = typeof v === 'string' && /^-?\d{1,15}$/.test(v) ? Number(v) : v
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < -1) bad(at, 'must be an integer')
  return n
}

export const EMPTY_NAMES: readonly string[] = Object.freeze([])

/**
 * Method, host and scheme of the request, canonical, with the headers that restate them checked
 * against them: the one request line every rule kind reads.
 */
export function requestLine(
  acc: HeaderAcc,
  rawMethod: string,
  target: string,
  hostField: string | undefined,
  schemeField: string | undefined,
): { method: string; host: string; scheme: string } {
  const method = canonicalMethod(rawMethod)
  if (target === '*' && method !== 'OPTIONS') refuse('invalid_path', 'the target "*" is only for OPTIONS')
  const scheme = schemeField === undefined || schemeField === '' ? '' : schemeField.toLowerCase()
  checkPseudoHeaders(acc.map, method, target, scheme)
  const host = resolveHost(hostField, acc, scheme === '' ? (acc.map[':scheme'] ?? '').toLowerCase() : scheme)
  return { method, host, scheme }
}
