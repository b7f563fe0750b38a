/**
 * Argument checks written in CEL over `mcp.tool.arguments` (agentgateway's variable names), next
 * to the `mcp` rule body: the same seed 001 table as the built-in `arguments` matcher.
 */
import { createCelEvaluator } from '@verdict/cel-adapter'
import { createEngine } from '@verdict/core'
import { createMcpEvaluator } from '@verdict/mcp'
import { describe, expect, it } from 'vitest'

const A = 'spiffe://cluster.local/ns/agents/sa/agent-a'

const policy = `
mcp: { denial: jsonrpc }
rules:
  - id: agent-a-remote
    action: allow
    mcp:
      source: { serviceAccount: { namespace: agents, name: agent-a } }
      tools: [read_wiki_structure, ask_question]
      baseProtocol: MATCH
  - id: approved-repos
    action: require
    when: { mcp: { tools: [read_wiki_structure, ask_question] } }
    cel: >-
      mcp.tool.arguments.repoName in
      ["kubernetes-sigs/kube-agentic-networking", "kubernetes-sigs/gateway-api"]
`

const call = (name: string, args: Record<string, unknown>) => ({
  method: 'POST',
  path: '/mcp',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name, arguments: args } }),
  source: { principal: A },
})

describe('CEL rules over mcp.tool.arguments', () => {
  const cases: Array<[string, string, Record<string, unknown>, boolean]> = [
    ['approved repo', 'ask_question', { repoName: 'kubernetes-sigs/gateway-api' }, true],
    [
      'other approved repo',
      'read_wiki_structure',
      { repoName: 'kubernetes-sigs/kube-agentic-networking' },
      true,
    ],
    ['kubernetes/kubernetes', 'ask_question', { repoName: 'kubernetes/kubernetes' }, false],
    ['cncf/toc', 'read_wiki_structure', { repoName: 'cncf/toc' }, false],
    ['missing repoName fails closed', 'ask_question', {}, false],
    ['repoName not a string', 'ask_question', { repoName: 42 }, false],
    [
      '__proto__ argument only',
      'ask_question',
      JSON.parse('{"__proto__":{"repoName":"kubernetes-sigs/gateway-api"}}'),
      false,
    ],
  ]
  it.each(cases)('%s', async (_label, tool, args, allowed) => {
    const engine = await createEngine(policy, { evaluators: [createMcpEvaluator(), createCelEvaluator()] })
    const d = await engine.decide(call(tool, args))
    expect(d.allowed).toBe(allowed)
    if (!allowed) expect(JSON.parse(d.body!)).toMatchObject({ id: 9, error: { code: 403 } })
    engine.close()
  })
})
