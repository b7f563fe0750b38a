import { createCelEvaluator } from '@verdict/cel-adapter'
import { createEngine } from '@verdict/core'
import { checkRequest, createTestIssuer, mcpRequest, type TestIssuer } from '@verdict/core/testing'
import { createMcpEvaluator } from '@verdict/mcp'
import { beforeAll, describe, expect, it } from 'vitest'
import { importResources } from '../index.js'

let idp: TestIssuer
let jwks: string
beforeAll(async () => {
  idp = await createTestIssuer({ issuer: 'https://idp.test', kid: 'k1' })
  jwks = JSON.stringify(idp.jwks)
})

/** An AgentgatewayPolicy (current form) with the given `spec.traffic` / `spec.backend` YAML. */
const agp = (traffic: string, backend = ''): string => `
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: { name: p, namespace: ns }
spec:
  targetRefs: [{ group: gateway.networking.k8s.io, kind: Gateway, name: gw }]
${traffic ? `  traffic:\n${traffic}` : ''}${backend ? `  backend:\n${backend}` : ''}`
/** The TrafficPolicy form of kgateway's docs (seed 003), authorization nested in jwtAuthentication. */
const legacy = (auth: string): string => `
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TrafficPolicy
metadata: { name: p, namespace: ns }
spec:
  targetRefs: [{ group: gateway.networking.k8s.io, kind: Gateway, name: gw }]
  traffic:
    jwtAuthentication:
      mode: Strict
      providers: [{ issuer: https://idp.test, jwks: { inline: 'JWKS' } }]
      authorization: ${auth}
`
const jwt = (mode: string, extra = '') =>
  `    jwtAuthentication:\n      mode: ${mode}\n      providers: [{ issuer: https://idp.test, jwks: { inline: 'JWKS' }${extra} }]\n`
const authz = (action: string, exprs: string[]) =>
  `    authorization: { action: ${action}, policy: { matchExpressions: [${exprs.map((e) => `'${e}'`).join(', ')}] } }\n`
const mcpAuthz = (action: string, exprs: string[]) =>
  `    mcp:\n      authorization: { action: ${action}, policy: { matchExpressions: [${exprs.map((e) => `'${e}'`).join(', ')}] } }\n`

type Req = {
  token?: Record<string, unknown> | string
  headers?: Record<string, string>
  mcp?: Record<string, unknown>
  path?: string
  method?: string
}
type Row = {
  name: string
  /** Rows written in the TrafficPolicy form of kgateway's docs (seed 003) rather than AgentgatewayPolicy. */
  legacy?: true
  yaml: string
  req: Req
  allowed: boolean
  status?: number
}

const secret = `---
apiVersion: v1
kind: Secret
metadata: { name: keys, namespace: ns }
stringData:
  client1: '{"key": "k-123", "metadata": {"group": "sales"}}'
  client2: k-456
`

const rows: Row[] = [
  // JWT modes (agentgateway's table)
  { name: 'Strict: no token is 401', yaml: agp(jwt('Strict')), req: {}, allowed: false, status: 401 },
  {
    name: 'Strict: an invalid token is 401',
    yaml: agp(jwt('Strict')),
    req: { token: 'x.y.z' },
    allowed: false,
    status: 401,
  },
  {
    name: 'Strict: a valid token passes (no rules)',
    yaml: agp(jwt('Strict')),
    req: { token: { sub: 'a' } },
    allowed: true,
  },
  { name: 'Optional: no token passes', yaml: agp(jwt('Optional')), req: {}, allowed: true },
  {
    name: 'Optional: an invalid token is 401',
    yaml: agp(jwt('Optional')),
    req: { token: 'x.y.z' },
    allowed: false,
    status: 401,
  },
  {
    name: 'Permissive: an invalid token passes',
    yaml: agp(jwt('Permissive')),
    req: { token: 'x.y.z' },
    allowed: true,
  },
  {
    name: 'audiences: a token for another audience is 401',
    yaml: agp(jwt('Strict', ', audiences: [api]')),
    req: { token: { sub: 'a', aud: 'web' } },
    allowed: false,
    status: 401,
  },
  {
    name: 'audiences: the audience passes',
    yaml: agp(jwt('Strict', ', audiences: [api]')),
    req: { token: { sub: 'a', aud: 'api' } },
    allowed: true,
  },
  {
    name: 'an unknown issuer is 401',
    yaml: agp(jwt('Strict')),
    req: { token: 'other-issuer' },
    allowed: false,
    status: 401,
  },
  // Authorization: Allow / Deny / Require, each expression its own rule
  {
    name: 'Allow: the expression holds',
    yaml: agp(jwt('Strict') + authz('Allow', ['jwt.sub == "alice"'])),
    req: { token: { sub: 'alice' } },
    allowed: true,
  },
  {
    name: 'Allow: unmatched is 403',
    yaml: agp(jwt('Strict') + authz('Allow', ['jwt.sub == "alice"'])),
    req: { token: { sub: 'bob' } },
    allowed: false,
    status: 403,
  },
  {
    name: 'Allow: any of several expressions allows',
    yaml: agp(jwt('Strict') + authz('Allow', ['jwt.sub == "alice"', '"admin" in jwt.roles'])),
    req: { token: { sub: 'x', roles: ['admin'] } },
    allowed: true,
  },
  {
    name: 'Allow: email domain',
    yaml: agp(jwt('Strict') + authz('Allow', ['jwt.email.endsWith("@company.com")'])),
    req: { token: { sub: 'x', email: 'x@company.com' } },
    allowed: true,
  },
  {
    name: 'Deny: the expression denies',
    yaml: agp(jwt('Strict') + authz('Deny', ['jwt.sub == "mallory"'])),
    req: { token: { sub: 'mallory' } },
    allowed: false,
    status: 403,
  },
  {
    name: 'Deny only: others pass (deny-list)',
    yaml: agp(jwt('Strict') + authz('Deny', ['jwt.sub == "mallory"'])),
    req: { token: { sub: 'bob' } },
    allowed: true,
  },
  {
    name: 'Deny: a failing expression denies (verdict fails closed; agentgateway would pass)',
    yaml: agp(jwt('Optional') + authz('Deny', ['jwt.sub == "mallory"'])),
    req: {},
    allowed: false,
  },
  {
    name: 'Require: unmet denies',
    yaml: agp(jwt('Optional') + authz('Require', ['has(jwt.sub)'])),
    req: {},
    allowed: false,
    status: 403,
  },
  {
    name: 'Require: met passes',
    yaml: agp(jwt('Optional') + authz('Require', ['has(jwt.sub)'])),
    req: { token: { sub: 'a' } },
    allowed: true,
  },
  {
    name: 'request attributes: method and path',
    yaml: agp(authz('Allow', ['request.method == "GET" && request.path.startsWith("/public")'])),
    req: { method: 'GET', path: '/public/x' },
    allowed: true,
  },
  {
    name: 'request attributes: a header',
    yaml: agp(authz('Allow', ['request.headers["x-team"] == "blue"'])),
    req: { headers: { 'x-team': 'red' } },
    allowed: false,
  },
  // MCP authorization
  {
    name: 'MCP: an allowed tool',
    yaml: agp('', mcpAuthz('Allow', ['mcp.tool.name == "echo"'])),
    req: { mcp: { tool: 'echo' } },
    allowed: true,
  },
  {
    name: 'MCP: another tool is hidden (400 Unknown tool)',
    yaml: agp('', mcpAuthz('Allow', ['mcp.tool.name == "echo"'])),
    req: { mcp: { tool: 'add' } },
    allowed: false,
    status: 400,
  },
  {
    name: 'MCP: initialize is not subject to it',
    yaml: agp('', mcpAuthz('Allow', ['mcp.tool.name == "echo"'])),
    req: { mcp: { method: 'initialize' } },
    allowed: true,
  },
  {
    name: 'MCP: tools/list is not subject to it',
    yaml: agp('', mcpAuthz('Allow', ['mcp.tool.name == "echo"'])),
    req: { mcp: { method: 'tools/list' } },
    allowed: true,
  },
  {
    name: 'MCP: Deny a tool',
    yaml: agp('', mcpAuthz('Deny', ['mcp.tool.name == "printEnv"'])),
    req: { mcp: { tool: 'printEnv' } },
    allowed: false,
  },
  {
    name: 'MCP: Deny leaves other tools',
    yaml: agp('', mcpAuthz('Deny', ['mcp.tool.name == "printEnv"'])),
    req: { mcp: { tool: 'echo' } },
    allowed: true,
  },
  {
    name: 'MCP: claims and tool together',
    yaml: agp(jwt('Strict'), mcpAuthz('Allow', ['jwt.sub == "test-user" && mcp.tool.name == "add"'])),
    req: { token: { sub: 'test-user' }, mcp: { tool: 'add' } },
    allowed: true,
  },
  {
    name: 'MCP: the same tool for another subject',
    yaml: agp(jwt('Strict'), mcpAuthz('Allow', ['jwt.sub == "test-user" && mcp.tool.name == "add"'])),
    req: { token: { sub: 'other' }, mcp: { tool: 'add' } },
    allowed: false,
  },
  // API keys and basic auth
  {
    name: 'API key from the Secret (JSON entry) authenticates',
    yaml:
      agp(
        '    apiKeyAuthentication: { mode: Strict, secretRef: { name: keys } }\n' +
          authz('Allow', ['apiKey.group == "sales"']),
      ) + secret,
    req: { headers: { authorization: 'Bearer k-123' } },
    allowed: true,
  },
  {
    name: 'API key: a plain Secret entry authenticates, its missing metadata does not allow',
    yaml:
      agp(
        '    apiKeyAuthentication: { mode: Strict, secretRef: { name: keys } }\n' +
          authz('Allow', ['apiKey.group == "sales"']),
      ) + secret,
    req: { headers: { authorization: 'Bearer k-456' } },
    allowed: false,
    status: 403,
  },
  {
    name: 'API key: Strict without a key is 401',
    yaml: agp('    apiKeyAuthentication: { mode: Strict, secretRef: { name: keys } }\n') + secret,
    req: {},
    allowed: false,
    status: 401,
  },
  {
    name: 'basic auth user',
    yaml: agp(
      '    basicAuthentication: { mode: Strict, realm: example.com, users: ["user1:$2y$05$LMZ.8WGNqvagmtJz2Gw6VuiE6khXc2zc0FDTHrfWJyLT66HM8BMAa"] }\n',
    ),
    req: { headers: { authorization: 'Basic dXNlcjE6YWdlbnRnYXRld2F5' } },
    allowed: true,
  },
  {
    name: 'basic auth: a wrong password is 401',
    yaml: agp(
      '    basicAuthentication: { mode: Strict, users: ["user1:$2y$05$LMZ.8WGNqvagmtJz2Gw6VuiE6khXc2zc0FDTHrfWJyLT66HM8BMAa"] }\n',
    ),
    req: { headers: { authorization: 'Basic dXNlcjE6d3Jvbmc=' } },
    allowed: false,
    status: 401,
  },
  // kgateway's TrafficPolicy form (seed 003)
  {
    name: 'TrafficPolicy form: authorization under jwtAuthentication allows alice',
    legacy: true,
    yaml: legacy('{ action: Allow, policy: { matchExpressions: [\'jwt.sub == "alice"\'] } }'),
    req: { token: { sub: 'alice' } },
    allowed: true,
  },
  {
    name: 'TrafficPolicy form: bob is 403',
    legacy: true,
    yaml: legacy('{ action: Allow, policy: { matchExpressions: [\'jwt.sub == "alice"\'] } }'),
    req: { token: { sub: 'bob' } },
    allowed: false,
    status: 403,
  },
]

const evaluators = [createCelEvaluator(), createMcpEvaluator()]

async function input(req: Req): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = { ...(req.headers ?? {}) }
  if (typeof req.token === 'string') {
    if (req.token === 'other-issuer') {
      const other = await createTestIssuer({ issuer: 'https://other.test' })
      headers.authorization = `Bearer ${await other.sign({ sub: 'a' })}`
    } else headers.authorization = `Bearer ${req.token}`
  } else if (req.token !== undefined) headers.authorization = `Bearer ${await idp.sign(req.token)}`
  if (req.mcp !== undefined) return mcpRequest({ ...req.mcp, headers })
  return checkRequest({
    headers,
    ...(req.method ? { method: req.method } : {}),
    ...(req.path ? { path: req.path } : {}),
  })
}

describe('agentgateway case table', () => {
  it('has at least 30 rows, the TrafficPolicy-form rows marked', () => {
    expect(rows.length).toBeGreaterThanOrEqual(30)
    expect(rows.filter((r) => r.legacy).length).toBeGreaterThan(0)
  })
  it.each(rows)('$name', async (row) => {
    const r = importResources(row.yaml.replaceAll('JWKS', jwks))
    expect(r.problems).toEqual([])
    const engine = await createEngine(r.source, { evaluators })
    const d = await engine.decide(await input(row.req))
    engine.close()
    expect({ allowed: d.allowed, ...(row.status !== undefined ? { status: d.status } : {}) }).toEqual({
      allowed: row.allowed,
      ...(row.status !== undefined ? { status: row.status } : {}),
    })
  })
})

describe('agentgateway problems', () => {
  it('a remote JWKS inside the cluster is a located problem', () => {
    const r = importResources(
      agp(
        '    jwtAuthentication:\n      providers: [{ issuer: i, jwks: { remote: { jwksPath: /keys, backendRef: { name: idp } } } }]\n',
      ),
    )
    expect(r.problems).toMatchObject([
      {
        code: 'import_unsupported',
        path: '/spec/traffic/jwtAuthentication/providers/0/jwks/remote',
        line: 9,
      },
    ])
  })
  it('an API key Secret missing from the input', () => {
    const r = importResources(agp('    apiKeyAuthentication: { secretRef: { name: nope } }\n'))
    expect(r.problems.map((p) => p.code)).toEqual(['import_secret'])
  })
  it('an unknown traffic field is reported, not dropped', () => {
    const r = importResources(agp('    rateLimit: { local: [] }\n'))
    expect(r.problems).toMatchObject([{ code: 'import_unsupported_field', path: '/spec/traffic/rateLimit' }])
  })
  it('extAuth without a known authorizer', () => {
    const r = importResources(agp('    extAuth: { backendRef: { name: authz, port: 4444 }, grpc: {} }\n'))
    expect(r.problems.map((p) => p.code)).toEqual(['import_external_auth'])
  })
})
