import { createCelEvaluator } from '@verdict/cel-adapter'
import { createEngine } from '@verdict/core'
import { checkRequest, mcpRequest } from '@verdict/core/testing'
import { createMcpEvaluator } from '@verdict/mcp'
import { describe, expect, it } from 'vitest'
import { importResources } from '../index.js'

const A = 'spiffe://cluster.local/ns/ns1/sa/agent-a'
const B = 'spiffe://cluster.local/ns/ns1/sa/agent-b'

/** A v1alpha1 policy with the given rules (YAML lines, indented for `rules:`). */
const v1 = (rules: string, action = 'Allow', extra = ''): string => `
apiVersion: agentic.prototype.x-k8s.io/v1alpha1
kind: XAccessPolicy
metadata: { name: p1, namespace: ns1 }
spec:
  targetRefs: [{ group: agentic.prototype.x-k8s.io, kind: XBackend, name: be }]
  action: ${action}
${extra}  rules:
${rules}`
const v0 = (rules: string): string => `
apiVersion: agentic.prototype.x-k8s.io/v0alpha0
kind: XAccessPolicy
metadata: { name: p0, namespace: ns1 }
spec:
  targetRefs: [{ group: agentic.prototype.x-k8s.io, kind: XBackend, name: be }]
  rules:
${rules}`
const saA = 'source: { type: ServiceAccount, serviceAccount: { name: agent-a } }'

const inlineMcp = (mcp: string) => `    - name: r
      ${saA}
      authorization: { type: Inline, mcp: ${mcp} }
`

type Row = {
  name: string
  /** Rows whose outcome differs between the legacy v0alpha0 and v1alpha1. */
  differs?: true
  yaml: string
  request: Record<string, unknown>
  allowed: boolean
  status?: number
}

const rows: Row[] = [
  // Sources
  {
    name: 'ServiceAccount source is the SPIFFE principal (policy namespace)',
    yaml: v1(`    - name: r\n      ${saA}\n`),
    request: checkRequest({ principal: A }),
    allowed: true,
  },
  {
    name: 'another service account is denied',
    yaml: v1(`    - name: r\n      ${saA}\n`),
    request: checkRequest({ principal: B }),
    allowed: false,
    status: 403,
  },
  {
    name: 'no principal is denied',
    yaml: v1(`    - name: r\n      ${saA}\n`),
    request: checkRequest({}),
    allowed: false,
  },
  {
    name: 'explicit serviceAccount namespace',
    yaml: v1(
      `    - name: r\n      source: { type: ServiceAccount, serviceAccount: { name: agent-a, namespace: other } }\n`,
    ),
    request: checkRequest({ principal: 'spiffe://cluster.local/ns/other/sa/agent-a' }),
    allowed: true,
  },
  {
    name: 'SPIFFE source compared exactly',
    yaml: v1(`    - name: r\n      source: { type: SPIFFE, spiffe: "spiffe://example.org/w/x" }\n`),
    request: checkRequest({ principal: 'spiffe://example.org/w/x' }),
    allowed: true,
  },
  {
    name: 'SPIFFE source: another id is denied',
    yaml: v1(`    - name: r\n      source: { type: SPIFFE, spiffe: "spiffe://example.org/w/x" }\n`),
    request: checkRequest({ principal: 'spiffe://example.org/w/y' }),
    allowed: false,
  },
  // OR across rules
  {
    name: 'rules are OR-ed: second rule allows',
    yaml: v1(
      `    - name: r1\n      ${saA}\n    - name: r2\n      source: { type: ServiceAccount, serviceAccount: { name: agent-b } }\n`,
    ),
    request: checkRequest({ principal: B }),
    allowed: true,
  },
  // HTTP attributes (AND)
  {
    name: 'methods: GET allowed',
    yaml: v1(`    - name: r\n      ${saA}\n      authorization: { type: Inline, methods: [GET] }\n`),
    request: checkRequest({ principal: A, method: 'GET' }),
    allowed: true,
  },
  {
    name: 'methods: POST denied',
    yaml: v1(`    - name: r\n      ${saA}\n      authorization: { type: Inline, methods: [GET] }\n`),
    request: checkRequest({ principal: A, method: 'POST' }),
    allowed: false,
  },
  {
    name: 'paths Exact matches',
    yaml: v1(
      `    - name: r\n      ${saA}\n      authorization: { type: Inline, paths: [{ type: Exact, value: /mcp }] }\n`,
    ),
    request: checkRequest({ principal: A, path: '/mcp' }),
    allowed: true,
  },
  {
    name: 'paths Exact: another path denied',
    yaml: v1(
      `    - name: r\n      ${saA}\n      authorization: { type: Inline, paths: [{ type: Exact, value: /mcp }] }\n`,
    ),
    request: checkRequest({ principal: A, path: '/mcp/x' }),
    allowed: false,
  },
  {
    name: 'PathPrefix matches a sub-path',
    yaml: v1(
      `    - name: r\n      ${saA}\n      authorization: { type: Inline, paths: [{ type: PathPrefix, value: /api }] }\n`,
    ),
    request: checkRequest({ principal: A, path: '/api/v1' }),
    allowed: true,
  },
  {
    name: 'PathPrefix matches whole segments only',
    yaml: v1(
      `    - name: r\n      ${saA}\n      authorization: { type: Inline, paths: [{ type: PathPrefix, value: /api }] }\n`,
    ),
    request: checkRequest({ principal: A, path: '/apix' }),
    allowed: false,
  },
  {
    name: 'RegularExpression path (full match)',
    yaml: v1(
      `    - name: r\n      ${saA}\n      authorization: { type: Inline, paths: [{ type: RegularExpression, value: "/v[0-9]+/.*" }] }\n`,
    ),
    request: checkRequest({ principal: A, path: '/v2/items' }),
    allowed: true,
  },
  {
    name: 'RegularExpression path does not match a prefix of it',
    yaml: v1(
      `    - name: r\n      ${saA}\n      authorization: { type: Inline, paths: [{ type: RegularExpression, value: "/v[0-9]+" }] }\n`,
    ),
    request: checkRequest({ principal: A, path: '/v2/items' }),
    allowed: false,
  },
  {
    name: 'headers are AND-ed: both present',
    yaml: v1(
      `    - name: r\n      ${saA}\n      authorization: { type: Inline, headers: [{ name: x-a, value: "1" }, { name: x-b, value: "2" }] }\n`,
    ),
    request: checkRequest({ principal: A, headers: { 'x-a': '1', 'x-b': '2' } }),
    allowed: true,
  },
  {
    name: 'headers are AND-ed: one missing',
    yaml: v1(
      `    - name: r\n      ${saA}\n      authorization: { type: Inline, headers: [{ name: x-a, value: "1" }, { name: x-b, value: "2" }] }\n`,
    ),
    request: checkRequest({ principal: A, headers: { 'x-a': '1' } }),
    allowed: false,
  },
  {
    name: 'hosts',
    yaml: v1(
      `    - name: r\n      ${saA}\n      authorization: { type: Inline, hosts: [mcp.example.com] }\n`,
    ),
    request: checkRequest({ principal: A, host: 'mcp.example.com' }),
    allowed: true,
  },
  {
    name: 'hosts: another host denied',
    yaml: v1(
      `    - name: r\n      ${saA}\n      authorization: { type: Inline, hosts: [mcp.example.com] }\n`,
    ),
    request: checkRequest({ principal: A, host: 'evil.example.com' }),
    allowed: false,
  },
  // MCP
  {
    name: 'mcp tools/call with params allows that tool',
    yaml: v1(inlineMcp('{ methods: [{ name: tools/call, params: [get-sum] }] }')),
    request: mcpRequest({ principal: A, tool: 'get-sum' }),
    allowed: true,
  },
  {
    name: 'mcp params: another tool is the 200 JSON-RPC denial',
    yaml: v1(inlineMcp('{ methods: [{ name: tools/call, params: [get-sum] }] }')),
    request: mcpRequest({ principal: A, tool: 'echo' }),
    allowed: false,
    status: 200,
  },
  {
    name: 'mcp category "tools" covers tools/call of any tool',
    yaml: v1(inlineMcp('{ methods: [{ name: tools }] }')),
    request: mcpRequest({ principal: A, tool: 'echo' }),
    allowed: true,
  },
  {
    name: 'mcp category "tools" does not cover prompts/get',
    yaml: v1(inlineMcp('{ methods: [{ name: tools }] }')),
    request: mcpRequest({ principal: A, method: 'prompts/get', id: 2 }),
    allowed: false,
  },
  {
    name: 'v1alpha1 SKIP (default): initialize is denied',
    differs: true,
    yaml: v1(inlineMcp('{ methods: [{ name: tools/call, params: [get-sum] }] }')),
    request: mcpRequest({ principal: A, method: 'initialize' }),
    allowed: false,
  },
  {
    name: 'MATCH_BASE_PROTOCOL_METHODS allows initialize',
    yaml: v1(
      inlineMcp(
        '{ mcpBaseProtocolMethodsOption: MATCH_BASE_PROTOCOL_METHODS, methods: [{ name: tools/call, params: [get-sum] }] }',
      ),
    ),
    request: mcpRequest({ principal: A, method: 'initialize' }),
    allowed: true,
  },
  {
    name: 'MATCH_BASE_PROTOCOL_METHODS allows tools/list',
    yaml: v1(
      inlineMcp(
        '{ mcpBaseProtocolMethodsOption: MATCH_BASE_PROTOCOL_METHODS, methods: [{ name: tools/call, params: [get-sum] }] }',
      ),
    ),
    request: mcpRequest({ principal: A, method: 'tools/list' }),
    allowed: true,
  },
  {
    name: 'no mcp section: all MCP traffic of the source',
    yaml: v1(`    - name: r\n      ${saA}\n      authorization: { type: Inline, methods: [POST] }\n`),
    request: mcpRequest({ principal: A, tool: 'anything' }),
    allowed: true,
  },
  // CEL
  {
    name: 'CEL authorization true',
    yaml: v1(
      `    - name: r\n      ${saA}\n      authorization: { type: CEL, cel: { expression: 'request.headers["x-team"] == "blue"' } }\n`,
    ),
    request: checkRequest({ principal: A, headers: { 'x-team': 'blue' } }),
    allowed: true,
  },
  {
    name: 'CEL authorization false',
    yaml: v1(
      `    - name: r\n      ${saA}\n      authorization: { type: CEL, cel: { expression: 'request.headers["x-team"] == "blue"' } }\n`,
    ),
    request: checkRequest({ principal: A, headers: { 'x-team': 'red' } }),
    allowed: false,
  },
  {
    name: 'CEL authorization needs the source too',
    yaml: v1(
      `    - name: r\n      ${saA}\n      authorization: { type: CEL, cel: { expression: 'true' } }\n`,
    ),
    request: checkRequest({ principal: B }),
    allowed: false,
  },
  // v0alpha0
  {
    name: 'v0alpha0 InlineTools allows the listed tool',
    yaml: v0(`    - name: r\n      ${saA}\n      authorization: { type: InlineTools, tools: [get-sum] }\n`),
    request: mcpRequest({ principal: A, tool: 'get-sum' }),
    allowed: true,
  },
  {
    name: 'v0alpha0 InlineTools: an unlisted tool is denied (200 JSON-RPC)',
    yaml: v0(`    - name: r\n      ${saA}\n      authorization: { type: InlineTools, tools: [get-sum] }\n`),
    request: mcpRequest({ principal: A, tool: 'echo' }),
    allowed: false,
    status: 200,
  },
  {
    name: 'v0alpha0 InlineTools: [] denies every tool',
    yaml: v0(`    - name: r\n      ${saA}\n      authorization: { type: InlineTools, tools: [] }\n`),
    request: mcpRequest({ principal: A, tool: 'get-sum' }),
    allowed: false,
  },
  {
    name: 'v0alpha0: initialize is open to every caller',
    differs: true,
    yaml: v0(`    - name: r\n      ${saA}\n      authorization: { type: InlineTools, tools: [get-sum] }\n`),
    request: mcpRequest({ principal: B, method: 'initialize' }),
    allowed: true,
  },
  {
    name: 'v0alpha0 legacy rules[].tools',
    yaml: v0(`    - ${saA.replace('source:', 'source:')}\n      tools: [get-sum]\n`),
    request: mcpRequest({ principal: A, tool: 'get-sum' }),
    allowed: true,
  },
  // ExternalAuth (v1alpha1, authorizer given as verdict rules)
  {
    name: 'v1alpha1 ExternalAuth: the authorizer allows',
    yaml: v1(
      `    - name: r\n      ${saA}\n`,
      'ExternalAuth',
      '  externalAuth: { protocol: GRPC, backendRef: { name: authz, namespace: sec, port: 9000 } }\n',
    ),
    request: checkRequest({ principal: A, headers: { 'x-ext-authz': 'allow' } }),
    allowed: true,
  },
  {
    name: 'v1alpha1 ExternalAuth: the authorizer denies (final)',
    yaml: v1(
      `    - name: r\n      ${saA}\n`,
      'ExternalAuth',
      '  externalAuth: { protocol: GRPC, backendRef: { name: authz, namespace: sec, port: 9000 } }\n',
    ),
    request: checkRequest({ principal: A }),
    allowed: false,
  },
  {
    name: 'v1alpha1 ExternalAuth alone: requests it does not delegate pass',
    differs: true,
    yaml: v1(
      `    - name: r\n      ${saA}\n`,
      'ExternalAuth',
      '  externalAuth: { protocol: GRPC, backendRef: { name: authz, namespace: sec, port: 9000 } }\n',
    ),
    request: checkRequest({ principal: B }),
    allowed: true,
  },
  {
    name: 'v1alpha1 without rules: all traffic',
    yaml: v1('    []\n').replace('  rules:\n    []', '  rules: []'),
    request: checkRequest({}),
    allowed: true,
  },
]

const gatewayPolicy = `
apiVersion: agentic.prototype.x-k8s.io/v1alpha1
kind: XAccessPolicy
metadata: { name: gw, namespace: ns1 }
spec:
  targetRefs: [{ group: gateway.networking.k8s.io, kind: Gateway, name: gateway }]
  action: Allow
  rules:
    - name: only-a
      ${saA}
---`
const twoSources = v1(
  `    - name: a\n      ${saA}\n    - name: b\n      source: { type: ServiceAccount, serviceAccount: { name: agent-b } }\n`,
)
rows.push(
  {
    name: 'gateway-level and backend-level policies are AND-ed: the gateway refuses agent-b',
    yaml: gatewayPolicy + twoSources,
    request: checkRequest({ principal: B }),
    allowed: false,
  },
  {
    name: 'gateway-level and backend-level policies are AND-ed: agent-a passes both',
    yaml: gatewayPolicy + twoSources,
    request: checkRequest({ principal: A }),
    allowed: true,
  },
)

const externalAuth = {
  'sec/authz': {
    rules: [
      { id: 'header', action: 'require', match: { headers: [{ name: 'x-ext-authz', exact: 'allow' }] } },
    ],
  },
}
const evaluators = [createCelEvaluator(), createMcpEvaluator()]

describe('XAccessPolicy case table', () => {
  it('has at least 30 rows, the ones that differ between versions marked', () => {
    expect(rows.length).toBeGreaterThanOrEqual(30)
    expect(rows.filter((r) => r.differs).length).toBeGreaterThan(0)
  })
  it.each(rows)('$name', async (row) => {
    const r = importResources(row.yaml, { externalAuth })
    expect(r.problems).toEqual([])
    const engine = await createEngine(r.source, { evaluators })
    const d = await engine.decide(row.request)
    engine.close()
    expect({ allowed: d.allowed, ...(row.status !== undefined ? { status: d.status } : {}) }).toEqual({
      allowed: row.allowed,
      ...(row.status !== undefined ? { status: row.status } : {}),
    })
  })
})

describe('XAccessPolicy problems', () => {
  it('reports an unknown field at its line and column, never drops it', () => {
    const r = importResources(
      v1(`    - name: r\n      ${saA}\n      authorization: { type: Inline, bogus: 1 }\n`),
    )
    expect(r.problems).toMatchObject([
      { code: 'import_unsupported_field', path: '/spec/rules/0/authorization/bogus', line: 11 },
    ])
  })
  it('reports an ExternalAuth without a known authorizer', () => {
    const r = importResources(
      v1(`    - name: r\n      ${saA}\n`, 'ExternalAuth', '  externalAuth: { backendRef: { name: x } }\n'),
    )
    expect(r.problems.map((p) => p.code)).toContain('import_external_auth')
  })
  it('asks for a target when the policies target several backends, and takes one', () => {
    const two = `${v1(`    - name: r\n      ${saA}\n`)}---\n${v1(`    - name: r\n      ${saA}\n`).replace('name: be', 'name: other').replace('name: p1', 'name: p2')}`
    expect(importResources(two).problems.map((p) => p.code)).toEqual(['import_target'])
    expect(importResources(two, { target: 'other' }).policy).toMatchObject({ layers: [{ name: 'other' }] })
  })
  it('unfolds a kubectl List', () => {
    const list = `apiVersion: v1\nkind: List\nitems:\n${v1(`    - name: r\n      ${saA}\n`)
      .trim()
      .split('\n')
      .map((l, i) => (i === 0 ? `  - ${l}` : `    ${l}`))
      .join('\n')}\n`
    const r = importResources(list)
    expect(r.problems).toEqual([])
    expect(r.targets).toEqual(['be'])
  })
  it('refuses a kind it does not import', () => {
    const r = importResources('apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n')
    expect(r.problems).toMatchObject([{ code: 'import_unsupported_kind', line: 2 }])
  })
})
