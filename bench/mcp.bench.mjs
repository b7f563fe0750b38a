// Decision cost of an MCP tools/call through decide(): body size (1 KB, 100 KB, 1 MB: JSON parse,
// smuggling scan, rules) and allow-list size (10, 1k, 10k tools: the lookup must stay flat).
// "JSON.parse only" rows are the floor any body-reading authorizer pays for the same body.
import { createEngine } from '@verdict/core'
import { createMcpEvaluator } from '@verdict/mcp'
import { compare, table } from './harness.mjs'

const A = 'spiffe://cluster.local/ns/agents/sa/agent-a'

function toolCall(name, bytes) {
  const base = {
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: { name, arguments: { repoName: 'kubernetes-sigs/gateway-api', blob: '' } },
  }
  const pad = Math.max(0, bytes - JSON.stringify(base).length)
  base.params.arguments.blob = 'x'.repeat(pad)
  return {
    method: 'POST',
    path: '/mcp',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': 's-1',
    },
    body: JSON.stringify(base),
    source: { principal: A },
  }
}

async function engineWith(n) {
  const tools = Array.from({ length: n }, (_, i) => `tool-${i}`)
  return createEngine(
    {
      input: { maxBodyBytes: 2 * 1024 * 1024 },
      rules: [
        {
          id: 'agent-a',
          action: 'allow',
          mcp: {
            source: { serviceAccount: { namespace: 'agents', name: 'agent-a' } },
            tools,
            baseProtocol: 'MATCH',
            arguments: {
              repoName: { in: ['kubernetes-sigs/kube-agentic-networking', 'kubernetes-sigs/gateway-api'] },
            },
          },
        },
      ],
    },
    { evaluators: [createMcpEvaluator()] },
  )
}

export default async function (report) {
  const e10 = await engineWith(10)
  const e1k = await engineWith(1000)
  const e10k = await engineWith(10_000)
  const sizes = [
    ['1 KB', 1024],
    ['100 KB', 100 * 1024],
    ['1 MB', 1024 * 1024],
  ]
  const bodyRows = []
  for (const [label, bytes] of sizes) {
    const input = toolCall('tool-5', bytes)
    const d = await e10.decide(input)
    if (!d.allowed) throw new Error(`bench input denied: ${d.reason}`)
    bodyRows.push({ name: `decide, ${label} body`, fn: () => e10.decide(input), async: true })
    bodyRows.push({ name: `JSON.parse only, ${label}`, fn: () => JSON.parse(input.body) })
  }
  report.section(
    'MCP: tools/call by body size (10 allowed tools, argument allow-list)',
    table(await compare(bodyRows), ['JSON.parse only, 1 KB']),
  )

  const inputs = [
    ['10 tools', e10, toolCall('tool-9', 1024)],
    ['1k tools', e1k, toolCall('tool-999', 1024)],
    ['10k tools', e10k, toolCall('tool-9999', 1024)],
  ]
  for (const [, e, input] of inputs) {
    const d = await e.decide(input)
    if (!d.allowed) throw new Error(`bench input denied: ${d.reason}`)
  }
  const listRows = inputs.map(([name, e, input]) => ({ name, fn: () => e.decide(input), async: true }))
  report.section(
    'MCP: tools/call by allow-list size (1 KB body, last tool of the list)',
    table(await compare(listRows), ['10 tools']),
  )
  for (const e of [e10, e1k, e10k]) e.close()
}
