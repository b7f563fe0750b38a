import { describe, expect, test } from 'vitest'
import { DecisionContext } from './context.js'
import { deny } from './decision.js'
import { type CheckInput, DEFAULT_INPUT_OPTIONS, isDecision, normalizeInput } from './input/index.js'

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

describe('parsedBody and memo', () => {
  test('JSON bodies parse once; non-JSON content types and invalid JSON give undefined', () => {
    expect(ctxFor(request).parsedBody).toEqual({ name: 'thing' })
    expect(
      ctxFor({ path: '/', headers: { 'content-type': 'text/plain' }, body: '{}' }).parsedBody,
    ).toBeUndefined()
    expect(
      ctxFor({ path: '/', headers: { 'content-type': 'application/json' }, body: '{' }).parsedBody,
    ).toBeUndefined()
    expect(
      ctxFor({ path: '/', headers: { 'content-type': 'application/vnd.x+json; charset=utf-8' }, body: '[1]' })
        .parsedBody,
    ).toEqual([1])
    expect(
      ctxFor({
        path: '/',
        headers: { 'content-type': 'application/json', 'x-envoy-auth-partial-body': 'true' },
        body: '{}',
      }).parsedBody,
    ).toBeUndefined()
  })

  test('memo computes once per key', () => {
    const ctx = ctxFor({ path: '/' })
    const key = {}
    let n = 0
    expect(ctx.memo(key, () => ++n)).toBe(1)
    expect(ctx.memo(key, () => ++n)).toBe(1)
    ctx.resetViews() // the MCP element or the identity changed
    expect(ctx.memo(key, () => ++n)).toBe(2)
  })

  test('memo keeps every key apart, whichever one a make memoizes first', () => {
    const ctx = ctxFor({ path: '/' })
    const [a, b, c] = [{}, {}, {}]
    // `a`'s make memoizes `b` before `a` itself is stored
    expect(ctx.memo(a, () => `a+${ctx.memo(b, () => 'b')}`)).toBe('a+b')
    expect(ctx.memo(c, () => 'c')).toBe('c')
    expect([ctx.memo(a, () => 'x'), ctx.memo(b, () => 'x'), ctx.memo(c, () => 'x')]).toEqual([
      'a+b',
      'b',
      'c',
    ])
    // a falsy value is remembered too
    const z = {}
    let n = 0
    const count = (v: number) => () => {
      n++
      return v
    }
    expect(ctx.memo(z, count(0))).toBe(0)
    expect(ctx.memo(z, count(1))).toBe(0)
    expect(n).toBe(1)
    ctx.resetViews()
    expect([ctx.memo(a, () => 'a2'), ctx.memo(b, () => 'b2')]).toEqual(['a2', 'b2'])
  })

  test('refuse keeps the first denial and ignores an allow', () => {
    const ctx = ctxFor({ path: '/' })
    ctx.refuse({ ...deny(400, 'first', { code: 'malformed_input' }) })
    ctx.refuse(deny(403, 'second'))
    expect(ctx.refused?.reason).toBe('first')
    const open = ctxFor({ path: '/' })
    open.refuse({ ...deny(403, 'x'), allowed: true })
    expect(open.refused).toBeUndefined()
  })
})
