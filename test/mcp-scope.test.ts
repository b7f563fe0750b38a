/**
 * agentgateway's scope for MCP rules (issue 17): rules over `mcp.tool` / `mcp.prompt` /
 * `mcp.resource` do not apply to the base protocol, so `initialize` and `tools/list` pass and the
 * list is filtered; `mcpAuthorization` in agentgateway's own form; the CEL scope reader.
 */
import { createCelEvaluator } from '@verdict/cel-adapter'
import { celMcpScope, createEngine, type Engine, PolicyError } from '@verdict/core/internal'
import { createMcpEvaluator, filterListResult } from '@verdict/mcp'
import { describe, expect, it } from 'vitest'

const evaluators = () => [createCelEvaluator(), createMcpEvaluator()]
const engine = (policy: string | Record<string, unknown>): Promise<Engine> =>
  createEngine(policy, { evaluators: evaluators() })

function rpc(method: string, params?: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    method: 'POST',
    path: '/mcp',
    headers: { 'content-type': 'application/json', ...((extra.headers as object) ?? {}) },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, ...(params ? { params } : {}) }),
    ...(extra.principal ? { source: { principal: extra.principal } } : {}),
  }
}
const initialize = () =>
  rpc('initialize', {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'c', version: '1' },
  })
const callTool = (name: string) => rpc('tools/call', { name, arguments: {} })

describe('CEL rules over mcp.tool apply to tool calls only', () => {
  it('initialize, tools/list, ping and notifications pass an allow-list of tools; tools are decided', async () => {
    const e = await engine({ rules: [{ id: 'echo', action: 'allow', cel: 'mcp.tool.name == "echo"' }] })
    for (const input of [initialize(), rpc('tools/list'), rpc('ping'), rpc('prompts/list')]) {
      expect(await e.decide(input)).toMatchObject({ allowed: true, rule: 'mcp-base-protocol' })
    }
    expect(await e.decide(callTool('echo'))).toMatchObject({ allowed: true, rule: 'echo' })
    expect(await e.decide(callTool('add'))).toMatchObject({ allowed: false, code: 'no_match' })
    // A prompt is not base protocol: no rule allows it.
    expect((await e.decide(rpc('prompts/get', { name: 'p' }))).allowed).toBe(false)
    // Nor an unknown method, nor a request without a JSON-RPC message.
    expect((await e.decide(rpc('admin/shutdown'))).allowed).toBe(false)
    expect(
      (await e.decide({ method: 'GET', path: '/mcp', headers: { 'mcp-session-id': 's' } })).allowed,
    ).toBe(false)
  })

  it('a deny rule on a tool does not deny the base protocol (before: 403, field not found)', async () => {
    const e = await engine({ rules: [{ id: 'no-add', action: 'deny', cel: 'mcp.tool.name == "add"' }] })
    expect((await e.decide(initialize())).allowed).toBe(true)
    expect((await e.decide(rpc('tools/list'))).allowed).toBe(true)
    expect(await e.decide(callTool('add'))).toMatchObject({ allowed: false, rule: 'no-add' })
  })

  it('an allow rule that applies to the base protocol decides it itself', async () => {
    const e = await engine({
      rules: [
        { id: 'echo', action: 'allow', cel: 'mcp.tool.name == "echo"' },
        { id: 'admin', action: 'allow', cel: 'request.headers["x-user"] == "admin"' },
      ],
    })
    expect((await e.decide(initialize())).allowed).toBe(false)
    const admin = rpc('initialize', {}, { headers: { 'x-user': 'admin' } })
    expect(await e.decide(admin)).toMatchObject({ allowed: true, rule: 'admin' })
  })

  it('a stated default is kept: default deny refuses the base protocol', async () => {
    const e = await engine({
      default: 'deny',
      rules: [{ id: 'echo', action: 'allow', cel: 'mcp.tool.name == "echo"' }],
    })
    expect((await e.decide(initialize())).allowed).toBe(false)
  })

  it('tools/list results are filtered by the same rules', async () => {
    const e = await engine({
      rules: [{ id: 'echo', action: 'allow', cel: 'mcp.tool.name in ["echo", "get-sum"]' }],
    })
    const list = rpc('tools/list')
    expect((await e.decide(list)).allowed).toBe(true)
    const result = { tools: [{ name: 'echo' }, { name: 'add' }, { name: 'get-sum' }] }
    const filtered = await filterListResult(e, list, 'tools/list', result)
    expect(filtered.tools.map((t) => t.name)).toEqual(['echo', 'get-sum'])
  })

  it('mcp rules without baseProtocol let the base protocol pass; MATCH keeps deciding it', async () => {
    const skip = await engine({ rules: [{ id: 't', action: 'allow', mcp: { tools: ['echo'] } }] })
    expect(await skip.decide(initialize())).toMatchObject({ allowed: true, rule: 'mcp-base-protocol' })
    expect((await skip.decide(callTool('add'))).allowed).toBe(false)
    const A = 'spiffe://cluster.local/ns/agents/sa/agent-a'
    const match = await engine({
      rules: [
        { id: 't', action: 'allow', mcp: { source: { spiffe: A }, tools: ['echo'], baseProtocol: 'MATCH' } },
      ],
    })
    expect((await match.decide(initialize())).allowed).toBe(false)
    expect(await match.decide(rpc('initialize', {}, { principal: A }))).toMatchObject({
      allowed: true,
      rule: 't',
    })
  })
})

describe('mcpAuthorization (agentgateway form)', () => {
  const policy = `
mcpAuthorization:
  rules:
    - 'mcp.tool.name == "echo"'
    - 'jwt.sub == "test-user" && mcp.tool.name == "add"'
    - deny: 'mcp.tool.name == "printEnv"'
`
  it('loads without rules or default, and gates tool calls only', async () => {
    const e = await engine(policy)
    expect(await e.decide(initialize())).toMatchObject({
      allowed: true,
      rule: 'mcpAuthorization/not-subject',
    })
    expect(await e.decide(callTool('echo'))).toMatchObject({ allowed: true, rule: 'mcpAuthorization/0' })
    expect((await e.decide(callTool('add'))).allowed).toBe(false)
    expect(await e.decide(callTool('printEnv'))).toMatchObject({ allowed: false, rule: 'mcpAuthorization/2' })
    expect((await e.decide({ method: 'GET', path: '/healthz' })).allowed).toBe(true)
  })

  it('the printed form {allow, deny, require} lists means the same', async () => {
    const e = await engine({
      mcpAuthorization: { rules: { allow: ['mcp.tool.name == "echo"'], require: ['mcp.tool.name != "x"'] } },
    })
    expect((await e.decide(callTool('echo'))).allowed).toBe(true)
    expect((await e.decide(callTool('other'))).allowed).toBe(false)
    expect((await e.decide(rpc('tools/list'))).allowed).toBe(true)
  })

  it('is AND-ed with the policy rules', async () => {
    const e = await engine({
      mcpAuthorization: { rules: ['mcp.tool.name == "echo"'] },
      rules: [{ id: 'user', action: 'require', cel: 'request.headers["x-user"] == "alice"' }],
    })
    expect((await e.decide(callTool('echo'))).allowed).toBe(false)
    const alice = rpc('tools/call', { name: 'echo', arguments: {} }, { headers: { 'x-user': 'alice' } })
    expect((await e.decide(alice)).allowed).toBe(true)
  })

  it('bad shapes and bad CEL are load problems with their paths', async () => {
    await expect(engine({ mcpAuthorization: { rules: [{ allow: 'a', deny: 'b' }] } })).rejects.toThrow(
      PolicyError,
    )
    const bad = engine({ mcpAuthorization: { rules: ['mcp.tool.name =='] } })
    await expect(bad).rejects.toThrow(/mcpAuthorization\/rules\/0/)
    await expect(createEngine({ mcpAuthorization: { rules: ['true'] } })).rejects.toThrow(/cel evaluator/)
  })
})

describe('celMcpScope', () => {
  it.each([
    ['mcp.tool.name == "echo"', ['tool']],
    ['has(mcp.prompt) && mcp.prompt.name == "p"', ['prompt']],
    ['mcp.resource.uri.startsWith("file:") || mcp.tool.name == "x"', ['tool', 'resource']],
    ['jwt.sub == "a"', undefined],
    ['mcp.method == "tools/call" && mcp.tool.name == "x"', undefined],
    ['mcp["tool"].name == "x"', undefined],
    ['"mcp.tool.name" == request.path', undefined],
    ["r'mcp.prompt' == x.mcp.tool", undefined],
    ['mcp.tool.name == "a" // mcp.method', ['tool']],
    ['mcp.constructor', undefined],
  ])('%s', (src, scope) => {
    expect(celMcpScope(src)).toEqual(scope)
  })
})
