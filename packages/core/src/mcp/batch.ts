/**
 * The MCP side of a decision: the messages a request carries (refused before authentication when
 * smuggled or empty), and the loop that runs every layer for each message of a batch in turn, the
 * first denial answered in the policy's MCP format (denial.ts).
 */
import type { CompiledPolicy } from '../compile.js'
import type { DecisionContext } from '../context.js'
import { type Acc, evalLayer } from '../decide/combine.js'
import { type Decision, deny, type Identity } from '../decision.js'
import type { CheckInput } from '../input/index.js'
import { mcpDenial } from './denial.js'
import { extractMcp, type McpMessages } from './extract.js'

/** The MCP messages to decide, the refusal of the request, or undefined when it carries none. */
export function mcpMessages(policy: CompiledPolicy, input: CheckInput): McpMessages | Decision | undefined {
  if (policy.mcp.enabled === false) return undefined
  const m = extractMcp(input, policy.mcp, policy.input.maxJsonDepth)
  if (m === undefined) return undefined
  if ('allowed' in m) return m
  // Zero messages would run no layer at all: never let that become an allow.
  if (m.messages.length === 0)
    return deny(400, 'malformed MCP request: no message', { code: 'malformed_input' })
  return m
}

/**
 * Run the policy's layers for each MCP message (once when the request carries none): the first
 * layer that denies ends the decision, with the caller's identity and, for an MCP message, in the
 * policy's MCP format. Undefined when every layer allowed every message.
 */
export function* decideEachMessage(
  policy: CompiledPolicy,
  ctx: DecisionContext,
  acc: Acc,
  mcp: McpMessages | undefined,
  identity: Identity | undefined,
): Generator<unknown, Decision | undefined, unknown> {
  const rounds = mcp?.messages ?? [undefined]
  for (const call of rounds) {
    if (call !== undefined) {
      ctx.mcp = call
      if (rounds.length > 1) ctx.resetViews()
    }
    for (const layer of policy.layers) {
      const denied = yield* evalLayer(policy, layer, ctx, acc)
      if (denied === undefined) continue
      let d: Decision = identity !== undefined ? { ...denied, identity } : denied
      if (call !== undefined) d = mcpDenial(policy, d, call, mcp?.batch ? mcp.messages : undefined)
      return acc.shadow !== undefined ? { ...d, shadow: acc.shadow } : d
    }
  }
  return undefined
}
