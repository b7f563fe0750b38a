import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createCelEvaluator } from '@verdict/cel-adapter'
import { createEngine, createFileResourceLoader } from '@verdict/core'
import { checkRequest, createTestIssuer, mcpRequest, type TestIssuer } from '@verdict/core/testing'
import { createRegoEvaluator } from '@verdict/rego-adapter'
import { beforeAll, describe, expect, it } from 'vitest'
import { findOpa } from '../../../rego-adapter/src/testing/find-opa.js'
import { importResources } from '../index.js'

const found = findOpa()
const OPA = found.bin
if (found.why !== undefined)
  console.warn(
    `[import authorino] SKIPPED the inline-Rego rows: ${found.why}. Install OPA or set OPA_BIN to run them.`,
  )
let idp: TestIssuer
beforeAll(async () => {
  idp = await createTestIssuer({ issuer: 'https://idp.test', kid: 'k1' })
})

/** Serves the test issuer's discovery document and key set. */
const fetchStub: typeof fetch = async (url) => {
  const u = String(url)
  if (u === 'https://idp.test/.well-known/openid-configuration')
    return new Response(JSON.stringify({ issuer: 'https://idp.test', jwks_uri: 'https://idp.test/jwks' }), {
      headers: { 'content-type': 'application/json' },
    })
  if (u === 'https://idp.test/jwks')
    return new Response(JSON.stringify(idp.jwks), { headers: { 'content-type': 'application/json' } })
  return new Response('not found', { status: 404 })
}

const ac = (spec: string, version = 'v1beta3'): string => `
apiVersion: authorino.kuadrant.io/${version}
kind: AuthConfig
metadata: { name: ac, namespace: ns }
spec:
${spec}`
const star = "  hosts: ['*']\n"
const pm = (patterns: string) =>
  `${star}  authorization:\n    rule:\n      patternMatching:\n        patterns:\n${patterns}`
const jwtId = '  authentication:\n    idp:\n      jwt: { issuerUrl: https://idp.test }\n'
const rego = (code: string, extra = '') =>
  `${star}${extra}  authorization:\n    rego-rule:\n      opa:\n        rego: |\n${code
    .split('\n')
    .map((l) => `          ${l}`)
    .join('\n')}\n`

type Req = {
  method?: string
  path?: string
  host?: string
  headers?: Record<string, string>
  token?: Record<string, unknown>
  principal?: string
  mcp?: Record<string, unknown>
}
type Row = {
  name: string
  /** Rows written against the legacy v1beta2 (the same outcome as v1beta3). */
  legacy?: true
  /** Needs the real opa to compile inline Rego. */
  opa?: true
  yaml: string
  req: Req
  allowed: boolean
  status?: number
}

const rows: Row[] = [
  {
    name: 'patternMatching eq on the method: GET',
    yaml: ac(pm('          - { selector: request.method, operator: eq, value: GET }\n')),
    req: { method: 'GET' },
    allowed: true,
  },
  {
    name: 'patternMatching eq on the method: POST is 403',
    yaml: ac(pm('          - { selector: request.method, operator: eq, value: GET }\n')),
    req: { method: 'POST' },
    allowed: false,
    status: 403,
  },
  {
    name: 'neq',
    yaml: ac(pm('          - { selector: request.method, operator: neq, value: DELETE }\n')),
    req: { method: 'DELETE' },
    allowed: false,
  },
  {
    name: 'matches on the path',
    yaml: ac(pm('          - { selector: request.url_path, operator: matches, value: "^/api/v[0-9]+/" }\n')),
    req: { path: '/api/v2/x' },
    allowed: true,
  },
  {
    name: 'matches on the path: no match',
    yaml: ac(pm('          - { selector: request.url_path, operator: matches, value: "^/api/v[0-9]+/" }\n')),
    req: { path: '/admin' },
    allowed: false,
  },
  {
    name: 'a header eq',
    yaml: ac(pm('          - { selector: request.headers.x-team, operator: eq, value: blue }\n')),
    req: { headers: { 'x-team': 'blue' } },
    allowed: true,
  },
  {
    name: 'a missing header denies (fail closed)',
    yaml: ac(pm('          - { selector: request.headers.x-team, operator: eq, value: blue }\n')),
    req: {},
    allowed: false,
  },
  {
    name: 'patterns of one entry are AND-ed',
    yaml: ac(
      pm(
        '          - { selector: request.method, operator: eq, value: GET }\n          - { selector: request.url_path, operator: eq, value: /a }\n',
      ),
    ),
    req: { method: 'GET', path: '/b' },
    allowed: false,
  },
  {
    name: 'any group',
    yaml: ac(
      pm(
        '          - any:\n              - { selector: request.url_path, operator: eq, value: /a }\n              - { selector: request.url_path, operator: eq, value: /b }\n',
      ),
    ),
    req: { path: '/b' },
    allowed: true,
  },
  {
    name: 'all group',
    yaml: ac(
      pm(
        '          - all:\n              - { selector: request.method, operator: eq, value: GET }\n              - { selector: request.url_path, operator: eq, value: /a }\n',
      ),
    ),
    req: { method: 'GET', path: '/a' },
    allowed: true,
  },
  {
    name: 'patternRef to spec.patterns',
    yaml: ac(
      `  patterns:\n    get-only:\n      - { selector: request.method, operator: eq, value: GET }\n${pm('          - patternRef: get-only\n')}`,
    ),
    req: { method: 'POST' },
    allowed: false,
  },
  {
    name: 'source.principal',
    yaml: ac(
      pm(
        '          - { selector: source.principal, operator: eq, value: "spiffe://cluster.local/ns/a/sa/b" }\n',
      ),
    ),
    req: { principal: 'spiffe://cluster.local/ns/a/sa/b' },
    allowed: true,
  },
  {
    name: 'the v1beta1-style selector context.request.http.method',
    yaml: ac(pm('          - { selector: context.request.http.method, operator: eq, value: GET }\n')),
    req: { method: 'GET' },
    allowed: true,
  },
  {
    name: 'hosts: a listed host',
    yaml: ac(
      '  hosts: [api.example.com]\n  authorization:\n    r:\n      patternMatching: { patterns: [{ selector: request.method, operator: eq, value: GET }] }\n',
    ),
    req: { host: 'api.example.com' },
    allowed: true,
  },
  {
    name: 'hosts: another host is denied',
    yaml: ac(
      '  hosts: [api.example.com]\n  authorization:\n    r:\n      patternMatching: { patterns: [{ selector: request.method, operator: eq, value: GET }] }\n',
    ),
    req: { host: 'evil.example.com' },
    allowed: false,
  },
  {
    name: 'hosts: a wildcard host',
    yaml: ac(
      "  hosts: ['*.example.com']\n  authorization:\n    r:\n      patternMatching: { patterns: [{ selector: request.method, operator: eq, value: GET }] }\n",
    ),
    req: { host: 'a.example.com' },
    allowed: true,
  },
  {
    name: 'two authorization entries: both must pass',
    yaml: ac(
      `${star}  authorization:\n    a:\n      patternMatching: { patterns: [{ selector: request.method, operator: eq, value: GET }] }\n    b:\n      patternMatching: { patterns: [{ selector: request.url_path, operator: eq, value: /a }] }\n`,
    ),
    req: { method: 'GET', path: '/b' },
    allowed: false,
  },
  { name: 'JWT identity: no token is 401', yaml: ac(star + jwtId), req: {}, allowed: false, status: 401 },
  {
    name: 'JWT identity: a valid token passes',
    yaml: ac(star + jwtId),
    req: { token: { sub: 'alice' } },
    allowed: true,
  },
  {
    name: 'JWT claim eq (auth.identity.sub)',
    yaml: ac(jwtId + pm('          - { selector: auth.identity.sub, operator: eq, value: alice }\n')),
    req: { token: { sub: 'bob' } },
    allowed: false,
    status: 403,
  },
  {
    name: 'JWT claim incl (a list claim)',
    yaml: ac(jwtId + pm('          - { selector: auth.identity.groups, operator: incl, value: admin }\n')),
    req: { token: { sub: 'a', groups: ['dev', 'admin'] } },
    allowed: true,
  },
  {
    name: 'JWT claim excl',
    yaml: ac(jwtId + pm('          - { selector: auth.identity.groups, operator: excl, value: banned }\n')),
    req: { token: { sub: 'a', groups: ['banned'] } },
    allowed: false,
  },
  {
    name: 'anonymous next to JWT: no token passes',
    yaml: ac(
      `${star}  authentication:\n    idp:\n      jwt: { issuerUrl: https://idp.test }\n    anon:\n      anonymous: {}\n`,
    ),
    req: {},
    allowed: true,
  },
  {
    name: 'opa: inline Rego (v0 syntax) allows',
    opa: true,
    yaml: ac(rego('allow { input.request.headers["x-ok"] == "yes" }')),
    req: { headers: { 'x-ok': 'yes' } },
    allowed: true,
  },
  {
    name: 'opa: inline Rego undefined is a deny',
    opa: true,
    yaml: ac(rego('allow { input.request.headers["x-ok"] == "yes" }')),
    req: { headers: { 'x-ok': 'no' } },
    allowed: false,
  },
  {
    name: 'opa: Rego reads the method',
    opa: true,
    yaml: ac(rego('allow { input.request.method == "GET" }')),
    req: { method: 'GET' },
    allowed: true,
  },
  {
    name: 'opa: Rego reads auth.identity',
    opa: true,
    yaml: ac(rego('allow { input.auth.identity.sub == "alice" }', jwtId)),
    req: { token: { sub: 'alice' } },
    allowed: true,
  },
  {
    name: "opa: seed 001's repository allow-list",
    opa: true,
    yaml: ac(
      rego(
        'allowed_repos := ["kubernetes-sigs/gateway-api"]\nrepo := input.metadata.filter_metadata.mcp_proxy.params.arguments.repoName\nallow { repo == allowed_repos[_] }',
      ),
    ),
    req: { mcp: { tool: 'ask_question', arguments: { repoName: 'kubernetes-sigs/gateway-api' } } },
    allowed: true,
  },
  {
    name: "opa: seed 001's allow-list denies another repository",
    opa: true,
    yaml: ac(
      rego(
        'allowed_repos := ["kubernetes-sigs/gateway-api"]\nrepo := input.metadata.filter_metadata.mcp_proxy.params.arguments.repoName\nallow { repo == allowed_repos[_] }',
      ),
    ),
    req: { mcp: { tool: 'ask_question', arguments: { repoName: 'cncf/toc' } } },
    allowed: false,
  },
  {
    name: 'opa: Rego v1 syntax with import rego.v1',
    opa: true,
    yaml: ac(rego('import rego.v1\nallow if input.request.method == "GET"')),
    req: { method: 'GET' },
    allowed: true,
  },
  {
    name: 'v1beta2: patternMatching',
    legacy: true,
    yaml: ac(pm('          - { selector: request.method, operator: eq, value: GET }\n'), 'v1beta2'),
    req: { method: 'POST' },
    allowed: false,
  },
  {
    name: 'v1beta2: JWT identity',
    legacy: true,
    yaml: ac(star + jwtId, 'v1beta2'),
    req: { token: { sub: 'a' } },
    allowed: true,
  },
]

async function input(req: Req): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = { ...(req.headers ?? {}) }
  if (req.token !== undefined) headers.authorization = `Bearer ${await idp.sign(req.token)}`
  if (req.mcp !== undefined) return mcpRequest({ ...req.mcp, headers })
  if (req.principal !== undefined)
    return {
      attributes: {
        source: { principal: req.principal },
        request: {
          http: { method: req.method ?? 'GET', path: req.path ?? '/', host: req.host ?? 'svc', headers },
        },
      },
    }
  return checkRequest({
    method: req.method ?? 'GET',
    path: req.path ?? '/',
    host: req.host ?? 'svc',
    headers,
  })
}

describe('Authorino AuthConfig case table', () => {
  it('has at least 30 rows, the v1beta2 rows marked', () => {
    expect(rows.length).toBeGreaterThanOrEqual(30)
    expect(rows.filter((r) => r.legacy).length).toBeGreaterThan(0)
  })
  it.each(rows.filter((r) => !r.opa || OPA !== undefined))('$name', async (row) => {
    const r = importResources(row.yaml, {
      ...(OPA ? { opa: OPA } : {}),
      cacheDir: join(tmpdir(), 'verdict-import-test'),
    })
    expect(r.problems).toEqual([])
    const engine = await createEngine(r.source, {
      evaluators: [createCelEvaluator(), createRegoEvaluator()],
      fetch: fetchStub,
      resources: createFileResourceLoader({ baseDir: tmpdir() }),
    })
    const d = await engine.decide(await input(row.req))
    engine.close()
    expect({ allowed: d.allowed, ...(row.status !== undefined ? { status: d.status } : {}) }).toEqual({
      allowed: row.allowed,
      ...(row.status !== undefined ? { status: row.status } : {}),
    })
  })
})

describe('Authorino problems', () => {
  it('v1beta1 is refused', () => {
    expect(importResources(ac(star, 'v1beta1')).problems.map((p) => p.code)).toEqual(['import_unsupported'])
  })
  it('an unsupported evaluator is located', () => {
    const r = importResources(
      ac(
        `${star}  authorization:\n    sar:\n      kubernetesSubjectAccessReview: { user: { selector: auth.identity.sub } }\n`,
      ),
    )
    expect(r.problems).toMatchObject([
      { code: 'import_unsupported', path: '/spec/authorization/sar/kubernetesSubjectAccessReview', line: 9 },
    ])
  })
  it('a selector without a verdict equivalent', () => {
    const r = importResources(ac(pm('          - { selector: auth.metadata.x, operator: eq, value: y }\n')))
    expect(r.problems.map((p) => p.code)).toEqual(['import_unsupported'])
  })
})
