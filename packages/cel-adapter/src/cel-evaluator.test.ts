import { createEngine, PolicyError } from '@verdict/core'
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from 'jose'
import { beforeAll, describe, expect, test } from 'vitest'
import { createCelEvaluator } from './index.js'

const cel = createCelEvaluator()

type Rule = Record<string, unknown>

async function decide(rules: Rule[], input: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const engine = await createEngine({ ...extra, rules }, { evaluators: [cel] })
  try {
    return await engine.decide(input)
  } finally {
    engine.close()
  }
}

/** A request to `/` with the given headers (lower-case names). */
const get = (headers: Record<string, string> = {}, more: Record<string, unknown> = {}) => ({
  method: 'GET',
  path: '/',
  headers,
  ...more,
})

/** A JSON-RPC `tools/call` POST, which core reads as an MCP call. */
function toolCall(name: string, args: Record<string, unknown>, id: number | string = 1) {
  return {
    method: 'POST',
    path: '/mcp',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }),
  }
}

// Seed 003: agentgateway's JWT rules, verbatim, with real ES256 tokens verified by core.
describe('seed 003: JWT claims', () => {
  let key: CryptoKey
  let jwks: unknown
  const ISSUER = 'https://issuer.example'
  beforeAll(async () => {
    const pair = await generateKeyPair('ES256')
    key = pair.privateKey
    jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }] }
  })
  const token = (claims: Record<string, unknown>) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(key)
  const auth = () => ({
    authentication: { jwt: { mode: 'Optional', providers: [{ issuer: ISSUER, jwks: { inline: jwks } }] } },
  })

  const alice = { sub: 'alice', email: 'alice@company.com', roles: ['admin', 'dev'] }
  const bob = { sub: 'bob', email: 'bob@company.com', roles: ['dev'] }
  const mallory = { sub: 'mallory', email: 'mallory@company.com.evil.example', roles: ['admin'] }
  const rows: Array<[string, Record<string, unknown> | undefined, boolean]> = [
    ['jwt.sub == "alice"', alice, true],
    ['jwt.sub == "alice"', bob, false],
    ['jwt.sub == "alice"', undefined, false],
    ['jwt.email.endsWith("@company.com")', alice, true],
    ['jwt.email.endsWith("@company.com")', mallory, false],
    ['jwt.email.endsWith("@company.com")', { sub: 'x' }, false],
    ['"admin" in jwt.roles', alice, true],
    ['"admin" in jwt.roles', bob, false],
    ['"admin" in jwt.roles', undefined, false],
  ]
  test.each(rows)('allow %s for %j -> %s', async (expr, claims, allowed) => {
    const headers = claims === undefined ? {} : { authorization: `Bearer ${await token(claims)}` }
    const d = await decide([{ id: 'r', action: 'allow', cel: expr }], get(headers), auth())
    expect(d.allowed).toBe(allowed)
  })

  test('has(jwt.sub) is false without a token and true with one', async () => {
    const rules = [{ id: 'r', action: 'allow', cel: '!has(jwt.sub)' }]
    expect((await decide(rules, get(), auth())).allowed).toBe(true)
    const headers = { authorization: `Bearer ${await token(alice)}` }
    expect((await decide(rules, get(headers), auth())).allowed).toBe(false)
  })

  test('integer claims are CEL ints: timestamp(jwt.exp) is in the future', async () => {
    const headers = { authorization: `Bearer ${await token(alice)}` }
    const rules = [{ id: 'r', action: 'allow', cel: 'timestamp(jwt.exp) > timestamp(jwt.iat)' }]
    expect((await decide(rules, get(headers), auth())).allowed).toBe(true)
  })
})

// Seed 001: an argument-level rule on MCP tool calls (agentgateway cannot see arguments).
describe('seed 001: MCP tool arguments', () => {
  const rule = {
    id: 'deepwiki-repos',
    action: 'allow',
    cel:
      'mcp.tool.name in ["read_wiki_structure", "ask_question"] && ' +
      'mcp.tool.arguments.repoName in ["kubernetes-sigs/kube-agentic-networking", "kubernetes-sigs/gateway-api"]',
  }
  const rows: Array<[string, string, Record<string, unknown>, boolean]> = [
    [
      'read_wiki_structure, first repo',
      'read_wiki_structure',
      { repoName: 'kubernetes-sigs/kube-agentic-networking' },
      true,
    ],
    [
      'ask_question, second repo',
      'ask_question',
      { repoName: 'kubernetes-sigs/gateway-api', question: 'what?' },
      true,
    ],
    ['other repo', 'ask_question', { repoName: 'kubernetes/kubernetes' }, false],
    ['no repoName', 'read_wiki_structure', {}, false],
    ['repoName not a string', 'read_wiki_structure', { repoName: ['kubernetes-sigs/gateway-api'] }, false],
    ['other tool, allowed repo', 'echo', { repoName: 'kubernetes-sigs/gateway-api' }, false],
  ]
  test.each(rows)('%s', async (_name, tool, args, allowed) => {
    expect((await decide([rule], toolCall(tool, args))).allowed).toBe(allowed)
  })

  test('tools/list is not a tool call: the tool rule does not apply, the base protocol passes (agentgateway scope)', async () => {
    const input = {
      ...toolCall('x', {}),
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    }
    const d = await decide([rule], input)
    expect(d).toMatchObject({ allowed: true, rule: 'mcp-base-protocol' })
  })
})

// Item 4: every class of error, for each action. Only `true` matches; errors never allow.
describe('fail closed', () => {
  const bigArgs = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`k${i}`, i]))
  const classes: Array<[string, string, Record<string, unknown>, RegExp]> = [
    ['missing key', 'request.headers["x-missing"] == "a"', get(), /field not found/],
    ['absent variable (no token)', 'jwt.sub == "alice"', get(), /unresolved attribute/],
    ['no matching overload', 'dyn(request.method) + 1 == 2', get(), /no matching overload/],
    ['non-boolean result', 'request.method', get(), /returned string, not a boolean/],
    ['null result', 'null', get(), /returned null, not a boolean/],
    ['integer overflow', '9223372036854775807 + size(request.method) > 0', get(), /overflow/],
    ['division by zero', '1 / (size(request.method) - 3) == 1', get(), /divide by zero|division by zero/],
    [
      'invalid regex at run time',
      'request.path.matches(request.headers["x-re"])',
      get({ 'x-re': '(' }),
      /missing closing|\(/,
    ],
    [
      'function error',
      'ip(request.headers["x-ip"]).inCidr("10.0.0.0/8")',
      get({ 'x-ip': 'nope' }),
      /invalid IP address/,
    ],
    [
      'iteration budget',
      'mcp.tool.arguments.all(a, mcp.tool.arguments.all(b, true))',
      toolCall('t', bigArgs),
      /more than 1000000 input elements/,
    ],
    ['condition error', 'true', get(), /condition: .*field not found/],
  ]
  const when = (name: string) =>
    name === 'condition error' ? { when: { cel: 'request.headers["nope"] == "x"' } } : {}

  test.each(classes)('%s: allow does not match', async (name, expr, input, reason) => {
    const d = await decide([{ id: 'a', action: 'allow', cel: expr, ...when(name) }], input)
    expect(d).toMatchObject({ allowed: false, code: 'no_match' })
    expect(d.reason).toMatch(/\(failed: a: /)
    expect(d.reason).toMatch(reason)
  })

  test.each(classes)('%s: deny denies', async (name, expr, input, reason) => {
    const d = await decide([{ id: 'd', action: 'deny', cel: expr, ...when(name) }], input)
    expect(d).toMatchObject({ allowed: false, code: 'evaluator_error', rule: 'd' })
    expect(d.reason).toMatch(/^deny rule d failed: /)
    expect(d.reason).toMatch(reason)
  })

  test.each(classes)('%s: require denies', async (name, expr, input, reason) => {
    const d = await decide([{ id: 'q', action: 'require', cel: expr, ...when(name) }], input)
    expect(d).toMatchObject({ allowed: false, code: 'evaluator_error', rule: 'q' })
    expect(d.reason).toMatch(/^require rule q failed: /)
    expect(d.reason).toMatch(reason)
  })

  test('the error names the position inside the expression', async () => {
    const d = await decide(
      [{ id: 'd', action: 'deny', cel: 'request.method == "GET" && jwt.sub == "x"' }],
      get(),
    )
    expect(d.reason).toMatch(/^deny rule d failed: 1:\d+: unresolved attribute/)
  })

  test('an error absorbed by && / || is not an error (CEL semantics)', async () => {
    const rules = [{ id: 'd', action: 'deny', cel: 'request.method == "POST" && jwt.sub == "x"' }]
    expect((await decide(rules, get())).allowed).toBe(true)
  })

  test('a condition that is false skips a deny; true applies it', async () => {
    const rule = (w: string) => ({ id: 'd', action: 'deny', when: { cel: w }, cel: 'true' })
    expect((await decide([rule('request.method == "POST"')], get())).allowed).toBe(true)
    expect(await decide([rule('request.method == "GET"')], get())).toMatchObject({
      allowed: false,
      code: 'denied',
    })
  })
})

describe('regular expressions are RE2 (linear time)', () => {
  test('"a" x 30 + "!" against ^(a+)+$ returns false', async () => {
    const rules = [{ id: 'r', action: 'deny', cel: 'request.headers["x"].matches("^(a+)+$")' }]
    const d = await decide(rules, get({ x: `${'a'.repeat(30)}!` }))
    expect(d.allowed).toBe(true)
  })

  test('the issue bench expression over a realistic request', async () => {
    const cel5 = '"user-agent" in request.headers && request.headers["user-agent"].matches("^curl/[0-9.]+$")'
    const rules = [{ id: 'r', action: 'allow', cel: cel5 }]
    expect((await decide(rules, get({ 'user-agent': 'curl/8.5.0' }))).allowed).toBe(true)
    expect((await decide(rules, get({ 'user-agent': 'curl/8.5.0; evil' }))).allowed).toBe(false)
  })
})

describe('load-time problems', () => {
  async function problems(policy: string | Record<string, unknown>) {
    try {
      await createEngine(policy, { evaluators: [cel] })
    } catch (e) {
      expect(e).toBeInstanceOf(PolicyError)
      return (e as PolicyError).problems
    }
    throw new Error('policy loaded')
  }

  const rows: Array<[string, unknown, string, RegExp]> = [
    ['syntax error', 'jwt.sub == ', 'cel_syntax', /^cel 1:\d+: syntax error/],
    [
      'unknown variable',
      'jwt.sub == "a" && user.name == "b"',
      'cel_unknown_variable',
      /^cel 1:19: unknown variable 'user'/,
    ],
    [
      'unknown function',
      'request.path.startWith("/a")',
      'cel_unknown_function',
      /^cel 1:\d+: unknown function 'startWith'/,
    ],
    [
      'unknown global function',
      'lower(request.path) == "/"',
      'cel_unknown_function',
      /unknown function 'lower'/,
    ],
    [
      'unknown namespaced function',
      'base64.encrypt(b"x") == ""',
      'cel_unknown_function',
      /unknown function 'base64.encrypt'/,
    ],
    [
      'wrong arity',
      'request.path.startsWith("/a", "/b")',
      'cel_unknown_function',
      /no method 'startsWith' takes 2 arguments/,
    ],
    [
      'invalid regex literal',
      'request.path.matches("(")',
      'cel_regex',
      /^cel 1:22: invalid regular expression/,
    ],
    [
      'comprehension depth',
      '[1].all(a, [2].all(b, [3].all(c, [4].all(d, true))))',
      'cel_limit',
      /comprehensions nested deeper than 3/,
    ],
    ['nesting depth', `${'('.repeat(70)}true${')'.repeat(70)}`, 'cel_limit', /nested/],
    [
      'deep brackets',
      `${'['.repeat(5000)}${']'.repeat(5000)} == []`,
      'cel_limit',
      /^cel 1:65: expression is nested deeper than 64/,
    ],
    ['long operator chain', Array(100).fill('1').join(' + '), 'cel_limit', /nested deeper than 64/],
    [
      'has() on an index',
      'has(request.headers["a"])',
      'cel_unknown_function',
      /has\(\) takes a field selection/,
    ],
    ['length', `"${'a'.repeat(17_000)}" == request.path`, 'cel_limit', /longer than 16384/],
    [
      'unknown variable in a comprehension',
      'request.query.exists(k, k == kk)',
      'cel_unknown_variable',
      /'kk'/,
    ],
    ['empty expression', { expression: '' }, 'schema', /./],
  ]
  test.each(rows)('%s', async (_name, body, code, message) => {
    const ps = await problems({ rules: [{ id: 'r1', action: 'deny', cel: body }] })
    expect(ps.length).toBeGreaterThan(0)
    const p = ps.find((x) => x.code === code)
    expect(p, JSON.stringify(ps)).toBeDefined()
    expect(p!.ruleId).toBe('r1')
    expect(p!.path).toMatch(/^\/rules\/0\/cel/)
    expect(p!.message).toMatch(message)
  })

  test('problems from YAML carry the rule id, the JSON path, the YAML line and the expression position', async () => {
    const ps = await problems(`
rules:
  - id: ok
    action: allow
    cel: 'request.method == "GET"'
  - id: bad-var
    action: allow
    cel: 'request.method == "GET" && usr.admin'
  - id: bad-cond
    action: deny
    when: { cel: { expression: 'request.path.startz("/admin")' } }
    cel: 'true'
`)
    expect(ps.map((p) => [p.ruleId, p.path, p.line, p.code])).toEqual([
      ['bad-var', '/rules/1/cel', 8, 'cel_unknown_variable'],
      ['bad-cond', '/rules/2/when/cel/expression', 11, 'cel_unknown_function'],
    ])
    expect(ps[0]!.message).toBe("cel 1:28: unknown variable 'usr'")
    expect(ps[1]!.message).toMatch(/^cel 1:\d+: unknown function 'startz'/)
  })

  test('every problem of a policy is reported at once', async () => {
    const ps = await problems({
      rules: [
        { id: 'a', action: 'allow', cel: 'foo == 1' },
        { id: 'b', action: 'allow', cel: 'bar(1)' },
        { id: 'c', action: 'allow', cel: '1 +' },
      ],
    })
    expect(ps.map((p) => p.ruleId).sort()).toEqual(['a', 'b', 'c'])
  })

  test('type names, enum-free qualified names and namespaced functions are not unknown variables', async () => {
    const rules = [
      { id: 'a', action: 'allow', cel: 'type(request.method) == string && type(1) == int' },
      { id: 'b', action: 'allow', cel: 'base64.encode(b"hi") == "aGk="' },
      { id: 'c', action: 'allow', cel: 'type(timestamp(0)) == google.protobuf.Timestamp' },
    ]
    for (const r of rules) expect((await decide([r], get())).allowed, r.cel).toBe(true)
  })
})

describe('variables (agentgateway names)', () => {
  const input = {
    method: 'POST',
    path: '/api/items%20x?page=2&tag=a&tag=b',
    host: 'api.example',
    scheme: 'https',
    headers: { 'content-type': 'application/json', 'X-Team': 'blue' },
    body: JSON.stringify({ amount: 12, items: [{ id: 'a' }] }),
    source: { address: '10.1.2.3', port: 51234, principal: 'spiffe://cluster.local/ns/agents/sa/agent-a' },
    destination: { address: '10.0.0.5', port: 8080 },
    contextExtensions: { route: 'items' },
    metadata: { filterMetadata: { 'envoy.filters.http.jwt_authn': { payload: { sub: 'meta-user' } } } },
  }
  const rows: Array<[string, Record<string, unknown>]> = [
    ['request.method == "POST" && request.path == "/api/items x"', input],
    ['request.pathAndQuery == "/api/items%20x?page=2&tag=a&tag=b" && request.host == "api.example"', input],
    ['request.scheme == "https" && request.headers["x-team"] == "blue"', input],
    ['request.query.page == ["2"] && request.query.tag[1] == "b"', input],
    ['request.json.amount == 12 && request.json.items[0].id == "a"', input],
    ['source.address == "10.1.2.3" && source.port == 51234', input],
    ['source.principal == "spiffe://cluster.local/ns/agents/sa/agent-a"', input],
    ['source.spiffeId == source.principal && source.identity.trustDomain == "cluster.local"', input],
    ['source.identity.namespace == "agents" && source.identity.serviceAccount == "agent-a"', input],
    ['destination.port == 8080 && !has(destination.principal) && !has(destination.identity)', input],
    ['context.route == "items"', input],
    ['metadata["envoy.filters.http.jwt_authn"].payload.sub == "meta-user"', input],
    ['!has(request.json)', get()],
    ['size(request.headers) == 0 && size(context) == 0', get()],
    ['mcp.method == "tools/call" && mcp.id == 9 && mcp.tool.name == "t"', toolCall('t', {}, 9)],
    [
      'mcp.tool.arguments.n == 1 && mcp.tool.arguments.f == 1.5 && mcp.params.name == "t"',
      toolCall('t', { n: 1, f: 1.5 }),
    ],
    ['mcp.id == "abc" && !has(mcp.prompt) && !has(mcp.resource)', toolCall('t', {}, 'abc')],
  ]
  test.each(rows)('%s', async (expr, req) => {
    const d = await decide([{ id: 'r', action: 'allow', cel: expr }], req)
    expect(d.reason).toBe('allowed by rule r')
  })

  test('prompts/get and resources/read', async () => {
    const rpc = (method: string, params: Record<string, unknown>) => ({
      ...toolCall('x', {}),
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    })
    const rule = (cel: string) => [{ id: 'r', action: 'allow', cel }]
    expect(
      (await decide(rule('mcp.prompt.name == "greet"'), rpc('prompts/get', { name: 'greet' }))).allowed,
    ).toBe(true)
    const res = rpc('resources/read', { uri: 'file:///etc/passwd' })
    expect((await decide(rule('mcp.resource.uri.startsWith("file:///etc/")'), res)).allowed).toBe(true)
  })

  test('the whole request is not copied: a 100k-key argument object and a 1 MB string', async () => {
    const args: Record<string, unknown> = { text: 'x'.repeat(1024 * 1024) }
    for (let i = 0; i < 100_000; i++) args[`k${i}`] = i
    const expr =
      'mcp.tool.arguments.k99999 == 99999 && mcp.tool.arguments.text.endsWith("xx") && size(mcp.tool.arguments) == 100001'
    expect((await decide([{ id: 'r', action: 'allow', cel: expr }], toolCall('t', args))).allowed).toBe(true)
    // A regular expression over more than 256 Ki characters fails (closed) instead of blocking.
    const d = await decide(
      [{ id: 'd', action: 'deny', cel: 'mcp.tool.arguments.text.matches("y")' }],
      toolCall('t', args),
    )
    expect(d).toMatchObject({ allowed: false, code: 'evaluator_error' })
    expect(d.reason).toMatch(/longer than 262144 characters/)
  })

  test('hostile keys are plain data: __proto__, constructor', async () => {
    const body =
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"__proto__":{"admin":true},"constructor":"c"}}}'
    const req = { ...toolCall('t', {}), body }
    const rules = (cel: string) => [{ id: 'r', action: 'allow', cel }]
    expect((await decide(rules('mcp.tool.arguments["__proto__"].admin == true'), req)).allowed).toBe(true)
    expect((await decide(rules('mcp.tool.arguments.constructor == "c"'), req)).allowed).toBe(true)
    expect(
      (await decide(rules('!has(request.headers.constructor) && !has(mcp.tool.arguments.toString)'), req))
        .allowed,
    ).toBe(true)
  })
})

describe('functions', () => {
  const rows: Array<[string, Record<string, unknown>, boolean]> = [
    ['default(jwt.sub, "anonymous") == "anonymous"', get(), true],
    ['default(request.headers["x-tenant"], "none") == "acme"', get({ 'x-tenant': 'acme' }), true],
    ['default(request.headers["x-tenant"], "none") == "none"', get(), true],
    ['default(null, 1) == 1 && default(2, 1) == 2', get(), true],
    ['default(int(request.headers["x-n"]), 0) == 0', get({ 'x-n': 'abc' }), true],
    ['[1, 2].exists(x, default(x / (x - 1), 0) == 0)', get(), true],
    ['ip(source.address).inCidr("10.0.0.0/8")', get({}, { source: { address: '10.9.8.7' } }), true],
    ['ip(source.address).inCidr("10.0.0.0/8")', get({}, { source: { address: '11.9.8.7' } }), false],
    [
      'cidr("2001:db8::/32").containsIP(source.address)',
      get({}, { source: { address: '2001:db8::1' } }),
      true,
    ],
    ['cidr("10.0.0.0/8").containsIP("::ffff:10.1.1.1")', get(), true],
    [
      'isIP("10.0.0.1") && !isIP("10.0.0.256") && !isIP("fe80::1%eth0") && isCIDR("::/0") && !isCIDR("10.0.0.0/33")',
      get(),
      true,
    ],
    ['base64.encode(b"hello") == "aGVsbG8=" && base64.encode("hello") == "aGVsbG8="', get(), true],
    [
      'string(base64.decode("aGVsbG8=")) == "hello" && string(base64.decode("aGVsbG8")) == "hello"',
      get(),
      true,
    ],
    ['timestamp(1700000000) == timestamp("2023-11-14T22:13:20Z")', get(), true],
    ['request.path.lowerAscii().split("/").size() == 2', get(), true],
    // replace: every occurrence, the first n, none; an empty pattern matches around each code point.
    ['"a.b.c".replace(".", "/") == "a/b/c"', get(), true],
    ['"a.b.c".replace(".", "/", 1) == "a/b.c" && "a.b".replace(".", "/", 0) == "a.b"', get(), true],
    ['"a.b.c".replace(".", "", -1) == "abc" && "aaa".replace("a", "aa") == "aaaaaa"', get(), true],
    ['"abc".replace("", "-") == "-a-b-c-" && "abc".replace("", "-", 2) == "-a-bc"', get(), true],
    ['"xé😀".replace("", "|") == "|x|é|😀|"', get(), true],
  ]
  test.each(rows)('%s', async (expr, req, allowed) => {
    const d = await decide([{ id: 'r', action: 'allow', cel: expr }], req)
    expect(d.allowed, d.reason).toBe(allowed)
  })

  const errors: Array<[string, RegExp]> = [
    ['ip("999.1.1.1") == ""', /invalid IP address/],
    ['cidr("10.0.0.0") == ""', /invalid CIDR/],
    ['"10.0.0.1".inCidr("10.0.0.0/99")', /invalid CIDR/],
    ['size(base64.decode("a===")) == 0', /invalid base64/],
    ['timestamp(300000000000) == timestamp(0)', /out of range/],
    [
      '"x".replace("", "yyyyyyyyyy").replace("y", "zzzzzzzzzzzzzzzz").replace("z", "wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww").replace("w", "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv") == ""',
      /more than 1048576 characters/,
    ],
  ]
  test.each(errors)('%s fails closed', async (expr, reason) => {
    const d = await decide([{ id: 'd', action: 'deny', cel: expr }], get())
    expect(d).toMatchObject({ allowed: false, code: 'evaluator_error' })
    expect(d.reason).toMatch(reason)
  })

  test('replace on a long request string is linear, not quadratic', async () => {
    // 300,000 replacements: the strings extension rebuilt the string for each (minutes).
    const body = JSON.stringify({ q: 'a'.repeat(300_000) })
    const input = { method: 'POST', path: '/x', headers: { 'content-type': 'application/json' }, body }
    const rule = {
      id: 'r',
      action: 'allow' as const,
      cel: 'request.json.q.replace("a", "b").startsWith("bbb")',
    }
    expect((await decide([rule], input)).allowed).toBe(true)
  })

  test('a decide rule may return a decision object', async () => {
    const rule = {
      id: 'x',
      action: 'decide',
      cel: '{"allowed": false, "http_status": 401, "body": "who are you?"}',
    }
    expect(await decide([rule], get())).toMatchObject({ allowed: false, status: 401, body: 'who are you?' })
  })
})

describe('membership in literal string lists', () => {
  const tools = Array.from({ length: 50 }, (_, i) => `"tool-${i}"`).join(', ')
  const allow = (expr: string) => [{ id: 'r', action: 'allow' as const, cel: expr }]
  const req = (headers: Record<string, string>) => ({ method: 'GET', path: '/', headers })

  test.each([
    [`request.headers["x-tool"] in [${tools}]`, { 'x-tool': 'tool-49' }, true],
    [`request.headers["x-tool"] in [${tools}]`, { 'x-tool': 'tool-50' }, false],
    [`request.headers["x-tool"] in [${tools}]`, { 'x-tool': 'TOOL-1' }, false],
    [`size(request.headers) in ["1", "2", "3", "4"]`, { a: 'b' }, false],
    [`1 in [1, 2, 3, 4]`, {}, true],
    [`"b" in ["a", "b", "c", "d"] && !("e" in ["a", "b", "c", "d"])`, {}, true],
    [`"b" in ["a", "b"]`, {}, true],
  ])('%s with %o -> %s', async (expr, headers, allowed) => {
    expect((await decide(allow(expr), req(headers))).allowed).toBe(allowed)
  })

  test('a missing value is still an error, not false (deny rules fail closed)', async () => {
    const d = await decide(
      [{ id: 'd', action: 'deny', cel: `request.headers["x-none"] in [${tools}]` }],
      req({}),
    )
    expect(d).toMatchObject({ allowed: false, code: 'evaluator_error' })
  })
})
