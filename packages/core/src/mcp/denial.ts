/**
 * How a denied MCP message is answered: the policy's `mcp.denial` format (a JSON-RPC error as
 * agentgateway answers, a "not found" error that hides the tool, or plain HTTP), for one message or
 * every message of a batch. The combination algorithm (decide/) knows nothing of JSON-RPC.
 */
import type { CompiledPolicy, CompiledRule } from '../compile.js'
import type { McpCall } from '../context.js'
import type { Decision } from '../decision.js'

/** A JSON-RPC error response body for a denied message, in the policy's chosen format. */
export function mcpDenialBody(call: McpCall, format: 'jsonrpc' | 'hidden'): string {
  if (format === 'jsonrpc') {
    return JSON.stringify({
      jsonrpc: '2.0',
      id: call.id ?? null,
      error: { code: 403, message: 'Access to this tool is forbidden.' },
    })
  }
  let message = `Method not found: ${call.method}`
  let code = -32601
  if (call.tool !== undefined) {
    message = `Unknown tool: ${call.tool.name}`
    code = -32602
  } else if (call.prompt !== undefined) {
    message = `Unknown prompt: ${call.prompt.name}`
    code = -32602
  } else if (call.resource !== undefined) {
    message = `Unknown resource: ${call.resource.uri}`
    code = -32602
  }
  return JSON.stringify({ jsonrpc: '2.0', id: call.id ?? null, error: { code, message } })
}

/** Rewrite an authorization denial of an MCP message in the policy's chosen MCP format. */
function mcpFormat(
  policy: CompiledPolicy,
  d: Decision,
  call: McpCall,
  batch: readonly McpCall[] | undefined,
  rule: CompiledRule | undefined,
): Decision {
  const format = policy.mcp.denial
  if (format === 'http' || rule?.response !== undefined) return d
  if (d.code !== 'denied' && d.code !== 'no_match' && d.code !== 'evaluator_error') return d
  const targets = batch ?? [call]
  const withIds = targets.filter((m) => m.id !== undefined)
  if (withIds.length === 0) return d
  const bodies = withIds.map((m) => mcpDenialBody(m, format))
  return {
    ...d,
    status: format === 'jsonrpc' ? 200 : 400,
    headers: [
      ...d.headers.filter((h) => h.key !== 'content-type'),
      { key: 'content-type', value: 'application/json' },
    ],
    body: batch === undefined ? bodies[0]! : `[${bodies.join(',')}]`,
  }
}

function findRule(policy: CompiledPolicy, id: string | undefined): CompiledRule | undefined {
  if (id === undefined) return undefined
  for (const l of policy.layers) {
    for (const list of [l.decide, l.deny, l.require, l.allow]) for (const r of list) if (r.id === id) return r
  }
  return undefined
}

/**
 * A denial of the MCP message `call` as the client gets it: in the policy's format, and for a batch
 * (`batch`: every message of it) naming the element that was denied.
 */
export function mcpDenial(
  policy: CompiledPolicy,
  d: Decision,
  call: McpCall,
  batch: readonly McpCall[] | undefined,
): Decision {
  const out = mcpFormat(policy, d, call, batch, findRule(policy, d.rule))
  if (batch === undefined) return out
  return {
    ...out,
    reason: `${out.reason} (batch element with method ${call.method}${call.tool ? ` tool ${call.tool.name}` : ''})`,
  }
}
