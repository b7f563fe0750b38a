/**
 * The engine: `decide(input)` over a compiled policy, `update(policy)` to swap it atomically.
 *
 * Combination (docs/semantics.md): authentication first; then every layer must allow (layers are
 * AND-ed). Within a layer: `decide` rules in order (an external decision's deny is final), then
 * any `deny` rule that is true denies, then any `require` rule that is not true denies, then the
 * first `allow` rule that is true allows; when none does, the layer denies if it has allow rules
 * and allows otherwise (or as its `default` says). Evaluator errors fail closed: they make deny
 * and require rules deny, allow rules not match, and decide rules deny.
 */
import type { AuthOutcome } from './auth.js'
import {
  type CompiledLayer,
  type CompiledPolicy,
  type CompiledRule,
  type CompileEnvironment,
  compilePolicy,
  type PolicySource,
  type ResponseSpec,
} from './compile.js'
import { DecisionContext, type McpCall } from './context.js'
import {
  type Decision,
  type DecisionCode,
  deny,
  EMPTY_LIST,
  EMPTY_OBJECT,
  type HeaderEntry,
  type Identity,
  loggableReason,
  type QueryParameter,
  type ShadowRecord,
} from './decision.js'
import type { EvalResult, Evaluator, ResourceLoader, RuleProgram } from './evaluator.js'
import { toExternalDecision } from './external.js'
import { ambiguousHeader, type CheckInput, isDecision, normalizeInput } from './input/index.js'
import { isoTime } from './iso-time.js'
import { extractMcp, mcpDenialBody } from './mcp-call.js'
import { type RequestRecord, requestRecord } from './request-record.js'

/** One record per decision, for logs and metrics. Never contains a token or a body. */
export interface DecisionEvent {
  readonly id: string
  /** ISO time the decision started. */
  readonly time: string
  readonly policy: string
  readonly allowed: boolean
  readonly status: number
  readonly code: DecisionCode
  readonly detailCode: string | undefined
  readonly rule: string | undefined
  readonly reason: string
  readonly durationMs: number
  /** A redacted summary: no headers, no query values, no body. */
  readonly input: {
    readonly method: string | undefined
    readonly path: string | undefined
    readonly host: string | undefined
    readonly principal: string | undefined
    readonly subject: string | undefined
    readonly mcpMethod: string | undefined
    readonly mcpTool: string | undefined
  }
  readonly shadow: readonly ShadowRecord[] | undefined
  /**
   * The request as a decision log records it (OPA-Envoy's input shape, credentials erased), built
   * on call; undefined when the input was refused before it could be read (docs/fleet.md).
   */
  readonly request: (() => RequestRecord) | undefined
}

const NO_INPUT: DecisionEvent['input'] = Object.freeze({
  method: undefined,
  path: undefined,
  host: undefined,
  principal: undefined,
  subject: undefined,
  mcpMethod: undefined,
  mcpTool: undefined,
})

/**
 * The event of decision `d`, which took `durationMs` and is logged as `id`. Hosts that answer
 * without the engine (a timeout, an overload) record their own denials with it too.
 */
export function decisionEvent(
  d: Decision,
  id: string,
  policy: string,
  durationMs: number,
  input: DecisionEvent['input'] = NO_INPUT,
  request?: () => RequestRecord,
): DecisionEvent {
  return {
    id,
    time: isoTime(Date.now() - durationMs),
    policy,
    allowed: d.allowed,
    status: d.status,
    code: d.code,
    detailCode: d.detailCode,
    rule: d.rule,
    reason: loggableReason(d),
    durationMs,
    input,
    shadow: d.shadow,
    request,
  }
}

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

interface Acc {
  headers: HeaderEntry[]
  headersToRemove: string[]
  responseHeadersToAdd: HeaderEntry[]
  queryParametersToSet: QueryParameter[]
  queryParametersToRemove: string[]
  dynamicMetadata: Record<string, unknown> | undefined
  shadow: ShadowRecord[] | undefined
  rule: string | undefined
}

interface Run {
  readonly policy: CompiledPolicy
  ctx: DecisionContext | undefined
  readonly id: string | undefined
}

function isThenable<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown })?.then === 'function'
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message
  if (typeof e === 'string') return e
  try {
    return JSON.stringify(e)?.slice(0, 200) ?? String(e)
  } catch {
    return String(e)
  }
}

/** Evaluate one program, turning throws and rejections into error results. */
function runProgram(p: RuleProgram, ctx: DecisionContext): EvalResult | Promise<EvalResult> {
  try {
    const r = p.evaluate(ctx)
    if (isThenable(r)) {
      return r.catch((e: unknown) => ({ ok: false as const, error: `evaluator threw: ${errorText(e)}` }))
    }
    return r
  } catch (e) {
    return { ok: false, error: `evaluator threw: ${errorText(e)}` }
  }
}

type Match = { matched: boolean; value: unknown; error: string | undefined }

const NO: Match = { matched: false, value: undefined, error: undefined }

/**
 * `when` then the body; only boolean `true` matches, except for decide rules which return values.
 * Synchronous unless an evaluator answers with a promise, so plain rules cost no microtask.
 */
function evalRule(rule: CompiledRule, ctx: DecisionContext): Match | 'skip' | Promise<Match | 'skip'> {
  if (rule.when === undefined) return evalBody(rule, ctx)
  const w = runProgram(rule.when, ctx)
  return isThenable(w) ? w.then((r) => afterWhen(rule, ctx, r)) : afterWhen(rule, ctx, w)
}

function afterWhen(rule: CompiledRule, ctx: DecisionContext, w: EvalResult): Match | 'skip' | Promise<Match> {
  if (!w.ok) return { matched: false, value: undefined, error: `condition: ${w.error}` }
  if (w.value !== true) {
    if (typeof w.value !== 'boolean')
      return { matched: false, value: undefined, error: 'condition did not return a boolean' }
    return 'skip'
  }
  return evalBody(rule, ctx)
}

function evalBody(rule: CompiledRule, ctx: DecisionContext): Match | Promise<Match> {
  const r = runProgram(rule.program, ctx)
  return isThenable(r) ? r.then((x) => toMatch(rule, x)) : toMatch(rule, r)
}

function toMatch(rule: CompiledRule, r: EvalResult): Match {
  if (!r.ok) return { matched: false, value: undefined, error: r.error }
  if (rule.action === 'decide') return { matched: true, value: r.value, error: undefined }
  if (r.value === true) return YES
  if (r.value === false) return NO
  return {
    matched: false,
    value: r.value,
    error: `returned ${r.value === null ? 'null' : typeof r.value}, not a boolean`,
  }
}

const YES: Match = { matched: true, value: true, error: undefined }

function pickStatus(...candidates: Array<number | undefined>): number {
  for (const c of candidates) if (c !== undefined) return c
  return 403
}

function denyFromRule(
  policy: CompiledPolicy,
  layer: CompiledLayer,
  rule: CompiledRule | undefined,
  code: DecisionCode,
  reason: string,
  isError: boolean,
): Decision {
  const specs: Array<ResponseSpec | undefined> = isError
    ? [rule?.response, policy.responses.error]
    : [rule?.response, layer.denied, policy.responses.denied]
  const status = pickStatus(...specs.map((s) => s?.status))
  let body: string | undefined
  for (const s of specs) {
    if (s?.body !== undefined) {
      body = s.body
      break
    }
  }
  const headers: HeaderEntry[] = []
  for (let i = specs.length - 1; i >= 0; i--) for (const h of specs[i]?.headers ?? EMPTY_LIST) headers.push(h)
  return deny(status, reason, {
    code,
    ...(rule !== undefined ? { rule: rule.id } : {}),
    headers: dedupeHeaders(headers),
    body: body ?? 'access denied',
  })
}

/**
 * Later entries win for the same header name (most specific response last); entries marked
 * `append` add a value instead of replacing.
 */
function dedupeHeaders(list: HeaderEntry[]): HeaderEntry[] {
  if (list.length < 2) return list
  const seen = new Map<string, HeaderEntry[]>()
  for (const h of list) {
    const k = h.key.toLowerCase()
    const prev = seen.get(k)
    if (h.append === 'append' && prev !== undefined) prev.push(h)
    else seen.set(k, [h])
  }
  return [...seen.values()].flat()
}

function recordShadow(acc: Acc, rule: CompiledRule, m: Match | 'skip'): void {
  acc.shadow ??= []
  if (m === 'skip') {
    acc.shadow.push({ rule: rule.id, outcome: 'no_match', wouldDecide: 'none' })
    return
  }
  if (m.error !== undefined) {
    const wouldDecide = rule.action === 'allow' ? 'none' : 'deny'
    acc.shadow.push({ rule: rule.id, outcome: 'error', wouldDecide, error: m.error })
    return
  }
  let wouldDecide: ShadowRecord['wouldDecide'] = 'none'
  if (rule.action === 'decide') {
    const ext = toExternalDecision(m.value)
    wouldDecide = typeof ext === 'string' ? 'deny' : ext.allowed ? 'allow' : 'deny'
  } else if (rule.action === 'allow') wouldDecide = m.matched ? 'allow' : 'none'
  else if (rule.action === 'deny') wouldDecide = m.matched ? 'deny' : 'none'
  else wouldDecide = m.matched ? 'none' : 'deny'
  acc.shadow.push({ rule: rule.id, outcome: m.matched ? 'match' : 'no_match', wouldDecide })
}

/**
 * Evaluate one layer; returns a deny Decision, or undefined when the layer allows. A generator so
 * that it runs synchronously unless an evaluator answers with a promise (`drive` awaits only then).
 */
function* evalLayer(
  policy: CompiledPolicy,
  layer: CompiledLayer,
  ctx: DecisionContext,
  acc: Acc,
): Generator<unknown, Decision | undefined, unknown> {
  for (const rule of layer.shadow) {
    let m = evalRule(rule, ctx)
    if (isThenable(m)) m = (yield m) as RuleOutcome
    recordShadow(acc, rule, m)
  }
  for (const rule of layer.decide) {
    let m = evalRule(rule, ctx)
    if (isThenable(m)) m = (yield m) as RuleOutcome
    if (m === 'skip') continue
    if (m.error !== undefined) {
      return denyFromRule(policy, layer, rule, 'evaluator_error', `rule ${rule.id} failed: ${m.error}`, true)
    }
    const ext = toExternalDecision(m.value)
    if (typeof ext === 'string') {
      return denyFromRule(policy, layer, rule, 'evaluator_error', `rule ${rule.id} failed: ${ext}`, true)
    }
    if (!ext.allowed) {
      const base = denyFromRule(policy, layer, rule, 'denied', `denied by rule ${rule.id}`, false)
      return {
        ...base,
        status: ext.status ?? base.status,
        headers: ext.headers.length > 0 ? dedupeHeaders([...base.headers, ...ext.headers]) : base.headers,
        ...(ext.body !== undefined ? { body: ext.body } : {}),
        dynamicMetadata: ext.dynamicMetadata ?? EMPTY_OBJECT,
      }
    }
    acc.headers.push(...ext.headers, ...rule.headers)
    acc.headersToRemove.push(...ext.headersToRemove)
    acc.responseHeadersToAdd.push(...ext.responseHeadersToAdd)
    acc.queryParametersToSet.push(...ext.queryParametersToSet)
    acc.queryParametersToRemove.push(...ext.queryParametersToRemove)
    if (ext.dynamicMetadata !== undefined)
      acc.dynamicMetadata = { ...acc.dynamicMetadata, ...ext.dynamicMetadata }
    acc.rule ??= rule.id
  }
  for (const rule of layer.deny) {
    let m = evalRule(rule, ctx)
    if (isThenable(m)) m = (yield m) as RuleOutcome
    if (m === 'skip') continue
    if (m.error !== undefined)
      return denyFromRule(
        policy,
        layer,
        rule,
        'evaluator_error',
        `deny rule ${rule.id} failed: ${m.error}`,
        true,
      )
    if (m.matched) return denyFromRule(policy, layer, rule, 'denied', `denied by rule ${rule.id}`, false)
  }
  for (const rule of layer.require) {
    let m = evalRule(rule, ctx)
    if (isThenable(m)) m = (yield m) as RuleOutcome
    if (m === 'skip') continue
    if (m.error !== undefined)
      return denyFromRule(
        policy,
        layer,
        rule,
        'evaluator_error',
        `require rule ${rule.id} failed: ${m.error}`,
        true,
      )
    if (!m.matched)
      return denyFromRule(policy, layer, rule, 'denied', `require rule ${rule.id} not satisfied`, false)
  }
  let errors: string[] | undefined
  for (const rule of layer.allow) {
    let m = evalRule(rule, ctx)
    if (isThenable(m)) m = (yield m) as RuleOutcome
    if (m === 'skip') continue
    if (m.error !== undefined) {
      errors ??= []
      errors.push(`${rule.id}: ${m.error}`)
      continue
    }
    if (m.matched) {
      acc.headers.push(...rule.headers)
      acc.rule = rule.id
      return undefined
    }
  }
  if (layer.fallback === 'deny') {
    const why = errors === undefined ? '' : ` (failed: ${errors.join('; ')})`
    const inLayer = policy.layers.length > 1 ? ` in layer ${layer.name}` : ''
    return denyFromRule(policy, layer, undefined, 'no_match', `no allow rule matched${inLayer}${why}`, false)
  }
  return undefined
}

function challenge(policy: CompiledPolicy, input: CheckInput, tokenPresent: boolean): string {
  const realm =
    policy.realm ??
    (input.host !== '' ? `${input.scheme || 'https'}://${input.host}${input.path}` : 'verdict')
  const safe = realm.replace(/["\\\r\n]/g, '')
  return tokenPresent ? `Bearer realm="${safe}", error="invalid_token"` : `Bearer realm="${safe}"`
}

function authDenial(
  policy: CompiledPolicy,
  input: CheckInput,
  o: Extract<AuthOutcome, { kind: 'failed' }>,
): Decision {
  const spec = policy.responses.unauthenticated
  const status = o.status ?? 401
  const headers: HeaderEntry[] = []
  if (status === 401)
    headers.push({ key: 'www-authenticate', value: o.challenge ?? challenge(policy, input, o.tokenPresent) })
  for (const h of spec?.headers ?? EMPTY_LIST) headers.push(h)
  return deny(spec?.status ?? status, `unauthenticated: ${o.reason}`, {
    code: 'unauthenticated',
    detailCode: o.code,
    headers: dedupeHeaders(headers),
    body: spec?.body ?? (status === 401 ? 'unauthenticated' : 'access denied'),
  })
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

function newAcc(): Acc {
  return {
    headers: [],
    headersToRemove: [],
    responseHeadersToAdd: [],
    queryParametersToSet: [],
    queryParametersToRemove: [],
    dynamicMetadata: undefined,
    shadow: undefined,
    rule: undefined,
  }
}

type RuleOutcome = Match | 'skip'

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
  let messages: readonly McpCall[] | undefined
  let batch = false
  if (policy.mcp.enabled !== false) {
    const m = extractMcp(input, policy.mcp, policy.input.maxJsonDepth)
    if (m !== undefined) {
      if (isDecision(m as never)) return m as Decision
      const mm = m as { messages: readonly McpCall[]; batch: boolean }
      // Zero messages would run no layer at all: never let that become an allow.
      if (mm.messages.length === 0)
        return deny(400, 'malformed MCP request: no message', { code: 'malformed_input' })
      messages = mm.messages
      batch = mm.batch
    }
  }

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
      acc.headersToRemove.push(...o.headersToRemove)
    if (o.kind === 'authenticated') {
      ctx.jwt = o.claims
      ctx.jwtToken = o.token
      identity =
        input.source.principal === undefined
          ? o.identity
          : { ...o.identity, principal: input.source.principal }
      ctx.identity = identity
      acc.headersToRemove.push(...o.headersToRemove)
      acc.queryParametersToRemove.push(...o.queryParametersToRemove)
      acc.headers.push(...o.headers)
    }
  }

  const rounds: ReadonlyArray<McpCall | undefined> = messages ?? [undefined]
  for (const call of rounds) {
    if (call !== undefined) {
      ctx.mcp = call
      if (rounds.length > 1) ctx.resetViews()
    }
    for (const layer of policy.layers) {
      const denied = yield* evalLayer(policy, layer, ctx, acc)
      if (denied !== undefined) {
        let d: Decision = identity !== undefined ? { ...denied, identity } : denied
        if (call !== undefined)
          d = mcpFormat(policy, d, call, batch ? messages : undefined, findRule(policy, d.rule))
        if (batch && call !== undefined) {
          d = {
            ...d,
            reason: `${d.reason} (batch element with method ${call.method}${call.tool ? ` tool ${call.tool.name}` : ''})`,
          }
        }
        return acc.shadow !== undefined ? { ...d, shadow: acc.shadow } : d
      }
    }
  }

  for (const h of policy.allowedHeaders) acc.headers.push(h)
  const d: { -readonly [K in keyof Decision]: Decision[K] } = {
    allowed: true,
    status: 200,
    code: 'allowed',
    reason: acc.rule !== undefined ? `allowed by rule ${acc.rule}` : 'allowed: no rule denied',
    headers: acc.headers.length > 1 ? dedupeHeaders(acc.headers) : acc.headers,
    headersToRemove: acc.headersToRemove,
    responseHeadersToAdd:
      policy.allowedResponseHeaders.length > 0
        ? [...acc.responseHeadersToAdd, ...policy.allowedResponseHeaders]
        : acc.responseHeadersToAdd,
    queryParametersToSet: acc.queryParametersToSet,
    queryParametersToRemove: acc.queryParametersToRemove,
    dynamicMetadata: acc.dynamicMetadata ?? EMPTY_OBJECT,
  }
  if (acc.rule !== undefined) d.rule = acc.rule
  if (identity !== undefined) d.identity = identity
  if (acc.shadow !== undefined) d.shadow = acc.shadow
  return d
}

const HEADER_READS = new WeakMap<CompiledPolicy, ReadonlySet<string> | 'all'>()

/** Every header the policy's rules read as one value (`RuleProgram.readsHeaders`), once per policy. */
function headerReads(policy: CompiledPolicy): ReadonlySet<string> | 'all' {
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
 * The rules' decision, with what the canonical request adds: a body a rule read that must refuse
 * the request (a number JSON cannot hold) answers instead of the rules, and headers dropped for an
 * underscore are removed upstream on an allow.
 */
function* canonicalDecision(
  policy: CompiledPolicy,
  ctx: DecisionContext,
): Generator<unknown, Decision, unknown> {
  const d = yield* runDecision(policy, ctx)
  if (ctx.refused !== undefined) return ctx.refused
  const dropped = ctx.input.droppedHeaders
  if (d.allowed && dropped.length > 0) return { ...d, headersToRemove: [...d.headersToRemove, ...dropped] }
  return d
}

class PolicyEngine implements Engine {
  private current: CompiledPolicy
  private generation = 0
  private readonly now: () => number
  private closed = false

  constructor(
    policy: CompiledPolicy,
    private readonly env: CompileEnvironment,
    private readonly onDecision: EngineOptions['onDecision'],
  ) {
    this.current = policy
    this.now = env.now
  }

  get info() {
    return { name: this.current.name, generation: this.generation }
  }

  decide(raw: unknown, options?: DecideOptions): Promise<Decision> {
    const started = performance.now()
    const policy = this.current
    const run: Run = { policy, ctx: undefined, id: options?.id }
    let result: Decision | Promise<Decision>
    try {
      const input = normalizeInput(raw, policy.input)
      if (isDecision(input)) result = input
      else {
        const ctx = new DecisionContext(input, this.now(), policy.input.maxJsonDepth)
        if (options?.probe === 'list') ctx.probe = 'list'
        run.ctx = ctx
        result = ambiguousHeader(input, headerReads(policy)) ?? drive(canonicalDecision(policy, ctx))
      }
    } catch (e) {
      result = internal(e)
    }
    if (!isThenable(result)) {
      // Decided synchronously: no timer, no extra promise beyond the one returned.
      if (this.onDecision !== undefined) this.emit(run, result, started)
      return Promise.resolve(result)
    }
    const pending = result
    return new Promise<Decision>((resolve) => {
      let settled = false
      // Something asynchronous is pending (a JWKS fetch, an async evaluator): the deadline applies.
      const timer = setTimeout(
        () => finish(timedOut(policy)),
        Math.max(0, policy.timeoutMs - (performance.now() - started)),
      )
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

function internal(e: unknown): Decision {
  return deny(403, `internal error: ${errorText(e)}`, { code: 'internal', body: 'access denied' })
}

function timedOut(policy: CompiledPolicy): Decision {
  return deny(policy.responses.error?.status ?? 403, `decision timed out after ${policy.timeoutMs} ms`, {
    code: 'timeout',
    body: policy.responses.error?.body ?? 'access denied',
  })
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
