import { describe, expect, test } from 'vitest'
import type { Decision } from '../decision.js'
import {
  type CheckInput,
  DEFAULT_INPUT_OPTIONS,
  isDecision,
  normalizeInput,
  parseJsonLimited,
  parseSpiffeId,
  resolveInputOptions,
  splitPath,
} from './index.js'

function ok(raw: unknown, opts = DEFAULT_INPUT_OPTIONS): CheckInput {
  const r = normalizeInput(raw, opts)
  if (isDecision(r)) throw new Error(`expected input, got deny: ${r.reason}`)
  return r
}

function rejected(raw: unknown, opts = DEFAULT_INPUT_OPTIONS): Decision {
  const r = normalizeInput(raw, opts)
  if (!isDecision(r)) throw new Error('expected a deny')
  expect(r.allowed).toBe(false)
  return r
}

const camel = {
  attributes: {
    source: {
      address: { socketAddress: { address: '10.0.0.7', portValue: 51234 } },
      principal: 'spiffe://cluster.local/ns/agents/sa/agent-a',
    },
    destination: { address: { socketAddress: { address: '10.0.0.1', portValue: '8080' } } },
    request: {
      time: '2026-11-24T00:00:00Z',
      http: {
        id: 'req-1',
        method: 'post',
        path: '/mcp/x%20y?repo=a%2Fb&repo=c&flag',
        host: 'gw.example',
        scheme: 'https',
        protocol: 'HTTP/1.1',
        headers: { 'Content-Type': 'application/json', 'x-ext-authz': 'allow' },
        body: '{"a":1}',
        size: '7',
      },
    },
    contextExtensions: { route: 'mcp' },
    metadataContext: { filterMetadata: { mcp_proxy: { method: 'tools/call', params: { name: 'echo' } } } },
    routeMetadataContext: { filterMetadata: { r: { k: 'v' } } },
    tlsSession: { sni: 'gw.example' },
  },
}

const snake = {
  attributes: {
    source: { address: { socket_address: { address: '10.0.0.7', port_value: 51234 } }, principal: 'x' },
    request: {
      http: { method: 'GET', path: '/', headers: {}, raw_body: Buffer.from('hi').toString('base64') },
    },
    context_extensions: { route: 'mcp' },
    metadata_context: { filter_metadata: { 'envoy.filters.http.mcp': { method: 'tools/list' } } },
  },
}

describe('input dialects', () => {
  test('protobuf JSON camelCase CheckRequest', () => {
    const i = ok(camel)
    expect(i).toMatchObject({
      dialect: 'protojson',
      id: 'req-1',
      time: '2026-11-24T00:00:00Z',
      method: 'POST',
      path: '/mcp/x y',
      rawPath: '/mcp/x%20y?repo=a%2Fb&repo=c&flag',
      rawQuery: 'repo=a%2Fb&repo=c&flag',
      host: 'gw.example',
      scheme: 'https',
      protocol: 'HTTP/1.1',
      body: '{"a":1}',
      size: 7,
      tlsSni: 'gw.example',
    })
    expect({ ...i.query }).toEqual({ repo: ['a/b', 'c'], flag: [''] })
    expect({ ...i.headers }).toEqual({ 'content-type': 'application/json', 'x-ext-authz': 'allow' })
    expect(i.source).toMatchObject({ address: '10.0.0.7', port: 51234 })
    expect(i.source.spiffe).toEqual({
      id: 'spiffe://cluster.local/ns/agents/sa/agent-a',
      trustDomain: 'cluster.local',
      path: '/ns/agents/sa/agent-a',
      namespace: 'agents',
      serviceAccount: 'agent-a',
    })
    expect(i.destination.port).toBe(8080)
    expect({ ...i.contextExtensions }).toEqual({ route: 'mcp' })
    expect(i.filterMetadata.mcp_proxy).toEqual({ method: 'tools/call', params: { name: 'echo' } })
    expect(i.routeMetadata.r).toEqual({ k: 'v' })
  })

  test('proto snake_case CheckRequest, raw_body as base64', () => {
    const i = ok(snake)
    expect(i.dialect).toBe('proto')
    expect(i.source).toMatchObject({ address: '10.0.0.7', port: 51234, principal: 'x', spiffe: undefined })
    expect(i.body).toBe('hi')
    expect({ ...i.contextExtensions }).toEqual({ route: 'mcp' })
    expect(Object.keys(i.filterMetadata)).toEqual(['envoy.filters.http.mcp'])
  })

  test('plain HTTP-shaped object', () => {
    const i = ok({
      method: 'get',
      path: '/a?b=1',
      headers: { Host: 'svc', 'X-Multi': ['1', '2'], cookie: ['a=1', 'b=2'] },
      body: { hello: 'world' },
      source: { address: '127.0.0.1', port: 4000, principal: 'spiffe://td/ns/n/sa/s' },
      metadata: { mcp_proxy: { method: 'ping' } },
    })
    expect(i).toMatchObject({
      dialect: 'http',
      method: 'GET',
      path: '/a',
      host: 'svc',
      body: '{"hello":"world"}',
    })
    expect(i.headers['x-multi']).toBe('1,2')
    expect(i.headers.cookie).toBe('a=1; b=2')
    expect(i.source.spiffe?.serviceAccount).toBe('s')
    expect(i.filterMetadata.mcp_proxy).toEqual({ method: 'ping' })
  })

  test('plain object with Uint8Array body and filterMetadata wrapper', () => {
    const i = ok({
      path: '/',
      body: new TextEncoder().encode('ü'),
      metadata: { filterMetadata: { a: { b: 1 } } },
    })
    expect(i.body).toBe('ü')
    expect(i.method).toBe('GET')
    expect(i.filterMetadata.a).toEqual({ b: 1 })
  })

  test('header_map with raw_value bytes is joined like headers', () => {
    const i = ok({
      attributes: {
        request: {
          http: {
            path: '/',
            headerMap: {
              headers: [
                { key: 'X-A', value: '1' },
                { key: 'x-a', rawValue: Buffer.from('2').toString('base64') },
              ],
            },
          },
        },
      },
    })
    expect(i.headers['x-a']).toBe('1,2')
  })

  test('a header the fast path gives up on midway: the general path starts over', () => {
    // The first entries are copied by the fast path before the upper-case name sends it back.
    const i = ok({ path: '/', headers: { 'x-a': '1', host: 'h', 'X-A': '2', b: '3' } })
    expect({ ...i.headers }).toEqual({ 'x-a': '1,2', host: 'h', b: '3' })
    expect(i.headerCount).toBe(3)
  })

  test('names already seen valid do not let invalid ones through', () => {
    // Fill the set of known names past its bound, with short and long names.
    for (let n = 0; n < 3000; n++)
      ok({ path: '/', headers: { [`x-${n}`]: 'v', ['y'.repeat(70 + (n % 5))]: 'v' } })
    for (const name of ['x 1', 'x-1\r', 'X-1 ', '', ':', 'x-1\u0000', 'é']) {
      const d = rejected({ path: '/', headers: { 'x-1': 'a', [name]: 'b' } })
      expect(d.status).toBe(400)
    }
    // A seen name in upper case is still lower-cased and joined.
    expect(ok({ path: '/', headers: { 'x-1': 'a', 'X-1': 'b' } }).headers['x-1']).toBe('a,b')
  })

  test('a body as any kind of bytes is decoded; other objects that are not JSON values are 400', () => {
    const bytes = new TextEncoder().encode('{"a":"ü"}')
    const copy = () => bytes.buffer.slice(0)
    for (const body of [bytes, Buffer.from(bytes), copy(), new DataView(copy()), new Int8Array(copy())]) {
      expect(ok({ method: 'POST', path: '/', body }).body).toBe('{"a":"ü"}')
    }
    // A view on part of a buffer reads that part only.
    const framed = new Uint8Array([0x78, ...bytes, 0x78])
    expect(ok({ path: '/', body: new DataView(framed.buffer, 1, bytes.length) }).body).toBe('{"a":"ü"}')
    for (const body of [new Blob(['{}']), new Map([['a', 1]]), new (class Body {})(), new Date(0)]) {
      expect(rejected({ path: '/', body }).reason).toContain('body must be')
    }
    // Parsed JSON (plain objects, arrays, null-prototype objects) keeps its text form.
    expect(ok({ path: '/', body: [1] }).body).toBe('[1]')
    expect(ok({ path: '/', body: Object.assign(Object.create(null), { a: 1 }) }).body).toBe('{"a":1}')
    // Bytes count against the body limit whatever their type.
    const small = resolveInputOptions({ maxBodyBytes: 4 })
    expect(rejected({ path: '/', body: copy() }, small).status).toBe(413)
  })

  test('partial body header marks the body truncated', () => {
    const i = ok({ path: '/', headers: { 'x-envoy-auth-partial-body': 'true' }, body: 'abc' })
    expect(i.bodyTruncated).toBe(true)
  })
})

describe('bad inputs are 400/413/431, never a throw', () => {
  const cases: Array<[string, unknown, number, RegExp]> = [
    ['not an object', 'GET /', 400, /must be an object/],
    ['null', null, 400, /must be an object/],
    ['array', [], 400, /must be an object/],
    ['attributes not an object', { attributes: 7 }, 400, /attributes must be an object/],
    ['request not an object', { attributes: { request: [] } }, 400, /attributes.request must be an object/],
    ['http not an object', { attributes: { request: { http: 'x' } } }, 400, /http must be an object/],
    ['path missing', { attributes: { request: { http: { method: 'GET' } } } }, 400, /path is required/],
    [
      'method not a string',
      { attributes: { request: { http: { path: '/', method: 1 } } } },
      400,
      /method must be a string/,
    ],
    [
      'headers not an object',
      { attributes: { request: { http: { path: '/', headers: 'a' } } } },
      400,
      /headers must be an object/,
    ],
    ['header value not a string', { path: '/', headers: { a: 1 } }, 400, /headers.a must be a string/],
    ['header list with a number', { path: '/', headers: { a: ['x', 2] } }, 400, /must be a string or a list/],
    ['header value with CRLF', { path: '/', headers: { a: 'x\r\nInjected: 1' } }, 400, /control character/],
    ['header name with a space', { path: '/', headers: { 'a b': 'x' } }, 400, /invalid header name/],
    [
      'body not a string',
      { attributes: { request: { http: { path: '/', body: 5 } } } },
      400,
      /body must be a string/,
    ],
    [
      'raw_body not base64',
      { attributes: { request: { http: { path: '/', rawBody: '**' } } } },
      400,
      /base64/,
    ],
    [
      'raw_body invalid UTF-8',
      {
        attributes: {
          request: { http: { path: '/', rawBody: Buffer.from([0xff, 0xfe]).toString('base64') } },
        },
      },
      400,
      /UTF-8/,
    ],
    [
      'port out of range',
      {
        attributes: {
          request: { http: { path: '/' } },
          source: { address: { socketAddress: { portValue: 70000 } } },
        },
      },
      400,
      /port/,
    ],
    ['plain port not a number', { path: '/', source: { port: '80' } }, 400, /port/],
    ['size not an integer', { attributes: { request: { http: { path: '/', size: 1.5 } } } }, 400, /size/],
    [
      'metadata namespace not an object',
      { attributes: { request: { http: { path: '/' } }, metadataContext: { filterMetadata: { a: 1 } } } },
      400,
      /filter_metadata.a must be an object/,
    ],
    [
      'context extension not a string',
      { attributes: { request: { http: { path: '/' } }, contextExtensions: { a: {} } } },
      400,
      /context_extensions.a/,
    ],
    [
      'both spellings of one field',
      { attributes: { request: { http: { path: '/' } }, metadataContext: {}, metadata_context: {} } },
      400,
      /both metadataContext and metadata_context/,
    ],
    ['invalid percent-encoding', { path: '/a%zz' }, 400, /percent-encoding/],
    ['percent-encoded invalid UTF-8', { path: '/a%ff' }, 400, /percent-encoding or invalid UTF-8/],
    ['invalid query encoding', { path: '/a?x=%e2%28' }, 400, /query/],
    ['relative path', { path: 'a/b' }, 400, /must start with/],
    ['NUL byte', { path: '/a%00b' }, 400, /NUL/],
    ['double slash', { path: '//x' }, 400, /empty segment/],
    ['dot-dot segment', { path: '/a/../b' }, 400, /dot segment/],
    ['encoded dot-dot segment', { path: '/a/%2e%2E/b' }, 400, /dot segment/],
    ['single dot segment', { path: '/a/./b' }, 400, /dot segment/],
    ['encoded slash', { path: '/a%2Fb' }, 400, /encoded/],
    ['encoded backslash', { path: '/a%5cb' }, 400, /encoded/],
    ['literal backslash', { path: '/a\\b' }, 400, /"\\"/],
  ]
  test.each(cases)('%s', (_name, raw, status, reason) => {
    const d = rejected(raw)
    expect(d.status).toBe(status)
    expect(d.reason).toMatch(reason)
  })

  test('a 10 MB body is 413', () => {
    const d = rejected({ path: '/', body: 'x'.repeat(10 * 1024 * 1024) })
    expect(d).toMatchObject({ status: 413, code: 'body_too_large' })
  })

  test('a 10 MB raw_body is 413 before decoding', () => {
    const b64 = Buffer.alloc(10 * 1024 * 1024).toString('base64')
    expect(rejected({ attributes: { request: { http: { path: '/', rawBody: b64 } } } }).status).toBe(413)
  })

  test('a Uint8Array body over the limit is 413', () => {
    expect(
      rejected({ path: '/', body: new Uint8Array(20) }, resolveInputOptions({ maxBodyBytes: 10 })).status,
    ).toBe(413)
  })

  test('100k headers are 431', () => {
    const headers: Record<string, string> = {}
    for (let i = 0; i < 100_000; i++) headers[`h${i}`] = 'v'
    expect(rejected({ path: '/', headers })).toMatchObject({ status: 431, code: 'headers_too_large' })
  })

  test('a repeated header with 100k values is 431', () => {
    expect(rejected({ path: '/', headers: { a: new Array(100_000).fill('v') } }).status).toBe(431)
  })

  test('header bytes over the limit are 431', () => {
    const d = rejected(
      { path: '/', headers: { a: 'x'.repeat(100) } },
      resolveInputOptions({ maxHeaderBytes: 50 }),
    )
    expect(d.status).toBe(431)
  })

  test('the request target counts against the header bytes, once', () => {
    const small = resolveInputOptions({ maxHeaderBytes: 100 })
    const long = `/a?${'x=1&'.repeat(30)}`
    expect(rejected({ path: long }, small).status).toBe(431)
    expect(rejected({ path: '/a', headers: { h: 'v'.repeat(98) } }, small).status).toBe(431)
    expect(ok({ path: '/a', headers: { h: 'v'.repeat(90) } }, small).path).toBe('/a')
    // Envoy's headers carry :path already: the target is not counted twice.
    expect(ok({ path: '/abc', headers: { ':path': '/abc', h: 'v'.repeat(80) } }, small).path).toBe('/abc')
    // A million query parameters never reach the splitter under the default limit.
    const huge = `/q?${'a=1&'.repeat(1_000_000)}`
    expect(rejected({ path: huge }).status).toBe(431)
  })

  test('repeated values over the header count are 431', () => {
    const d = rejected(
      { path: '/', headers: { a: 'x', b: ['1', '2'] } },
      resolveInputOptions({ maxHeaders: 1 }),
    )
    expect(d.status).toBe(431)
  })
})

describe('paths', () => {
  test('ambiguous paths pass through decoded when the check is off', () => {
    const opts = resolveInputOptions({ rejectAmbiguousPaths: false })
    expect(ok({ path: '//x' }, opts).path).toBe('//x')
    expect(ok({ path: '/a/../b' }, opts).path).toBe('/a/../b')
    expect(ok({ path: '/a%2Fb' }, opts).path).toBe('/a/b')
  })

  test('trailing slash, fragment and plus signs', () => {
    const s = splitPath('/a/b/?q=a+b#frag', true)
    expect(s).toMatchObject({ path: '/a/b/', rawQuery: 'q=a+b' })
    expect('query' in s && s.query.q).toEqual(['a b'])
  })

  test('a path parameter does not hide a dot segment', () => {
    for (const p of ['/public/..;/admin', '/a/.;x/b', '/a/%2e%2e;jsessionid=1/b', '/a/..;']) {
      expect(rejected({ path: p }).reason, p).toContain('dot segment')
    }
    // Parameters on ordinary segments are kept as they are.
    expect(ok({ path: '/a;v=1/b' }).path).toBe('/a;v=1/b')
  })

  test('"*" is a valid OPTIONS target', () => {
    expect(ok({ method: 'OPTIONS', path: '*' }).path).toBe('*')
  })

  test('splitPath returns a deny for bad targets', () => {
    expect(splitPath('', true)).toMatchObject({ allowed: false, status: 400 })
  })
})

describe('prototype pollution', () => {
  test('__proto__ and constructor keys in headers, body and metadata stay data', () => {
    const raw = JSON.parse(`{
      "attributes": {
        "request": { "http": {
          "path": "/",
          "headers": { "__proto__": "x", "constructor": "y", "content-type": "application/json" },
          "body": "{\\"__proto__\\": {\\"polluted\\": true}, \\"constructor\\": {\\"prototype\\": {\\"polluted\\": true}}}"
        } },
        "metadataContext": { "filterMetadata": { "__proto__": { "polluted": true }, "constructor": { "a": 1 } } },
        "contextExtensions": { "__proto__": "z" }
      }
    }`)
    // `__proto__` has underscores: refused by default, kept as data when allowed.
    expect(normalizeInput(raw)).toMatchObject({ status: 400, detailCode: 'underscore_header' })
    const i = ok(raw, resolveInputOptions({ headersWithUnderscores: 'allow' }))
    expect(i.headers.__proto__).toBe('x')
    expect(i.headers.constructor).toBe('y')
    expect('toString' in i.headers).toBe(false)
    expect('hasOwnProperty' in i.query).toBe(false)
    expect(Object.keys(i.filterMetadata).sort()).toEqual(['__proto__', 'constructor'])
    expect(i.contextExtensions.__proto__).toBe('z')
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.prototype).not.toHaveProperty('polluted')
  })
})

describe('SPIFFE IDs', () => {
  test.each([
    ['spiffe://td/ns/a/sa/b', { trustDomain: 'td', namespace: 'a', serviceAccount: 'b' }],
    ['spiffe://td', { trustDomain: 'td', path: '' }],
    ['spiffe://td/workload/x', { trustDomain: 'td', path: '/workload/x' }],
  ])('%s parses', (id, want) => {
    expect(parseSpiffeId(id)).toMatchObject(want)
  })
  test.each([
    'spiffe://TD/x',
    'spiffe://td/a/../b',
    'spiffe://td//x',
    'http://td/x',
    'spiffe://td/a b',
    undefined,
  ])('%s is not a SPIFFE ID', (id) => {
    expect(parseSpiffeId(id)).toBeUndefined()
  })
})

describe('JSON with limits', () => {
  test('10k-deep JSON is refused before parsing', () => {
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`
    expect(parseJsonLimited(deep, 64)).toEqual({ error: 'JSON nested deeper than 64' })
  })
  test('brackets inside strings do not count', () => {
    expect(parseJsonLimited('{"a":"[[[[[[","b":"\\"{{{{"}', 2)).toEqual({
      value: { a: '[[[[[[', b: '"{{{{' },
    })
  })
  test('invalid JSON is an error value', () => {
    expect(parseJsonLimited('{', 5)).toHaveProperty('error')
  })
  test('a leading byte order mark is skipped, as decoders do; one elsewhere is invalid', () => {
    expect(parseJsonLimited('\ufeff{"a":1}', 5)).toEqual({ value: { a: 1 } })
    expect(parseJsonLimited('{"a":1}\ufeff', 5)).toHaveProperty('error')
  })
})
