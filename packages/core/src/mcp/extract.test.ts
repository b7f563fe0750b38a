import { describe, expect, it, test } from 'vitest'
import type { Decision } from '../decision.js'
import { createEngine } from '../engine.js'
import { PolicyError } from '../errors.js'
import { type CheckInput, isDecision, normalizeInput } from '../input/index.js'
import {
  DEFAULT_MCP_SETTINGS,
  extractMcp,
  findDuplicateGuardedKey,
  MCP_RESPONSE_METHOD,
  type McpMessages,
  type McpSettings,
  mcpDenialBody,
} from './index.js'

const JSON_CT = { 'content-type': 'application/json' }

function input(raw: Record<string, unknown>): CheckInput {
  const i = normalizeInput(raw)
  if (isDecision(i)) throw new Error(`bad fixture: ${i.reason}`)
  return i
}

function post(body: string, headers: Record<string, string> = JSON_CT, extra: Record<string, unknown> = {}) {
  return input({ method: 'POST', path: '/mcp', headers, body, ...extra })
}

function extract(i: CheckInput, settings: Partial<McpSettings> = {}): McpMessages | Decision | undefined {
  return extractMcp(i, { ...DEFAULT_MCP_SETTINGS, ...settings }, 64)
}

function messages(r: McpMessages | Decision | undefined): McpMessages {
  if (r === undefined || 'allowed' in r) throw new Error(`expected messages, got ${JSON.stringify(r)}`)
  return r
}

function rejected(r: McpMessages | Decision | undefined): Decision {
  if (r === undefined || !('allowed' in r)) throw new Error(`expected a rejection, got ${JSON.stringify(r)}`)
  return r
}

const call = (name: string, args: unknown = {}, id: unknown = 1) =>
  JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } })

const meta = (ns: string, m: Record<string, unknown>) => ({ metadata: { filterMetadata: { [ns]: m } } })

describe('extractMcp: JSON-RPC body', () => {
  it('reads a tools/call with its name, arguments and id type', () => {
    const m = messages(extract(post(call('get-sum', { a: 1, b: 2 }, 'abc'))))
    expect(m.batch).toBe(false)
    expect(m.messages[0]).toMatchObject({
      method: 'tools/call',
      id: 'abc',
      tool: { name: 'get-sum', arguments: { a: 1, b: 2 } },
      from: 'body',
    })
    expect(messages(extract(post(call('x', {}, 7)))).messages[0]?.id).toBe(7)
  })

  it('reads notifications (no id), prompts/get and resources/read', () => {
    const n = messages(extract(post('{"jsonrpc":"2.0","method":"notifications/initialized"}')))
    expect(n.messages[0]).toMatchObject({ method: 'notifications/initialized', id: undefined })
    const p = messages(
      extract(
        post('{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"p","arguments":{"x":"1"}}}'),
      ),
    )
    expect(p.messages[0]?.prompt).toEqual({ name: 'p', arguments: { x: '1' } })
    const r = messages(
      extract(post('{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"demo://a"}}')),
    )
    expect(r.messages[0]?.resource).toEqual({ uri: 'demo://a' })
  })

  it('leaves non-MCP traffic to the other rules', () => {
    expect(extract(input({ method: 'GET', path: '/mcp' }))).toBeUndefined()
    expect(extract(post('{"model":"x"}'))).toBeUndefined()
    expect(extract(post('not json'))).toBeUndefined()
    expect(extract(post('plain text', { 'content-type': 'text/plain' }))).toBeUndefined()
    expect(extract(post(call('echo')), { enabled: false })).toBeUndefined()
  })

  it('sees JSON-RPC spelled with escapes or case variants (no literal "jsonrpc")', () => {
    const escaped = '{"json\\u0072pc":"2.0","id":1,"\\u006dethod":"tools/call","params":{"name":"echo"}}'
    expect(messages(extract(post(escaped))).messages[0]?.tool?.name).toBe('echo')
    expect(rejected(extract(post('{"Method":"tools/call","params":{"name":"echo"}}'))).status).toBe(400)
    expect(rejected(extract(post(' [ ] '))).reason).toContain('empty batch')
  })

  it('with enabled: true, a JSON POST that is not JSON-RPC is malformed', () => {
    expect(rejected(extract(post('{"model":"x"}'), { enabled: true })).status).toBe(400)
    expect(rejected(extract(post('nope'), { enabled: true })).status).toBe(400)
  })

  // Item 2 of the issue: the JSON-RPC envelope rules.
  const envelope: Array<[string, string, string]> = [
    ['jsonrpc 1.0', '{"jsonrpc":"1.0","id":1,"method":"ping"}', 'jsonrpc must be "2.0"'],
    ['jsonrpc missing, method present', '{"id":1,"method":"tools/call","params":{"name":"echo"}}', 'jsonrpc'],
    ['method not a string', '{"jsonrpc":"2.0","id":1,"method":5}', 'method must be'],
    ['method empty', '{"jsonrpc":"2.0","id":1,"method":""}', 'method must be'],
    ['id null', '{"jsonrpc":"2.0","id":null,"method":"ping"}', 'id must be'],
    ['id fractional', '{"jsonrpc":"2.0","id":1.5,"method":"ping"}', 'id must be'],
    ['id object', '{"jsonrpc":"2.0","id":{},"method":"ping"}', 'id must be'],
    ['params an array', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[]}', 'params must be'],
    ['tool name missing', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}', 'params.name'],
    [
      'tool name a number',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":1}}',
      'params.name',
    ],
    [
      'arguments an array',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":[1]}}',
      'params.arguments',
    ],
    ['uri missing', '{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{}}', 'params.uri'],
    ['empty batch', '[]', 'empty batch'],
    ['batch with a non-object', `[${call('a')},1]`, 'batch element 1 is not an object'],
    ['batch with a bad element', `[${call('a')},{"jsonrpc":"2.0","id":2}]`, 'batch element 1'],
    ['a JSON string body with jsonrpc inside', '"jsonrpc"', ''],
  ]
  it.each(envelope)('%s -> 400', (_name, body, why) => {
    const r = extract(post(body))
    if (body === '"jsonrpc"') {
      expect(r).toBeUndefined()
      return
    }
    const d = rejected(r)
    expect(d.status).toBe(400)
    expect(d.allowed).toBe(false)
    expect(d.reason).toContain(why)
  })

  it('batches: every element is extracted, or batches are rejected by option', () => {
    const body = `[${call('get-sum', {}, 1)},{"jsonrpc":"2.0","method":"notifications/x"},${call('echo', {}, 's')}]`
    const m = messages(extract(post(body)))
    expect(m.batch).toBe(true)
    expect(m.messages.map((c) => c.tool?.name ?? c.method)).toEqual(['get-sum', 'notifications/x', 'echo'])
    expect(m.messages.map((c) => c.id)).toEqual([1, undefined, 's'])
    expect(rejected(extract(post(body), { batches: 'reject' })).reason).toContain('batches are not accepted')
  })
})

describe('extractMcp: smuggling and hostile bodies', () => {
  const smuggled: Array<[string, string]> = [
    [
      'duplicate name',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-sum","name":"echo"}}',
    ],
    ['"Method" next to "method"', '{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}'],
    ['duplicate method', '{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}'],
    [
      '"NAME" next to "name"',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","NAME":"b"}}',
    ],
    ['escaped key', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","n\\u0061me":"b"}}'],
    ['duplicate id', '{"jsonrpc":"2.0","id":1,"id":"1","method":"ping"}'],
    ['duplicate jsonrpc', '{"jsonrpc":"2.0","JSONRPC":"2.0","id":1,"method":"ping"}'],
    [
      'duplicate params',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"},"params":{"name":"b"}}',
    ],
    [
      'duplicate arguments',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{},"Arguments":{"x":1}}}',
    ],
    // Go's encoding/json folds U+017F (long s) to "s": "paramſ" would be read as "params".
    [
      'long-s fold of params',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"},"paramſ":{}}',
    ],
    ['duplicate inside a batch element', `[{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}]`],
    // Every character escaped: the longest spelling of the longest guarded key (54 characters).
    [
      'arguments spelled entirely in \\u escapes',
      `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{},"${[...'arguments'].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}":{"x":1}}}`,
    ],
    ['id spelled in escapes', String.raw`{"jsonrpc":"2.0","id":1,"\u0069\u0044":2,"method":"ping"}`],
  ]
  it.each(smuggled)('%s -> 400', (_name, body) => {
    const d = rejected(extract(post(body)))
    expect(d.status).toBe(400)
    expect(d.reason).toContain('duplicate or case-variant key')
  })

  it('only A-Z and the Kelvin sign lower-case to an ASCII letter (what the in-place key check assumes)', () => {
    const toAscii: number[] = []
    for (let c = 0; c <= 0x10ffff; c++) {
      if (c >= 0xd800 && c <= 0xdfff) continue
      const lower = String.fromCodePoint(c).toLowerCase()
      if (/^[a-z]+$/.test(lower) && !(c >= 97 && c <= 122)) toAscii.push(c)
    }
    const upper = Array.from({ length: 26 }, (_, i) => 65 + i)
    expect(toAscii).toEqual([...upper, 0x212a])
  })

  it('every case variant, long-s and escaped spelling of a guarded key is the same key', () => {
    const guarded = ['jsonrpc', 'method', 'id', 'params', 'name', 'arguments', 'uri']
    const variants = (k: string) => [
      k.toUpperCase(),
      k[0]!.toUpperCase() + k.slice(1),
      k.replace(/s/g, '\u017f'),
      [...k].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''),
    ]
    for (const k of guarded) {
      for (const v of variants(k)) {
        if (v === k) continue
        expect(findDuplicateGuardedKey(`{"${k}":1,"${v}":2}`), `${k} / ${v}`).toBeDefined()
        expect(findDuplicateGuardedKey(`{"${v}":1,"x${k}":2}`), `${v} / x${k}`).toBeUndefined()
      }
    }
    // Lower-casing U+0130 gives "i" plus a combining dot: not "id".
    expect(findDuplicateGuardedKey('{"id":1,"\u0130d":2}')).toBeUndefined()
    expect(findDuplicateGuardedKey('{"id":1,"\u0130D":2}')).toBeUndefined()
  })

  it('the same key in different objects is fine', () => {
    const body =
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"name":"b","id":2}}}'
    expect(messages(extract(post(body))).messages[0]?.tool).toEqual({
      name: 'a',
      arguments: { name: 'b', id: 2 },
    })
    expect(findDuplicateGuardedKey('[{"id":1},{"id":2}]')).toBeUndefined()
    expect(findDuplicateGuardedKey('{"a":"{\\"id\\":1,\\"id\\":2}"}')).toBeUndefined()
    // Escapes inside strings: a value ending in an escaped backslash, a value holding quotes.
    expect(findDuplicateGuardedKey(String.raw`{"name":"a\\","x":"\"name\":1,\"name\":2"}`)).toBeUndefined()
    expect(findDuplicateGuardedKey(String.raw`{"name":"a\\","name":"b"}`)).toBe('name')
    expect(findDuplicateGuardedKey(String.raw`{"x":"\\\"","name":"a","Name":"b"}`)).toBe('Name')
  })

  it('rejects a 10k-deep arguments object even when the body would be left to other rules', () => {
    const deep = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`
    const d = rejected(extract(post(call('echo', 'X').replace('"X"', deep))))
    expect(d.status).toBe(400)
    expect(d.reason).toContain('nested deeper')
  })

  it('a 5 MB arguments object is refused when the input is normalized (413)', () => {
    const big = call('echo', { blob: 'x'.repeat(5 * 1024 * 1024) })
    const d = normalizeInput({ method: 'POST', path: '/mcp', headers: JSON_CT, body: big })
    expect(isDecision(d) && d.status).toBe(413)
  })

  it('__proto__ as a tool name or an argument key is data, not a prototype', () => {
    const body =
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"__proto__","arguments":{"__proto__":{"admin":true}}}}'
    const c = messages(extract(post(body))).messages[0]!
    expect(c.tool?.name).toBe('__proto__')
    expect(Object.hasOwn(c.tool!.arguments, '__proto__')).toBe(true)
    expect(Object.getPrototypeOf(c.tool!.arguments)).toBe(Object.prototype)
    expect((c.tool!.arguments as { admin?: unknown }).admin).toBeUndefined()
  })

  it('a truncated body (x-envoy-auth-partial-body: true) is 400', () => {
    const d = rejected(extract(post(call('get-sum'), { ...JSON_CT, 'x-envoy-auth-partial-body': 'true' })))
    expect(d.status).toBe(400)
    expect(d.reason).toContain('truncated')
  })

  it('JSON-RPC under a non-JSON content type is 415; other bodies are left alone', () => {
    for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonx']) {
      const d = rejected(extract(post(call('echo'), { 'content-type': ct })))
      expect(d.status).toBe(415)
    }
    expect(rejected(extract(input({ method: 'POST', path: '/mcp', body: call('echo') }))).status).toBe(415)
    expect(rejected(extract(post(`[${call('echo')}]`, { 'content-type': 'text/plain' }))).status).toBe(415)
    expect(extract(post('{"hello":1}', { 'content-type': 'text/plain' }))).toBeUndefined()
  })

  it('accepts JSON content types with parameters and +json', () => {
    for (const ct of ['application/json; charset=utf-8', 'application/vnd.x+json', 'APPLICATION/JSON']) {
      expect(messages(extract(post(call('a'), { 'content-type': ct }))).messages).toHaveLength(1)
    }
  })
})

describe('extractMcp: what lenient servers accept', () => {
  const exec = call('exec')

  it('a byte order mark before the body does not hide the call (decoders skip it)', () => {
    expect(messages(extract(post(`\ufeff${exec}`))).messages[0]?.tool?.name).toBe('exec')
  })

  it.each([
    ['NaN', exec.replace('"arguments":{}', '"arguments":{"n":NaN}')],
    ['-Infinity', exec.replace('"arguments":{}', '"arguments":{"n":-Infinity}')],
    ['a trailing comma', exec.replace('"arguments":{}', '"arguments":{"a":1,}')],
    ['a comment', exec.replace('{', '{/* c */')],
    ['a single-quoted string', exec.replace('"exec"', "'exec'")],
  ])('a JSON-RPC-looking body that JSON.parse refuses (%s) is 400, even in auto mode', (_, body) => {
    const d = rejected(extract(post(body)))
    expect(d.status).toBe(400)
    expect(d.reason).toContain('invalid JSON')
  })

  it("JSON.parse's message is not quoted: it would carry part of the body", () => {
    const body = exec.replace('"arguments":{}', '"arguments":{"apiKey":"SECRET-1234",}')
    const d = rejected(extract(post(body)))
    expect(d.reason).toContain('invalid JSON')
    expect(d.reason).not.toContain('SECRET')
    const mislabelled = rejected(extract(post(body, { 'content-type': 'text/plain' })))
    expect(mislabelled.status).toBe(415)
    expect(mislabelled.reason).not.toContain('SECRET')
  })

  it('JSON that is not JSON-RPC and invalid JSON without JSON-RPC words stay with the other rules', () => {
    expect(extract(post('{"model":'))).toBeUndefined()
    expect(extract(post('{"a":NaN}'))).toBeUndefined()
  })

  const deep = exec.replace('"arguments":{}', `"arguments":{"d":${'['.repeat(70)}1${']'.repeat(70)}}`)
  it.each([
    ['nested too deep, text/plain', deep, { 'content-type': 'text/plain' }],
    ['nested too deep, a list of types', deep, { 'content-type': 'application/json, text/plain' }],
    ['invalid JSON, text/plain', exec.replace('{}', '{"n":NaN}'), { 'content-type': 'text/plain' }],
    ['cut short, text/plain', exec, { 'content-type': 'text/plain', 'x-envoy-auth-partial-body': 'true' }],
    ['byte order mark, no content type', `\ufeff${exec}`, {}],
  ])('a body that may be JSON-RPC under a non-JSON content type is 415 (%s)', (_, body, headers) => {
    const d = rejected(extract(post(body, headers as Record<string, string>)))
    expect(d.status).toBe(415)
  })

  it('keys of the arguments that differ only in case are 400, at any depth', () => {
    const bodies = [
      call('ask', { repoName: 'ok', RepoName: 'evil' }),
      // Neither key already folded; and a collision among several foldable keys.
      call('ask', { RepoName: 'ok', REPONAME: 'evil' }),
      call('ask', { Ab: 1, Cd: 2, Ef: 3, CD: 4 }),
      call('ask', { opts: { mode: 'a', MODE: 'b' } }),
      call('ask', { list: [{ x: 1 }, { y: 1, Y: 2 }] }),
      call('ask', { s: 1, '\u017f': 2 }),
      call('ask', { k: 1, '\u212a': 2 }),
      call('ask', { 'caf\u00e9': 1, 'CAF\u00c9': 2 }),
    ]
    for (const b of bodies) {
      const d = rejected(extract(post(b)))
      expect(d.status, b).toBe(400)
      expect(d.reason).toContain('differ only in case')
    }
    const prompt =
      '{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{"a":"1","A":"2"}}}'
    expect(rejected(extract(post(prompt))).status).toBe(400)
    // Distinct keys in any case are fine, and so are equal values under different keys.
    const fine = call('ask', { repoName: 'a', question: 'b', Nested: { Key: 1, other: { KEY2: 2 } } })
    expect(messages(extract(post(fine))).messages[0]?.tool?.arguments).toHaveProperty('repoName', 'a')
  })

  it('case-variant argument keys in filter metadata are 400 too', () => {
    const m = {
      jsonrpc: '2.0',
      method: 'tools/call',
      id: 1,
      params: { name: 'ask', arguments: { a: 1, A: 2 } },
    }
    const d = rejected(extract(input({ method: 'POST', path: '/mcp', ...meta('mcp_proxy', m) })))
    expect(d.reason).toContain('differ only in case')
  })
})

describe('extractMcp: filter metadata', () => {
  const name = { jsonrpc: '2.0', method: 'tools/call', id: 1, params: { name: 'ask_question' } }

  it.each(['mcp_proxy', 'envoy.filters.http.mcp'])('reads %s without a body', (ns) => {
    const m = messages(extract(input({ method: 'POST', path: '/mcp', ...meta(ns, name) })))
    expect(m.messages[0]).toMatchObject({ from: 'metadata', tool: { name: 'ask_question', arguments: {} } })
  })

  it('takes the arguments from the body when metadata lacks them', () => {
    const body = call('ask_question', { repoName: 'cncf/toc' })
    const m = messages(extract(post(body, JSON_CT, meta('mcp_proxy', name))))
    expect(m.messages[0]).toMatchObject({
      from: 'metadata+body',
      tool: { name: 'ask_question', arguments: { repoName: 'cncf/toc' } },
    })
  })

  const mismatches: Array<[string, Record<string, unknown>, string, string]> = [
    ['method', { ...name, method: 'tools/list' }, call('ask_question'), 'method'],
    ['tool name', name, call('read_wiki_structure'), 'name'],
    ['tool name case', name, call('Ask_question'), 'name'],
    ['id type', name, call('ask_question', {}, '1'), 'id'],
    [
      'arguments (older filters copy params)',
      { ...name, params: { name: 'ask_question', arguments: { repoName: 'kubernetes-sigs/gateway-api' } } },
      call('ask_question', { repoName: 'kubernetes/kubernetes' }),
      'arguments',
    ],
    [
      'uri',
      { jsonrpc: '2.0', method: 'resources/read', id: 1, params: { uri: 'a://1' } },
      '{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"a://2"}}',
      'uri',
    ],
    ['batch body', name, `[${call('ask_question')}]`, 'batch'],
  ]
  it.each(mismatches)('metadata and body disagree on %s -> 400', (_n, m, body, what) => {
    const d = rejected(extract(post(body, JSON_CT, meta('mcp_proxy', m))))
    expect(d.status).toBe(400)
    expect(d.reason).toContain(what)
  })

  it('matching arguments in metadata and body are accepted, whatever the key order', () => {
    const m = { ...name, params: { name: 'ask_question', arguments: { a: 1, b: [1, { c: 2 }] } } }
    const body =
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ask_question","arguments":{"b":[1,{"c":2}],"a":1}}}'
    expect(messages(extract(post(body, JSON_CT, meta('mcp_proxy', m)))).messages[0]?.from).toBe(
      'metadata+body',
    )
  })

  it('bad metadata and bad bodies next to metadata are 400', () => {
    const noName = { jsonrpc: '2.0', method: 'tools/call', id: 1, params: {} }
    expect(
      rejected(extract(input({ method: 'POST', path: '/mcp', ...meta('mcp_proxy', noName) }))).status,
    ).toBe(400)
    expect(rejected(extract(post('nope', JSON_CT, meta('mcp_proxy', name)))).status).toBe(400)
    expect(rejected(extract(post('{"a":1}', JSON_CT, meta('mcp_proxy', name)))).status).toBe(400)
  })
})

describe('mcpDenialBody', () => {
  const c = (o: Record<string, unknown>) =>
    messages(extract(post(JSON.stringify({ jsonrpc: '2.0', ...o })))).messages[0]!

  it('jsonrpc: kube-agentic-networking body with the same id and type', () => {
    expect(
      JSON.parse(mcpDenialBody(c({ id: 'x1', method: 'tools/call', params: { name: 'echo' } }), 'jsonrpc')),
    ).toEqual({
      jsonrpc: '2.0',
      id: 'x1',
      error: { code: 403, message: 'Access to this tool is forbidden.' },
    })
    expect(
      JSON.parse(mcpDenialBody(c({ id: 4, method: 'tools/call', params: { name: 'echo' } }), 'jsonrpc')).id,
    ).toBe(4)
  })

  it('hidden: agentgateway -32602 Unknown tool / prompt / resource, -32601 otherwise', () => {
    const t = JSON.parse(
      mcpDenialBody(c({ id: 1, method: 'tools/call', params: { name: 'echo' } }), 'hidden'),
    )
    expect(t.error).toEqual({ code: -32602, message: 'Unknown tool: echo' })
    const p = JSON.parse(mcpDenialBody(c({ id: 1, method: 'prompts/get', params: { name: 'p' } }), 'hidden'))
    expect(p.error).toEqual({ code: -32602, message: 'Unknown prompt: p' })
    const r = JSON.parse(
      mcpDenialBody(c({ id: 1, method: 'resources/read', params: { uri: 'u://x' } }), 'hidden'),
    )
    expect(r.error).toEqual({ code: -32602, message: 'Unknown resource: u://x' })
    const m = JSON.parse(mcpDenialBody(c({ id: 1, method: 'tools/list' }), 'hidden'))
    expect(m.error).toEqual({ code: -32601, message: 'Method not found: tools/list' })
  })
})

describe('client responses to server requests', () => {
  const reply = (body: unknown, filterMetadata?: Record<string, object>) =>
    post(JSON.stringify(body), JSON_CT, filterMetadata ? { metadata: filterMetadata } : {})

  test('a result or an error answer is an rpc.response message with its id', () => {
    for (const msg of [
      { jsonrpc: '2.0', id: 'srv-1', result: { content: { type: 'text', text: 'hi' } } },
      { jsonrpc: '2.0', id: 4, error: { code: -1, message: 'user declined' } },
    ]) {
      const r = extractMcp(reply(msg), DEFAULT_MCP_SETTINGS, 64) as McpMessages
      expect(r.messages[0]).toMatchObject({ method: MCP_RESPONSE_METHOD, id: msg.id })
    }
  })

  test('metadata without a method defers to the body for responses', () => {
    const r = extractMcp(
      reply({ jsonrpc: '2.0', id: 9, result: {} }, { mcp_proxy: { jsonrpc: '2.0', id: 9 } }),
      DEFAULT_MCP_SETTINGS,
      64,
    )
    expect((r as McpMessages).messages[0]).toMatchObject({
      method: MCP_RESPONSE_METHOD,
      from: 'metadata+body',
    })
    const bad = extractMcp(
      reply({ jsonrpc: '2.0', id: 9, result: {} }, { mcp_proxy: { jsonrpc: '2.0', id: 8 } }),
      DEFAULT_MCP_SETTINGS,
      64,
    )
    expect(bad).toMatchObject({ allowed: false, status: 400 })
  })

  test.each([
    [{ jsonrpc: '2.0', id: 1, result: {}, error: { code: 1 } }, /exactly one of result and error/],
    [{ jsonrpc: '2.0', id: { a: 1 }, result: {} }, /string, integer or null id/],
    [{ jsonrpc: '2.0', id: 1, method: 'rpc.response' }, /reserved/],
    [{ jsonrpc: '2.0', id: 1, method: 'rpc.discover' }, /reserved/],
  ])('%j is 400', (msg, reason) => {
    const d = extractMcp(reply(msg), DEFAULT_MCP_SETTINGS, 64) as Decision
    expect(d).toMatchObject({ allowed: false, status: 400 })
    expect(d.reason).toMatch(reason)
  })
})

// Issue 15 ("deny means deny"), class 8: JSON-RPC shapes refused during extraction, so that a
// policy of deny rules alone cannot let them through to a server that reads them its own way.
describe('extractMcp: shapes refused whatever the rules', () => {
  const response = (id: unknown = 's1') => JSON.stringify({ jsonrpc: '2.0', id, result: {} })

  it('a nested batch is 400, also when no element of the outer array is a message', () => {
    for (const body of [`[[${call('exec')}]]`, `[${call('a')},[${call('exec')}]]`, `[[[${call('exec')}]]]`]) {
      const d = rejected(extract(post(body)))
      expect(d.status, body).toBe(400)
      expect(d.reason).toContain('nested batch')
    }
    // Under a non-JSON content type it is JSON-RPC all the same: 415.
    expect(rejected(extract(post(`[[${call('exec')}]]`, { 'content-type': 'text/plain' }))).status).toBe(415)
  })

  it('responses next to requests in one client batch are 400; a lone response or a batch of responses is not', () => {
    for (const body of [`[${call('a')},${response()}]`, `[${response()},${call('a')}]`]) {
      const d = rejected(extract(post(body)))
      expect(d.status).toBe(400)
      expect(d.reason).toContain('mixes requests and responses')
    }
    const errorAnswer = JSON.stringify({ jsonrpc: '2.0', id: 2, error: { code: -1, message: 'declined' } })
    expect(rejected(extract(post(`[${errorAnswer},{"jsonrpc":"2.0","method":"ping","id":3}]`))).status).toBe(
      400,
    )
    // A client answering the server's elicitation/sampling request: allowed as before.
    expect(messages(extract(post(response()))).messages[0]?.method).toBe(MCP_RESPONSE_METHOD)
    const answers = messages(extract(post(`[${response('s1')},${response('s2')}]`)))
    expect(answers.messages.map((m) => m.method)).toEqual([MCP_RESPONSE_METHOD, MCP_RESPONSE_METHOD])
  })

  it('a batch longer than mcp.maxBatch (default 32) is 400', () => {
    const batch = (n: number) => `[${Array.from({ length: n }, (_, i) => call('a', {}, i + 1)).join(',')}]`
    expect(DEFAULT_MCP_SETTINGS.maxBatch).toBe(32)
    expect(messages(extract(post(batch(32)))).messages).toHaveLength(32)
    const d = rejected(extract(post(batch(33))))
    expect(d.status).toBe(400)
    expect(d.reason).toContain('a batch of 33 messages (mcp.maxBatch is 32)')
    expect(messages(extract(post(batch(2)), { maxBatch: 2 })).messages).toHaveLength(2)
    expect(rejected(extract(post(batch(3)), { maxBatch: 2 })).status).toBe(400)
  })

  const empty = (
    body: string | undefined,
    headers: Record<string, string>,
    extra: Record<string, unknown> = {},
  ) => input({ method: 'POST', path: '/mcp', headers, ...(body === undefined ? {} : { body }), ...extra })
  const name = { jsonrpc: '2.0', method: 'tools/call', id: 1, params: { name: 'ask_question' } }

  it.each<[string, CheckInput, Partial<McpSettings>]>([
    [
      'whitespace next to filter metadata',
      empty(' \n\t', { 'content-type': 'text/plain' }, meta('mcp_proxy', name)),
      {},
    ],
    ['whitespace with a session id', empty('  ', { ...JSON_CT, 'mcp-session-id': 's-1' }), {}],
    [
      'a byte order mark with the protocol version',
      empty('\ufeff', { ...JSON_CT, 'mcp-protocol-version': '2025-11-25' }),
      {},
    ],
    [
      'no body, content-length 0, session id',
      empty(undefined, { 'content-length': '0', 'mcp-session-id': 's-1' }),
      {},
    ],
    ['no body with enabled: true', empty(undefined, JSON_CT), { enabled: true }],
    [
      'whitespace, text/plain, enabled: true',
      empty(' ', { 'content-type': 'text/plain' }),
      { enabled: true },
    ],
  ])('an MCP POST with an empty body is 400 (%s)', (_label, i, settings) => {
    const d = rejected(extract(i, settings))
    expect(d.status).toBe(400)
    expect(d.reason).toContain('empty body')
  })

  it('bodiless GET and DELETE of a session, other empty POSTs and metadata without a forwarded body stay as they were', () => {
    const session = { 'mcp-session-id': 's-1', 'mcp-protocol-version': '2025-11-25' }
    expect(
      extract(input({ method: 'GET', path: '/mcp', headers: { ...session, accept: 'text/event-stream' } })),
    ).toBe(undefined)
    expect(extract(input({ method: 'DELETE', path: '/mcp', headers: session }))).toBeUndefined()
    // A JSON API's empty POST: nothing says it is MCP.
    expect(extract(empty(undefined, { ...JSON_CT, 'content-length': '0' }))).toBeUndefined()
    expect(extract(empty('  ', JSON_CT))).toBeUndefined()
    // A session POST whose body Envoy did not forward (its length is not 0): not known to be empty.
    expect(extract(empty(undefined, { 'content-length': '120', 'mcp-session-id': 's-1' }))).toBeUndefined()
    // Envoy's metadata without with_request_body: the metadata describes the call.
    expect(messages(extract(empty(undefined, {}, meta('mcp_proxy', name)))).messages[0]?.tool?.name).toBe(
      'ask_question',
    )
  })

  const named = (method: string, n: string) =>
    JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: { name: n, arguments: {} } })

  it.each([
    ['empty', '', 'is empty'],
    ['129 characters', 'a'.repeat(129), 'is longer than 128'],
    ['a space', 'admin tool', 'has a character other than'],
    ['a slash', 'admin/tool', 'has a character other than'],
    ['a control character', 'admin\u0000tool', 'has a character other than'],
    ['a trailing newline', 'admin_tool\n', 'has a character other than'],
    ['a Cyrillic a', '\u0430dmin_tool', 'has a character other than'],
    ['a fullwidth letter', '\uff41dmin_tool', 'has a character other than'],
    ['a Kelvin sign', 'as\u212a', 'has a character other than'],
  ])('a tool or prompt name with %s is 400', (_label, n, why) => {
    for (const method of ['tools/call', 'prompts/get']) {
      const d = rejected(extract(post(named(method, n))))
      expect(d.status).toBe(400)
      expect(d.reason).toContain(`params.name ${why}`)
    }
    const m = { jsonrpc: '2.0', method: 'tools/call', id: 1, params: { name: n } }
    expect(rejected(extract(input({ method: 'POST', path: '/mcp', ...meta('mcp_proxy', m) }))).status).toBe(
      400,
    )
  })

  it('names within the rule pass, case kept: Admin_Tool and admin_tool are different tools', () => {
    for (const n of [
      'a',
      'a'.repeat(128),
      'Admin_Tool',
      'admin_tool',
      'DATA_EXPORT_v2',
      'admin.tools.list',
      'get-sum',
    ]) {
      expect(messages(extract(post(named('tools/call', n)))).messages[0]?.tool?.name).toBe(n)
      expect(messages(extract(post(named('prompts/get', n)))).messages[0]?.prompt?.name).toBe(n)
    }
  })

  it('an empty resource uri is 400', () => {
    for (const method of ['resources/read', 'resources/subscribe', 'resources/unsubscribe']) {
      const d = rejected(
        extract(post(JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: { uri: '' } }))),
      )
      expect(d.status).toBe(400)
      expect(d.reason).toContain('params.uri is empty')
    }
  })
})

describe('shapes refused under a policy of deny rules only', () => {
  // Without the refusals in extraction, nothing in this policy would stop these requests.
  const policy = {
    mcp: { maxBatch: 4 },
    rules: [{ id: 'no-evil', action: 'deny', match: { headers: [{ name: 'x-evil', exact: '1' }] } }],
  }
  const decide = async (raw: Record<string, unknown>) => {
    const engine = await createEngine(policy)
    try {
      return await engine.decide(raw)
    } finally {
      engine.close()
    }
  }
  const rpcPost = (body: string, headers: Record<string, string> = {}) => ({
    method: 'POST',
    path: '/mcp',
    headers: { ...JSON_CT, ...headers },
    body,
  })

  it.each([
    ['a nested batch', rpcPost(`[[${call('exec')}]]`), 'nested batch'],
    [
      'a request batch carrying a response',
      rpcPost(`[${call('exec')},{"jsonrpc":"2.0","id":9,"result":{}}]`),
      'mixes',
    ],
    [
      'a batch over mcp.maxBatch',
      rpcPost(`[${[1, 2, 3, 4, 5].map((i) => call('a', {}, i)).join(',')}]`),
      'mcp.maxBatch is 4',
    ],
    ['an empty session POST', rpcPost(' ', { 'mcp-session-id': 's-1' }), 'empty body'],
    ['a tool name with a space', rpcPost(call('exec ')), 'params.name'],
  ])('%s is 400 malformed_input', async (_label, raw, why) => {
    const d = await decide(raw)
    expect(d).toMatchObject({ allowed: false, status: 400, code: 'malformed_input' })
    expect(d.reason).toContain(why)
  })

  it('the policy still allows what it does not deny', async () => {
    expect((await decide(rpcPost(call('exec')))).allowed).toBe(true)
    expect(
      (await decide({ method: 'GET', path: '/mcp', headers: { 'mcp-session-id': 's-1' } })).allowed,
    ).toBe(true)
  })

  it('maxBatch must be a positive integer', async () => {
    for (const maxBatch of [0, 1.5, '8']) {
      const err = await createEngine({ ...policy, mcp: { maxBatch } }).catch((e: unknown) => e)
      expect(err, String(maxBatch)).toBeInstanceOf(PolicyError)
    }
  })
})
