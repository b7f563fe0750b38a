/**
 * Issue 15, one canonical request (docs/semantics.md): for many requests a policy denies, every
 * encoding variant of the same request is denied too. Repeated and joined headers, case variants of
 * names, host spellings, path encodings, method spellings, JSON numbers no double holds, JSON-RPC
 * shapes, underscore headers and body framing are generated from a fixed seed, in the three input
 * shapes `decide()` accepts (plain object, CheckRequest with `headers`, CheckRequest with
 * `header_map` in proto names), against `match`, CEL and MCP policies. Legitimate spellings of an
 * allowed request stay allowed, so a policy that denies everything fails the test too. A second
 * test sends a sample over gRPC and over the HTTP service mode (raw socket: repeated header lines
 * really go on the wire).
 */
import { connect } from 'node:net'
import { createCelEvaluator } from '@verdict/cel-adapter'
import { createEngine, type Decision, type Engine, httpStatusFromName } from '@verdict/core/internal'
import {
  type CheckClient,
  createCheckClient,
  createExtAuthzServer,
  createTelemetry,
  type ExtAuthzServer,
} from '@verdict/envoy'
import { createMcpEvaluator } from '@verdict/mcp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// ---------------------------------------------------------------------------------------------
// Seeded randomness (mulberry32): the same seed gives the same corpus, so a failure can be re-run.

const SEED = 0x15_15_15

function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const rnd = mulberry32(SEED)
const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1))
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T
const maybe = (p: number): boolean => rnd() < p
function shuffle<T>(xs: readonly T[], random = rnd): T[] {
  const out = [...xs]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}
/** Lower-case letters only, never one of the values the policies deny on. */
function word(min = 3, max = 8): string {
  for (;;) {
    let s = ''
    const n = int(min, max)
    for (let i = 0; i < n; i++) s += String.fromCharCode(97 + int(0, 25))
    if (!/admin|internal|delete/.test(s)) return s
  }
}
/** A spelling of `s` with each letter's case chosen at random, different from `s` itself. */
function mixedCase(s: string): string {
  for (let tries = 0; tries < 20; tries++) {
    let out = ''
    for (const ch of s) out += maybe(0.5) ? ch.toUpperCase() : ch.toLowerCase()
    if (out !== s) return out
  }
  return s.toUpperCase()
}
const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64')

// ---------------------------------------------------------------------------------------------
// One request, three shapes.

type Line = readonly [string, string]

interface Req {
  /** Undefined: no method field (the `:method` header, if any, gives it). */
  readonly method?: string
  readonly path: string
  /** The host field (`http.host` / plain `host`). */
  readonly host?: string
  readonly scheme?: string
  /** Header field lines in order; names as sent (case kept). */
  readonly headers: readonly Line[]
  /** A string or bytes in every shape; a parsed JSON value in the plain shape only. */
  readonly body?: string | Uint8Array | object
  /** CheckRequest `size` (CheckRequest shapes only). */
  readonly size?: number
  /** Filter metadata, namespace -> object. */
  readonly metadata?: Record<string, object>
}

type Shape = 'plain' | 'check' | 'header_map'
const SHAPES: readonly Shape[] = ['plain', 'check', 'header_map']

/** Plain object: a name sent on several lines becomes a list; names differing in case stay apart. */
function toPlain(r: Req): Record<string, unknown> {
  const headers: Record<string, string | string[]> = {}
  for (const [k, v] of r.headers) {
    const prev = headers[k]
    if (prev === undefined) headers[k] = v
    else if (typeof prev === 'string') headers[k] = [prev, v]
    else prev.push(v)
  }
  const out: Record<string, unknown> = { path: r.path, headers }
  if (r.method !== undefined) out.method = r.method
  if (r.host !== undefined) out.host = r.host
  if (r.scheme !== undefined) out.scheme = r.scheme
  if (r.body !== undefined) out.body = r.body
  if (r.metadata !== undefined) out.metadata = r.metadata
  return out
}

const isBytes = (b: unknown): b is Uint8Array => b instanceof Uint8Array
const canCheck = (r: Req): boolean => r.body === undefined || typeof r.body === 'string' || isBytes(r.body)

/** CheckRequest in protobuf JSON, `headers` map: a repeated name is joined as Envoy joins it. */
function toCheck(r: Req): Record<string, unknown> {
  const headers: Record<string, string> = {}
  for (const [k, v] of r.headers) {
    const prev = headers[k]
    headers[k] = prev === undefined ? v : `${prev}${k.toLowerCase() === 'cookie' ? '; ' : ','}${v}`
  }
  const http: Record<string, unknown> = { path: r.path, headers, protocol: 'HTTP/1.1' }
  if (r.method !== undefined) http.method = r.method
  if (r.host !== undefined) http.host = r.host
  if (r.scheme !== undefined) http.scheme = r.scheme
  if (typeof r.body === 'string') http.body = r.body
  else if (isBytes(r.body)) http.rawBody = Buffer.from(r.body).toString('base64')
  if (r.size !== undefined) http.size = String(r.size)
  const attributes: Record<string, unknown> = {
    source: { address: { socketAddress: { address: '10.0.0.7', portValue: 40000 } } },
    request: { http },
  }
  if (r.metadata !== undefined) attributes.metadataContext = { filterMetadata: r.metadata }
  return { attributes }
}

/** CheckRequest in proto names, every line a `header_map` entry (`raw_value` base64 or `value`). */
function toHeaderMap(r: Req, rawValues: boolean): Record<string, unknown> {
  // `raw_value` carries bytes, one per character (Latin-1): other values go as `value`.
  const latin1 = (v: string): boolean => [...v].every((c) => c.charCodeAt(0) <= 0xff)
  const entries = r.headers.map(([key, v], i) =>
    latin1(v) && (rawValues || i % 2 === 0) ? { key, raw_value: b64(v) } : { key, value: v },
  )
  const http: Record<string, unknown> = { path: r.path, header_map: { headers: entries } }
  if (r.method !== undefined) http.method = r.method
  if (r.host !== undefined) http.host = r.host
  if (r.scheme !== undefined) http.scheme = r.scheme
  if (typeof r.body === 'string') http.body = r.body
  else if (isBytes(r.body)) http.raw_body = Buffer.from(r.body).toString('base64')
  if (r.size !== undefined) http.size = r.size
  const attributes: Record<string, unknown> = { context_extensions: {}, request: { http } }
  if (r.metadata !== undefined) attributes.metadata_context = { filter_metadata: r.metadata }
  return { attributes }
}

/** Separate streams, so the corpus and the transport sample do not depend on which tests ran. */
const renderRnd = mulberry32(SEED + 1)
const sampleRnd = mulberry32(SEED + 2)

function render(r: Req, shape: Shape): Record<string, unknown> | undefined {
  if (shape === 'plain') return toPlain(r)
  if (!canCheck(r)) return undefined
  return shape === 'check' ? toCheck(r) : toHeaderMap(r, renderRnd() < 0.5)
}

// ---------------------------------------------------------------------------------------------
// Variant classes.

const CLASSES = ['headers', 'host', 'path', 'method', 'numbers', 'json-rpc', 'underscore/framing'] as const
type Cls = (typeof CLASSES)[number]

interface Variant {
  readonly cls: Cls
  readonly label: string
  /** Rendered in every shape it fits. */
  readonly req?: Req
  /** Or one input exactly as given. */
  readonly raw?: Record<string, unknown>
  readonly shapes?: readonly Shape[]
}

interface Family {
  readonly name: string
  /** Policies of this family: each denies the bases with `denyRule` and allows the benign ones. */
  readonly policies: ReadonlyArray<{ readonly name: string; readonly source: string }>
  readonly denyRule: string
  /** A denied request and its variants. */
  denied(): { base: Req; variants: Variant[] }
  /** An allowed request and legitimate spellings of it. */
  allowed(): { base: Req; variants: Variant[] }
}

const ALLOW_REST = `
  - id: allow-rest
    action: allow
    match: { always: true }`

/** Random noise headers no policy reads, some with comma lists (which must not be refused). */
function noise(): Line[] {
  const out: Line[] = []
  for (let i = int(0, 3); i > 0; i--) out.push([`x-n-${word()}`, maybe(0.3) ? `${word()},${word()}` : word()])
  if (maybe(0.3)) out.push(['user-agent', `curl/${int(7, 8)}.${int(0, 99)} (x86_64, linux)`])
  if (maybe(0.3)) out.push(['cookie', `a=${word()}`], ['cookie', `b=${word()}`])
  return out
}
const apiPath = (): string => `/api/${word()}${maybe(0.3) ? `?q=${word()}` : ''}`
const benignHost = (): string => `${word()}.example.com`
const someMethod = (): string => pick(['GET', 'POST', 'PUT', 'PATCH'])

// ----- 1 + 7: headers (exact and prefix), underscore names ---------------------------------------

function headerFamily(
  name: string,
  policies: Family['policies'],
  denyValue: () => string,
  benignValue: () => string,
): Family {
  const underscored = name.replace(/-/g, '_')
  return {
    name: `header ${name}`,
    policies,
    denyRule: 'deny-header',
    denied() {
      const bad = denyValue()
      const ok = benignValue()
      const common = { method: someMethod(), path: apiPath(), host: benignHost() }
      const n = noise()
      const at = (lines: Line[]): Line[] => {
        const out = [...n]
        out.splice(int(0, out.length), 0, ...lines)
        return out
      }
      const base: Req = { ...common, headers: at([[name, bad]]) }
      const v = (label: string, lines: Line[], cls: Cls = 'headers'): Variant => ({
        cls,
        label,
        req: { ...common, headers: at(lines) },
      })
      const variants: Variant[] = [
        v('repeated [benign, denied]', [
          [name, ok],
          [name, bad],
        ]),
        v('repeated [denied, benign]', [
          [name, bad],
          [name, ok],
        ]),
        v('repeated [denied, denied]', [
          [name, bad],
          [name, bad],
        ]),
        v('joined benign,denied', [[name, `${ok},${bad}`]]),
        v('joined benign, denied', [[name, `${ok}, ${bad}`]]),
        v('joined denied,benign', [[name, `${bad},${ok}`]]),
        v('joined denied, benign', [[name, `${bad}, ${ok}`]]),
        v('joined denied, (empty element)', [[name, `${bad},`]]),
        v('joined ,denied', [[name, `,${bad}`]]),
        v('name case variant alone', [[mixedCase(name), bad]]),
        v('name upper case alone', [[name.toUpperCase(), bad]]),
        v('case-variant keys [Name: benign, name: denied]', [
          [mixedCase(name), ok],
          [name, bad],
        ]),
        v('case-variant keys [name: benign, NAME: denied]', [
          [name, ok],
          [name.toUpperCase(), bad],
        ]),
        v('case-variant keys [Name: denied, name: benign]', [
          [mixedCase(name), bad],
          [name, ok],
        ]),
        v('joined line plus another line', [
          [name, `${ok},${bad}`],
          [name, ok],
        ]),
        v(
          'underscore name denied next to benign',
          [
            [underscored, bad],
            [name, ok],
          ],
          'underscore/framing',
        ),
        v(
          'underscore name upper case denied next to benign',
          [
            [name, ok],
            [underscored.toUpperCase(), bad],
          ],
          'underscore/framing',
        ),
        v('underscore name alone', [[underscored, bad]], 'underscore/framing'),
        // RFC 9110 5.5: leading and trailing whitespace is not part of a field value; every HTTP
        // parser (Node's, Envoy's) strips it, so these are the denied value to the upstream.
        v('value with a leading space', [[name, ` ${bad}`]]),
        v('value with a trailing space', [[name, `${bad} `]]),
        v('value with a leading tab', [[name, `\t${bad}`]]),
        v('value with a trailing tab', [[name, `${bad}\t`]]),
        v('value with a control character', [[name, `${bad}\0`]]),
        v('value with CR LF', [[name, `${bad}\r\nx-n-a: b`]]),
        v('name with a trailing space', [[`${name} `, bad]]),
        v('name with a trailing colon', [[`${name}:`, bad]]),
      ]
      // Generated lists: several values, the denied one somewhere, split over lines at random.
      for (let i = 0; i < 4; i++) {
        const values = shuffle([bad, ...Array.from({ length: int(1, 3) }, benignValue)])
        const lines: Line[] = []
        let cur: string[] = []
        for (const val of values) {
          cur.push(val)
          if (maybe(0.5)) {
            lines.push([maybe(0.3) ? mixedCase(name) : name, cur.join(pick([',', ', ', ' ,', ',\t', ' , ']))])
            cur = []
          }
        }
        if (cur.length > 0) lines.push([name, cur.join(pick([',', ', ']))])
        variants.push(v(`generated ${JSON.stringify(lines)}`, lines))
      }
      // Both `headers` and `header_map` in one CheckRequest: Envoy sends one of them; both are
      // read, so the denied value cannot hide in the one a reader skips.
      for (const [inHeaders, inMap] of [
        [ok, bad],
        [bad, ok],
      ] as const) {
        const base0 = toCheck({ ...common, headers: [[name, inHeaders]] })
        const http = (base0.attributes as { request: { http: Record<string, unknown> } }).request.http
        http.headerMap = { headers: [{ key: name, rawValue: b64(inMap) }] }
        variants.push({
          cls: 'headers',
          label: `headers {${name}: ${inHeaders}} and headerMap [${name}: ${inMap}]`,
          raw: base0,
        })
      }
      // A header_map entry with raw_value only (value empty), upper-case key.
      variants.push({
        cls: 'headers',
        label: 'header_map entry with empty value and raw_value, upper-case key',
        raw: {
          attributes: {
            request: {
              http: {
                ...common,
                header_map: { headers: [{ key: name.toUpperCase(), value: '', raw_value: b64(bad) }] },
              },
            },
          },
        },
      })
      return { base, variants }
    },
    allowed() {
      const ok = benignValue()
      const common = { method: someMethod(), path: apiPath(), host: benignHost() }
      const n = noise()
      const base: Req = { ...common, headers: [...n, [name, ok]] }
      return {
        base,
        variants: [
          {
            cls: 'headers',
            label: 'benign, name case variant',
            req: { ...base, headers: [...n, [mixedCase(name), ok]] },
          },
        ],
      }
    },
  }
}

// ----- 2: host ------------------------------------------------------------------------------------

const DENIED_HOST = 'admin.example.com'

/** Spellings of `host` that are the same authority once canonical, with a scheme that makes it so. */
function hostSpellings(host: string): Array<{ host: string; scheme?: string; label: string }> {
  return [
    { host: host.toUpperCase(), label: 'upper case' },
    { host: mixedCase(host), label: 'mixed case' },
    { host: `${host}.`, label: 'trailing dot' },
    { host: `${host.toUpperCase()}.`, label: 'upper case, trailing dot' },
    { host: `${host}:443`, scheme: 'https', label: ':443 with https' },
    { host: `${host}:443`, label: ':443, no scheme' },
    { host: `${host}:80`, scheme: 'http', label: ':80 with http' },
    { host: `${host}:80`, label: ':80, no scheme' },
    { host: `${mixedCase(host)}.:80`, label: 'mixed case, trailing dot, :80' },
    { host: `${host}:`, label: 'empty port' },
    { host: `${host}:0443`, scheme: 'https', label: ':0443 with https' },
  ]
}

const hostFamily = (policies: Family['policies']): Family => ({
  name: 'host',
  policies,
  denyRule: 'deny-host',
  denied() {
    const other = benignHost()
    const common = { method: someMethod(), path: apiPath() }
    const n = noise()
    const base: Req = { ...common, host: DENIED_HOST, headers: n }
    const variants: Variant[] = []
    for (const s of hostSpellings(DENIED_HOST)) {
      const sc = s.scheme === undefined ? {} : { scheme: s.scheme }
      variants.push(
        {
          cls: 'host',
          label: `field ${s.label}: ${s.host}`,
          req: { ...common, ...sc, host: s.host, headers: n },
        },
        {
          cls: 'host',
          label: `host header only ${s.label}: ${s.host}`,
          req: { ...common, ...sc, headers: [...n, [pick(['host', 'Host', 'HOST']), s.host]] },
        },
        {
          cls: 'host',
          label: `:authority only ${s.label}: ${s.host}`,
          req: { ...common, ...sc, headers: [[':authority', s.host], ...n] },
        },
        {
          cls: 'host',
          label: `field and :authority agree, ${s.label}: ${s.host}`,
          req: { ...common, ...sc, host: DENIED_HOST, headers: [[':authority', s.host], ...n] },
        },
      )
    }
    const disagree = (label: string, host: string | undefined, lines: Line[]): Variant => ({
      cls: 'host',
      label,
      req: { ...common, ...(host === undefined ? {} : { host }), headers: [...lines, ...n] },
    })
    variants.push(
      disagree(':authority denied, field benign', other, [[':authority', DENIED_HOST]]),
      disagree(':authority benign, field denied', DENIED_HOST, [[':authority', other]]),
      disagree('host header denied, field benign', other, [['host', DENIED_HOST.toUpperCase()]]),
      disagree('host header benign, field denied', DENIED_HOST, [['host', other]]),
      disagree('host header denied, :authority benign', undefined, [
        [':authority', other],
        ['host', DENIED_HOST],
      ]),
      disagree('host header lines [benign, denied]', undefined, [
        ['host', other],
        ['host', DENIED_HOST],
      ]),
      disagree('host header lines [denied, benign]', undefined, [
        ['host', DENIED_HOST],
        ['Host', other],
      ]),
      disagree('host header joined benign,denied', undefined, [['host', `${other},${DENIED_HOST}`]]),
      disagree('userinfo in host', `evil@${DENIED_HOST}`, []),
      disagree('two ports', `${DENIED_HOST}:443:443`, []),
      disagree('host with a space', `${DENIED_HOST} `, []),
      disagree('percent-encoded host', DENIED_HOST.replace('a', '%61'), []),
      disagree('backslash host', `${DENIED_HOST}\\`, []),
    )
    return { base, variants }
  },
  allowed() {
    const h = benignHost()
    const common = { method: someMethod(), path: apiPath() }
    const base: Req = { ...common, host: h, headers: noise() }
    return {
      base,
      variants: hostSpellings(h).map((s) => ({
        cls: 'host' as const,
        label: `benign ${s.label}`,
        req: { ...base, host: s.host, ...(s.scheme === undefined ? {} : { scheme: s.scheme }) },
      })),
    }
  },
})

// ----- 3: path ------------------------------------------------------------------------------------

const pct = (ch: string, upper: boolean): string => {
  const h = ch.charCodeAt(0).toString(16).padStart(2, '0')
  return `%${upper ? h.toUpperCase() : h}`
}

const pathFamily = (policies: Family['policies']): Family => ({
  name: 'path',
  policies,
  denyRule: 'deny-path',
  denied() {
    const seg = word()
    const w = word()
    const q = maybe(0.3) ? `?q=${word()}` : ''
    const rest = `/${seg}${q}`
    const method = pick(['GET', 'POST', 'HEAD'])
    const common = { method, host: benignHost(), headers: noise() }
    const base: Req = { ...common, path: `/admin${rest}` }
    const encodedA = `/${pct('a', maybe(0.5))}dmin${rest}`
    const allHex = `/${[...'admin'].map((c) => pct(c, true)).join('')}${rest}`
    const paths: Array<[string, string]> = [
      ['one letter percent-encoded', encodedA],
      ['every letter percent-encoded, upper-case hex', allHex],
      [
        'every letter percent-encoded, lower-case hex',
        allHex.toLowerCase().replace(`/${seg.toLowerCase()}`, `/${seg}`),
      ],
      ['fragment', `/admin/${seg}#${w}`],
      ['path parameter', `/admin;jsessionid=${w}/${seg}`],
      ['query only', `/admin?${w}=1`],
      ['%2e%2e', `/${w}/%2e%2e/admin${rest}`],
      ['%2E%2E (upper-case hex)', `/${w}/%2E%2E/admin${rest}`],
      ['.%2e', `/${w}/.%2e/admin${rest}`],
      ['%2e.', `/${w}/%2E./admin${rest}`],
      ['..', `/${w}/../admin${rest}`],
      ['leading ..', `/../admin${rest}`],
      ['%252e%252e (double-encoded dots)', `/${w}/%252e%252e/admin${rest}`],
      ['%252E%252E (double-encoded, upper-case hex)', `/${w}/%252E%252E/admin${rest}`],
      ['%252f (double-encoded slash)', `/${w}%252f..%252fadmin${rest}`],
      ['%2f (encoded slash)', `/${w}%2f..%2fadmin${rest}`],
      ['%2F admin', `/%2Fadmin${rest}`],
      ['%5c (encoded backslash)', `/${w}%5c..%5cadmin${rest}`],
      ['literal backslash', `/${w}\\..\\admin${rest}`],
      ['//', `//admin${rest}`],
      ['// inside', `/admin//${seg}`],
      ['/./', `/./admin${rest}`],
      ['/%2e/', `/%2e/admin${rest}`],
      ['/..;/', `/${w}/..;/admin${rest}`],
      // An empty segment with a path parameter: servlet containers drop `;x`, then merge `//`.
      ['/;x/ (empty segment with a path parameter)', `/;${w}/admin${rest}`],
      ['/;/ (empty segment with an empty path parameter)', `/;/admin${rest}`],
      ['double-encoded letter %2561', `/%2561dmin${rest}`],
      ['/..;param/', `/${w}/..;jsessionid=${w}/admin${rest}`],
      ['/%2e%2e;/', `/${w}/%2e%2e;/admin${rest}`],
      ['raw non-ASCII', `/admin/${seg}é`],
      ['raw non-ASCII before ..', `/é/../admin${rest}`],
      ['raw no-break space', `/admin/\u00a0${seg}`],
      ['raw space', `/admin /${seg}`],
      ['tab', `/admin\t/${seg}`],
      ['DEL', `/admin\x7f/${seg}`],
      ['CR LF', `/admin/${seg}\r\nx-role: admin`],
      ['NUL', `/admin/${seg}\0`],
      ['%00', `/admin/${seg}%00`],
      ['%09 (decodes to a control)', `/admin%09/${seg}`],
      ['%0d%0a', `/admin/${seg}%0d%0a`],
      ['%7f', `/admin/%7f${seg}`],
      ['invalid percent-encoding', `/admin/%zz${seg}`],
      ['invalid UTF-8', `/admin/%c3${seg}`],
      ['no leading slash', `admin${rest}`],
    ]
    const variants: Variant[] = paths.map(([label, path]) => ({
      cls: 'path',
      label,
      req: { ...common, path },
    }))
    variants.push(
      { cls: 'path', label: '* for GET', req: { ...common, method: 'GET', path: '*' } },
      { cls: 'path', label: '* for DELETE', req: { ...common, method: 'DELETE', path: '*' } },
      {
        cls: 'path',
        label: ':path header disagreeing (benign target)',
        req: { ...common, path: apiPath(), headers: [[':path', `/admin${rest}`], ...common.headers] },
      },
      {
        cls: 'path',
        label: ':path header equal to the target',
        req: { ...common, path: `/admin${rest}`, headers: [[':path', `/admin${rest}`], ...common.headers] },
      },
    )
    return { base, variants }
  },
  allowed() {
    const seg = word()
    const base: Req = { method: someMethod(), path: `/api/${seg}`, host: benignHost(), headers: noise() }
    const i = int(0, seg.length - 1)
    const enc = `/api/${seg.slice(0, i)}${pct(seg[i]!, maybe(0.5))}${seg.slice(i + 1)}`
    return {
      base,
      variants: [
        { cls: 'path', label: 'benign, percent-encoded letter', req: { ...base, path: enc } },
        {
          cls: 'path',
          label: 'benign, comma query',
          req: { ...base, path: `${base.path}?a=${word()},${word()}` },
        },
        { cls: 'path', label: 'benign, path parameter', req: { ...base, path: `${base.path};v=1` } },
        { cls: 'path', label: '* for OPTIONS', req: { ...base, method: 'OPTIONS', path: '*' } },
      ],
    }
  },
})

// ----- 4: method ----------------------------------------------------------------------------------

const OVERRIDES = [
  'x-http-method-override',
  'X-HTTP-Method-Override',
  'x-http-method',
  'X-Http-Method',
  'x-method-override',
] as const

const methodFamily = (policies: Family['policies']): Family => ({
  name: 'method',
  policies,
  denyRule: 'deny-method',
  denied() {
    const common = { path: `/api/items/${int(1, 99999)}`, host: benignHost(), headers: noise() }
    const base: Req = { ...common, method: 'DELETE' }
    const v = (label: string, method: string | undefined, lines: Line[] = []): Variant => ({
      cls: 'method',
      label,
      req: { ...common, ...(method === undefined ? {} : { method }), headers: [...lines, ...common.headers] },
    })
    const variants: Variant[] = [
      v('lower case', 'delete'),
      v('title case', 'Delete'),
      v('mixed case', mixedCase('DELETE')),
      v('trailing space', 'DELETE '),
      v('leading space', ' DELETE'),
      v('trailing tab', 'DELETE\t'),
      v('trailing CR LF', 'DELETE\r\n'),
      v('inner space', 'DEL ETE'),
      v('trailing NUL', 'DELETE\0'),
      v('non-ASCII look-alike', 'DELETЕ'),
      v(':method DELETE, no method field', undefined, [[':method', 'DELETE']]),
      v(':method delete, no method field', undefined, [[':method', 'delete']]),
      v(':method DELETE on a GET', 'GET', [[':method', 'DELETE']]),
      v(':method GET on a DELETE', 'DELETE', [[':method', 'GET']]),
      v(':method delete on a DELETE', 'DELETE', [[':method', 'delete']]),
      v(':method lines [GET, DELETE], no method field', undefined, [
        [':method', 'GET'],
        [':method', 'DELETE'],
      ]),
    ]
    for (const name of OVERRIDES)
      for (const carrier of ['POST', pick(['GET', 'PUT', 'PATCH'])])
        variants.push(v(`${name}: DELETE on ${carrier}`, carrier, [[name, pick(['DELETE', 'delete'])]]))
    variants.push(v('override with an empty value', 'POST', [['x-http-method-override', '']]))
    return { base, variants }
  },
  allowed() {
    const m = pick(['GET', 'POST', 'PUT'])
    const base: Req = { method: m, path: `/api/items/${int(1, 99999)}`, host: benignHost(), headers: noise() }
    return {
      base,
      variants: [
        { cls: 'method', label: 'benign lower case', req: { ...base, method: m.toLowerCase() } },
        {
          cls: 'method',
          label: 'benign :method agreeing',
          req: { ...base, headers: [[':method', m], ...base.headers] },
        },
      ],
    }
  },
})

// ----- 5 + 7: JSON numbers, body framing ------------------------------------------------------

const jsonHeaders = (ct = 'application/json'): Line[] => [['content-type', ct]]

const numbersFamily = (policies: Family['policies']): Family => ({
  name: 'numbers',
  policies,
  denyRule: 'deny-amount',
  denied() {
    const n = int(1001, 9_999_999)
    const note = word()
    const body = (lit: string, key = 'amount'): string =>
      maybe(0.5) ? `{"${key}":${lit},"note":"${note}"}` : `{ "note": "${note}", "${key}": ${lit} }`
    const common = { method: pick(['POST', 'PUT']), path: '/pay', host: benignHost() }
    const n0 = noise()
    const base: Req = { ...common, headers: [...jsonHeaders(), ...n0], body: body(String(n)) }
    const v = (
      label: string,
      b: string | Uint8Array,
      lines: Line[] = jsonHeaders(),
      cls: Cls = 'numbers',
    ): Variant => ({
      cls,
      label,
      req: { ...common, headers: [...lines, ...n0], body: b },
    })
    const digits = (k: number): string =>
      String(int(1, 9)) + Array.from({ length: k - 1 }, () => int(0, 9)).join('')
    const text = body(String(n))
    const bytes = Buffer.byteLength(text)
    const variants: Variant[] = [
      v('1e999', body('1e999')),
      v('-1e400', body('-1e400')),
      v('1e400', body('1e400')),
      v('1E+999', body('1E+999')),
      v('400-digit integer', body(digits(400))),
      v('-400-digit integer', body(`-${digits(400)}`)),
      v('309-digit integer', body(digits(309))),
      v('400 digits with a fraction', body(`${digits(400)}.5`)),
      v('huge number elsewhere in the body', `{"amount":${int(1, 1000)},"x":1e999}`),
      v('huge number in a list', `{"amount":${n},"x":[1,-1e400]}`),
      v(`${n}.0`, body(`${n}.0`)),
      v(`${n}e0`, body(`${n}e0`)),
      v(`${n}000e-3`, body(`${n}000e-3`)),
      v(`${n}E+0`, body(`${n}E+0`)),
      v('escaped key \\u0061mount', body(String(n), '\\u0061mount')),
      v('amount as a string', body(`"${n}"`)),
      v('byte order mark', `\ufeff${body(String(n))}`),
      v('content-type with charset', text, jsonHeaders('application/json; charset=utf-8')),
      v('content-type upper case', text, jsonHeaders('Application/JSON')),
      v('content-type +json', text, jsonHeaders('application/vnd.pay+json')),
      v('content-type header name upper case', text, [['Content-Type', 'application/json']]),
      v('content-type text/plain', text, jsonHeaders('text/plain')),
      v('no content-type', text, []),
      v('body as bytes', new TextEncoder().encode(text)),
      // Body framing: a body that is not the one the length announces is never decided as the whole.
      v(
        'content-length one less',
        text,
        [...jsonHeaders(), ['content-length', String(bytes - 1)]],
        'underscore/framing',
      ),
      v(
        'content-length one more',
        text,
        [...jsonHeaders(), ['content-length', String(bytes + 1)]],
        'underscore/framing',
      ),
      v('content-length 0', text, [...jsonHeaders(), ['content-length', '0']], 'underscore/framing'),
      v('content-length +N', text, [...jsonHeaders(), ['content-length', `+${bytes}`]], 'underscore/framing'),
      v(
        'content-length lines [N, N]',
        text,
        [...jsonHeaders(), ['content-length', String(bytes)], ['content-length', String(bytes)]],
        'underscore/framing',
      ),
      v(
        'content-length and transfer-encoding',
        text,
        [...jsonHeaders(), ['content-length', String(bytes)], ['transfer-encoding', 'chunked']],
        'underscore/framing',
      ),
      v(
        'content-length of a benign prefix',
        `{"amount":1}${text.slice(12)}`.slice(0, Math.max(12, bytes)),
        [...jsonHeaders(), ['content-length', '12']],
        'underscore/framing',
      ),
    ]
    variants.push(
      {
        cls: 'numbers',
        label: 'parsed body object',
        req: { ...common, headers: jsonHeaders(), body: { amount: n, note } },
        shapes: ['plain'],
      },
      {
        cls: 'numbers',
        label: 'parsed body with Infinity',
        req: { ...common, headers: jsonHeaders(), body: { amount: Number.POSITIVE_INFINITY } },
        shapes: ['plain'],
      },
      {
        cls: 'numbers',
        label: 'parsed body with -Infinity',
        req: { ...common, headers: jsonHeaders(), body: { amount: Number.NEGATIVE_INFINITY } },
        shapes: ['plain'],
      },
      {
        cls: 'numbers',
        label: 'parsed body with NaN',
        req: { ...common, headers: jsonHeaders(), body: { amount: Number.NaN } },
        shapes: ['plain'],
      },
      {
        cls: 'numbers',
        label: 'parsed body with a BigInt',
        req: { ...common, headers: jsonHeaders(), body: { amount: BigInt(n) * 10n ** 400n } },
        shapes: ['plain'],
      },
      {
        cls: 'underscore/framing',
        label: 'CheckRequest size one less than the body',
        req: { ...base, size: bytes - 1 },
        shapes: ['check', 'header_map'],
      },
      {
        cls: 'underscore/framing',
        label: 'CheckRequest size 0',
        req: { ...base, size: 0 },
        shapes: ['check', 'header_map'],
      },
    )
    return { base, variants }
  },
  allowed() {
    const n = int(0, 1000)
    const text = `{"amount":${n},"note":"${word()}"}`
    const common = { method: 'POST', path: '/pay', host: benignHost() }
    const base: Req = { ...common, headers: jsonHeaders(), body: text }
    return {
      base,
      variants: [
        { cls: 'numbers', label: 'benign x.0', req: { ...base, body: `{"amount":${n}.0}` } },
        { cls: 'numbers', label: 'benign byte order mark', req: { ...base, body: `\ufeff${text}` } },
        {
          cls: 'numbers',
          label: 'benign charset',
          req: { ...base, headers: jsonHeaders('application/json; charset=utf-8') },
        },
        {
          cls: 'underscore/framing',
          label: 'benign exact content-length',
          req: { ...base, headers: [...jsonHeaders(), ['content-length', String(Buffer.byteLength(text))]] },
        },
        {
          cls: 'numbers',
          label: 'benign parsed body',
          req: { ...base, body: { amount: n } },
          shapes: ['plain'],
        },
      ],
    }
  },
})

// ----- 6: JSON-RPC ------------------------------------------------------------------------------

const DENIED_TOOL = 'delete_repo'
const BENIGN_TOOLS = ['read_repo', 'list_issues', 'get-sum', 'echo', 'search.code'] as const

const mcpHeaders = (ct = 'application/json'): Line[] => [
  ['content-type', ct],
  ['accept', 'application/json, text/event-stream'],
]

function callText(name: string, id: number | string, args: Record<string, unknown>): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } })
}

const mcpFamily = (policies: Family['policies']): Family => ({
  name: 'json-rpc',
  policies,
  denyRule: 'deny-tool',
  denied() {
    const id = maybe(0.5) ? int(1, 1_000_000) : word()
    const args = { repo: `${word()}/${word()}`, force: maybe(0.5) }
    const call = callText(DENIED_TOOL, id, args)
    const benign = (k: number): string => callText(pick(BENIGN_TOOLS), k, { q: word() })
    const common = { method: 'POST', path: '/mcp', host: benignHost() }
    const n0 = noise()
    const base: Req = { ...common, headers: [...mcpHeaders(), ...n0], body: call }
    const v = (
      label: string,
      body: string,
      lines: Line[] = mcpHeaders(),
      cls: Cls = 'json-rpc',
    ): Variant => ({
      cls,
      label,
      req: { ...common, headers: [...lines, ...n0], body },
    })
    const response = JSON.stringify({ jsonrpc: '2.0', id: 'srv-1', result: {} })
    const withName = (name: string): string => callText(name, id, args)
    const raw = (nameFields: string): string =>
      `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{${nameFields},"arguments":{}}}`
    const big = int(33, 45)
    const at = int(0, big - 1)
    const oversized = Array.from({ length: big }, (_, i) => (i === at ? call : benign(i + 100)))
    const variants: Variant[] = [
      v('batch, denied call second', `[${benign(2)},${call}]`),
      v('batch, denied call last of several', `[${benign(2)},${benign(3)},${benign(4)},${call}]`),
      v('batch, denied call first', `[${call},${benign(2)}]`),
      v('batch of one', `[${call}]`),
      v('nested batch', `[[${call}]]`),
      v('nested batch after a benign call', `[${benign(2)},[${call}]]`),
      v('nested batch of a benign call next to the call', `[[${benign(2)}],${call}]`),
      v('response object inside a batch', `[${call},${response}]`),
      v('response object first in a batch', `[${response},${call}]`),
      v(`oversized batch (${big}, call at ${at})`, `[${oversized.join(',')}]`),
      v('whitespace body with mcp-session-id', pick([' ', '\n', ' \t\r\n ']), [
        ...mcpHeaders(),
        ['mcp-session-id', word(16, 16)],
      ]),
      v('byte order mark only, with mcp-protocol-version', '\ufeff', [
        ...mcpHeaders(),
        ['mcp-protocol-version', '2025-06-18'],
      ]),
      v('empty tool name', withName('')),
      v('tool name with a trailing space', withName(`${DENIED_TOOL} `)),
      v('tool name with a leading space', withName(` ${DENIED_TOOL}`)),
      v('tool name with a trailing newline', withName(`${DENIED_TOOL}\n`)),
      v('tool name with a NUL', withName(`${DENIED_TOOL}\0`)),
      v('tool name with a Cyrillic е', withName('dеlete_repo')),
      v('tool name fullwidth', withName('ｄelete_repo')),
      v('tool name with a slash', withName(`${DENIED_TOOL}/`)),
      // Not here: DELETE_REPO and mixed-case spellings. MCP tool names are case-sensitive (the
      // specification's rule, which docs/mcp.md keeps): `DELETE_REPO` is another tool, and a
      // server that looked tools up ignoring case would break the protocol; docs/mcp.md advises
      // allow-lists for exactly this reason.
      v('tool name escaped \\u005f', raw(`"name":"delete\\u005frepo"`)),
      v('duplicate name key, denied last', raw(`"name":"echo","name":"${DENIED_TOOL}"`)),
      v('duplicate name key, denied first', raw(`"name":"${DENIED_TOOL}","name":"echo"`)),
      v('name and Name keys', raw(`"name":"echo","Name":"${DENIED_TOOL}"`)),
      v('name and escaped n\\u0061me keys', raw(`"name":"echo","n\\u0061me":"${DENIED_TOOL}"`)),
      v('byte order mark before the call', `\ufeff${call}`),
      v('whitespace before the call', `\n\t ${call}`),
      v('content-type with charset', call, mcpHeaders('application/json; charset=utf-8')),
      v('content-type text/plain', call, mcpHeaders('text/plain')),
      v('no content-type', call, [['accept', 'application/json, text/event-stream']]),
      v(
        'content-length one less',
        call,
        [...mcpHeaders(), ['content-length', String(Buffer.byteLength(call) - 1)]],
        'underscore/framing',
      ),
      v(
        'content-length and transfer-encoding',
        call,
        [
          ...mcpHeaders(),
          ['content-length', String(Buffer.byteLength(call))],
          ['transfer-encoding', 'chunked'],
        ],
        'underscore/framing',
      ),
    ]
    const meta = (name: string): Record<string, object> => ({
      mcp_proxy: { jsonrpc: '2.0', method: 'tools/call', id, params: { name } },
    })
    variants.push(
      {
        cls: 'json-rpc',
        label: 'metadata names a benign tool, body the denied one',
        req: { ...base, metadata: meta('echo') },
      },
      {
        cls: 'json-rpc',
        label: 'metadata names the denied tool, body a benign one',
        req: { ...base, body: withName('echo'), metadata: meta(DENIED_TOOL) },
      },
      {
        cls: 'json-rpc',
        label: 'metadata only (no body forwarded)',
        req: { ...common, headers: mcpHeaders(), metadata: meta(DENIED_TOOL) },
      },
      {
        cls: 'json-rpc',
        label: 'metadata next to a batch body',
        req: { ...base, body: `[${call}]`, metadata: meta(DENIED_TOOL) },
      },
    )
    return { base, variants }
  },
  allowed() {
    const body = callText(pick(BENIGN_TOOLS), int(1, 99), { q: word() })
    const base: Req = { method: 'POST', path: '/mcp', host: benignHost(), headers: mcpHeaders(), body }
    return {
      base,
      variants: [
        {
          cls: 'json-rpc',
          label: 'benign batch',
          req: { ...base, body: `[${body},${callText('echo', 'x', {})}]` },
        },
        { cls: 'json-rpc', label: 'benign byte order mark', req: { ...base, body: `\ufeff${body}` } },
        {
          cls: 'json-rpc',
          label: 'benign charset',
          req: { ...base, headers: mcpHeaders('application/json; charset=utf-8') },
        },
      ],
    }
  },
})

// ---------------------------------------------------------------------------------------------
// Policies.

const FAMILIES: readonly Family[] = [
  headerFamily(
    'x-role',
    [
      {
        name: 'match headers exact',
        source: `
rules:
  - id: deny-header
    action: deny
    match: { headers: [{ name: x-role, exact: admin }] }${ALLOW_REST}`,
      },
      {
        name: 'CEL request.headers["x-role"]',
        source: `
rules:
  - id: deny-header
    action: deny
    cel: 'request.headers["x-role"] == "admin"'${ALLOW_REST}`,
      },
      {
        name: 'CEL presence test, then index',
        source: `
rules:
  - id: deny-header
    action: deny
    cel: '"x-role" in request.headers && request.headers["x-role"] == "admin"'${ALLOW_REST}`,
      },
    ],
    () => 'admin',
    () => pick(['user', 'viewer', 'guest', word()]),
  ),
  headerFamily(
    'x-tenant',
    [
      {
        name: 'match headers prefix',
        source: `
rules:
  - id: deny-header
    action: deny
    match: { headers: [{ name: x-tenant, prefix: internal- }] }${ALLOW_REST}`,
      },
      {
        name: 'CEL startsWith on a header',
        source: `
rules:
  - id: deny-header
    action: deny
    cel: 'request.headers["x-tenant"].startsWith("internal-")'${ALLOW_REST}`,
      },
    ],
    () => `internal-${word()}`,
    () => `team-${word()}`,
  ),
  hostFamily([
    {
      name: 'match hosts exact',
      source: `
rules:
  - id: deny-host
    action: deny
    match: { hosts: [{ exact: ${DENIED_HOST} }] }${ALLOW_REST}`,
    },
    {
      name: 'CEL request.host',
      source: `
rules:
  - id: deny-host
    action: deny
    cel: 'request.host == "${DENIED_HOST}"'${ALLOW_REST}`,
    },
  ]),
  pathFamily([
    {
      name: 'match paths prefix',
      source: `
rules:
  - id: deny-path
    action: deny
    match: { paths: [{ prefix: /admin }] }${ALLOW_REST}`,
    },
    {
      name: 'CEL request.path.startsWith',
      source: `
rules:
  - id: deny-path
    action: deny
    cel: 'request.path.startsWith("/admin")'${ALLOW_REST}`,
    },
  ]),
  methodFamily([
    {
      name: 'match methods',
      source: `
rules:
  - id: deny-method
    action: deny
    match: { methods: [DELETE] }${ALLOW_REST}`,
    },
    {
      name: 'CEL request.method',
      source: `
rules:
  - id: deny-method
    action: deny
    cel: 'request.method == "DELETE"'${ALLOW_REST}`,
    },
  ]),
  numbersFamily([
    {
      name: 'CEL request.json.amount',
      source: `
rules:
  - id: deny-amount
    action: deny
    cel: 'request.json.amount > 1000'${ALLOW_REST}`,
    },
    {
      name: 'CEL allow-list on request.json.amount (layer default deny)',
      source: `
default: deny
rules:
  - id: deny-amount
    action: deny
    cel: 'request.json.amount > 1000'
  - id: small-amounts
    action: allow
    cel: 'request.json.amount <= 1000'`,
    },
  ]),
  mcpFamily([
    {
      name: 'mcp deny-list',
      source: `
rules:
  - id: deny-tool
    action: deny
    mcp: { tools: [${DENIED_TOOL}] }${ALLOW_REST}`,
    },
    {
      name: 'CEL mcp.tool.name',
      source: `
rules:
  - id: deny-tool
    action: deny
    when: { cel: 'has(mcp.tool)' }
    cel: 'mcp.tool.name == "${DENIED_TOOL}"'${ALLOW_REST}`,
    },
  ]),
]

const BASES_PER_FAMILY = 30

// ---------------------------------------------------------------------------------------------
// The corpus, generated once.

interface Case {
  readonly family: Family
  readonly denied: { base: Req; variants: Variant[] }
  readonly allowed: { base: Req; variants: Variant[] }
}

const CORPUS: Case[] = FAMILIES.flatMap((family) =>
  Array.from({ length: BASES_PER_FAMILY }, () => ({
    family,
    denied: family.denied(),
    allowed: family.allowed(),
  })),
)

/** Every input of a variant: one per shape it fits, or the raw input. */
function inputsOf(v: Variant | { req: Req; shapes?: readonly Shape[] }): Array<[Shape | 'raw', unknown]> {
  if ('raw' in v && v.raw !== undefined) return [['raw', v.raw]]
  const out: Array<[Shape | 'raw', unknown]> = []
  for (const s of v.shapes ?? SHAPES) {
    const input = render(v.req!, s)
    if (input !== undefined) out.push([s, input])
  }
  return out
}

const show = (input: unknown): string =>
  JSON.stringify(input, (_k, x) =>
    typeof x === 'bigint' ? `${x}n` : typeof x === 'number' && !Number.isFinite(x) ? String(x) : x,
  ).slice(0, 600)

const summary = (d: Decision): string =>
  `${d.allowed ? 'ALLOWED' : 'denied'} ${d.status} ${d.code}${d.detailCode ? `/${d.detailCode}` : ''}${d.rule ? ` rule ${d.rule}` : ''}: ${d.reason}`

// ---------------------------------------------------------------------------------------------

const engines = new Map<string, Engine>()
const evaluators = () => [createCelEvaluator(), createMcpEvaluator()]

beforeAll(async () => {
  for (const f of FAMILIES)
    for (const p of f.policies)
      engines.set(`${f.name} / ${p.name}`, await createEngine(p.source, { evaluators: evaluators() }))
})

afterAll(() => {
  for (const e of engines.values()) e.close()
})

const tried: Record<Cls, number> = Object.fromEntries(CLASSES.map((c) => [c, 0])) as Record<Cls, number>
let benignTried = 0
let notDenied = 0

/** Failures grouped by policy and variant: the shapes that failed and one input that did. */
class Failures {
  private readonly byKey = new Map<string, { shapes: Set<string>; n: number; example: string }>()
  add(key: string, shape: string, d: Decision, input: unknown): void {
    const k = `${key} -> ${summary(d)}`
    const f = this.byKey.get(k) ?? { shapes: new Set<string>(), n: 0, example: show(input) }
    f.shapes.add(shape)
    f.n++
    this.byKey.set(k, f)
  }
  list(): string[] {
    return [...this.byKey].map(
      ([k, f]) => `${k}\n      (${f.n} inputs; shapes ${[...f.shapes].join(', ')}) e.g. ${f.example}`,
    )
  }
}

/** Decide every denied base, variant and benign spelling of one family under each of its policies. */
async function runFamily(family: Family): Promise<string[]> {
  const failures = new Failures()
  for (const { denied, allowed } of CORPUS.filter((c) => c.family === family)) {
    for (const policy of family.policies) {
      const key = `${family.name} / ${policy.name}`
      const engine = engines.get(key)!
      for (const [shape, input] of inputsOf({ req: denied.base })) {
        const d = await engine.decide(input)
        if (d.allowed || d.status !== 403 || d.rule !== family.denyRule)
          failures.add(`[${key}] denied base, expected 403 by ${family.denyRule}`, shape, d, input)
      }
      for (const v of denied.variants) {
        for (const [shape, input] of inputsOf(v)) {
          tried[v.cls]++
          const d = await engine.decide(input)
          if (d.allowed || d.status < 400 || d.status > 499) {
            notDenied++
            failures.add(`[${key}] ${v.cls}: ${v.label}`, shape, d, input)
          }
        }
      }
      for (const v of [{ label: 'base', req: allowed.base }, ...allowed.variants]) {
        for (const [shape, input] of inputsOf(v)) {
          benignTried++
          const d = await engine.decide(input)
          if (!d.allowed) failures.add(`[${key}] benign ${v.label} not allowed`, shape, d, input)
        }
      }
    }
  }
  return failures.list()
}

describe('one canonical request (issue 15): every encoding variant of a denied request is denied', () => {
  for (const family of FAMILIES)
    it(`${family.name}: ${family.policies.map((p) => p.name).join('; ')}`, async () => {
      expect(await runFamily(family)).toEqual([])
    })

  it('tried every class (counts from the loop)', () => {
    const total = CLASSES.reduce((n, c) => n + tried[c], 0)
    console.log(
      `canonical variants: ${total} tried (headers ${tried.headers}, host ${tried.host}, path ${tried.path}, ` +
        `method ${tried.method}, numbers ${tried.numbers}, json-rpc ${tried['json-rpc']}, ` +
        `underscore/framing ${tried['underscore/framing']}), ` +
        `${notDenied === 0 ? 'all denied' : `${notDenied} NOT denied`}; ` +
        `${benignTried} benign spellings checked allowed (seed ${SEED})`,
    )
    for (const c of CLASSES) expect(tried[c], c).toBeGreaterThan(0)
  })
})

// ---------------------------------------------------------------------------------------------
// The same corpus over the wire: gRPC (CheckRequest) and the HTTP service mode (raw socket).

const TRANSPORT_POLICY = `
rules:
  - id: deny-header
    action: deny
    match: { headers: [{ name: x-role, exact: admin }] }
  - id: deny-host
    action: deny
    match: { hosts: [{ exact: ${DENIED_HOST} }] }
  - id: deny-method
    action: deny
    match: { methods: [DELETE] }${ALLOW_REST}`

/** A CheckRequest message for the gRPC client: protobuf JSON names, bytes as Buffers. */
function toGrpc(r: Req, headerMap: boolean): Record<string, unknown> {
  const http: Record<string, unknown> = { path: r.path, protocol: 'HTTP/1.1' }
  if (headerMap)
    http.headerMap = { headers: r.headers.map(([key, v]) => ({ key, rawValue: Buffer.from(v, 'latin1') })) }
  else {
    const headers: Record<string, string> = {}
    for (const [k, v] of r.headers) headers[k] = headers[k] === undefined ? v : `${headers[k]},${v}`
    http.headers = headers
  }
  if (r.method !== undefined) http.method = r.method
  if (r.host !== undefined) http.host = r.host
  if (r.scheme !== undefined) http.scheme = r.scheme
  if (typeof r.body === 'string') http.body = r.body
  return { attributes: { request: { http } } }
}

/** The request as HTTP/1.1 bytes: every line as given, so repeated lines are repeated on the wire. */
function toWire(r: Req): Buffer {
  const lines = [`${r.method ?? 'GET'} ${r.path} HTTP/1.1`]
  if (r.host !== undefined) lines.push(`Host: ${r.host}`)
  else if (!r.headers.some(([k]) => k.toLowerCase() === 'host')) lines.push('Host: localhost')
  for (const [k, v] of r.headers) lines.push(`${k}: ${v}`)
  const body = typeof r.body === 'string' ? Buffer.from(r.body) : Buffer.alloc(0)
  if (body.length > 0 && !r.headers.some(([k]) => k.toLowerCase() === 'content-length'))
    lines.push(`content-length: ${body.length}`)
  lines.push('connection: close', '', '')
  return Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), body])
}

/** Send raw bytes and return the status of the answer (0: the connection ended without one). */
function sendRaw(address: string, bytes: Buffer): Promise<number> {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(':')),
    Number(address.slice(address.lastIndexOf(':') + 1)),
  ]
  return new Promise((resolve) => {
    let got = ''
    const socket = connect({ host, port })
    const done = (status: number): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(status)
    }
    const timer = setTimeout(() => done(0), 3000)
    socket.on('connect', () => socket.write(bytes))
    socket.on('data', (c: Buffer) => {
      got += c.toString('latin1')
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(got)
      if (m !== null) done(Number(m[1]))
    })
    socket.on('error', () => done(0))
    socket.on('close', () => done(0))
  })
}

describe('the same variants over the transports (gRPC and the HTTP service mode)', () => {
  let server: ExtAuthzServer
  let grpc: CheckClient
  let httpAddress: string
  const SAMPLE = 50
  const FROM = new Set(['header x-role', 'host', 'method'])
  const sample: Variant[] = []
  const benign: Req[] = []

  beforeAll(async () => {
    const engine = await createEngine(TRANSPORT_POLICY, { evaluators: evaluators() })
    server = createExtAuthzServer({
      engine,
      grpc: { port: 0 },
      http: { port: 0 },
      telemetry: createTelemetry({ write: () => {}, processMetrics: false }),
    })
    const bound = await server.start()
    grpc = createCheckClient(bound.grpc!)
    httpAddress = bound.http!
    const pool = CORPUS.filter((c) => FROM.has(c.family.name)).flatMap((c) =>
      c.denied.variants.filter((v) => v.req !== undefined && v.cls !== 'numbers' && v.cls !== 'json-rpc'),
    )
    // Repeated lines first (what only a real wire can repeat), the rest at random.
    const repeats = (v: Variant): boolean => {
      const names = v.req!.headers.map(([k]) => k.toLowerCase()).filter((k) => k !== 'cookie')
      return new Set(names).size < names.length
    }
    // A name with a colon inside (`x-role:` as a map key) is another request on the wire: the
    // first colon ends the name, so the value becomes `: admin` for verdict and the upstream alike.
    const onWire = (v: Variant): boolean => !v.req!.headers.some(([k]) => k.indexOf(':', 1) !== -1)
    const mixed = shuffle(pool, sampleRnd).filter(onWire)
    sample.push(...mixed.filter(repeats).slice(0, 20))
    sample.push(...mixed.filter((v) => !repeats(v)).slice(0, SAMPLE - sample.length))
    for (const c of CORPUS.filter((c) => FROM.has(c.family.name)).slice(0, 10)) benign.push(c.allowed.base)
  })

  afterAll(async () => {
    grpc?.close()
    await server?.stop()
  })

  it(`denies ${SAMPLE} sampled header, host and method variants over gRPC`, async () => {
    const failures: string[] = []
    for (const [i, v] of sample.entries()) {
      const res = await grpc.check(toGrpc(v.req!, i % 2 === 1))
      const status = httpStatusFromName(res.deniedResponse?.status?.code ?? '')
      if ((res.status?.code ?? 0) === 0 || status === undefined || status < 400 || status > 499)
        failures.push(
          `${v.cls}: ${v.label} -> ${JSON.stringify(res.status)} ${res.deniedResponse?.status?.code}`,
        )
    }
    for (const r of benign) {
      const res = await grpc.check(toGrpc(r, false))
      if ((res.status?.code ?? 0) !== 0) failures.push(`benign ${show(r)} -> ${JSON.stringify(res.status)}`)
    }
    expect(failures).toEqual([])
  })

  it(`denies ${SAMPLE} sampled header, host and method variants over HTTP, duplicate lines on the wire`, async () => {
    const failures: string[] = []
    for (const v of sample) {
      const status = await sendRaw(httpAddress, toWire(v.req!))
      if (status < 400 || status > 499)
        failures.push(
          `${v.cls}: ${v.label} -> ${status} for ${JSON.stringify(toWire(v.req!).toString('latin1'))}`,
        )
    }
    for (const r of benign) {
      const status = await sendRaw(httpAddress, toWire(r))
      if (status !== 200)
        failures.push(`benign -> ${status} for ${JSON.stringify(toWire(r).toString('latin1'))}`)
    }
    expect(failures).toEqual([])
  })
})
