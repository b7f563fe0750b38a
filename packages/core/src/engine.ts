/**
 * The engine: `decide(input)` over a compiled policy, `update(policy)` to swap it atomically, the
 * decision deadline and the decision events. What a decision does is in decide/ (drive, combine,
 * respond, event), what it does for MCP messages in mcp/.
 */
import { type CompiledPolicy, type CompileEnvironment, compilePolicy, type PolicySource } from './compile.js'
import { DecisionContext } from './context.js'
import { isThenable } from './decide/combine.js'
import { canonicalDecision, headerReads } from './decide/drive.js'
import { type DecisionEvent, decisionEvent } from './decide/event.js'

export { type DecisionEvent, decisionEvent } from './decide/event.js'

import { internal, timedOut } from './decide/respond.js'
import type { Decision } from './decision.js'
import type { Evaluator, ResourceLoader } from './evaluator.js'
import { ambiguousHeader, isDecision, normalizeInput } from './input/index.js'
import { requestRecord } from './request-record.js'

export interface EngineOptions {
  /** Rule engines beyond the built-in `match` (CEL, Rego, MCP rules, ...). */
  readonly evaluators?: readonly Evaluator[]
  /** Loads files and URLs named in the policy (bundles, key files), at load time only. */
  readonly resources?: ResourceLoader
  /** Fetch for remote JWKS and OIDC discovery. Defaults to `globalThis.fetch`. */
  readonly fetch?: typeof globalThis.fetch
  /** Clock in milliseconds (tests inject one). */
  readonly now?: () => number
  /** Called after every decision, synchronously; exceptions it throws are ignored. */
  readonly onDecision?: (event: DecisionEvent) => void
}

/** Per-call options of `decide()`. */
export interface DecideOptions {
  /** The id the decision event carries (for logs that must match what the host sent on). */
  readonly id?: string
  /**
   * `'list'`: the request is not one a client sent but a question asked while filtering a list
   * ("may this caller use this item at all?", `filterListResult` in @verdict/mcp). Evaluators see
   * it as `RequestContext.probe` and may leave out tests that need what such a request cannot
   * carry (the MCP evaluator skips its `arguments` tests). Everything else is as for any decision,
   * the decision event included. Any other value is ignored.
   */
  readonly probe?: 'list'
}

/** A policy engine. Create one with `createEngine`. */
export interface Engine {
  /**
   * Decide one request. Never throws, never hangs past the policy's deadline. `options.id` names
   * the decision in its event (a host passes the id it also sends to Envoy); default: a new UUID.
   */
  decide(input: unknown, options?: DecideOptions): Promise<Decision>
  /**
   * Compile `policy` fully, then swap it in atomically. On failure the old policy stays and the
   * `PolicyError` (every problem with its location) is thrown. In-flight decisions finish on the
   * policy they started with.
   */
  update(policy: PolicySource): Promise<void>
  /** Name of the current policy and how many times it was swapped. */
  readonly info: { readonly name: string; readonly generation: number }
  /** Release evaluator resources and background refreshes. */
  close(): void
}

interface Run {
  readonly policy: CompiledPolicy
  readonly ctx: DecisionContext | undefined
  readonly id: string | undefined
}

/** `headerReads` as a list, which a decision walks without an iterator. */
function readList(policy: CompiledPolicy): readonly string[] | 'all' {
  const reads = headerReads(policy)
  return reads === 'all' ? reads : Object.freeze([...reads])
}

class PolicyEngine implements Engine {
  private current: CompiledPolicy
  /** The headers the current policy's rules read as one value (`headerReads`), swapped with it. */
  private reads: readonly string[] | 'all'
  private generation = 0
  private readonly now: () => number
  /** The decision clock is `Date.now` (the default), so `ctx.now` also dates a decision's start. */
  private readonly wallClock: boolean
  private closed = false

  constructor(
    policy: CompiledPolicy,
    private readonly env: CompileEnvironment,
    private readonly onDecision: EngineOptions['onDecision'],
  ) {
    this.current = policy
    this.reads = readList(policy)
    this.now = env.now
    this.wallClock = env.now === Date.now
  }

  get info() {
    return { name: this.current.name, generation: this.generation }
  }

  decide(raw: unknown, options?: DecideOptions): Promise<Decision> {
    const r = this.decideEager(raw, options)
    return isThenable(r) ? r : Promise.resolve(r)
  }

  /** `decide`, answering at once (no promise) when nothing asynchronous was pending. */
  decideEager(raw: unknown, options?: DecideOptions): Decision | Promise<Decision> {
    // When the decision started, for the event's duration and the deadline of a decision that goes
    // asynchronous. Without a listener, on the default clock, it is not read here: a pending
    // decision counts its deadline from `ctx.now`, the Date.now() reading every decision takes.
    const started = this.onDecision !== undefined || !this.wallClock ? performance.now() : Number.NaN
    const policy = this.current
    const reads = this.reads
    let ctx: DecisionContext | undefined
    let result: Decision | Promise<Decision>
    try {
      const input = normalizeInput(raw, policy.input)
      if (isDecision(input)) result = input
      else {
        ctx = new DecisionContext(input, this.now(), policy.input.maxJsonDepth)
        if (options?.probe === 'list') ctx.probe = 'list'
        result = ambiguousHeader(input, reads) ?? canonicalDecision(policy, ctx)
      }
    } catch (e) {
      result = internal(e)
    }
    if (!isThenable(result)) {
      // Decided synchronously: no timer, no promise.
      if (this.onDecision !== undefined) this.emit({ policy, ctx, id: options?.id }, result, started)
      return result
    }
    const run: Run = { policy, ctx, id: options?.id }
    const elapsed = Number.isNaN(started)
      ? Math.max(0, ctx === undefined ? 0 : Date.now() - ctx.now)
      : performance.now() - started
    const pending = result
    return new Promise<Decision>((resolve) => {
      let settled = false
      // Something asynchronous is pending (a JWKS fetch, an async evaluator): the deadline applies.
      const timer = setTimeout(() => finish(timedOut(policy)), Math.max(0, policy.timeoutMs - elapsed))
      const finish = (d: Decision): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        if (this.onDecision !== undefined) this.emit(run, d, started)
        resolve(d)
      }
      pending.then(finish, (e: unknown) => finish(internal(e)))
    })
  }

  private emit(run: Run, d: Decision, started: number): void {
    try {
      const ctx = run.ctx
      const i = ctx?.input
      const request =
        ctx === undefined
          ? undefined
          : () => requestRecord(ctx.input, run.policy.authenticator?.credentialLocations ?? [], ctx.jwtToken)
      this.onDecision!(
        decisionEvent(
          d,
          run.id ?? globalThis.crypto.randomUUID(),
          run.policy.name,
          performance.now() - started,
          {
            method: i?.method,
            path: i?.path,
            host: i?.host,
            principal: i?.source.principal,
            subject: d.identity?.subject,
            mcpMethod: run.ctx?.mcp?.method,
            mcpTool: run.ctx?.mcp?.tool?.name,
          },
          request,
        ),
      )
    } catch {
      // A failing listener must not change the decision.
    }
  }

  async update(policy: PolicySource): Promise<void> {
    if (this.closed) throw new Error('engine is closed')
    const next = await compilePolicy(policy, this.env)
    const prev = this.current
    this.current = next
    this.reads = readList(next)
    this.generation++
    // Let in-flight decisions that hold `prev` finish before releasing its resources.
    // Node's timer has unref() (a pending release must not keep the process alive); the web's is a number.
    const release: unknown = setTimeout(() => prev.dispose(), prev.timeoutMs + 50)
    ;(release as { unref?: () => void }).unref?.()
  }

  close(): void {
    this.closed = true
    this.current.dispose()
  }
}

/**
 * `engine.decide(raw, options)`, without the promise when the decision needed nothing
 * asynchronous (no JWKS fetch, no async evaluator): for hosts that answer on the spot, such as the
 * ext_authz sidecar. Same decision, same event, same deadline as `decide`.
 */
export function decideEager(
  engine: Engine,
  raw: unknown,
  options?: DecideOptions,
): Decision | Promise<Decision> {
  return engine instanceof PolicyEngine ? engine.decideEager(raw, options) : engine.decide(raw, options)
}

/**
 * Compile a policy and return an engine for it. Throws `PolicyError` with every problem.
 *
 * @example
 * ```ts
 * const engine = await createEngine(`
 * rules:
 *   - id: ext-authz-header
 *     action: allow
 *     match: { headers: [{ name: x-ext-authz, exact: allow }] }
 * `)
 * const d = await engine.decide({ method: 'GET', path: '/', headers: { 'x-ext-authz': 'allow' } })
 * d.allowed // true
 * ```
 */
export async function createEngine(policy: PolicySource, options: EngineOptions = {}): Promise<Engine> {
  const env: CompileEnvironment = {
    evaluators: options.evaluators ?? [],
    resources: options.resources,
    fetch: options.fetch ?? globalThis.fetch,
    now: options.now ?? Date.now,
  }
  const compiled = await compilePolicy(policy, env)
  return new PolicyEngine(compiled, env, options.onDecision)
}
