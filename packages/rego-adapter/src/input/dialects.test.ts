/**
 * The two input dialects built from real decision contexts (core's DecisionContext over a
 * normalized request): the OPA-Envoy plugin's input document and Authorino's Authorization JSON.
 */

import { readdirSync, readFileSync } from 'node:fs'
import {
  type CheckInput,
  DEFAULT_INPUT_OPTIONS,
  DecisionContext,
  isDecision,
  normalizeInput,
} from '@verdict/core/internal'
import { describe, expect, test, vi } from 'vitest'
import { authorinoInput } from './authorino.js'
import { fromBase64, toBase64, utf8Length } from './bytes.js'
import { opaEnvoyInput } from './opa-envoy.js'

function ctxFor(raw: unknown): DecisionContext {
  const i = normalizeInput(raw, DEFAULT_INPUT_OPTIONS)
  if (isDecision(i)) throw new Error(i.reason)
  return new DecisionContext(i as CheckInput, 0, 64)
}

const request = {
  attributes: {
    source: {
      address: { socketAddress: { address: '10.1.2.3', portValue: 5000 } },
      principal: 'spiffe://td/ns/a/sa/b',
    },
    destination: {
      address: { socketAddress: { address: '10.0.0.1', portValue: 8080 } },
      labels: { app: 'gw' },
    },
    request: {
      time: '2026-11-24T00:00:00Z',
      http: {
        id: '42',
        method: 'POST',
        path: '/api/v1/items?limit=5&tag=a&tag=b',
        host: 'api.example',
        scheme: 'https',
        protocol: 'HTTP/2',
        size: 16,
        headers: { 'content-type': 'application/json', referer: 'https://r', 'user-agent': 'curl/8' },
        body: '{"name":"thing"}',
      },
    },
    contextExtensions: { tenant: 't1' },
    metadataContext: {
      filterMetadata: {
        mcp_proxy: { jsonrpc: '2.0', method: 'tools/call', id: 7, params: { name: 'read_wiki_structure' } },
      },
    },
  },
}

describe('OPA-Envoy input dialect', () => {
  test('attributes in protobuf JSON names plus parsed_path, parsed_query, parsed_body', () => {
    const ctx = ctxFor(request)
    const i = opaEnvoyInput(ctx) as Record<string, any>
    expect(i.attributes.request.http).toMatchObject({
      method: 'POST',
      path: '/api/v1/items?limit=5&tag=a&tag=b',
      host: 'api.example',
      id: '42',
      size: 16,
      body: '{"name":"thing"}',
    })
    expect(i.attributes.request.time).toEqual({ seconds: 1795478400 })
    expect(i.source_principal).toBe('spiffe://td/ns/a/sa/b')
    expect(i.attributes.source).toEqual({
      address: { socketAddress: { address: '10.1.2.3', portValue: 5000 } },
      principal: 'spiffe://td/ns/a/sa/b',
    })
    expect(i.attributes.destination.labels).toEqual({ app: 'gw' })
    expect(i.attributes.metadataContext.filterMetadata.mcp_proxy.params.name).toBe('read_wiki_structure')
    expect(i.attributes.contextExtensions).toEqual({ tenant: 't1' })
    expect(i.parsed_path).toEqual(['api', 'v1', 'items'])
    expect({ ...i.parsed_query }).toEqual({ limit: ['5'], tag: ['a', 'b'] })
    expect(i.parsed_body).toEqual({ name: 'thing' })
    expect(i.truncated_body).toBe(false)
    expect(i.version).toEqual({ encoding: 'protojson', ext_authz: 'v3' })
    expect(i.jwt).toBeUndefined()
    expect(opaEnvoyInput(ctx)).toBe(i) // built once
  })

  test('verified claims and the MCP call sit alongside', () => {
    const ctx = ctxFor(request)
    ctx.jwt = { sub: 'alice' }
    ctx.mcp = {
      method: 'tools/call',
      id: 7,
      params: {},
      tool: { name: 't', arguments: { a: 1 } },
      from: 'metadata',
    }
    const i = opaEnvoyInput(ctx) as Record<string, any>
    expect(i.jwt).toEqual({ sub: 'alice' })
    expect(i.mcp).toMatchObject({ method: 'tools/call', id: 7, tool: { name: 't', arguments: { a: 1 } } })
  })

  test("a valid JSON body given as text takes one scan and one parse, not Go's byte reading", () => {
    // The byte reading (for the plugin's error texts) encodes and decodes the body again; a body
    // JSON.parse accepts whole needs neither.
    const decode = vi.spyOn(TextDecoder.prototype, 'decode')
    const encode = vi.spyOn(TextEncoder.prototype, 'encode')
    try {
      const body =
        '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"t","arguments":{"n":[1,2e3]}}}'
      const i = opaEnvoyInput(
        ctxFor({
          method: 'POST',
          path: '/mcp',
          headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
          body,
        }),
      ) as Record<string, any>
      expect(i.parsed_body).toEqual(JSON.parse(body))
      expect(decode).not.toHaveBeenCalled()
      expect(encode).not.toHaveBeenCalled()
    } finally {
      decode.mockRestore()
      encode.mockRestore()
    }
  })

  test('the one-pass reading answers as the byte reading does', () => {
    const outcome = (body: string | Uint8Array, ct = 'application/json') => {
      const raw =
        typeof body === 'string'
          ? {
              attributes: {
                request: { http: { method: 'POST', path: '/', headers: { 'content-type': ct }, body } },
              },
            }
          : {
              attributes: {
                request: {
                  http: {
                    method: 'POST',
                    path: '/',
                    headers: { 'content-type': ct },
                    raw_body: Buffer.from(body).toString('base64'),
                  },
                },
              },
            }
      const ctx = ctxFor(raw)
      const i = opaEnvoyInput(ctx) as Record<string, any>
      return { parsed: i.parsed_body, refused: ctx.refused?.detailCode, body: ctx.refused?.body }
    }
    const deep = `${'['.repeat(65)}${']'.repeat(65)}`
    const cases: Array<[string | Uint8Array, object]> = [
      ['{"a":[1,{"b":null}],"c":"x:y"}', { parsed: { a: [1, { b: null }], c: 'x:y' } }],
      ['  [1, "a\\"b", {"k": true}]\n', { parsed: [1, 'a"b', { k: true }] }],
      ['"text"', { parsed: 'text' }],
      ['{"a":1,"a":2}', { parsed: null, refused: 'duplicate_json_key' }],
      ['{"a":{"amount":1,"\u0061mount":2}}', { parsed: null, refused: 'duplicate_json_key' }],
      ['[{"a":1},{"a":2}]', { parsed: [{ a: 1 }, { a: 2 }] }],
      ['{"a":1} null', { parsed: { a: 1 } }],
      ['{"a":1}{', { parsed: null, refused: 'request_parse_error' }],
      ['\ufeff{"a":1}', { parsed: null, refused: 'request_parse_error' }],
      [
        deep,
        {
          parsed: null,
          refused: 'request_parse_error',
          body: 'request_parse_error: JSON nested deeper than 64',
        },
      ],
      ['{"n":1e400}', { parsed: null, refused: 'non_finite_number' }],
      ['{"n":1e3,"t":true,"f":false}', { parsed: { n: 1000, t: true, f: false } }],
      [`{"n":${'9'.repeat(400)}}`, { parsed: null, refused: 'non_finite_number' }],
      ['{"a":"\\ud800"}', { parsed: { a: '\ud800' } }], // an escape JSON.parse keeps
      ['{"a":"\ud800"}', { parsed: { a: '\ufffd' } }], // a lone surrogate in the text: U+FFFD, as Go reads it
      [new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x31, 0x7d]), { parsed: { a: 1 } }],
      [new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), { parsed: null, refused: 'request_parse_error' }],
    ]
    for (const [body, want] of cases) expect(outcome(body), String(body)).toMatchObject(want)
    expect(outcome('{"a":1,"a":2}', 'text/plain')).toMatchObject({ parsed: null })
  })

  test('root path and no body', () => {
    const i = opaEnvoyInput(ctxFor({ path: '/' })) as Record<string, any>
    expect(i.parsed_path).toEqual([''])
    expect(i.parsed_body).toBeNull() // the plugin's null, not an absent key
  })
})

describe('Authorino input dialect', () => {
  test('well-known attributes, each as Authorino builds it from the AttributeContext', () => {
    const ctx = ctxFor(request)
    const a = authorinoInput(ctx) as Record<string, any>
    expect(a.request).toEqual({
      id: '42', // http.id
      time: { seconds: 1795478400 }, // a Timestamp as Go writes the struct (nanos 0: omitted)
      protocol: 'HTTP/2',
      scheme: 'https',
      host: 'api.example',
      method: 'POST',
      path: '/api/v1/items?limit=5&tag=a&tag=b', // http.path, with the query
      url_path: '/api/v1/items', // url.Parse(path).Path
      query: 'limit=5&tag=a&tag=b', // url.Parse(path).RawQuery
      headers: { 'content-type': 'application/json', referer: 'https://r', 'user-agent': 'curl/8' },
      referer: 'https://r',
      user_agent: 'curl/8', // the JSON name in Authorino's code
      useragent: 'curl/8', // the name in Authorino's well-known attributes documentation
      size: 16,
      body: '{"name":"thing"}',
      context_extensions: { tenant: 't1' },
    })
    expect(a.source).toEqual({ address: '10.1.2.3', port: 5000, principal: 'spiffe://td/ns/a/sa/b' })
    expect(a.destination).toEqual({ address: '10.0.0.1', port: 8080, labels: { app: 'gw' } })
    expect(a.metadata).toEqual({
      filter_metadata: {
        mcp_proxy: { jsonrpc: '2.0', method: 'tools/call', id: 7, params: { name: 'read_wiki_structure' } },
      },
    })
    expect(a.auth).toEqual({ metadata: {}, authorization: {}, response: {} })
    expect(a.mcp).toBeUndefined()
    expect(authorinoInput(ctx)).toBe(a)
  })

  test('unset fields are absent (Go omitempty); raw_body is base64; size -1 stays', () => {
    const a = authorinoInput(
      ctxFor({
        attributes: {
          request: {
            http: {
              method: 'GET',
              path: '/x',
              size: '-1',
              headers: { 'x-a': '1' },
              raw_body: Buffer.from('hé').toString('base64'),
            },
          },
        },
      }),
    ) as Record<string, any>
    expect(a.request).toEqual({
      method: 'GET',
      path: '/x',
      url_path: '/x',
      headers: { 'x-a': '1' },
      size: -1,
      raw_body: Buffer.from('hé').toString('base64'),
    })
    expect(a.source).toEqual({})
    expect(a.destination).toEqual({})
    expect(a.metadata).toBeUndefined()
    expect(a.context).toEqual({
      request: {
        http: { method: 'GET', path: '/x', headers: { 'x-a': '1' }, size: -1, raw_body: a.request.raw_body },
      },
    })
  })

  test("context: the AttributeContext as Go's encoding/json writes it", () => {
    const a = authorinoInput(
      ctxFor({
        ...request,
        attributes: {
          ...request.attributes,
          tlsSession: { sni: 'api.example' },
          metadataContext: {
            filterMetadata: { ns: { s: 'v', n: 1.5, b: false, z: null, l: ['x'], o: { k: 'v' }, e: [] } },
          },
        },
      }),
    ) as Record<string, any>
    expect(a.context.source).toEqual({
      address: { Address: { SocketAddress: { address: '10.1.2.3', PortSpecifier: { PortValue: 5000 } } } },
      principal: 'spiffe://td/ns/a/sa/b',
    })
    expect(a.context.destination.labels).toEqual({ app: 'gw' })
    expect(a.context.request.time).toEqual({ seconds: 1795478400 })
    expect(a.context.request.http).toEqual({
      id: '42',
      method: 'POST',
      headers: { 'content-type': 'application/json', referer: 'https://r', 'user-agent': 'curl/8' },
      path: '/api/v1/items?limit=5&tag=a&tag=b',
      host: 'api.example',
      scheme: 'https',
      size: 16,
      protocol: 'HTTP/2',
      body: '{"name":"thing"}',
    })
    expect(a.context.context_extensions).toEqual({ tenant: 't1' })
    expect(a.context.tls_session).toEqual({ sni: 'api.example' })
    expect(a.context.metadata_context.filter_metadata.ns).toEqual({
      fields: {
        s: { Kind: { StringValue: 'v' } },
        n: { Kind: { NumberValue: 1.5 } },
        b: { Kind: { BoolValue: false } },
        z: { Kind: { NullValue: 0 } },
        l: { Kind: { ListValue: { values: [{ Kind: { StringValue: 'x' } }] } } },
        o: { Kind: { StructValue: { fields: { k: { Kind: { StringValue: 'v' } } } } } },
        e: { Kind: { ListValue: {} } },
      },
    })
    // The well-known metadata is the plain JSON of the same Struct.
    expect(a.metadata.filter_metadata.ns.o).toEqual({ k: 'v' })
  })

  test('request.grpc for a gRPC content type and a /Service/Method path', () => {
    const grpc = (path: string, ct = 'application/grpc+proto') =>
      (authorinoInput(ctxFor({ method: 'POST', path, headers: { 'content-type': ct } })) as any).request.grpc
    expect(grpc('/com.example.Users/Get')).toEqual({ service: 'com.example.Users', method: 'Get' })
    expect(grpc('/Users/Get', 'application/json')).toBeUndefined()
    expect(grpc('/OnlyService')).toBeUndefined()
    expect(grpc('/a/b/c')).toBeUndefined()
  })

  test('a plain HTTP-shaped request gets the attributes Envoy would send for it', () => {
    const a = authorinoInput(
      ctxFor({
        method: 'get',
        path: '/p?q=1',
        host: 'h.example',
        headers: { 'user-agent': 'ua', 'content-length': '0' },
        source: { address: '10.0.0.9', port: 1234 },
      }),
    ) as Record<string, any>
    expect(a.request).toMatchObject({
      method: 'GET',
      path: '/p?q=1',
      url_path: '/p',
      query: 'q=1',
      host: 'h.example',
      useragent: 'ua',
    })
    expect(a.request.size).toBeUndefined()
    expect(a.source).toEqual({ address: '10.0.0.9', port: 1234 })
  })

  test('auth.identity holds the claims, or the peer when no token verified', () => {
    const ctx = ctxFor(request)
    ctx.jwt = { sub: 'alice', iss: 'https://idp' }
    expect((authorinoInput(ctx) as any).auth.identity).toEqual({ sub: 'alice', iss: 'https://idp' })
    const peer = ctxFor(request)
    peer.identity = { kind: 'peer', subject: 'spiffe://td/ns/a/sa/b', principal: 'spiffe://td/ns/a/sa/b' }
    expect((authorinoInput(peer) as any).auth.identity).toEqual({
      principal: 'spiffe://td/ns/a/sa/b',
      sub: 'spiffe://td/ns/a/sa/b',
    })
  })

  test('arguments read from the body appear under the MCP metadata (seed 001 policies)', () => {
    const ctx = ctxFor(request)
    ctx.mcp = {
      method: 'tools/call',
      id: 7,
      params: { name: 'read_wiki_structure', arguments: { repoName: 'kubernetes-sigs/gateway-api' } },
      tool: { name: 'read_wiki_structure', arguments: { repoName: 'kubernetes-sigs/gateway-api' } },
      from: 'metadata+body',
    }
    const a = authorinoInput(ctx) as any
    expect(a.mcp).toMatchObject({ method: 'tools/call', id: 7, tool: { name: 'read_wiki_structure' } })
    expect(a.metadata.filter_metadata.mcp_proxy.params.arguments.repoName).toBe('kubernetes-sigs/gateway-api')
    expect(a.metadata.filter_metadata.mcp_proxy.params.name).toBe('read_wiki_structure')
    // The normalized input itself is not modified.
    expect((ctx.input.filterMetadata.mcp_proxy as any).params.arguments).toBeUndefined()
  })

  test('views are rebuilt after resetViews (batch elements)', () => {
    const ctx = ctxFor(request)
    const first = authorinoInput(ctx)
    ctx.resetViews()
    expect(authorinoInput(ctx)).not.toBe(first)
  })
})

describe('bytes without Buffer', () => {
  test('the builders use web-standard APIs only: no Buffer, no node: modules', () => {
    const dir = new URL('.', import.meta.url)
    const sources = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    expect(sources).toEqual(expect.arrayContaining(['opa-envoy.ts', 'authorino.ts', 'plugin-body.ts']))
    for (const f of sources) {
      const code = readFileSync(new URL(f, dir), 'utf8').replace(/^\s*(\/\/|\*).*$/gm, '')
      expect(code, f).not.toMatch(/\bBuffer\b|from 'node:|require\(/)
    }
  })

  test('base64 reads both alphabets, with or without padding, and skips what is not base64', () => {
    const samples = ['', 'a', 'ab', 'abc', 'abcd', 'hé ✓ 😀', '\u0000\u00ff\u0080']
    for (const s of samples) {
      const bytes = new TextEncoder().encode(s)
      const std = Buffer.from(bytes).toString('base64')
      expect(toBase64(bytes)).toBe(std)
      expect(fromBase64(std)).toEqual(new Uint8Array(bytes))
      expect(fromBase64(Buffer.from(bytes).toString('base64url'))).toEqual(new Uint8Array(bytes))
    }
    // Node's decoder is the reference for the lenient cases (the plugin's input is not checked here).
    for (const t of ['a b\nc*d=ef', 'YW_-Jg', 'YQ=YQ', 'Y', 'YW', 'Y=W', '////', '----'])
      expect(fromBase64(t), t).toEqual(new Uint8Array(Buffer.from(t, 'base64')))
  })

  test('UTF-8 length as the encoder counts it, lone surrogates included', () => {
    for (const s of ['', 'abc', 'é', '✓', '😀', '\ud800', '\udc00x', 'a\ud800\ud800b', '😀\ud83d'])
      expect(utf8Length(s), JSON.stringify(s)).toBe(new TextEncoder().encode(s).length)
  })
})
