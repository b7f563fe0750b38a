import { createCelEvaluator } from '@verdict/cel-adapter'
import { createEngine } from '@verdict/core'
import { checkRequest, createTestIssuer, type TestIssuer } from '@verdict/core/testing'
import { beforeAll, describe, expect, it } from 'vitest'
import { importResources } from '../index.js'

let idp: TestIssuer
let jwks: string
beforeAll(async () => {
  idp = await createTestIssuer({ issuer: 'https://idp.test', kid: 'k1' })
  jwks = JSON.stringify(idp.jwks)
})

const ap = (spec: string, version = 'v1', name = 'p'): string => `---
apiVersion: security.istio.io/${version}
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: foo }
spec:
${spec}`
const ra = `---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: foo }
spec:
  jwtRules: [{ issuer: https://idp.test, jwks: 'JWKS' }]
`
const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep'
const DEV = 'spiffe://cluster.local/ns/dev/sa/x'

type Req = {
  principal?: string
  method?: string
  path?: string
  host?: string
  headers?: Record<string, string>
  token?: Record<string, unknown> | string
  address?: string
  port?: number
}
type Row = {
  name: string
  /** Rows written against the legacy security.istio.io/v1beta1 (same meaning as v1). */
  legacy?: true
  yaml: string
  req: Req
  allowed: boolean
  status?: number
}

const allowFromSleepGet = ap(`  action: ALLOW
  rules:
    - from: [{ source: { principals: [cluster.local/ns/default/sa/sleep] } }]
      to: [{ operation: { methods: [GET], paths: ["/info*"] } }]
`)

const rows: Row[] = [
  {
    name: 'allow-nothing (spec {}) denies every request',
    yaml: ap('  {}\n'),
    req: {},
    allowed: false,
    status: 403,
  },
  {
    name: 'deny-all (DENY rules [{}])',
    yaml: ap('  action: DENY\n  rules: [{}]\n'),
    req: {},
    allowed: false,
  },
  {
    name: 'allow-all (ALLOW rules [{}])',
    yaml: ap('  action: ALLOW\n  rules: [{}]\n'),
    req: {},
    allowed: true,
  },
  {
    name: 'ALLOW principal + GET + /info* matches',
    yaml: allowFromSleepGet,
    req: { principal: SLEEP, method: 'GET', path: '/info/a' },
    allowed: true,
  },
  {
    name: 'ALLOW: another method is denied',
    yaml: allowFromSleepGet,
    req: { principal: SLEEP, method: 'POST', path: '/info' },
    allowed: false,
  },
  {
    name: 'ALLOW: another path is denied',
    yaml: allowFromSleepGet,
    req: { principal: SLEEP, method: 'GET', path: '/admin' },
    allowed: false,
  },
  {
    name: 'ALLOW: another principal is denied',
    yaml: allowFromSleepGet,
    req: { principal: DEV, method: 'GET', path: '/info' },
    allowed: false,
  },
  {
    name: 'ALLOW: no principal (plain text) is denied',
    yaml: allowFromSleepGet,
    req: { method: 'GET', path: '/info' },
    allowed: false,
  },
  {
    name: 'principal prefix cluster.local/ns/default/*',
    yaml: ap('  rules:\n    - from: [{ source: { principals: ["cluster.local/ns/default/*"] } }]\n'),
    req: { principal: SLEEP },
    allowed: true,
  },
  {
    name: 'principal * needs mTLS identity',
    yaml: ap('  rules:\n    - from: [{ source: { principals: ["*"] } }]\n'),
    req: {},
    allowed: false,
  },
  {
    name: 'DENY namespaces [dev] denies dev',
    yaml: ap('  action: DENY\n  rules:\n    - from: [{ source: { namespaces: [dev] } }]\n'),
    req: { principal: DEV },
    allowed: false,
  },
  {
    name: 'DENY namespaces [dev] leaves default',
    yaml: ap('  action: DENY\n  rules:\n    - from: [{ source: { namespaces: [dev] } }]\n'),
    req: { principal: SLEEP },
    allowed: true,
  },
  {
    name: 'ALLOW notNamespaces [dev] admits a request without identity',
    yaml: ap('  rules:\n    - from: [{ source: { notNamespaces: [dev] } }]\n'),
    req: {},
    allowed: true,
  },
  {
    name: 'paths suffix */health',
    yaml: ap('  rules:\n    - to: [{ operation: { paths: ["*/health"] } }]\n'),
    req: { path: '/svc/health' },
    allowed: true,
  },
  {
    name: 'path template /api/{*}/users matches one segment',
    yaml: ap('  rules:\n    - to: [{ operation: { paths: ["/api/{*}/users"] } }]\n'),
    req: { path: '/api/v1/users' },
    allowed: true,
  },
  {
    name: 'path template {*} does not cross /',
    yaml: ap('  rules:\n    - to: [{ operation: { paths: ["/api/{*}/users"] } }]\n'),
    req: { path: '/api/v1/x/users' },
    allowed: false,
  },
  {
    name: 'path template {**} crosses /',
    yaml: ap('  rules:\n    - to: [{ operation: { paths: ["/api/{**}"] } }]\n'),
    req: { path: '/api/v1/x/users' },
    allowed: true,
  },
  {
    name: 'hosts are case-insensitive',
    yaml: ap('  rules:\n    - to: [{ operation: { hosts: [Example.COM] } }]\n'),
    req: { host: 'example.com' },
    allowed: true,
  },
  {
    name: 'notMethods',
    yaml: ap('  rules:\n    - to: [{ operation: { notMethods: [DELETE] } }]\n'),
    req: { method: 'DELETE' },
    allowed: false,
  },
  {
    name: 'from entries are OR-ed',
    yaml: ap(
      '  rules:\n    - from: [{ source: { namespaces: [dev] } }, { source: { namespaces: [default] } }]\n',
    ),
    req: { principal: SLEEP },
    allowed: true,
  },
  {
    name: 'rules of one policy are OR-ed',
    yaml: ap(
      '  rules:\n    - to: [{ operation: { paths: [/a] } }]\n    - to: [{ operation: { paths: [/b] } }]\n',
    ),
    req: { path: '/b' },
    allowed: true,
  },
  {
    name: 'DENY wins over a matching ALLOW',
    yaml:
      ap('  action: ALLOW\n  rules: [{}]\n') +
      ap('  action: DENY\n  rules:\n    - to: [{ operation: { paths: [/admin] } }]\n', 'v1', 'd'),
    req: { path: '/admin' },
    allowed: false,
  },
  {
    name: 'AUDIT records and does not enforce',
    yaml: ap('  action: AUDIT\n  rules: [{}]\n'),
    req: {},
    allowed: true,
  },
  {
    name: 'when request.headers[version] values [v1]',
    yaml: ap('  rules:\n    - when: [{ key: "request.headers[version]", values: [v1] }]\n'),
    req: { headers: { version: 'v1' } },
    allowed: true,
  },
  {
    name: 'when header absent does not match',
    yaml: ap('  rules:\n    - when: [{ key: "request.headers[version]", values: [v1] }]\n'),
    req: {},
    allowed: false,
  },
  {
    name: 'when notValues',
    yaml: ap('  rules:\n    - when: [{ key: "request.headers[version]", notValues: [v2] }]\n'),
    req: { headers: { version: 'v2' } },
    allowed: false,
  },
  {
    name: 'when source.ip CIDR',
    yaml: ap('  rules:\n    - when: [{ key: source.ip, values: [10.0.0.0/8] }]\n'),
    req: { address: '10.1.2.3' },
    allowed: true,
  },
  {
    name: 'when destination.port',
    yaml: ap('  rules:\n    - when: [{ key: destination.port, values: ["8080"] }]\n'),
    req: { port: 9090 },
    allowed: false,
  },
  {
    name: 'requestPrincipals * requires a token',
    yaml: ra + ap('  rules:\n    - from: [{ source: { requestPrincipals: ["*"] } }]\n'),
    req: {},
    allowed: false,
    status: 403,
  },
  {
    name: 'requestPrincipals * with a valid token',
    yaml: ra + ap('  rules:\n    - from: [{ source: { requestPrincipals: ["*"] } }]\n'),
    req: { token: { sub: 'alice' } },
    allowed: true,
  },
  {
    name: 'RequestAuthentication: an invalid token is 401',
    yaml: ra + ap('  rules: [{}]\n'),
    req: { token: 'x.y.z' },
    allowed: false,
    status: 401,
  },
  {
    name: 'requestPrincipals iss/sub exact',
    yaml: ra + ap('  rules:\n    - from: [{ source: { requestPrincipals: ["https://idp.test/alice"] } }]\n'),
    req: { token: { sub: 'bob' } },
    allowed: false,
  },
  {
    name: 'when request.auth.claims[groups] (list claim, any element)',
    yaml: ra + ap('  rules:\n    - when: [{ key: "request.auth.claims[groups]", values: [admin] }]\n'),
    req: { token: { sub: 'a', groups: ['dev', 'admin'] } },
    allowed: true,
  },
  {
    name: 'when request.auth.claims[role] (string claim)',
    yaml: ra + ap('  rules:\n    - when: [{ key: "request.auth.claims[role]", values: [admin] }]\n'),
    req: { token: { sub: 'a', role: 'user' } },
    allowed: false,
  },
  {
    name: 'when nested claim request.auth.claims[org][name]',
    yaml: ra + ap('  rules:\n    - when: [{ key: "request.auth.claims[org][name]", values: [acme] }]\n'),
    req: { token: { sub: 'a', org: { name: 'acme' } } },
    allowed: true,
  },
  { name: 'v1beta1: allow-nothing', legacy: true, yaml: ap('  {}\n', 'v1beta1'), req: {}, allowed: false },
  {
    name: 'v1beta1: ALLOW principal',
    legacy: true,
    yaml: ap(
      '  rules:\n    - from: [{ source: { principals: [cluster.local/ns/default/sa/sleep] } }]\n',
      'v1beta1',
    ),
    req: { principal: SLEEP },
    allowed: true,
  },
]

async function input(req: Req): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = { ...(req.headers ?? {}) }
  if (typeof req.token === 'string') headers.authorization = `Bearer ${req.token}`
  else if (req.token !== undefined) headers.authorization = `Bearer ${await idp.sign(req.token)}`
  const http: Record<string, unknown> = {
    method: req.method ?? 'GET',
    path: req.path ?? '/',
    host: req.host ?? 'httpbin.foo',
    headers,
  }
  const attrs: Record<string, unknown> = { request: { http } }
  const source: Record<string, unknown> = {}
  if (req.principal) source.principal = req.principal
  if (req.address) source.address = { socketAddress: { address: req.address, portValue: 40000 } }
  if (Object.keys(source).length > 0) attrs.source = source
  if (req.port)
    attrs.destination = { address: { socketAddress: { address: '10.0.0.9', portValue: req.port } } }
  return req.principal === undefined && req.address === undefined && req.port === undefined
    ? checkRequest({
        method: req.method ?? 'GET',
        path: req.path ?? '/',
        host: req.host ?? 'httpbin.foo',
        headers,
      })
    : { attributes: attrs }
}

describe('Istio AuthorizationPolicy case table', () => {
  it('has at least 30 rows, the v1beta1 rows marked', () => {
    expect(rows.length).toBeGreaterThanOrEqual(30)
    expect(rows.filter((r) => r.legacy).length).toBeGreaterThan(0)
  })
  it.each(rows)('$name', async (row) => {
    const r = importResources(row.yaml.replaceAll('JWKS', jwks))
    expect(r.problems).toEqual([])
    const engine = await createEngine(r.source, { evaluators: [createCelEvaluator()] })
    const d = await engine.decide(await input(row.req))
    engine.close()
    expect({ allowed: d.allowed, ...(row.status !== undefined ? { status: d.status } : {}) }).toEqual({
      allowed: row.allowed,
      ...(row.status !== undefined ? { status: row.status } : {}),
    })
  })
})

describe('Istio problems', () => {
  it('an unsupported condition key is located', () => {
    const r = importResources(ap('  rules:\n    - when: [{ key: connection.sni, values: [a] }]\n'))
    expect(r.problems).toMatchObject([
      { code: 'import_unsupported', path: '/spec/rules/0/when/0/key', line: 7 },
    ])
  })
  it('CUSTOM without a known provider', () => {
    const r = importResources(ap('  action: CUSTOM\n  provider: { name: nope }\n  rules: [{}]\n'))
    expect(r.problems.map((p) => p.code)).toEqual(['import_external_auth'])
  })
  it('policies for several workloads need a target', () => {
    const two =
      ap('  selector: { matchLabels: { app: a } }\n  rules: [{}]\n') +
      ap('  selector: { matchLabels: { app: b } }\n  rules: [{}]\n', 'v1', 'q')
    expect(importResources(two).problems.map((p) => p.code)).toEqual(['import_target'])
    expect(importResources(two, { target: 'app=b' }).problems).toEqual([])
  })
})
