/**
 * One decision from start to end: the MCP messages (refused before authentication when smuggled),
 * authentication, the layers for each message (mcp/batch.ts), the allow. Plain functions, run
 * synchronously until something is pending (a key fetch, an async evaluator); the rest then
 * continues from that promise, so a decision that waits for nothing allocates no promise or
 * generator of its own.
 */
import type { AuthOutcome } from '../auth.js'
import type { CompiledPolicy } from '../compile.js'
import type { DecisionContext } from '../context.js'
import { type Decision, deny, type Identity } from '../decision.js'
import { decideEachMessage, mcpMessages } from '../mcp/batch.js'
import type { McpMessages } from '../mcp/extract.js'
import { type Acc, appended, errorText, isThenable, newAcc } from './combine.js'
import { allowDecision, authDenial } from './respond.js'

/** One decision: synchronous until something is pending, then the rest runs once it settles. */
function runDecision(policy: CompiledPolicy, ctx: DecisionContext): Decision | Promise<Decision> {
  const input = ctx.input
  let identity: Identity | undefined
  if (input.source.principal !== undefined) {
    identity = { kind: 'peer', subject: input.source.principal, principal: input.source.principal }
    ctx.identity = identity
  }

  // MCP messages: extracted before authentication so smuggling is rejected whoever the caller is.
  const mcp = mcpMessages(policy, input)
  if (mcp !== undefined && 'allowed' in mcp) return mcp

  const acc = newAcc()
  if (policy.authenticator === undefined) return rules(policy, ctx, acc, mcp, identity)
  let o: AuthOutcome | Promise<AuthOutcome>
  try {
    o = policy.authenticator.authenticate(ctx)
  } catch (e) {
    return authError(policy, e)
  }
  if (isThenable(o))
    return o.then(
      (x) => authenticated(policy, ctx, acc, mcp, identity, x),
      (e: unknown) => authError(policy, e),
    )
  return authenticated(policy, ctx, acc, mcp, identity, o)
}

function authError(policy: CompiledPolicy, e: unknown): Decision {
  return deny(policy.responses.error?.status ?? 403, `authentication failed internally: ${errorText(e)}`, {
    code: 'internal',
    body: 'access denied',
  })
}

/** After authentication: its failure, or what it adds and the rules. */
function authenticated(
  policy: CompiledPolicy,
  ctx: DecisionContext,
  acc: Acc,
  mcp: McpMessages | undefined,
  peer: Identity | undefined,
  o: AuthOutcome,
): Decision | Promise<Decision> {
  const input = ctx.input
  if (o.kind === 'failed') return authDenial(policy, input, o)
  let identity = peer
  if (o.kind !== 'authenticated') {
    if (o.headersToRemove !== undefined)
      acc.headersToRemove = appended(acc.headersToRemove, o.headersToRemove)
  } else {
    ctx.jwt = o.claims
    ctx.jwtToken = o.token
    identity =
      input.source.principal === undefined ? o.identity : { ...o.identity, principal: input.source.principal }
    ctx.identity = identity
    acc.headersToRemove = appended(acc.headersToRemove, o.headersToRemove)
    acc.queryParametersToRemove = appended(acc.queryParametersToRemove, o.queryParametersToRemove)
    acc.headers = appended(acc.headers, o.headers)
  }
  return rules(policy, ctx, acc, mcp, identity)
}

/** Every layer, for each MCP message of a batch in turn (mcp/batch.ts); the first denial ends it. */
function rules(
  policy: CompiledPolicy,
  ctx: DecisionContext,
  acc: Acc,
  mcp: McpMessages | undefined,
  identity: Identity | undefined,
): Decision | Promise<Decision> {
  const denied = decideEachMessage(policy, ctx, acc, mcp, identity)
  if (isThenable(denied)) return denied.then((d) => d ?? allowDecision(policy, acc, identity))
  return denied ?? allowDecision(policy, acc, identity)
}

const HEADER_READS = new WeakMap<CompiledPolicy, ReadonlySet<string> | 'all'>()

/** Every header the policy's rules read as one value (`RuleProgram.readsHeaders`), once per policy. */
export function headerReads(policy: CompiledPolicy): ReadonlySet<string> | 'all' {
  let reads = HEADER_READS.get(policy)
  if (reads !== undefined) return reads
  const names = new Set<string>()
  let all = false
  for (const layer of policy.layers)
    for (const list of [layer.decide, layer.deny, layer.require, layer.allow, layer.shadow])
      for (const rule of list)
        for (const p of [rule.program, rule.when]) {
          const r = p?.readsHeaders
          if (r === 'all') all = true
          else if (r !== undefined) for (const n of r) names.add(n)
        }
  reads = all ? 'all' : names
  HEADER_READS.set(policy, reads)
  return reads
}

/**
 * The decision for `ctx`, synchronous unless something is pending: the rules' decision, with what
 * the canonical request adds.
 */
export function canonicalDecision(
  policy: CompiledPolicy,
  ctx: DecisionContext,
): Decision | Promise<Decision> {
  const d = runDecision(policy, ctx)
  return isThenable(d) ? d.then((x) => canonical(ctx, x)) : canonical(ctx, d)
}

/**
 * A body a rule read that must refuse the request (a number JSON cannot hold) answers instead of
 * the rules, and headers dropped for an underscore are removed upstream on an allow.
 */
function canonical(ctx: DecisionContext, d: Decision): Decision {
  if (ctx.refused !== undefined) return ctx.refused
  const dropped = ctx.input.droppedHeaders
  if (d.allowed && dropped.length > 0) return { ...d, headersToRemove: [...d.headersToRemove, ...dropped] }
  return d
}
