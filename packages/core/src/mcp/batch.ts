/**
 * The MCP side of a decision: the messages a request carries (refused before authentication when
 * smuggled or empty), and the loop that runs every layer for each message of a batch in turn, the
 * first denial answered in the policy's MCP format (denial.ts).
 */
import type { CompiledPolicy } from '../compile.js'
import type { DecisionContext, McpCall } from '../context.js'
import { type Acc, evalLayer, isThenable } from '../decide/combine.js'
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

/** The one round of a request without MCP messages. */
const NO_MESSAGE: readonly undefined[] = Object.freeze([undefined])

/**
 * Run the policy's layers for each MCP message (once when the request carries none): the first
 * layer that denies ends the decision, with the caller's identity and, for an MCP message, in the
 * policy's MCP format. Undefined when every layer allowed every message. Synchronous unless a
 * layer answers with a promise: then the rest runs once it settles, from message `from`, layer
 * `layerFrom`.
 */
export function decideEachMessage(
  policy: CompiledPolicy,
  ctx: DecisionContext,
  acc: Acc,
  mcp: McpMessages | undefined,
  identity: Identity | undefined,
  from = 0,
  layerFrom = 0,
): Decision | undefined | Promise<Decision | undefined> {
  const rounds = mcp?.messages ?? NO_MESSAGE
  const layers = policy.layers
  for (let k = from; k < rounds.length; k++) {
    const call = rounds[k]
    const start = k === from ? layerFrom : 0
    if (start === 0 && call !== undefined) {
      ctx.mcp = call
      if (rounds.length > 1) ctx.resetViews()
    }
    for (let j = start; j < layers.length; j++) {
      const denied = evalLayer(policy, layers[j]!, ctx, acc)
      if (isThenable(denied)) {
        return denied.then((d) =>
          d === undefined
            ? decideEachMessage(policy, ctx, acc, mcp, identity, k, j + 1)
            : answer(policy, d, acc, mcp, call, identity),
        )
      }
      if (denied !== undefined) return answer(policy, denied, acc, mcp, call, identity)
    }
  }
  return undefined
}

/** A layer's denial as the decision answers it. */
function answer(
  policy: CompiledPolicy,
  denied: Decision,
  acc: Acc,
  mcp: McpMessages | undefined,
  call: McpCall | undefined,
  identity: Identity | undefined,
): Decision {
  let d: Decision = identity !== undefined ? { ...denied, identity } : denied
  if (call !== undefined) d = mcpDenial(policy, d, call, mcp?.batch ? mcp.messages : undefined)
  return acc.shadow !== undefined ? { ...d, shadow: acc.shadow } : d
}
