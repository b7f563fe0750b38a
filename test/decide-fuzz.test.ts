/**
 * Generated hostile requests through whole decisions: decide() always answers (never throws, never
 * hangs), an allow is always a 200, and CEL rules decide the same with the adapter's direct path
 * on and off.
 */
import { createCelEvaluator } from '@verdict/cel-adapter'
import { createEngine, type Decision, type Engine } from '@verdict/core'
import { createSeededRandom } from '@verdict/core/testing'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'

const POLICY = {
  rules: [
    {
      id: 'no-admin',
      action: 'deny',
      cel: 'request.path.startsWith("/admin") || ("x-role" in request.headers && request.headers["x-role"] == "admin")',
    },
    {
      id: 'tool-guard',
      action: 'require',
      when: { cel: 'has(mcp.tool)' },
      cel: 'mcp.tool.name in ["get-sum", "echo", "a", "b", "c"] && (!has(mcp.tool.arguments.repo) || mcp.tool.arguments.repo.startsWith("kubernetes-sigs/"))',
    },
    {
      id: 'allow-listed',
      action: 'allow',
      cel: '"x-ext-authz" in request.headers && request.headers["x-ext-authz"] == "allow" && request.method in ["GET", "POST"]',
    },
    {
      id: 'agents',
      action: 'allow',
      cel: 'has(source.identity) && source.identity.namespace == "agents" && request.headers.exists(h, h.startsWith("x-"))',
    },
  ],
}

const { next: rnd, pick } = createSeededRandom(2026)
const maybe = (p: number) => rnd() < p

/** Mostly well-formed choices, sometimes a hostile one. */
const either = <T>(good: readonly T[], bad: readonly T[], hostile = 0.1): T =>
  maybe(hostile) ? pick(bad) : pick(good)
const METHODS: [string[], string[]] = [
  ['GET', 'POST', 'DELETE', 'post'],
  ['P\nOST', '', 'GET '],
]
const PATHS: [string[], string[]] = [
  ['/', '/mcp', '/admin', '/x?y=1&y=2', '/ADMIN', '/mcp/admin'],
  ['/%2e%2e/admin', '//admin', 'noslash', '/\u0000', '/a/../admin'],
]
const NAMES: [string[], string[]] = [
  ['x-ext-authz', 'X-Ext-Authz', 'x-role', 'content-type', 'host', 'x-other'],
  ['x a', 'x\u0000y', ':authority', '__proto__', 'constructor'],
]
const VALUES: [string[], string[]] = [
  ['allow', 'deny', 'admin', 'application/json', '', ' allow', 'é'],
  ['allow\r\nx-role: admin', 'a'.repeat(10_000)],
]
const TOOLS = ['get-sum', 'echo', 'Echo', 'rm-rf', '', 'a']

function body(): string | undefined {
  const r = rnd()
  const args: Record<string, unknown> = {}
  if (maybe(0.5)) args.repo = pick(['kubernetes-sigs/x', 'evil/x', 42, null, ['kubernetes-sigs/x']])
  const msg = {
    jsonrpc: '2.0',
    id: either<unknown>([1, 'a'], [null, 1.5]),
    method: 'tools/call',
    params: { name: pick(TOOLS), arguments: args },
  }
  const text = JSON.stringify(msg)
  if (r < 0.1) return undefined
  if (r < 0.15) return text.replace('"name"', '"name":"echo","Name"')
  if (r < 0.2) return text.slice(0, Math.floor(rnd() * text.length))
  if (r < 0.25) return `[${text},${text}]`
  if (r < 0.28) return `${'['.repeat(300)}${']'.repeat(300)}`
  if (r < 0.3) return text.replace('tools/call', 'rpc.discover')
  return text
}

function request(): Record<string, unknown> {
  const headers: Record<string, string> = {}
  const n = Math.floor(rnd() * 5)
  for (let i = 0; i < n; i++) headers[either(...NAMES, 0.04)] = either(...VALUES, 0.04)
  const b = body()
  if (b !== undefined && maybe(0.8)) headers['content-type'] = 'application/json'
  const req: Record<string, unknown> = { method: either(...METHODS), path: either(...PATHS), headers }
  if (b !== undefined) req.body = b
  if (maybe(0.3))
    req.source = {
      principal: pick(['spiffe://cluster.local/ns/agents/sa/a', 'spiffe://x/ns/other/sa/b', 'not-a-uri']),
    }
  return req
}

let direct: Engine
let engine: Engine

beforeAll(async () => {
  direct = await createEngine(POLICY, { evaluators: [createCelEvaluator()] })
  engine = await createEngine(POLICY, { evaluators: [createCelEvaluator({ fastPath: false })] })
})

afterAll(() => {
  direct.close()
  engine.close()
})

const summary = (d: Decision) => ({
  allowed: d.allowed,
  status: d.status,
  code: d.code,
  rule: d.rule,
  reason: d.reason,
})

describe('decide() on generated hostile requests', () => {
  test('always answers, allows only with 200, and both CEL paths agree', async () => {
    const outcomes = new Map<string, number>()
    for (let i = 0; i < 3000; i++) {
      const req = request()
      const [a, b] = await Promise.all([direct.decide(req), engine.decide(req)])
      expect(typeof a.allowed).toBe('boolean')
      if (a.allowed) expect(a.status).toBe(200)
      else expect(a.status).toBeGreaterThanOrEqual(400)
      expect(summary(a), JSON.stringify(req).slice(0, 300)).toEqual(summary(b))
      const key = `${a.allowed ? 'allow' : 'deny'} ${a.status} ${a.code}`
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1)
    }
    // The generator must reach allows, policy denials and malformed-input rejections alike.
    const keys = [...outcomes.keys()].join(' | ')
    console.log(`outcomes: ${[...outcomes].map(([k, n]) => `${k} x${n}`).join(', ')}`)
    expect(keys).toContain('allow 200')
    expect(keys).toContain('deny 403')
    expect(keys).toContain('deny 400')
    expect(keys).toContain('deny 403 evaluator_error')
  })
})
