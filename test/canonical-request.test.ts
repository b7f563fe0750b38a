/**
 * Issue 15, "deny means deny": each class of encoding that once slipped past a rule, decided
 * in-process through `decide()` with `match` and CEL rules. The generated corpus over every class
 * is test/canonical-variants.test.ts.
 */
import { createCelEvaluator } from '@verdict/cel-adapter'
import { createEngine, type Decision, type Engine } from '@verdict/core'
import { beforeAll, describe, expect, it } from 'vitest'

const engine = (policy: string): Promise<Engine> =>
  createEngine(policy, { evaluators: [createCelEvaluator()] })

type Req = Record<string, unknown>
const req = (over: Req = {}): Req => ({ method: 'GET', path: '/', headers: {}, ...over })
const check = (http: Req, attrs: Req = {}): Req => ({
  attributes: { request: { http: { method: 'GET', path: '/', ...http } }, ...attrs },
})

function expectRefused(d: Decision, detail: string): void {
  expect(d, d.reason).toMatchObject({
    allowed: false,
    status: 400,
    code: 'malformed_input',
    detailCode: detail,
  })
}

describe('1. headers with several values', () => {
  let viaMatch: Engine
  let viaCel: Engine
  let viaValues: Engine
  let viaAll: Engine
  beforeAll(async () => {
    viaMatch = await engine(`
rules:
  - { id: no-admin, action: deny, match: { headers: [{ name: x-role, exact: admin }] } }
  - { id: rest, action: allow, match: { always: true } }
`)
    viaCel = await engine(`
rules:
  - { id: no-admin, action: deny, cel: 'request.headers["x-role"] == "admin"' }
  - { id: ua, action: deny, cel: '"user-agent" in request.headers && request.headers["user-agent"].contains("evilbot")' }
  - { id: rest, action: allow, match: { always: true } }
`)
    viaValues = await engine(`
rules:
  - { id: no-admin, action: deny, cel: 'request.headerValues["x-role"].exists(v, v == "admin")' }
  - { id: rest, action: allow, match: { always: true } }
`)
    viaAll = await engine(`
rules:
  - { id: scan, action: deny, cel: 'request.headers.exists(k, request.headers[k] == "admin")' }
  - { id: rest, action: allow, match: { always: true } }
`)
  })

  const lists: Array<[string, Req]> = [
    ['comma-joined', req({ headers: { 'x-role': 'user,admin' } })],
    ['comma and space', req({ headers: { 'x-role': 'user, admin' } })],
    ['a list value', req({ headers: { 'x-role': ['user', 'admin'] } })],
    ['keys that differ in case', req({ headers: { 'x-role': 'user', 'X-Role': 'admin' } })],
    [
      'repeated header_map entries',
      check({
        headerMap: {
          headers: [
            { key: 'x-role', value: 'user' },
            { key: 'x-role', rawValue: Buffer.from('admin').toString('base64') },
          ],
        },
      }),
    ],
    ['Envoy’s joined headers map', check({ headers: { 'x-role': 'user,admin' } })],
  ]

  it.each(lists)('%s: 400 ambiguous_header for match and CEL rules that read one value', async (_, r) => {
    expectRefused(await viaMatch.decide(r), 'ambiguous_header')
    expectRefused(await viaCel.decide(r), 'ambiguous_header')
    expectRefused(await viaAll.decide(r), 'ambiguous_header')
  })

  it.each(lists)('%s: a rule over every value denies (403), not refuses', async (_, r) => {
    expect(await viaValues.decide(r)).toMatchObject({ allowed: false, status: 403, rule: 'no-admin' })
  })

  it('one value is decided as before', async () => {
    for (const e of [viaMatch, viaCel, viaValues, viaAll]) {
      expect((await e.decide(req({ headers: { 'x-role': 'admin' } }))).allowed).toBe(false)
      expect((await e.decide(req({ headers: { 'x-role': 'user' } }))).allowed).toBe(true)
    }
  })

  it('a header no rule reads may have several values', async () => {
    const r = req({ headers: { accept: 'text/html, application/json', 'x-role': 'user' } })
    expect((await viaMatch.decide(r)).allowed).toBe(true)
    expect((await viaCel.decide(r)).allowed).toBe(true)
    // A rule that reads the map as a whole reads every header.
    expectRefused(await viaAll.decide(r), 'ambiguous_header')
  })

  it('a comma inside a user-agent is one value; two user-agent lines are two', async () => {
    const chrome = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0'
    expect((await viaCel.decide(req({ headers: { 'user-agent': chrome, 'x-role': 'user' } }))).allowed).toBe(
      true,
    )
    expect(
      await viaCel.decide(req({ headers: { 'user-agent': `${chrome} evilbot`, 'x-role': 'user' } })),
    ).toMatchObject({
      allowed: false,
      rule: 'ua',
    })
    expectRefused(
      await viaCel.decide(req({ headers: { 'user-agent': [chrome, 'evilbot'], 'x-role': 'user' } })),
      'ambiguous_header',
    )
  })

  it('presence tests do not care how many values there are', async () => {
    const e = await engine(`
rules:
  - { id: has, action: allow, cel: 'has(request.headers.xrole) && "x-role" in request.headers' }
  - { id: present, action: allow, match: { headers: [{ name: x-role, present: true }] } }
`)
    const d = await e.decide(req({ headers: { 'x-role': 'user,admin', xrole: 'a' } }))
    expect(d.allowed, d.reason).toBe(true)
  })
})

describe('2. numbers JSON cannot hold', () => {
  let e: Engine
  beforeAll(async () => {
    e = await engine(`
rules:
  - { id: small, action: allow, cel: 'request.json.amount <= 1000.0' }
`)
  })
  const json = (body: string): Req =>
    req({ method: 'POST', headers: { 'content-type': 'application/json' }, body })

  it.each([
    ['-1e400', '{"amount": -1e400}'],
    ['1E999 nested', '{"amount": 5, "x": [{"y": 1E999}]}'],
    ['400 digits', `{"amount": 1, "n": -${'9'.repeat(400)}}`],
  ])('%s is 400 non_finite_number, whatever the rule said', async (_, body) => {
    expectRefused(await e.decide(json(body)), 'non_finite_number')
  })

  it('finite numbers with exponents are decided', async () => {
    expect((await e.decide(json('{"amount": 1e3}'))).allowed).toBe(true)
    expect((await e.decide(json('{"amount": 1.5e3}'))).allowed).toBe(false)
    expect((await e.decide(json('{"amount": 5, "s": "1e400"}'))).allowed).toBe(true)
  })
})

describe('3. host', () => {
  let e: Engine
  beforeAll(async () => {
    e = await engine(`
rules:
  - { id: no-admin-match, action: deny, match: { hosts: [{ exact: admin.example.com }] } }
  - { id: no-admin-cel, action: deny, cel: 'request.host == "api.example.com"' }
  - { id: rest, action: allow, match: { always: true } }
`)
  })

  it.each([
    'ADMIN.example.com',
    'admin.example.com.',
    'admin.example.com:443',
    'Admin.Example.Com.:80',
    'admin.example.com:0443',
  ])('%s is the denied host', async (host) => {
    expect(await e.decide(req({ headers: { host } }))).toMatchObject({
      allowed: false,
      rule: 'no-admin-match',
    })
    expect(await e.decide(check({ host, headers: { ':authority': host } }))).toMatchObject({
      allowed: false,
      rule: 'no-admin-match',
    })
    const api = host.replace(/admin/i, 'api')
    expect(await e.decide(req({ headers: { host: api } }))).toMatchObject({
      allowed: false,
      rule: 'no-admin-cel',
    })
  })

  it('a default port stays only when the scheme says it is not the default', async () => {
    const d = await e.decide(check({ host: 'admin.example.com:443', scheme: 'http' }))
    expect(d.allowed).toBe(true)
    const d2 = await e.decide(check({ host: 'admin.example.com:80', scheme: 'http' }))
    expect(d2).toMatchObject({ allowed: false, rule: 'no-admin-match' })
  })

  it('host fields that disagree are 400', async () => {
    expectRefused(
      await e.decide(check({ host: 'www.example.com', headers: { ':authority': 'admin.example.com' } })),
      'invalid_host',
    )
    expectRefused(
      await e.decide(req({ headers: { host: 'www.example.com', ':authority': 'admin.example.com' } })),
      'invalid_host',
    )
    expectRefused(
      await e.decide(req({ headers: { host: ['www.example.com', 'admin.example.com'] } })),
      'invalid_host',
    )
    // The same host spelled two ways agrees.
    const same = await e.decide(
      check({ host: 'WWW.example.com.', headers: { ':authority': 'www.example.com:443' } }),
    )
    expect(same.allowed, same.reason).toBe(true)
  })

  it.each([
    'admin.example.com@evil',
    'admin.example.com/x',
    'a b',
    'admin%2eexample.com',
    'caf\u00e9.example',
    '.x',
    'a..b',
  ])('%j is not an authority: 400', async (host) => {
    expectRefused(await e.decide(req({ headers: { host } })), 'invalid_host')
  })

  it('IPv6 literals are lower-cased', async () => {
    const v6 = await engine(`
rules:
  - { id: v6, action: deny, match: { hosts: [{ exact: "[::1]" }] } }
  - { id: rest, action: allow, match: { always: true } }
`)
    expect((await v6.decide(req({ headers: { host: '[::1]:443' } }))).allowed).toBe(false)
    const a = await engine(`
rules:
  - { id: v6, action: deny, cel: 'request.host == "[fe80::a]"' }
  - { id: rest, action: allow, match: { always: true } }
`)
    expect((await a.decide(req({ headers: { host: '[FE80::A]' } }))).allowed).toBe(false)
  })
})

describe('4. paths', () => {
  let e: Engine
  beforeAll(async () => {
    e = await engine(`
rules:
  - { id: no-admin, action: deny, match: { paths: [{ prefix: /admin }] } }
  - { id: rest, action: allow, match: { always: true } }
`)
  })

  it.each([
    ['/public/%252e%252e/admin', 'invalid_path'],
    ['/public%252fadmin', 'invalid_path'],
    ['/a%2541', 'invalid_path'],
    ['/admin\u00e9', 'invalid_path'],
    ['/ad min', 'invalid_path'],
    ['/a\tb', 'invalid_path'],
    ['/a%0ab', 'invalid_path'],
    ['/a%7f', 'invalid_path'],
  ])('%j is 400 %s', async (path, detail) => {
    expectRefused(await e.decide(req({ path })), detail)
  })

  it('a literal percent sign survives one decoding', async () => {
    const d = await e.decide(req({ path: '/files/100%25' }))
    expect(d.allowed, d.reason).toBe(true)
  })

  it('the asterisk form is for OPTIONS only', async () => {
    expect((await e.decide(req({ method: 'OPTIONS', path: '*' }))).allowed).toBe(true)
    expectRefused(await e.decide(req({ method: 'GET', path: '*' })), 'invalid_path')
  })
})

describe('5. method', () => {
  let e: Engine
  beforeAll(async () => {
    e = await engine(`
rules:
  - { id: no-delete, action: deny, match: { methods: [DELETE] } }
  - { id: no-delete-cel, action: deny, cel: 'request.method == "PUT"' }
  - { id: rest, action: allow, match: { always: true } }
`)
  })

  it.each(['DELETE ', ' DELETE', 'DEL\u0000ETE', 'DÉLETE', 'GET/x', ''])(
    '%j is not a token: 400',
    async (m) => {
      const d = await e.decide(req({ method: m }))
      if (m === '')
        expect(d.allowed).toBe(true) // an absent method reads as GET in the plain shape
      else expectRefused(d, 'invalid_method')
    },
  )

  it('a lower-case method is the upper-case method', async () => {
    expect(await e.decide(req({ method: 'delete' }))).toMatchObject({ allowed: false, rule: 'no-delete' })
    expect(await e.decide(check({ method: 'pUt' }))).toMatchObject({ allowed: false, rule: 'no-delete-cel' })
  })

  it.each(['x-http-method-override', 'X-HTTP-Method', 'x-method-override'])('%s is refused', async (h) => {
    expectRefused(await e.decide(req({ method: 'POST', headers: { [h]: 'DELETE' } })), 'method_override')
  })
})

describe('6. pseudo-headers against fields', () => {
  let e: Engine
  beforeAll(async () => {
    e = await engine(`
rules:
  - { id: rest, action: allow, match: { always: true } }
`)
  })

  it('agreeing pseudo-headers pass', async () => {
    const d = await e.decide(
      check({
        method: 'POST',
        path: '/a?b=1',
        scheme: 'https',
        host: 'x.example',
        headers: { ':method': 'POST', ':path': '/a?b=1', ':scheme': 'https', ':authority': 'x.example' },
      }),
    )
    expect(d.allowed, d.reason).toBe(true)
  })

  it.each([
    [{ ':method': 'DELETE' }, 'pseudo_header_mismatch'],
    [{ ':path': '/admin' }, 'pseudo_header_mismatch'],
    [{ ':scheme': 'http' }, 'pseudo_header_mismatch'],
    [{ ':authority': 'admin.example' }, 'invalid_host'],
  ])('%j disagreeing is 400 %s', async (headers, detail) => {
    const d = await e.decide(
      check({ method: 'POST', path: '/a', scheme: 'https', host: 'x.example', headers }),
    )
    expectRefused(d, detail)
  })
})

describe('7. underscore header names', () => {
  const policy = (action: string) => `
input: { headersWithUnderscores: ${action} }
rules:
  - { id: no-admin, action: deny, cel: 'request.headers["x-role"] == "admin"' }
  - { id: see, action: deny, cel: '"x_role" in request.headers' }
  - { id: rest, action: allow, match: { always: true } }
`
  const r = req({ headers: { 'x-role': 'user', x_role: 'admin' } })

  it('reject (default): 400', async () => {
    const e = await engine(policy('reject'))
    expectRefused(await e.decide(r), 'underscore_header')
    const byDefault = await engine('rules: [{ id: a, action: allow, match: { always: true } }]')
    expectRefused(await byDefault.decide(check({ headers: { x_role: 'admin' } })), 'underscore_header')
  })

  it('drop: rules do not see it and the allow removes it upstream', async () => {
    const e = await engine(policy('drop'))
    const d = await e.decide(r)
    expect(d.allowed, d.reason).toBe(true)
    expect(d.headersToRemove).toContain('x_role')
  })

  it('allow: rules see it', async () => {
    const e = await engine(policy('allow'))
    expect(await e.decide(r)).toMatchObject({ allowed: false, rule: 'see' })
  })
})

describe('9. body framing', () => {
  let e: Engine
  beforeAll(async () => {
    e = await engine(`
rules:
  - { id: rest, action: allow, match: { always: true } }
`)
  })
  const body = '{"a":"é"}' // 10 bytes in UTF-8

  it('a content-length equal to the body received passes', async () => {
    expect((await e.decide(req({ method: 'POST', headers: { 'content-length': '10' }, body }))).allowed).toBe(
      true,
    )
    expect((await e.decide(check({ method: 'POST', size: '10', body }))).allowed).toBe(true)
  })

  it.each([
    ['a larger content-length', req({ method: 'POST', headers: { 'content-length': '4096' }, body })],
    ['a smaller content-length', req({ method: 'POST', headers: { 'content-length': '3' }, body })],
    ['a list content-length', req({ method: 'POST', headers: { 'content-length': '10, 10' }, body })],
    ['a CheckRequest size', check({ method: 'POST', size: '4096', body })],
    [
      'raw_body with a larger content-length',
      check({
        method: 'POST',
        headers: { 'content-length': '99' },
        rawBody: Buffer.from(body).toString('base64'),
      }),
    ],
    [
      'content-length and transfer-encoding',
      req({ method: 'POST', headers: { 'content-length': '10', 'transfer-encoding': 'chunked' }, body }),
    ],
  ])('%s is a cut-short body: 400', async (_, r) => {
    expectRefused(await e.decide(r), 'body_length_mismatch')
  })

  it('Envoy’s partial-body header, or no body at all, is not a mismatch', async () => {
    const partial = check({
      method: 'POST',
      headers: { 'content-length': '4096', 'x-envoy-auth-partial-body': 'true' },
      body,
    })
    expect((await e.decide(partial)).allowed).toBe(true)
    expect((await e.decide(check({ method: 'POST', headers: { 'content-length': '4096' } }))).allowed).toBe(
      true,
    )
  })
})

describe('11. host-supplied bodies JSON cannot represent', () => {
  let e: Engine
  beforeAll(async () => {
    e = await engine(`
rules:
  - { id: rest, action: allow, match: { always: true } }
`)
  })

  it.each([
    ['a function', { a: () => 1 }],
    ['a symbol', { a: Symbol('x') }],
    ['undefined in a list', { a: [1, undefined] }],
    // biome-ignore lint/suspicious/noSparseArray: a hole is the case under test
    ['a hole', { a: [1, , 3] }],
    ['NaN', { a: Number.NaN }],
    ['Infinity deep', { a: { b: [{ c: Number.NEGATIVE_INFINITY }] } }],
    ['a BigInt', { a: 1n }],
    ['a Date', { a: new Date(0) }],
    ['a toJSON method', { toJSON: () => ({ admin: true }) }],
  ])('%s: 400 unserializable_body', async (_, body) => {
    expectRefused(
      await e.decide(req({ method: 'POST', headers: { 'content-type': 'application/json' }, body })),
      'unserializable_body',
    )
  })

  it('plain values and an undefined property pass', async () => {
    const d = await e.decide(req({ method: 'POST', body: { a: [1, 'x', null, { b: true }], c: undefined } }))
    expect(d.allowed, d.reason).toBe(true)
  })
})

describe('12. header_map raw_value bytes', () => {
  it('obs-text bytes are read one byte per character, as the HTTP listener reads them', async () => {
    const e = await engine(`
rules:
  - { id: cafe, action: allow, cel: 'request.headers["x-place"] == "caf\\u00e9"' }
`)
    const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]).toString('base64')
    const d = await e.decide(check({ headerMap: { headers: [{ key: 'x-place', rawValue: latin1 }] } }))
    expect(d.allowed, d.reason).toBe(true)
  })

  it('a malformed entry names header_map, Envoy’s field', async () => {
    const e = await engine('rules: [{ id: a, action: allow, match: { always: true } }]')
    const d = await e.decide(check({ headerMap: { headers: [{ value: 'x' }] } }))
    expect(d.reason).toContain('attributes.request.http.header_map.headers[0].key')
  })
})

describe('2. numbers JSON cannot hold, in MCP arguments', () => {
  it('a tools/call with -1e400 is 400 under a deny-list policy', async () => {
    const e = await engine(`
rules:
  - { id: no-big-transfer, action: deny, cel: 'has(mcp.tool) && mcp.tool.arguments.amount > 1000.0' }
  - { id: rest, action: allow, match: { always: true } }
`)
    const call = (amount: string): Req =>
      req({
        method: 'POST',
        path: '/mcp',
        headers: { 'content-type': 'application/json' },
        body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"transfer","arguments":{"amount":${amount}}}}`,
      })
    expectRefused(await e.decide(call('-1e400')), 'non_finite_number')
    expectRefused(await e.decide(call(`1${'0'.repeat(400)}`)), 'non_finite_number')
    expect((await e.decide(call('5e2'))).allowed).toBe(true)
    expect(await e.decide(call('5e3'))).toMatchObject({ allowed: false, rule: 'no-big-transfer' })
  })
})

describe('found by the generated corpus', () => {
  let e: Engine
  beforeAll(async () => {
    e = await engine(`
rules:
  - { id: no-admin, action: deny, match: { headers: [{ name: x-role, exact: admin }] } }
  - { id: no-admin-path, action: deny, cel: 'request.path.startsWith("/admin")' }
  - { id: small, action: deny, cel: 'has(request.json) && has(request.json.amount) && request.json.amount > 1000' }
  - { id: rest, action: allow, match: { always: true } }
`)
  })

  it.each([' admin', 'admin ', '\tadmin', 'admin\t '])(
    'whitespace around a value is not part of it: %j',
    async (v) => {
      expect(await e.decide(req({ headers: { 'x-role': v } }))).toMatchObject({
        allowed: false,
        rule: 'no-admin',
      })
      expect(await e.decide(check({ headerMap: { headers: [{ key: 'x-role', value: v }] } }))).toMatchObject({
        allowed: false,
        rule: 'no-admin',
      })
    },
  )

  it.each(['/;x/admin/a', '/;/admin', '/x/;/admin'])(
    '%s: an empty segment behind a path parameter is 400',
    async (path) => {
      const d = await e.decide(req({ path }))
      expect(d).toMatchObject({ allowed: false, status: 400 })
    },
  )

  it('a header_map entry whose value and raw_value differ is 400', async () => {
    const raw = Buffer.from('admin').toString('base64')
    const d = await e.decide(
      check({ headerMap: { headers: [{ key: 'x-role', value: 'user', rawValue: raw }] } }),
    )
    expect(d).toMatchObject({ allowed: false, status: 400 })
    const same = await e.decide(
      check({
        headerMap: {
          headers: [{ key: 'x-role', value: 'user', rawValue: Buffer.from('user').toString('base64') }],
        },
      }),
    )
    expect(same.allowed, same.reason).toBe(true)
  })

  it('a JSON body with a key twice is 400 duplicate_json_key when a rule reads it', async () => {
    const json = (body: string): Req =>
      req({ method: 'POST', headers: { 'content-type': 'application/json' }, body })
    expectRefused(await e.decide(json('{"amount":5000,"amount":1}')), 'duplicate_json_key')
    expectRefused(await e.decide(json('{"a":{"amount":1,"\\u0061mount":2}}')), 'duplicate_json_key')
    expect((await e.decide(json('{"amount":1,"a":{"amount":2}}'))).allowed).toBe(true)
  })
})

describe('bytes are the body as sent', () => {
  it('a raw_body starting with a byte order mark keeps it, so its content-length matches', async () => {
    const e = await engine(`
rules:
  - { id: a, action: allow, cel: 'request.json.ok == true' }
`)
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"ok":true}')])
    const d = await e.decide(
      check({
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(bytes.length) },
        rawBody: bytes.toString('base64'),
      }),
    )
    expect(d.allowed, d.reason).toBe(true)
  })
})
