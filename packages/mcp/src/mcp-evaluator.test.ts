import { createEngine, type Decision, type Engine, PolicyError } from '@verdict/core'
import { describe, expect, it } from 'vitest'
import { createMcpEvaluator } from './mcp-evaluator.js'

const A = 'spiffe://cluster.local/ns/agents/sa/agent-a'
const B = 'spiffe://cluster.local/ns/agents/sa/agent-b'

const engine = (policy: Record<string, unknown>): Promise<Engine> =>
  createEngine(policy, { evaluators: [createMcpEvaluator()] })

/** A Streamable HTTP POST carrying one JSON-RPC message (or a batch). */
function rpc(principal: string | undefined, body: unknown, headers: Record<string, string> = {}) {
  return {
    method: 'POST',
    path: '/mcp',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    ...(principal !== undefined ? { source: { principal } } : {}),
  }
}

const msg = (method: string, params?: Record<string, unknown>, id: string | number = 1) => ({
  jsonrpc: '2.0',
  id,
  method,
  ...(params !== undefined ? { params } : {}),
})
const note = (method: string, params?: Record<string, unknown>) => ({
  jsonrpc: '2.0',
  method,
  ...(params !== undefined ? { params } : {}),
})
const tool = (name: string, args: Record<string, unknown> = {}, id: string | number = 1) =>
  msg('tools/call', { name, arguments: args }, id)

/** One case: who, what, allowed? */
type Case = [label: string, principal: string | undefined, body: unknown, allowed: boolean]

async function runCases(policy: Record<string, unknown>, cases: Case[]): Promise<void> {
  const e = await engine(policy)
  const got = await Promise.all(cases.map(([, p, b]) => e.decide(rpc(p, b))))
  const table = cases.map(([label], i) => [label, got[i]!.allowed, got[i]!.reason])
  expect(table.map(([l, a]) => [l, a])).toEqual(cases.map(([l, , , allowed]) => [l, allowed]))
}

describe('mcp rule: sources', () => {
  it('serviceAccount, custom trust domain, spiffe, list, and omitted', async () => {
    await runCases(
      {
        rules: [
          {
            id: 'sa',
            action: 'allow',
            mcp: { source: { serviceAccount: { namespace: 'agents', name: 'agent-a' } } },
          },
          {
            id: 'td',
            action: 'allow',
            mcp: { source: { serviceAccount: { namespace: 'x', name: 'y', trustDomain: 'example.org' } } },
          },
          { id: 'spiffe', action: 'allow', mcp: { source: { spiffe: 'spiffe://other.test/workload/w1' } } },
          {
            id: 'list',
            action: 'allow',
            mcp: { source: [{ spiffe: 'spiffe://l.test/one' }, { spiffe: 'spiffe://l.test/two' }] },
          },
        ],
      },
      [
        ['agent-a via ServiceAccount', A, tool('echo'), true],
        ['agent-b matches nothing', B, tool('echo'), false],
        ['custom trust domain', 'spiffe://example.org/ns/x/sa/y', tool('echo'), true],
        ['same ns/sa, other trust domain', 'spiffe://cluster.local/ns/x/sa/y', tool('echo'), false],
        ['SPIFFE ID', 'spiffe://other.test/workload/w1', tool('echo'), true],
        ['SPIFFE ID prefix only', 'spiffe://other.test/workload/w1/extra', tool('echo'), false],
        ['list entry two', 'spiffe://l.test/two', tool('echo'), true],
        ['no principal', undefined, tool('echo'), false],
        ['principal differing in case', A.toUpperCase(), tool('echo'), false],
      ],
    )
    await runCases({ rules: [{ id: 'any', action: 'allow', mcp: {} }] }, [
      ['omitted source: anyone', undefined, tool('echo'), true],
      ['omitted source: agent-b', B, msg('prompts/get', { name: 'p' }), true],
    ])
  })
})

describe('mcp rule: methods, tools and base protocol', () => {
  it('categories, exact methods and params', async () => {
    await runCases(
      {
        rules: [
          { id: 'cat', action: 'allow', mcp: { source: { spiffe: A }, methods: [{ name: 'tools' }] } },
          {
            id: 'exact',
            action: 'allow',
            mcp: {
              source: { spiffe: B },
              methods: [{ name: 'prompts/get', params: ['greeting'] }, { name: 'ping' }],
            },
          },
          {
            id: 'res',
            action: 'allow',
            mcp: { source: { spiffe: B }, methods: [{ name: 'resources', params: ['demo://static/1'] }] },
          },
        ],
      },
      [
        ['category tools: tools/call', A, tool('anything'), true],
        ['category tools: tools/list', A, msg('tools/list'), true],
        ['category tools: prompts/get', A, msg('prompts/get', { name: 'greeting' }), false],
        ['category is a prefix of segments, not of text', A, msg('toolsX/call', { name: 'a' }), false],
        ['exact prompts/get with allowed name', B, msg('prompts/get', { name: 'greeting' }), true],
        ['exact prompts/get with other name', B, msg('prompts/get', { name: 'other' }), false],
        ['exact prompts/get name differing in case', B, msg('prompts/get', { name: 'Greeting' }), false],
        ['prompts/list is not prompts/get', B, msg('prompts/list'), false],
        ['name without slash is also exact: ping', B, msg('ping'), true],
        ['resources category with uri params', B, msg('resources/read', { uri: 'demo://static/1' }), true],
        ['resources category, other uri', B, msg('resources/read', { uri: 'demo://static/2' }), false],
        ['resources/list has no uri', B, msg('resources/list'), false],
      ],
    )
  })

  it('v0alpha0 tools: exact names, empty list denies all', async () => {
    const nfc = 'caf\u00e9'
    const nfd = 'cafe\u0301'
    await runCases(
      {
        rules: [
          { id: 'a', action: 'allow', mcp: { source: { spiffe: A }, tools: ['get-sum', '__proto__', nfc] } },
          { id: 'b', action: 'allow', mcp: { source: { spiffe: B }, tools: [] } },
        ],
      },
      [
        ['listed tool', A, tool('get-sum'), true],
        ['unlisted tool', A, tool('echo'), false],
        ['case variant', A, tool('Get-Sum'), false],
        ['trailing space', A, tool('get-sum '), false],
        ['unicode hyphen look-alike', A, tool('get\u2010sum'), false],
        // Not ASCII: refused before any rule by MCP's tool-name rule (extraction, 400).
        ['NFC name as listed', A, tool(nfc), false],
        ['NFD spelling of a listed NFC name', A, tool(nfd), false],
        ['__proto__ when listed', A, tool('__proto__'), true],
        ['constructor (a prototype key) not listed', A, tool('constructor'), false],
        // Not by rule a: tools/list is base protocol, which no rule here applies to, so it passes
        // the layer (agentgateway's scope) and its result is filtered instead.
        ['tools/list passes: base protocol', A, msg('tools/list'), true],
        ['tools/list passes for agent-b too (its list filters to nothing)', B, msg('tools/list'), true],
        ['empty tools list: get-sum', B, tool('get-sum'), false],
        ['empty tools list: echo', B, tool('echo'), false],
      ],
    )
  })

  it('baseProtocol MATCH allows the base protocol and session GET/DELETE; SKIP does not', async () => {
    const e = await engine({
      rules: [
        {
          id: 'm',
          action: 'allow',
          mcp: { source: { spiffe: A }, tools: ['get-sum'], baseProtocol: 'MATCH' },
        },
        { id: 's', action: 'allow', mcp: { source: { spiffe: B }, tools: ['get-sum'] } },
      ],
    })
    const base = [
      msg('initialize', {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'c', version: '1' },
      }),
      msg('tools/list'),
      msg('ping'),
      msg('completion/complete', { ref: {}, argument: {} }),
      msg('logging/setLevel', { level: 'info' }),
      note('notifications/initialized'),
      note('notifications/cancelled', { requestId: 1 }),
    ]
    for (const b of base) {
      expect((await e.decide(rpc(A, b))).allowed, `MATCH ${b.method}`).toBe(true)
      expect((await e.decide(rpc(B, b))).allowed, `SKIP ${b.method}`).toBe(false)
    }
    for (const b of [msg('prompts/list'), msg('resources/list'), tool('echo')]) {
      expect((await e.decide(rpc(A, b))).allowed, `MATCH is not everything: ${b.method}`).toBe(false)
    }
    const session = (method: string, principal: string, sid?: string) =>
      e.decide({
        method,
        path: '/mcp',
        headers: sid !== undefined ? { 'mcp-session-id': sid } : {},
        source: { principal },
      })
    expect((await session('GET', A, 's1')).allowed).toBe(true)
    expect((await session('DELETE', A, 's1')).allowed).toBe(true)
    expect((await session('GET', A)).allowed).toBe(false)
    expect((await session('PUT', A, 's1')).allowed).toBe(false)
    expect((await session('GET', B, 's1')).allowed).toBe(false)
  })

  it('non-MCP requests are left to the other rules', async () => {
    const e = await engine({
      rules: [
        { id: 'tools', action: 'allow', mcp: { tools: ['get-sum'] } },
        { id: 'health', action: 'allow', match: { paths: [{ exact: '/healthz' }] } },
      ],
    })
    expect((await e.decide({ method: 'GET', path: '/healthz' })).allowed).toBe(true)
    const other = await e.decide({
      method: 'POST',
      path: '/api',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    })
    expect(other).toMatchObject({ allowed: false, code: 'no_match' })
  })
})

describe('mcp rule: integers beyond 2^53', () => {
  it('match neither in nor notIn: JSON.parse rounded them, an exact upstream would not', async () => {
    const e = await engine({
      rules: [
        {
          id: 'a',
          action: 'allow',
          mcp: { tools: ['transfer'], arguments: { account: { in: [10000000000000000, 5, 1.5] } } },
        },
        { id: 'b', action: 'allow', mcp: { tools: ['other'], arguments: { n: { notIn: [1] } } } },
      ],
    })
    const call = (name: string, args: string) => ({
      method: 'POST',
      path: '/mcp',
      headers: { 'content-type': 'application/json' },
      body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"${name}","arguments":${args}}}`,
    })
    const allowed = async (name: string, args: string) => (await e.decide(call(name, args))).allowed
    // 10000000000000001 parses as 10000000000000000, which the list holds.
    expect(await allowed('transfer', '{"account":10000000000000001}')).toBe(false)
    expect(await allowed('transfer', '{"account":5}')).toBe(true)
    expect(await allowed('transfer', '{"account":1.5}')).toBe(true)
    expect(await allowed('other', '{"n":2}')).toBe(true)
    expect(await allowed('other', '{"n":9007199254740993}')).toBe(false)
    e.close()
  })

  // Issue 15, class 2: a comparison with such an integer is an evaluator error, so a deny rule
  // denies (before, the test was false and the deny rule silently did not apply).
  const call = (name: string, args: string) => ({
    method: 'POST',
    path: '/mcp',
    headers: { 'content-type': 'application/json' },
    body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"${name}","arguments":${args}}}`,
  })

  it('a deny rule comparing one fires (fail closed): the error denies', async () => {
    const e = await engine({
      rules: [
        // Deny transfers out of any account but the two listed; everything else is allowed.
        {
          id: 'only-own',
          action: 'deny',
          mcp: { tools: ['transfer'], arguments: { from: { notIn: [1, 2] } } },
        },
        { id: 'big-ids', action: 'deny', mcp: { tools: ['lookup'], arguments: { id: { in: [5] } } } },
        { id: 'rest', action: 'allow', mcp: {} },
      ],
    })
    expect((await e.decide(call('transfer', '{"from":1}'))).allowed).toBe(true)
    expect((await e.decide(call('transfer', '{"from":3}'))).allowed).toBe(false)
    for (const from of ['9007199254740993', '9007199254740992', '-9007199254740993', '1e300']) {
      const d = await e.decide(call('transfer', `{"from":${from}}`))
      expect(d.allowed, from).toBe(false)
      expect(d.reason).toContain('2^53')
    }
    const inDeny = await e.decide(call('lookup', '{"id":9007199254740997}'))
    expect(inDeny.allowed).toBe(false)
    expect(inDeny.reason).toContain('2^53')
    // The largest exact integers and fractions are compared as before.
    expect((await e.decide(call('lookup', '{"id":9007199254740991}'))).allowed).toBe(true)
    expect((await e.decide(call('lookup', '{"id":5.5}'))).allowed).toBe(true)
    e.close()
  })

  it('an allow rule comparing one does not match, and says why; a failing test next to it decides alone', async () => {
    const e = await engine({
      rules: [
        {
          id: 'small',
          action: 'allow',
          mcp: { tools: ['pay'], arguments: { amount: { notIn: [0] }, to: { prefix: 'acct-' } } },
        },
      ],
    })
    expect((await e.decide(call('pay', '{"amount":5,"to":"acct-1"}'))).allowed).toBe(true)
    const d = await e.decide(call('pay', '{"amount":18014398509481984,"to":"acct-1"}'))
    expect(d.allowed).toBe(false)
    expect(d.reason).toContain('2^53')
    // `to` fails: the rule does not match whatever `amount` is, as `false && error` is false in CEL.
    const other = await e.decide(call('pay', '{"amount":18014398509481984,"to":"x"}'))
    expect(other.allowed).toBe(false)
    expect(other.reason).not.toContain('2^53')
    // present alone compares nothing.
    const p = await engine({
      rules: [
        { id: 'p', action: 'deny', mcp: { tools: ['pay'], arguments: { amount: { present: false } } } },
      ],
    })
    expect((await p.decide(call('pay', '{"amount":18014398509481984}'))).allowed).toBe(true)
    e.close()
    p.close()
  })
})

describe('mcp rule: arguments', () => {
  const policy = {
    rules: [
      {
        id: 'repos',
        action: 'allow',
        mcp: {
          tools: ['ask_question'],
          arguments: {
            repoName: { in: ['kubernetes-sigs/kube-agentic-networking', 'kubernetes-sigs/gateway-api'] },
            question: { prefix: 'Q:', present: true },
            mode: { notIn: ['admin', null] },
            // An own `__proto__` key, as a YAML or JSON policy has it.
            ...JSON.parse('{"__proto__":{"present":false}}'),
          },
        },
      },
    ],
  }
  const ask = (args: Record<string, unknown>) => tool('ask_question', { question: 'Q: why?', ...args })

  it('in, prefix, present, notIn, own keys only', async () => {
    await runCases(policy, [
      ['approved repo', A, ask({ repoName: 'kubernetes-sigs/gateway-api' }), true],
      ['other approved repo', A, ask({ repoName: 'kubernetes-sigs/kube-agentic-networking' }), true],
      ['kubernetes/kubernetes', A, ask({ repoName: 'kubernetes/kubernetes' }), false],
      ['cncf/toc', A, ask({ repoName: 'cncf/toc' }), false],
      ['case variant of an approved repo', A, ask({ repoName: 'Kubernetes-sigs/gateway-api' }), false],
      ['repo missing', A, ask({}), false],
      ['repo as a list', A, ask({ repoName: ['kubernetes-sigs/gateway-api'] }), false],
      ['repo as an object', A, ask({ repoName: { toString: 'kubernetes-sigs/gateway-api' } }), false],
      [
        'question without prefix',
        A,
        ask({ repoName: 'kubernetes-sigs/gateway-api', question: 'why?' }),
        false,
      ],
      ['mode admin', A, ask({ repoName: 'kubernetes-sigs/gateway-api', mode: 'admin' }), false],
      ['mode null', A, ask({ repoName: 'kubernetes-sigs/gateway-api', mode: null }), false],
      ['mode other', A, ask({ repoName: 'kubernetes-sigs/gateway-api', mode: 'read' }), true],
      ['mode as a list', A, ask({ repoName: 'kubernetes-sigs/gateway-api', mode: ['x'] }), false],
      ['other tool', A, tool('read_wiki_structure', { repoName: 'kubernetes-sigs/gateway-api' }), false],
    ])
    const e = await engine(policy)
    const proto = rpc(A, ask({ repoName: 'kubernetes-sigs/gateway-api' }))
    proto.body = proto.body.replace('{"question"', '{"__proto__":{"x":1},"question"')
    expect((await e.decide(proto)).allowed, '__proto__ argument present').toBe(false)
  })

  it('fails closed when Envoy metadata names the tool but the arguments were not forwarded', async () => {
    const e = await engine(policy)
    const d = await e.decide({
      method: 'POST',
      path: '/mcp',
      metadata: {
        filterMetadata: {
          mcp_proxy: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'ask_question' } },
        },
      },
    })
    expect(d.allowed).toBe(false)
    expect(d.reason).toContain('with_request_body')
    const withArgs = await e.decide({
      method: 'POST',
      path: '/mcp',
      metadata: {
        filterMetadata: {
          mcp_proxy: {
            jsonrpc: '2.0',
            id: 1,
            method: 'tools/call',
            params: { name: 'ask_question', arguments: { repoName: 'cncf/toc', question: 'Q: x' } },
          },
        },
      },
    })
    expect(withArgs).toMatchObject({ allowed: false, code: 'no_match' })
  })
})

describe('batches and denial formats', () => {
  const rules = [
    { id: 'a', action: 'allow', mcp: { source: { spiffe: A }, tools: ['get-sum'], baseProtocol: 'MATCH' } },
  ]

  it('every batch element is authorized; one denied element denies the batch', async () => {
    const e = await engine({ rules })
    expect((await e.decide(rpc(A, [tool('get-sum', {}, 1), msg('tools/list', undefined, 2)]))).allowed).toBe(
      true,
    )
    const hidden = await e.decide(
      rpc(A, [tool('get-sum', {}, 1), tool('echo', {}, 2), msg('ping', undefined, 3)]),
    )
    expect(hidden.allowed).toBe(false)
    expect(hidden.reason).toContain('tool echo')
    expect((await e.decide(rpc(A, []))).status).toBe(400)
  })

  it('batches can be rejected outright', async () => {
    const e = await engine({ mcp: { batches: 'reject' }, rules })
    const d = await e.decide(rpc(A, [tool('get-sum', {}, 1)]))
    expect(d).toMatchObject({ allowed: false, status: 400 })
  })

  const formats: Array<[string, number, (b: unknown, id: unknown) => void]> = [
    [
      'jsonrpc',
      200,
      (b, id) =>
        expect(b).toEqual({
          jsonrpc: '2.0',
          id,
          error: { code: 403, message: 'Access to this tool is forbidden.' },
        }),
    ],
    [
      'hidden',
      400,
      (b, id) =>
        expect(b).toEqual({ jsonrpc: '2.0', id, error: { code: -32602, message: 'Unknown tool: echo' } }),
    ],
  ]
  it.each(formats)('denial format %s keeps the id and its type', async (format, status, check) => {
    const e = await engine({ mcp: { denial: format }, rules })
    for (const id of [7, 'seven']) {
      const d: Decision = await e.decide(rpc(A, tool('echo', {}, id)))
      expect(d.status).toBe(status)
      expect(d.headers).toContainEqual({ key: 'content-type', value: 'application/json' })
      check(JSON.parse(d.body!), id)
    }
    const batch = await e.decide(rpc(A, [tool('get-sum', {}, 1), tool('echo', {}, 'x')]))
    expect(JSON.parse(batch.body!).map((r: { id: unknown }) => r.id)).toEqual([1, 'x'])
  })

  it('http format (default) is a plain 403; denied notifications stay plain too', async () => {
    const e = await engine({ rules })
    expect(await e.decide(rpc(A, tool('echo')))).toMatchObject({ allowed: false, status: 403 })
    const j = await engine({ mcp: { denial: 'jsonrpc' }, rules })
    expect(await j.decide(rpc(B, note('notifications/initialized')))).toMatchObject({
      allowed: false,
      status: 403,
    })
  })
})

describe('config validation', () => {
  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['unknown field', { tool: ['x'] }, '/rules/0/mcp'],
    ['tools not a list', { tools: 'get-sum' }, '/rules/0/mcp/tools'],
    ['tool name not a string', { tools: [1] }, '/rules/0/mcp/tools/0'],
    ['empty tool name', { tools: [''] }, '/rules/0/mcp/tools/0'],
    ['baseProtocol value', { baseProtocol: 'MATCH_BASE_PROTOCOL' }, '/rules/0/mcp/baseProtocol'],
    ['method without name', { methods: [{ params: ['x'] }] }, '/rules/0/mcp/methods/0'],
    [
      'source with two kinds',
      { source: { spiffe: A, serviceAccount: { namespace: 'a', name: 'b' } } },
      '/rules/0/mcp/source',
    ],
    ['source not a SPIFFE ID', { source: { spiffe: 'agent-a' } }, '/rules/0/mcp/source'],
    [
      'service account with a slash',
      { source: { serviceAccount: { namespace: 'a/b', name: 'c' } } },
      '/rules/0/mcp/source',
    ],
    [
      'argument test unknown',
      { arguments: { repoName: { oneOf: ['x'] } } },
      '/rules/0/mcp/arguments/repoName',
    ],
    ['argument test empty', { arguments: { repoName: {} } }, '/rules/0/mcp/arguments/repoName'],
    ['argument in empty', { arguments: { repoName: { in: [] } } }, '/rules/0/mcp/arguments/repoName/in'],
    [
      'argument in with an object',
      { arguments: { repoName: { in: [{}] } } },
      '/rules/0/mcp/arguments/repoName/in/0',
    ],
  ]
  it.each(bad)('%s is a load-time problem with its JSON path', async (_label, mcp, path) => {
    const err = await engine({ rules: [{ id: 'r', action: 'allow', mcp }] }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PolicyError)
    const paths = (err as PolicyError).problems.map((p) => p.path)
    expect(
      paths.some((p) => p.startsWith(path)),
      paths.join(', '),
    ).toBe(true)
  })

  it('reports problems of several rules at once', async () => {
    const err = (await engine({
      rules: [
        { id: 'r1', action: 'allow', mcp: { tools: 'x' } },
        { id: 'r2', action: 'allow', mcp: { source: { spiffe: 'nope' } } },
      ],
    }).catch((e: unknown) => e)) as PolicyError
    expect(err.problems.map((p) => p.ruleId).sort()).toEqual(['r1', 'r2'])
  })
})

describe('large allow-lists', () => {
  it('10k tools: first, last and absent names decide correctly', async () => {
    const tools = Array.from({ length: 10_000 }, (_, i) => `tool-${i}`)
    const e = await engine({ rules: [{ id: 'big', action: 'allow', mcp: { tools } }] })
    expect((await e.decide(rpc(A, tool('tool-0')))).allowed).toBe(true)
    expect((await e.decide(rpc(A, tool('tool-9999')))).allowed).toBe(true)
    expect((await e.decide(rpc(A, tool('tool-10000')))).allowed).toBe(false)
  })
})

describe('client responses (sampling, elicitation, roots answers)', () => {
  const answer = {
    method: 'POST',
    path: '/mcp',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 'srv-7', result: { action: 'accept' } }),
    source: { principal: 'spiffe://cluster.local/ns/agents/sa/agent-a' },
  }
  const policy = (baseProtocol: 'MATCH' | 'SKIP') => ({
    rules: [
      {
        id: 'a',
        action: 'allow',
        mcp: {
          source: { serviceAccount: { namespace: 'agents', name: 'agent-a' } },
          tools: ['get-sum'],
          baseProtocol,
        },
      },
    ],
  })
  it('are base protocol: allowed by the rule with MATCH, outside its scope with SKIP', async () => {
    const match = await createEngine(policy('MATCH'), { evaluators: [createMcpEvaluator()] })
    expect(await match.decide(answer)).toMatchObject({ allowed: true, rule: 'a' })
    const other = { ...answer, source: { principal: 'spiffe://cluster.local/ns/agents/sa/x' } }
    expect((await match.decide(other)).allowed).toBe(false)
    // SKIP: the rule does not apply to the base protocol, and no other allow rule does: it passes.
    const skip = await createEngine(policy('SKIP'), { evaluators: [createMcpEvaluator()] })
    expect(await skip.decide(answer)).toMatchObject({ allowed: true, rule: 'mcp-base-protocol' })
  })
})
