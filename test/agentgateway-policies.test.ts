/**
 * agentgateway's policies, unchanged (issue 17): its documented examples for MCP authorization,
 * API keys, basic auth and JWT authentication, written here as case tables (facts from its
 * documentation and code, not its files), run through `decide()` and through `verdict test` on the
 * case files in test/fixtures/agentgateway/. The counts are printed.
 */
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { createCelEvaluator } from '@verdict/cel-adapter'
import { type Io, main } from '@verdict/cli'
import { createEngine, type Decision } from '@verdict/core'
import { createTestIssuer } from '@verdict/core/testing'
import { createMcpEvaluator, filterListResult } from '@verdict/mcp'
import { afterAll, describe, expect, it } from 'vitest'

const evaluators = () => [createCelEvaluator(), createMcpEvaluator()]
const counts = { decide: 0, verdictTest: 0 }

afterAll(() => {
  console.log(
    `[agentgateway-policies] ${counts.decide} decide() cases and ${counts.verdictTest} verdict test cases agree with agentgateway`,
  )
})

type Expect = Partial<Pick<Decision, 'allowed' | 'status' | 'rule' | 'code' | 'detailCode'>> & {
  readonly challenge?: string
}
type Case = readonly [name: string, input: Record<string, unknown>, expect: Expect]

async function table(policy: string | Record<string, unknown>, cases: readonly Case[]): Promise<void> {
  const e = await createEngine(policy, { evaluators: evaluators() })
  for (const [name, input, want] of cases) {
    const d = await e.decide(input)
    const { challenge, ...fields } = want
    expect(d, name).toMatchObject(fields)
    if (challenge !== undefined)
      expect(d.headers.find((h) => h.key === 'www-authenticate')?.value, name).toBe(challenge)
    counts.decide++
  }
}

const rpc = (method: string, params?: Record<string, unknown>, headers: Record<string, string> = {}) => ({
  method: 'POST',
  path: '/mcp',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, ...(params ? { params } : {}) }),
})
const tool = (name: string, headers: Record<string, string> = {}) =>
  rpc('tools/call', { name, arguments: {} }, headers)
const get = (headers: Record<string, string> = {}, path = '/') => ({ method: 'GET', path, headers })
const bearer = (t: string) => ({ authorization: `Bearer ${t}` })
const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
})

describe('MCP authorization (docs: mcp-authz, mcpAuthorization rules)', async () => {
  const issuer = await createTestIssuer({ issuer: 'http://localhost:9000', alg: 'RS256' })
  const token = (claims: Record<string, unknown>) =>
    issuer.sign({ aud: 'http://localhost:3000/mcp', ...claims })
  const policy = {
    authentication: {
      jwt: {
        mode: 'Optional',
        providers: [
          {
            issuer: 'http://localhost:9000',
            audiences: ['http://localhost:3000/mcp'],
            jwks: { inline: issuer.jwks },
          },
        ],
      },
    },
    mcpAuthorization: {
      rules: [
        'mcp.tool.name == "echo"',
        'jwt.sub == "test-user" && mcp.tool.name == "add"',
        'mcp.tool.name == "printEnv" && jwt.nested.key == "value"',
      ],
    },
  }

  it('base protocol passes, tools follow the rules, lists are filtered', async () => {
    const testUser = bearer(await token({ sub: 'test-user' }))
    const nested = bearer(await token({ sub: 'u', nested: { key: 'value' } }))
    await table(policy, [
      [
        'initialize (the docs test: 200)',
        rpc('initialize', { protocolVersion: '2024-11-05' }),
        { allowed: true },
      ],
      ['tools/list', rpc('tools/list'), { allowed: true }],
      ['ping', rpc('ping'), { allowed: true }],
      ['anyone may call echo', tool('echo'), { allowed: true, rule: 'mcpAuthorization/0' }],
      ['anonymous add', tool('add'), { allowed: false, status: 403 }],
      ['test-user add', tool('add', testUser), { allowed: true, rule: 'mcpAuthorization/1' }],
      ['test-user printEnv', tool('printEnv', testUser), { allowed: false }],
      [
        'nested.key == value printEnv',
        tool('printEnv', nested),
        { allowed: true, rule: 'mcpAuthorization/2' },
      ],
      ['a prompt no rule allows', rpc('prompts/get', { name: 'p' }), { allowed: false }],
    ])
    const e = await createEngine(policy, { evaluators: evaluators() })
    const list = { tools: ['echo', 'add', 'printEnv', 'get-sum'].map((name) => ({ name })) }
    const anonymous = await filterListResult(e, rpc('tools/list'), 'tools/list', list)
    expect(anonymous.tools.map((t) => t.name)).toEqual(['echo'])
    const asTestUser = await filterListResult(e, rpc('tools/list', {}, testUser), 'tools/list', list)
    expect(asTestUser.tools.map((t) => t.name)).toEqual(['echo', 'add'])
    counts.decide += 2
  })

  it('the same rules as verdict rules (no extra base-protocol rule)', async () => {
    await table({ rules: [{ id: 'echo', action: 'allow', cel: 'mcp.tool.name == "echo"' }] }, [
      ['initialize', rpc('initialize'), { allowed: true, rule: 'mcp-base-protocol' }],
      ['tools/list', rpc('tools/list'), { allowed: true, rule: 'mcp-base-protocol' }],
      ['echo', tool('echo'), { allowed: true, rule: 'echo' }],
      ['add', tool('add'), { allowed: false, code: 'no_match' }],
    ])
  })

  it('deny and require rules (agentgateway RuleSet semantics)', async () => {
    await table(
      {
        mcpAuthorization: {
          rules: [{ deny: 'mcp.tool.name == "delete"' }, { require: 'has(mcp.tool.name)' }, 'true'],
        },
      },
      [
        ['a deny rule denies its tool', tool('delete'), { allowed: false, rule: 'mcpAuthorization/0' }],
        ['other tools pass the allow rule', tool('echo'), { allowed: true, rule: 'mcpAuthorization/2' }],
        ['the deny rule is not asked about initialize', rpc('initialize'), { allowed: true }],
      ],
    )
    await table({ mcpAuthorization: { rules: [{ deny: 'mcp.tool.name == "delete"' }] } }, [
      ['deny-only: denylist semantics', tool('echo'), { allowed: true }],
      ['deny-only: the denied tool', tool('delete'), { allowed: false }],
    ])
  })
})

describe('API keys (docs: apikey-authn; code: apikey.rs)', () => {
  const sha = (k: string) => `sha256:${createHash('sha256').update(k).digest('hex')}`
  const keys = [
    { key: 'sk-testkey-1', metadata: { user: 'test', role: 'admin' } },
    { keyHash: sha('raw-secret'), metadata: { kind: 'sha' } },
    { keyHash: sha('UPPER').toUpperCase().replace('SHA256:', 'sha256:'), metadata: { kind: 'upper' } },
  ]
  const rules = [{ id: 'any', action: 'allow', cel: 'true' }]

  it('strict: a valid key is required; metadata reaches rules and the identity', async () => {
    const policy = {
      authentication: { apiKey: { mode: 'strict', keys } },
      rules: [
        { id: 'admin', action: 'allow', cel: 'apiKey.role == "admin" && apiKey.user == "test"' },
        { id: 'sha', action: 'allow', cel: 'apiKey.kind == "sha" || apiKey.kind == "upper"' },
      ],
    }
    await table(policy, [
      ['documented key', get(bearer('sk-testkey-1')), { allowed: true, rule: 'admin' }],
      ['sha256 keyHash', get(bearer('raw-secret')), { allowed: true, rule: 'sha' }],
      ['upper-case hex digest', get(bearer('UPPER')), { allowed: true, rule: 'sha' }],
      ['no key', get(), { allowed: false, status: 401, detailCode: 'apikey_missing' }],
      [
        'wrong key',
        get(bearer('wrong-secret')),
        { allowed: false, status: 401, detailCode: 'apikey_invalid' },
      ],
      ['bearer scheme in any case', get({ authorization: 'bearer sk-testkey-1' }), { allowed: true }],
    ])
    const e = await createEngine(policy, { evaluators: evaluators() })
    const d = await e.decide(get(bearer('sk-testkey-1')))
    expect(d.identity).toMatchObject({
      kind: 'apiKey',
      subject: 'test',
      apiKey: { metadata: { role: 'admin' } },
    })
    expect(d.headersToRemove).toContain('authorization')
    const bad = await e.decide(get(bearer('sk-secret-never-logged')))
    expect(JSON.stringify(bad)).not.toContain('sk-secret-never-logged')
    counts.decide += 2
  })

  it('optional (the default) and permissive', async () => {
    await table({ authentication: { apiKey: { keys } }, rules }, [
      ['optional: no key passes', get(), { allowed: true }],
      ['optional: a wrong key is 401', get(bearer('nope')), { allowed: false, status: 401 }],
    ])
    await table({ authentication: { apiKey: { mode: 'permissive', keys } }, rules }, [
      ['permissive: no key passes', get(), { allowed: true }],
      ['permissive: a wrong key passes without identity', get(bearer('nope')), { allowed: true }],
    ])
  })

  it('query parameter and cookie locations (apikey_tests: extracted and stripped)', async () => {
    const e = await createEngine(
      { authentication: { apiKey: { mode: 'strict', keys, location: { query: 'api_key' } } }, rules },
      { evaluators: evaluators() },
    )
    const q = await e.decide({ method: 'GET', path: '/data?api_key=sk-testkey-1&keep=yes' })
    expect(q).toMatchObject({ allowed: true, queryParametersToRemove: ['api_key'] })
    const c = await createEngine(
      { authentication: { apiKey: { mode: 'strict', keys, location: { cookie: 'api_key' } } }, rules },
      { evaluators: evaluators() },
    )
    const ck = await c.decide(get({ cookie: 'keep=yes; api_key=sk-testkey-1' }))
    expect(ck.allowed).toBe(true)
    expect(ck.headers).toContainEqual({ key: 'cookie', value: 'keep=yes', append: 'overwrite' })
    counts.decide += 2
  })

  it('malformed keyHash values are load problems (sha256:not-hex, sha256:abcd, no prefix)', async () => {
    for (const keyHash of ['sha256:not-hex', 'sha256:abcd', 'no-prefix']) {
      await expect(
        createEngine(
          { authentication: { apiKey: { keys: [{ keyHash }] } }, rules },
          { evaluators: evaluators() },
        ),
      ).rejects.toThrow(/keyHash/)
      counts.decide++
    }
  })
})

describe('basic auth (docs: basic-authn; code: basicauth.rs)', () => {
  const htpasswd = 'user1:$$2y$$05$$LMZ.8WGNqvagmtJz2Gw6VuiE6khXc2zc0FDTHrfWJyLT66HM8BMAa\n'
  const rules = [{ id: 'user', action: 'allow', cel: 'basicAuth.username == "user1"' }]

  it('strict, realm example.com, the documented user', async () => {
    await table(
      { authentication: { basicAuth: { mode: 'strict', htpasswd, realm: 'example.com' } }, rules },
      [
        ['user1:agentgateway', get(basic('user1', 'agentgateway')), { allowed: true, rule: 'user' }],
        [
          'wrong password',
          get(basic('user1', 'wrong')),
          { allowed: false, status: 401, challenge: 'Basic realm="example.com"' },
        ],
        ['unknown user', get(basic('user2', 'agentgateway')), { allowed: false, status: 401 }],
        ['missing', get(), { allowed: false, status: 401, detailCode: 'basic_missing' }],
        ['not base64', get({ authorization: 'Basic %%%' }), { allowed: false, status: 401 }],
      ],
    )
  })

  it('optional (the default): no credentials pass; the default realm is Restricted', async () => {
    await table({ authentication: { basicAuth: { htpasswd } }, default: 'allow' }, [
      ['no credentials', get(), { allowed: true }],
      [
        'bad credentials',
        get(basic('user1', 'x')),
        { allowed: false, challenge: 'Basic realm="Restricted"' },
      ],
    ])
  })
})

describe('JWT (code: jwt.rs; e2e: one issuer, two providers)', async () => {
  const a = await createTestIssuer({ issuer: 'https://idp.example.com', alg: 'ES256' })
  const b = await createTestIssuer({ issuer: 'https://idp.example.com', alg: 'ES256' })

  it('two providers with one issuer and different keys both verify', async () => {
    await table(
      {
        authentication: {
          jwt: {
            mode: 'Strict',
            providers: [
              { name: 'a', issuer: 'https://idp.example.com', jwks: { inline: a.jwks } },
              { name: 'b', issuer: 'https://idp.example.com', jwks: { inline: b.jwks } },
            ],
          },
        },
        default: 'allow',
      },
      [
        ['key a', get(bearer(await a.sign({ sub: 'x' }))), { allowed: true }],
        ['key b', get(bearer(await b.sign({ sub: 'x' }))), { allowed: true }],
        ['no token (Strict)', get(), { allowed: false, status: 401 }],
      ],
    )
  })

  it('Optional is agentgateway default mode: written out it lets anonymous requests through', async () => {
    const providers = [{ issuer: 'https://idp.example.com', jwks: { inline: a.jwks } }]
    await table({ authentication: { jwt: { mode: 'Optional', providers } }, default: 'allow' }, [
      ['no token', get(), { allowed: true }],
      ['bad token', get(bearer('x.y.z')), { allowed: false, status: 401 }],
    ])
    await table({ authentication: { jwt: { mode: 'Permissive', providers } }, default: 'allow' }, [
      ['bad token passes in Permissive', get(bearer('x.y.z')), { allowed: true }],
    ])
  })

  it('audience mismatch is 401, as agentgateway', async () => {
    const providers = [{ issuer: 'https://idp.example.com', audiences: ['api'], jwks: { inline: a.jwks } }]
    await table({ authentication: { jwt: { mode: 'Strict', providers } }, default: 'allow' }, [
      [
        'aud other',
        get(bearer(await a.sign({ sub: 's', aud: 'other' }))),
        { status: 401, detailCode: 'jwt_bad_audience' },
      ],
    ])
  })
})

describe('verdict test on test/fixtures/agentgateway', () => {
  it('every case file passes', async () => {
    let out = ''
    let err = ''
    const io: Io = {
      stdout: (t) => {
        out += t
      },
      stderr: (t) => {
        err += t
      },
      isTTY: false,
      readStdin: async () => '',
    }
    const dir = fileURLToPath(new URL('./fixtures/agentgateway', import.meta.url))
    const code = await main(['node', 'verdict', 'test', dir], io)
    const last = out.trim().split('\n').at(-1) ?? ''
    expect({ code, last, err }).toMatchObject({ code: 0, last: expect.stringMatching(/ 0 failed$/) })
    counts.verdictTest = Number(/(\d+) passed/.exec(last)?.[1] ?? 0)
    expect(counts.verdictTest).toBeGreaterThanOrEqual(20)
  })
})
