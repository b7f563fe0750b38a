/** A read `Condition` as verdict: the allow rule of an access rule, or when an authorizer is asked. */
import type { Scope } from '../context.js'
import type { Obj } from '../read.js'
import { type Condition, PARAM_METHODS } from './xaccesspolicy-condition.js'

const hasHttp = (c: Condition): boolean =>
  c.methods !== undefined ||
  c.paths.length > 0 ||
  c.headers.length > 0 ||
  c.hosts.length > 0 ||
  c.cel.length > 0

/** The `match` body of a condition's principals and HTTP attributes (never empty). */
function matchBody(c: Condition): Obj {
  const m: Obj = {}
  if (c.principals.length > 0) m.principals = c.principals.map((p) => ({ exact: p }))
  if (c.methods !== undefined) m.methods = c.methods
  if (c.paths.length > 0) m.paths = c.paths
  if (c.headers.length > 0) m.headers = c.headers
  if (c.hosts.length > 0) m.hosts = c.hosts
  if (Object.keys(m).length === 0) m.always = true
  return m
}

export function mcpSource(c: Condition): Obj {
  const list = c.principals.map((p) => ({ spiffe: p }))
  return list.length === 1 ? { source: list[0] } : list.length > 1 ? { source: list } : {}
}

/** The verdict allow rule of one access rule (without id). */
export function allowRule(c: Condition, version: string): Obj {
  if (c.celExpression !== undefined) {
    const src =
      c.principals.length > 0
        ? { when: { match: { principals: c.principals.map((p) => ({ exact: p })) } } }
        : {}
    return { action: 'allow', cel: c.celExpression, ...src }
  }
  if (c.tools !== undefined) {
    // v0alpha0 InlineTools: calls of these tools; the base protocol is open to everyone (below).
    return { action: 'allow', mcp: { ...mcpSource(c), tools: c.tools } }
  }
  if (c.mcpMethods !== undefined && c.mcpMethods.length > 0) {
    const rule: Obj = {
      action: 'allow',
      mcp: { ...mcpSource(c), methods: c.mcpMethods, baseProtocol: c.baseProtocol ?? 'SKIP' },
    }
    if (hasHttp(c)) rule.when = { cel: c.celAll.join(' && ') }
    return rule
  }
  if (c.baseProtocol === 'SKIP' && version === 'v1alpha1' && c.mcpMethods !== undefined) {
    // Explicit SKIP without methods: every MCP method but the base protocol.
    const rule: Obj = { action: 'allow', mcp: { ...mcpSource(c), baseProtocol: 'SKIP' } }
    if (hasHttp(c)) rule.when = { cel: c.celAll.join(' && ') }
    return rule
  }
  // No MCP method list: all traffic from the source through this HTTP envelope, base protocol
  // included (kube-agentic-networking: no method-level allowlisting).
  const rule: Obj = { action: 'allow', match: matchBody(c) }
  if (c.cel.length > 0) rule.when = { cel: c.cel.join(' && ') }
  return rule
}

/** The condition under which an external authorizer is asked. */
export function delegation(s: Scope, c: Condition, at: string, version: string): Obj {
  if (version === 'v0alpha0') {
    // Legacy: the base protocol is open to every caller; tool calls etc. from the source are delegated.
    return {
      mcp: { ...mcpSource(c), methods: [...PARAM_METHODS].map((name) => ({ name })) },
    }
  }
  if (c.celExpression !== undefined)
    s.problem('import_unsupported', 'a CEL authorization inside an ExternalAuth policy is not supported', at)
  if (c.mcpMethods !== undefined && c.mcpMethods.length > 0) {
    if (hasHttp(c))
      s.problem('import_unsupported', 'an ExternalAuth rule with both MCP methods and HTTP attributes', at)
    return { mcp: { ...mcpSource(c), methods: c.mcpMethods, baseProtocol: c.baseProtocol ?? 'SKIP' } }
  }
  if (c.cel.length > 0) {
    const parts = [...c.celAll]
    if (c.principals.length > 0) parts.unshift(`source.principal in ${JSON.stringify(c.principals)}`)
    return { cel: parts.join(' && ') }
  }
  return { match: matchBody(c) }
}
