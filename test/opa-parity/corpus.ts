/**
 * CheckRequests for the OPA-Envoy parity suites: a generated corpus (seeded, so a failure names a
 * request that can be replayed) of requests Envoy can send, and hand-made edge cases, some of which
 * verdict answers differently on purpose (each says how and why).
 *
 * Requests are in protobuf JSON names with `time` as `{seconds, nanos}`, bytes as `Buffer` and
 * filter metadata as plain JSON: what `decide()` reads. `toMessage` turns one into the message
 * the gRPC client encodes (Structs as `{fields}`).
 */
import { jsonToStruct } from '../../packages/envoy/src/struct.js'

type Obj = Record<string, unknown>

export interface ParityCase {
  readonly name: string
  readonly request: Obj
  /** Set when verdict answers differently on purpose: why, and what each side answers. */
  readonly differs?: {
    readonly why: string
    /** Partial CheckResponses (normalized, see the test) each side must match. */
    readonly verdict: Obj
    readonly plugin: Obj | 'grpc-error'
  }
}

/** mulberry32: a small seeded generator. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const CASES = ['echo', 'true', '', 'deny-object', 'deny-full', 'allow-full', 'body', 'peers'] as const
const PATHS = [
  '/',
  '/public/docs',
  '/api/v1/items?limit=5&tag=a&tag=b',
  '/a%20b/c',
  '/search?q=a+b&empty=&flag',
  '/deep/x/y/z/',
  '/caf%C3%A9?name=%C3%A9t%C3%A9',
]
const OPTIONAL_HEADERS: Array<[string, string]> = [
  ['user-agent', 'curl/8.5.0'],
  ['accept', 'application/json, text/plain'],
  ['x-request-id', 'f6a1c2d4'],
  ['authorization', 'Bearer abc.def.ghi'],
  ['x-role', 'admin'],
  ['cookie', 'a=1; b=2'],
]

interface Body {
  readonly contentType: string | undefined
  readonly text: string
  readonly asBytes: boolean
  /** The plugin refuses it: `request_parse_error: <error>`. */
  readonly parseError?: string
}

const BODIES: Body[] = [
  { contentType: 'application/json', text: '{"action":"read","n":1.5}', asBytes: false },
  { contentType: 'application/json', text: '{"action":"write","tags":["a"]}', asBytes: true },
  { contentType: 'application/json; charset=utf-8', text: ' [1, {"a": null}] ', asBytes: false },
  { contentType: 'application/x-www-form-urlencoded', text: 'action=list&x=1&x=2', asBytes: false },
  { contentType: 'application/x-www-form-urlencoded', text: 'action=delete&name=a+b%21', asBytes: true },
  // The plugin parses only application/json: these stay unparsed.
  { contentType: 'application/vnd.api+json', text: '{"action":"read"}', asBytes: false },
  { contentType: 'text/plain', text: 'action=read', asBytes: false },
  // Malformed for the plugin: 400 request_parse_error before the policy's answer counts.
  { contentType: 'application/json', text: '{"action":', asBytes: false, parseError: 'unexpected EOF' },
  {
    contentType: 'application/json',
    text: '{"action":"read"} x',
    asBytes: false,
    parseError: "invalid character 'x' looking for beginning of value",
  },
  {
    contentType: 'application/json',
    text: '\ufeff{"action":"read"}',
    asBytes: true,
    parseError: "invalid character 'ï' looking for beginning of value",
  },
  {
    contentType: 'application/json',
    text: "{'action':'read'}",
    asBytes: false,
    parseError: "invalid character '\\'' looking for beginning of object key string",
  },
  {
    contentType: 'application/json',
    text: '{"a":[1 2]}',
    asBytes: false,
    parseError: "invalid character '2' after array element",
  },
  {
    contentType: 'application/x-www-form-urlencoded',
    text: 'action=%zz',
    asBytes: false,
    parseError: 'invalid URL escape "%zz"',
  },
]

function peer(r: () => number, who: string): Obj {
  const p: Obj = {
    address: {
      socketAddress: {
        address: `10.0.${Math.floor(r() * 9)}.${1 + Math.floor(r() * 200)}`,
        portValue: 1024 + Math.floor(r() * 60000),
      },
    },
  }
  if (r() < 0.6) p.principal = `spiffe://cluster.local/ns/default/sa/${who}`
  if (r() < 0.3) p.certificate = '-----BEGIN%20CERTIFICATE-----%0AMIIB-----END%20CERTIFICATE-----%0A'
  if (r() < 0.3) p.labels = { app: who, version: 'v1' }
  if (r() < 0.3) p.service = `${who}.default.svc`
  return p
}

/** `n` requests from `seed`: every result shape, bodies of every kind, peers, metadata, time. */
export function generatedCorpus(seed: number, n: number): ParityCase[] {
  const r = rng(seed)
  const pick = <T>(list: readonly T[]): T => list[Math.floor(r() * list.length)]!
  const out: ParityCase[] = []
  for (let k = 0; k < n; k++) {
    const c = CASES[k % CASES.length]!
    const body = r() < 0.55 ? pick(BODIES) : undefined
    const method =
      body !== undefined ? pick(['POST', 'PUT', 'PATCH']) : pick(['GET', 'DELETE', 'HEAD', 'OPTIONS'])
    const path = pick(PATHS)
    const scheme = r() < 0.7 ? 'https' : 'http'
    const host = r() < 0.8 ? 'api.example.com' : 'api.example.com:8443'
    const headers: Obj = { ':authority': host, ':method': method, ':path': path, ':scheme': scheme }
    if (c !== '') headers['x-case'] = c
    for (const [name, value] of OPTIONAL_HEADERS) if (r() < 0.35) headers[name] = value
    const http: Obj = { method, path, host, scheme, headers }
    if (r() < 0.7) http.id = `req-${seed}-${k}`
    if (r() < 0.8) http.protocol = pick(['HTTP/1.1', 'HTTP/2'])
    if (body !== undefined) {
      const bytes = Buffer.from(body.text, 'utf8')
      if (body.contentType !== undefined) headers['content-type'] = body.contentType
      // (A body with a byte order mark has no content-length here: verdict decodes raw_body
      // without the mark, so the length would not match.)
      if (r() < 0.7 && !body.text.startsWith('\ufeff')) {
        headers['content-length'] = String(bytes.length)
        http.size = String(bytes.length)
      }
      if (body.asBytes) http.rawBody = bytes
      else http.body = body.text
    }
    const request: Obj = { http }
    if (r() < 0.6)
      request.time = { seconds: 1_790_000_000 + Math.floor(r() * 1e7), nanos: r() < 0.5 ? 0 : 123_000_000 }
    const attributes: Obj = { request }
    if (r() < 0.8) attributes.source = peer(r, pick(['web', 'admin', 'batch']))
    if (r() < 0.6) attributes.destination = peer(r, 'gateway')
    if (r() < 0.4) attributes.tlsSession = { sni: 'api.example.com' }
    if (r() < 0.4) attributes.contextExtensions = { tenant: pick(['t1', 't2']), route: 'r1' }
    if (r() < 0.4)
      attributes.metadataContext = {
        filterMetadata: {
          tenant: { id: pick(['t1', 't2']), tier: 3, flags: [true, null, 'x'] },
          'envoy.filters.http.jwt_authn': { payload: { sub: 'alice', scope: 'read write' } },
        },
      }
    if (r() < 0.3)
      attributes.routeMetadataContext = { filterMetadata: { route: { name: 'items', weight: 0.5 } } }
    out.push({
      name: `gen-${seed}-${k} ${c || 'default'} ${method} ${path}${body ? ` ${body.contentType}` : ''}`,
      request: { attributes },
    })
  }
  return out
}

/** The plugin's 400 for `error`, as a normalized CheckResponse. */
export function parseErrorResponse(error: string): Obj {
  const body = `request_parse_error: ${error}`
  return { status: { code: 7 }, deniedResponse: { status: { code: 'BadRequest' }, body } }
}

const http = (h: Obj): ParityCase['request'] => ({ attributes: { request: { http: h } } })
const echoJson = (body: string, extra: Obj = {}, ct = 'application/json'): ParityCase['request'] =>
  http({ method: 'POST', path: '/', headers: { 'x-case': 'echo', 'content-type': ct, ...extra }, body })

/** Hand-made requests: what Envoy sends in less common shapes, and where verdict differs on purpose. */
export const EDGE_CASES: ParityCase[] = [
  {
    name: 'header_map instead of headers (encode_raw_headers): kept as a list, raw_value in base64; the body is not parsed',
    request: http({
      method: 'POST',
      path: '/',
      headerMap: {
        headers: [
          { key: 'x-case', value: 'echo' },
          { key: 'content-type', value: 'application/json' },
          { key: 'x-raw', rawValue: Buffer.from('caf\xe9', 'latin1') },
          { key: 'x-dup', value: '1' },
          { key: 'x-dup', value: '2' },
        ],
      },
      body: '{bad json, never parsed}',
    }),
  },
  {
    name: 'body and raw_body both sent: the plugin parses body',
    request: http({
      method: 'POST',
      path: '/',
      headers: { 'x-case': 'echo', 'content-type': 'application/json' },
      body: '{"b":2}',
      rawBody: Buffer.from('{"a":1}'),
    }),
  },
  { name: 'empty JSON body: parsed_body null', request: echoJson('') },
  { name: 'whitespace-only JSON body: EOF', request: echoJson('   ') },
  { name: 'JSON null body', request: echoJson('null') },
  { name: 'JSON scalar body', request: echoJson('42') },
  {
    name: 'JSON body with a trailing null token (Go reads one value, then one token)',
    request: echoJson('{"a":1} null'),
  },
  { name: 'JSON body with a trailing value', request: echoJson('{"a":1} 2') },
  { name: 'JSON body with a trailing object', request: echoJson('{"a":1} {') },
  { name: 'JSON body with a trailing string', request: echoJson('{"a":1} "xy"') },
  { name: 'JSON body closed twice', request: echoJson('{"a":1}}') },
  { name: 'leading zero', request: echoJson('01') },
  { name: 'control character in a string', request: echoJson('"a\u0001b"') },
  { name: 'tab in a string', request: echoJson('"a\tb"') },
  { name: 'bad escape', request: echoJson('"\\q"') },
  {
    name: 'a bad unicode escape',
    request: echoJson('{"a":"\\u12x4"}'),
    differs: {
      why: "verdict's MCP check reads a body with \\u escapes as one that may hide a JSON-RPC key, and refuses it first when it does not parse (400, its own body)",
      verdict: { status: { code: 7 }, deniedResponse: { status: { code: 'BadRequest' } } },
      plugin: parseErrorResponse("invalid character 'x' in \\u hexadecimal character escape"),
    },
  },
  {
    name: 'a JSON array body that does not parse',
    request: echoJson('["\\u12x4"]'),
    differs: {
      why: "verdict's MCP check reads a JSON array as a possible JSON-RPC batch and refuses it first (400, its own body)",
      verdict: { status: { code: 7 }, deniedResponse: { status: { code: 'BadRequest' } } },
      plugin: parseErrorResponse("invalid character 'x' in \\u hexadecimal character escape"),
    },
  },
  { name: 'literal', request: echoJson('[trux]') },
  { name: 'number', request: echoJson('[1.x]') },
  { name: 'exponent', request: echoJson('[1ex]') },
  { name: 'object key', request: echoJson('{1:2}') },
  { name: 'colon', request: echoJson('{"a" 1}') },
  { name: 'pair', request: echoJson('{"a":1 "b":2}') },
  { name: 'non-ASCII start', request: echoJson('é') },
  { name: 'no-break space start', request: echoJson('\u00a0{}') },
  {
    name: 'content type containing application/json anywhere is JSON to the plugin',
    request: echoJson('{"a":1}', {}, 'text/plain; x=application/json'),
  },
  {
    name: 'Application/JSON in capitals is not JSON to the plugin',
    request: echoJson('{bad', {}, 'Application/JSON'),
  },
  {
    name: 'form body: repeated names, + and escapes, name without value, empty pairs',
    request: echoJson('a=1&&b=c+d%21&a=2&e&=v', {}, 'application/x-www-form-urlencoded'),
  },
  {
    name: 'form body: a semicolon (Go reports it over an earlier bad escape)',
    request: echoJson('a=%zz&b;c', {}, 'application/x-www-form-urlencoded'),
  },
  {
    name: 'form body: invalid UTF-8 after unescaping',
    request: echoJson('a=%ff', {}, 'application/x-www-form-urlencoded'),
  },
  { name: 'form body: short escape', request: echoJson('a=%4', {}, 'application/x-www-form-urlencoded') },
  {
    name: 'partial body with content-length (allow_partial_message): truncated_body, not parsed',
    request: echoJson('{"a":', { 'x-envoy-auth-partial-body': 'true', 'content-length': '100' }),
  },
  {
    name: 'partial body with content-length -1',
    request: echoJson('{"a":1}', { 'x-envoy-auth-partial-body': 'true', 'content-length': '-1' }),
    differs: {
      why: "Envoy's partial-body header marks the body truncated in verdict, whatever content-length says",
      verdict: { deniedResponse: { body: { truncated_body: true, parsed_body: null } } },
      plugin: { deniedResponse: { body: { truncated_body: false, parsed_body: { a: 1 } } } },
    },
  },
  {
    name: 'time with nanoseconds only, size -1, enum protocol UDP, named port, pipe, internal address',
    request: {
      attributes: {
        source: { address: { socketAddress: { address: '10.0.0.1', namedPort: 'http', protocol: 'UDP' } } },
        destination: { address: { pipe: { path: '/run/sock', mode: 384 } } },
        request: {
          time: { nanos: 5 },
          http: { method: 'GET', path: '/', size: '-1', headers: { 'x-case': 'echo' } },
        },
        tlsSession: {},
        metadataContext: {},
      },
    },
  },
  {
    name: 'zero values are left out: empty strings, size 0, empty maps, TCP',
    request: {
      attributes: {
        source: {
          address: { socketAddress: { address: '10.0.0.1', portValue: 0, protocol: 'TCP' } },
          labels: {},
          principal: '',
        },
        contextExtensions: {},
        request: {
          http: {
            method: 'GET',
            path: '/',
            host: '',
            scheme: '',
            size: '0',
            id: '',
            headers: { 'x-case': 'echo' },
          },
        },
      },
    },
  },
  // --- Deliberate differences -------------------------------------------------------------
  {
    name: 'host spelled non-canonically',
    request: http({
      method: 'GET',
      path: '/',
      host: 'API.Example.COM:443',
      scheme: 'https',
      headers: { 'x-case': 'echo', ':authority': 'API.Example.COM:443' },
    }),
    differs: {
      why: 'the canonical request (docs/semantics.md): every rule, Rego included, sees the canonical host',
      verdict: {
        deniedResponse: {
          body: {
            attributes: {
              request: { http: { host: 'api.example.com', headers: { ':authority': 'api.example.com' } } },
            },
          },
        },
      },
      plugin: {
        deniedResponse: {
          body: {
            attributes: {
              request: {
                http: { host: 'API.Example.COM:443', headers: { ':authority': 'API.Example.COM:443' } },
              },
            },
          },
        },
      },
    },
  },
  {
    name: 'header names in capitals (Envoy always sends lower case)',
    request: http({ method: 'GET', path: '/', headers: { 'x-case': 'echo', 'X-Foo': 'bar' } }),
    differs: {
      why: 'verdict lower-cases header names, so Rego, CEL and match rules read one spelling',
      verdict: {
        deniedResponse: { body: { attributes: { request: { http: { headers: { 'x-foo': 'bar' } } } } } },
      },
      plugin: {
        deniedResponse: { body: { attributes: { request: { http: { headers: { 'X-Foo': 'bar' } } } } } },
      },
    },
  },
  {
    name: 'content-length larger than the body, without the partial-body header',
    request: echoJson('{"a":1}', { 'content-length': '100' }),
    differs: {
      why: 'a cut-short body is refused (400 body_length_mismatch), never decided on (docs/input.md)',
      verdict: { status: { code: 7 }, deniedResponse: { status: { code: 'BadRequest' } } },
      plugin: {
        deniedResponse: { status: { code: 'Forbidden' }, body: { truncated_body: true, parsed_body: null } },
      },
    },
  },
  {
    name: 'content-length that is not a number',
    request: echoJson('{"a":1}', { 'content-length': 'abc' }),
    differs: {
      why: 'refused by the canonical request first (400 body_length_mismatch, its own body)',
      verdict: { status: { code: 7 }, deniedResponse: { status: { code: 'BadRequest' } } },
      plugin: parseErrorResponse('strconv.ParseInt: parsing "abc": invalid syntax'),
    },
  },
  {
    name: 'partial body without content-length',
    request: echoJson('{"a":', { 'x-envoy-auth-partial-body': 'true' }),
    differs: {
      why: "Envoy's partial-body header marks the body truncated in verdict; the plugin tries to parse the cut body",
      verdict: {
        deniedResponse: { status: { code: 'Forbidden' }, body: { truncated_body: true, parsed_body: null } },
      },
      plugin: parseErrorResponse('unexpected EOF'),
    },
  },
  {
    name: 'duplicate keys in a JSON body',
    request: echoJson('{"a":1,"a":2}'),
    differs: {
      why: 'parsers disagree on which one counts: 400 duplicate_json_key',
      verdict: { status: { code: 7 }, deniedResponse: { status: { code: 'BadRequest' } } },
      plugin: { deniedResponse: { body: { parsed_body: { a: 2 } } } },
    },
  },
  {
    name: 'a number no double holds',
    request: echoJson('{"a":1e400}'),
    differs: {
      why: 'it would read as Infinity: 400 non_finite_number',
      verdict: { status: { code: 7 }, deniedResponse: { status: { code: 'BadRequest' } } },
      plugin: { deniedResponse: { status: { code: 'Forbidden' } } },
    },
  },
  {
    name: 'raw_body that is not UTF-8',
    request: http({
      method: 'POST',
      path: '/',
      headers: { 'x-case': 'echo', 'content-type': 'application/json' },
      rawBody: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]),
    }),
    differs: {
      why: 'invalid UTF-8 in a body is 400 (docs/input.md); Go reads it as U+FFFD',
      verdict: { status: { code: 7 }, deniedResponse: { status: { code: 'BadRequest' } } },
      plugin: { deniedResponse: { body: { parsed_body: { a: '\ufffd' } } } },
    },
  },
  {
    name: 'a semicolon in the query',
    request: http({ method: 'GET', path: '/a?x=1;y=2&z=3', headers: { 'x-case': 'echo' } }),
    differs: {
      why: 'verdict reads x as "1;y=2", as CEL and match rules do; Go drops the pair',
      verdict: { deniedResponse: { body: { parsed_query: { x: ['1;y=2'], z: ['3'] } } } },
      plugin: { deniedResponse: { body: { parsed_query: { z: ['3'] } } } },
    },
  },
  {
    name: 'a path that is not canonical (//)',
    request: http({ method: 'GET', path: '//a//b/', headers: { 'x-case': 'echo' } }),
    differs: {
      why: 'ambiguous paths are refused (400) before any rule',
      verdict: { status: { code: 7 }, deniedResponse: { status: { code: 'BadRequest' } } },
      plugin: { deniedResponse: { body: { parsed_path: ['b', ''] } } },
    },
  },
  {
    name: 'invalid percent-encoding in the path',
    request: http({ method: 'GET', path: '/a/%zz', headers: { 'x-case': 'echo' } }),
    differs: {
      why: 'both refuse with 400; verdict before any rule, with its own body',
      verdict: { status: { code: 7 }, deniedResponse: { status: { code: 'BadRequest' } } },
      plugin: parseErrorResponse('parse "/a/%zz": invalid URL escape "%zz"'),
    },
  },
  {
    name: 'no path',
    request: http({ method: 'GET', headers: { 'x-case': 'echo' } }),
    differs: {
      why: 'a CheckRequest without a path is malformed (400); Envoy always sends one',
      verdict: { status: { code: 7 }, deniedResponse: { status: { code: 'BadRequest' } } },
      plugin: { deniedResponse: { status: { code: 'Forbidden' } } },
    },
  },
  {
    name: 'a result the plugin refuses (http_status 418)',
    request: http({ method: 'GET', path: '/', headers: { 'x-case': 'bad-status' } }),
    differs: {
      why: 'the plugin answers a gRPC error (Envoy then applies failure_mode_allow); verdict answers a 403 denial, fail-closed whatever Envoy is configured with',
      verdict: { status: { code: 7 }, deniedResponse: { status: { code: 'Forbidden' } } },
      plugin: 'grpc-error',
    },
  },
]

/** The gRPC message for a request: filter metadata as Structs. */
export function toMessage(request: Obj): Obj {
  const a = { ...(request.attributes as Obj) }
  for (const k of ['metadataContext', 'routeMetadataContext']) {
    const md = a[k] as Obj | undefined
    if (md?.filterMetadata === undefined) continue
    const fm = md.filterMetadata as Record<string, Obj>
    a[k] = { filterMetadata: Object.fromEntries(Object.entries(fm).map(([ns, v]) => [ns, jsonToStruct(v)])) }
  }
  return { attributes: a }
}
