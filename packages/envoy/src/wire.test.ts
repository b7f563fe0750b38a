/**
 * The hand-driven codec (wire.ts) against protobuf.js reading the same `.proto` files: a request
 * encoded by protobuf.js decodes to what proto-loader + checkRequestToJson made of it, and a
 * response encoded here decodes to what protobuf.js encoded for the same decision.
 */
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire'
import type { Decision } from '@verdict/core'
import { deny } from '@verdict/core/internal'
import { describe, expect, it } from 'vitest'
import { checkRequestToJson } from './check-request-to-json.js'
import { checkMethod, healthCheckMethod } from './proto.js'
import { jsonToStruct, MAX_STRUCT_DEPTH } from './struct.js'
import { toCheckResponseMessage } from './to-check-response-message.js'
import {
  decodeCheckRequest,
  decodeHealthRequest,
  encodeCheckResponse,
  encodeHealthResponse,
  SERVING_STATUS,
} from './wire.js'

const check = checkMethod()

const peer = (principal: string) => ({
  address: { socketAddress: { address: '10.0.0.1', portValue: 443, protocol: 'UDP' } },
  service: 'svc',
  labels: { app: 'a', tier: 'b' },
  principal,
  certificate: 'PEM',
})

const REQUESTS: unknown[] = [
  { attributes: {} },
  { attributes: { request: { http: { method: 'GET', path: '/', headers: {} } } } },
  {
    attributes: {
      source: peer('spiffe://cluster.local/ns/a/sa/b'),
      destination: { address: { pipe: { path: '/run/x.sock', mode: 438 } } },
      request: {
        time: { seconds: '1700000000', nanos: 120_000_000 },
        http: {
          id: '42',
          method: 'POST',
          headers: { 'x-a': '1', ':authority': 'example.com', 'content-type': 'application/json' },
          path: '/mcp?q=1',
          host: 'example.com',
          scheme: 'https',
          query: 'q=1',
          fragment: 'f',
          size: '-1',
          protocol: 'HTTP/2',
          body: '{"jsonrpc":"2.0"}',
          rawBody: Buffer.from([0, 1, 2, 255]),
          headerMap: {
            headers: [
              { key: 'x-role', value: 'user' },
              { key: 'x-role', rawValue: Buffer.from('admin') },
            ],
          },
        },
      },
      contextExtensions: { tenant: 'blue', 'x y': 'é' },
      metadataContext: {
        filterMetadata: {
          mcp_proxy: jsonToStruct({
            method: 'tools/call',
            id: 7,
            params: { name: 'echo', l: [1, 'a', null] },
          }),
          empty: jsonToStruct({}),
        },
      },
      routeMetadataContext: { filterMetadata: { route: jsonToStruct({ deep: { x: { y: true } } }) } },
      tlsSession: { sni: 'example.com' },
    },
  },
  // A time before 1970 and one out of range (dropped, as protobuf JSON cannot write it).
  { attributes: { request: { time: { seconds: '-1', nanos: 5 }, http: { path: '/' } } } },
  { attributes: { request: { time: { seconds: '999999999999999', nanos: 0 }, http: { path: '/' } } } },
  {
    attributes: {
      metadataContext: {},
      destination: { address: { envoyInternalAddress: { serverListenerName: 'l', endpointId: 'e' } } },
    },
  },
  {
    attributes: {
      source: { address: { socketAddress: { address: '::1', namedPort: 'https', ipv4Compat: true } } },
    },
  },
]

describe('CheckRequest bytes -> protobuf JSON', () => {
  it('reads what protobuf.js wrote as proto-loader + checkRequestToJson read it', () => {
    for (const request of REQUESTS) {
      const bytes = check.requestSerialize(request)
      expect(decodeCheckRequest(bytes)).toEqual(checkRequestToJson(check.requestDeserialize(bytes)))
    }
  })

  it('reads 64-bit sizes exactly and never hands one request a string from another', () => {
    // Short ASCII strings are interned (wire-reader.ts): values that differ in one byte, in length,
    // or only past the interned length must each read as sent, in any order.
    const values = [
      'allow',
      'allox',
      'allo',
      'allow ',
      'Allow',
      'a'.repeat(64),
      `${'a'.repeat(64)}b`,
      'é',
      '',
    ]
    const requests = [
      ...['9007199254740993', '-9223372036854775808', '18446744073709551', '-1', '0'].map((size) => ({
        attributes: { request: { http: { path: '/', size } } },
      })),
      ...[...values, ...[...values].reverse()].map((v) => ({
        attributes: { request: { http: { path: `/${v}`, headers: { 'x-ext-authz': v, [`x-${v}`]: v } } } },
      })),
    ]
    for (const request of requests) {
      const bytes = check.requestSerialize(request)
      expect(decodeCheckRequest(bytes)).toEqual(checkRequestToJson(check.requestDeserialize(bytes)))
    }
  })

  it('reads every string as sent when thousands of distinct ones share the intern table', () => {
    // 4,096 slots and 6,000 same-length strings: slots are shared, so a reuse without the byte
    // comparison would hand a request another one's value.
    for (let i = 0; i < 6000; i++) {
      const v = `v${String(i).padStart(5, '0')}`
      const bytes = check.requestSerialize({
        attributes: { request: { http: { path: '/', headers: { x: v } } } },
      })
      const json = decodeCheckRequest(bytes) as {
        attributes: { request: { http: { headers: { x: string } } } }
      }
      expect(json.attributes.request.http.headers.x).toBe(v)
    }
  })

  it('skips fields it does not know, at any level', () => {
    const bytes = check.requestSerialize(REQUESTS[2])
    // Field 99 (varint 5) appended at the top level: ignored by both readers.
    const extra = Buffer.concat([bytes, Buffer.from([0x98, 0x06, 0x05])])
    expect(decodeCheckRequest(extra)).toEqual(decodeCheckRequest(bytes))
  })

  it('keeps a __proto__ key as data', () => {
    const bytes = check.requestSerialize({
      attributes: {
        contextExtensions: { ['__proto__']: 'x' },
        metadataContext: { filterMetadata: { ns: jsonToStruct(JSON.parse('{"__proto__":{"polluted":1}}')) } },
      },
    })
    const json = decodeCheckRequest(bytes) as { attributes: Record<string, Record<string, unknown>> }
    expect(Object.keys(json.attributes.contextExtensions!)).toEqual(['__proto__'])
    const ns = (json.attributes.metadataContext!.filterMetadata as Record<string, Record<string, unknown>>)
      .ns!
    expect(Object.keys(ns)).toEqual(['__proto__'])
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('answers bytes that are not a CheckRequest with a 400 denial, never a throw', () => {
    const good = check.requestSerialize(REQUESTS[2])
    const cases: Uint8Array[] = [
      good.subarray(0, good.length - 3), // cut short
      Buffer.from([0x0d, 0, 0, 0, 0]), // attributes as a fixed32
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // bad varint
      Buffer.alloc(0), // no attributes
    ]
    for (const bytes of cases) {
      const d = decodeCheckRequest(bytes) as Decision
      expect(d).toMatchObject({ allowed: false, status: 400, code: 'malformed_input' })
    }
  })

  it('refuses metadata nested deeper than the limit', () => {
    // protobuf.js refuses to write this deep; the bytes are written by hand.
    const w = new BinaryWriter()
    const nest = (depth: number): void => {
      // Struct { fields: { "a": Value { struct_value: ... } } }
      w.tag(1, WireType.LengthDelimited).fork()
      w.tag(1, WireType.LengthDelimited).string('a')
      w.tag(2, WireType.LengthDelimited).fork()
      if (depth === 0) w.tag(4, WireType.Varint).bool(true)
      else {
        w.tag(5, WireType.LengthDelimited).fork()
        nest(depth - 1)
        w.join()
      }
      w.join()
      w.join()
    }
    // CheckRequest { attributes { metadata_context { filter_metadata { "ns": Struct } } } }
    w.tag(1, WireType.LengthDelimited).fork().tag(11, WireType.LengthDelimited).fork()
    w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string('ns')
    w.tag(2, WireType.LengthDelimited).fork()
    nest(MAX_STRUCT_DEPTH + 2)
    w.join().join().join().join()
    expect(decodeCheckRequest(w.finish())).toMatchObject({
      status: 400,
      reason: expect.stringMatching(/nested deeper/),
    })
  })
})

const allowDecision: Decision = {
  allowed: true,
  status: 200,
  code: 'allowed',
  reason: 'ok',
  headers: [
    { key: 'x-up', value: 'u', append: 'overwrite' },
    { key: 'x-more', value: '', append: 'append' },
  ],
  headersToRemove: ['authorization', 'cookie'],
  responseHeadersToAdd: [{ key: 'x-down', value: 'd', append: 'add_if_absent' }],
  queryParametersToSet: [{ key: 'k', value: 'v' }],
  queryParametersToRemove: ['token'],
  dynamicMetadata: { user: 'alice', n: 1.5, deep: { l: [1, 'x', null, { t: true }] }, decision_id: 'theirs' },
} as unknown as Decision

const DECISIONS: Decision[] = [
  allowDecision,
  deny(403, 'no'),
  deny(401, 'who', { headers: [{ key: 'www-authenticate', value: 'Bearer' }], body: 'sign in' }),
  deny(429, 'slow', { body: '', dynamicMetadata: { retry: 5 } }),
  deny(418, 'teapot'),
  // Lengths of one, two and three bytes (contents moved when a field reaches 128 and 16,384
  // bytes), text outside ASCII, negative and fractional numbers, deep and long lists.
  deny(403, 'verboten: ü 🚫', {
    body: `${'x'.repeat(200)}é`,
    headers: Array.from({ length: 40 }, (_, i) => ({ key: `x-h${i}`, value: 'v'.repeat(i * 5) })),
    dynamicMetadata: {
      big: 'y'.repeat(20_000),
      neg: -3,
      frac: -0.25,
      list: [...Array(300).keys()],
      nested: { a: { b: { c: ['ü', { d: 'z'.repeat(130) }] } } },
    },
  }),
]

describe('Decision -> CheckResponse bytes', () => {
  it('writes what protobuf.js writes for the same decision', () => {
    for (const d of DECISIONS) {
      const ours = check.responseDeserialize(Buffer.from(encodeCheckResponse(d, 'id-1')))
      const theirs = check.responseDeserialize(check.responseSerialize(toCheckResponseMessage(d, 'id-1')))
      expect(ours).toEqual(theirs)
    }
  })
})

describe('health messages', () => {
  it('reads the service name and writes the status as grpc.health.v1 defines them', () => {
    const h = healthCheckMethod()
    expect(decodeHealthRequest(h.requestSerialize({ service: 'envoy.service.auth.v3.Authorization' }))).toBe(
      'envoy.service.auth.v3.Authorization',
    )
    expect(decodeHealthRequest(h.requestSerialize({}))).toBe('')
    for (const [name, n] of Object.entries(SERVING_STATUS))
      expect(h.responseDeserialize(Buffer.from(encodeHealthResponse(n)))).toEqual(
        n === 0 ? {} : { status: name },
      )
  })
})
