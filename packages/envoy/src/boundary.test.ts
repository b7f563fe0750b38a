import { createEngine } from '@verdict/core'
import { describe, expect, it } from 'vitest'
import { checkRequestToJson, timestampToJson } from './check-request-to-json.js'
import { checkMethod } from './proto.js'
import { jsonToStruct, MAX_STRUCT_DEPTH, structToJson } from './struct.js'
import { toCheckResponseMessage } from './to-check-response-message.js'

const check = checkMethod()
/** Encode and decode a CheckRequest as grpc-js would on each side of the wire. */
const overTheWire = (request: unknown): unknown => check.requestDeserialize(check.requestSerialize(request))

describe('Struct <-> JSON', () => {
  it('round-trips every JSON type, keeping __proto__ as data', () => {
    const json = JSON.parse(
      '{"s":"x","n":1.5,"b":false,"z":null,"l":[1,"a",{"k":true}],"o":{"__proto__":{"polluted":1},"deep":{"x":1}}}',
    )
    const back = structToJson(jsonToStruct(json))
    expect(back).toEqual(json)
    const o = back.o as Record<string, unknown>
    expect(Object.keys(o)).toContain('__proto__')
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('rejects metadata nested deeper than the limit', () => {
    let s: unknown = { fields: {} }
    for (let i = 0; i < MAX_STRUCT_DEPTH + 2; i++) s = { fields: { a: { structValue: s } } }
    expect(() => structToJson(s as never)).toThrow(/nested deeper/)
  })
})

describe('request: CheckRequest message -> protobuf JSON', () => {
  it('turns time into RFC 3339 and filter metadata Structs into JSON', () => {
    const msg = overTheWire({
      attributes: {
        request: {
          time: { seconds: '1700000000', nanos: 120_000_000 },
          http: {
            method: 'POST',
            path: '/mcp',
            headers: { 'x-a': '1' },
            rawBody: Buffer.from('{}'),
            size: '2',
          },
        },
        contextExtensions: { tenant: 'blue' },
        metadataContext: {
          filterMetadata: {
            mcp_proxy: jsonToStruct({ method: 'tools/call', id: 7, params: { name: 'echo' } }),
          },
        },
      },
    })
    const json = checkRequestToJson(msg) as { attributes: Record<string, never> }
    const attrs = json.attributes as Record<string, Record<string, unknown>>
    expect(attrs.request!.time).toBe('2023-11-14T22:13:20.120Z')
    expect(attrs.metadataContext!.filterMetadata).toEqual({
      mcp_proxy: { method: 'tools/call', id: 7, params: { name: 'echo' } },
    })
    expect(attrs.contextExtensions).toEqual({ tenant: 'blue' })
  })

  it('formats nanoseconds as protobuf JSON does', () => {
    expect(timestampToJson({ seconds: '0', nanos: 0 })).toBe('1970-01-01T00:00:00Z')
    expect(timestampToJson({ seconds: '0', nanos: 1500 })).toBe('1970-01-01T00:00:00.000001500Z')
    expect(timestampToJson({ seconds: '1e400', nanos: 0 })).toBeUndefined()
  })

  it('answers a 400 denial when attributes are missing', () => {
    const d = checkRequestToJson(overTheWire({}))
    expect(d).toMatchObject({ allowed: false, status: 400, code: 'malformed_input' })
  })

  it('gives core an input it decides on', async () => {
    const engine = await createEngine({
      rules: [{ id: 'tenant', action: 'allow', match: { headers: [{ name: 'x-a', exact: '1' }] } }],
    })
    const input = checkRequestToJson(
      overTheWire({
        attributes: { request: { http: { method: 'GET', path: '/a?b=c', headers: { 'x-a': '1' } } } },
      }),
    )
    expect(await engine.decide(input)).toMatchObject({ allowed: true, rule: 'tenant' })
  })
})

describe('response: Decision -> CheckResponse message', () => {
  it('encodes allow fields and the decision id', async () => {
    const engine = await createEngine({
      responses: { allowed: { responseHeaders: { 'x-down': 'd' } } },
      rules: [{ id: 'a', action: 'allow', match: { always: true }, headers: { 'x-up': 'u' } }],
    })
    const d = await engine.decide({ method: 'GET', path: '/' })
    const wire = check.responseDeserialize(check.responseSerialize(toCheckResponseMessage(d, 'id-1'))) as {
      status: { code?: number }
      okResponse: Record<string, unknown>
      dynamicMetadata: unknown
    }
    expect(wire.status.code ?? 0).toBe(0)
    expect(wire.okResponse.headers).toEqual([
      { header: { key: 'x-up', value: 'u' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    ])
    expect(wire.okResponse.responseHeadersToAdd).toEqual([
      { header: { key: 'x-down', value: 'd' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    ])
    expect(structToJson(wire.dynamicMetadata as never)).toEqual({ decision_id: 'id-1' })
  })

  it('encodes a denial with status, headers and body', async () => {
    const engine = await createEngine({
      responses: { denied: { status: 429, headers: { 'retry-after': '5' }, body: 'slow down' } },
      rules: [{ id: 'a', action: 'allow', match: { always: false } }],
    })
    const d = await engine.decide({ method: 'GET', path: '/' })
    const wire = check.responseDeserialize(
      check.responseSerialize(toCheckResponseMessage(d, 'id-2')),
    ) as Record<string, never>
    expect(wire.status).toMatchObject({ code: 7 })
    expect(wire.deniedResponse).toEqual({
      status: { code: 'TooManyRequests' },
      headers: [{ header: { key: 'retry-after', value: '5' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
      body: 'slow down',
    })
  })
})
