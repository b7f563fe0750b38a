/**
 * One decision from start to end: the MCP messages (refused before authentication when smuggled),
 * authentication, the layers for each message (mcp/batch.ts), the allow; and the driver that runs
 * it synchronously until something is pending (a key fetch, an async evaluator).
 */
import type { AuthOutcome } from '../auth.js'
import type { CompiledPolicy } from '../compile.js'
import type { DecisionContext } from '../context.js'
import { type Decision, deny, type Identity } from '../decision.js'
import { decideEachMessage, mcpMessages } from '../mcp/batch.js'
import { appended, errorText, isThenable, newAcc } from './combine.js'
import { allowDecision, authDenial } from './respond.js'

/**
 * Run a decision generator: synchronously while every yielded value is plain, switching to
 * promises only when one is pending. Rejections are thrown into the generator.
 */
function drive<T>(
  gen: Generator<unknown, T, unknown>,
  value?: unknown,
  failure?: { error: unknown },
): T | Promise<T> {
  for (;;) {
    let r: IteratorResult<unknown, T>
    if (failure !== undefined) {
      const { error } = failure
      failure = undefined
      r = gen.throw(error)
    } else r = gen.next(value)
    if (r.done) return r.value
    const v = r.value
    if (!isThenable(v)) {
      value = v
      continue
    }
    return v.then(
      (x) => drive(gen, x),
      (error: unknown) => drive(gen, undefined, { error }),
    )
  }
}

function* runDecision(policy: CompiledPolicy, ctx: DecisionContext): Generator<unknown, Decision, unknown> {
  const input = ctx.input
  const acc = newAcc()
  let identity: Identity | undefined
  if (input.source.principal !== undefined) {
    identity = { kind: 'peer', subject: input.source.principal, principal: input.source.principal }
    ctx.identity = identity
  }

  // MCP messages: extracted before authentication so smuggling is rejected whoever the caller is.
  const mcp = mcpMessages(policy, input)
  if (mcp !== undefined && 'allowed' in mcp) return mcp

  if (policy.authenticator !== undefined) {
    let o: AuthOutcome | Promise<AuthOutcome>
    try {
      o = policy.authenticator.authenticate(ctx)
      if (isThenable(o)) o = (yield o) as AuthOutcome
    } catch (e) {
      return deny(
        policy.responses.error?.status ?? 403,
        `authentication failed internally: ${errorText(e)}`,
        { code: 'internal', body: 'access denied' },
      )
    }
    if (o.kind === 'failed') return authDenial(policy, input, o)
    if (o.kind !== 'authenticated' && o.headersToRemove !== undefined)
      acc.headersToRemove = appended(acc.headersToRemove, o.headersToRemove)
    if (o.kind === 'authenticated') {
      ctx.jwt = o.claims
      ctx.jwtToken = o.token
      identity =
        input.source.principal === undefined
          ? o.identity
          : { ...o.identity, principal: input.source.principal }
      ctx.identity = identity
      acc.headersToRemove = appended(acc.headersToRemove, o.headersToRemove)
      acc.queryParametersToRemove = appended(acc.queryParametersToRemove, o.queryParametersToRemove)
      acc.headers = appended(acc.headers, o.headers)
    }
  }

  // Every layer, for each MCP message of a batch in turn (mcp/batch.ts); the first denial ends it.
  const denied = yield* decideEachMessage(policy, ctx, acc, mcp, identity)
  if (denied !== undefined) return denied

  return allowDecision(policy, acc, identity)
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
  const d = drive(runDecision(policy, ctx))
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
