/**
 * The rule combination (docs/semantics.md): every layer must allow (layers are AND-ed). Within a
 * layer: `decide` rules in order (an external decision's deny is final), then any `deny` rule that
 * is true denies, then any `require` rule that is not true denies, then the first `allow` rule that
 * is true allows; when none does, the layer denies if it has allow rules and allows otherwise (or as
 * its `default` says). Evaluator errors fail closed: they make deny and require rules deny, allow
 * rules not match, and decide rules deny. Shadow rules are evaluated and recorded, never enforced.
 */
import type { CompiledLayer, CompiledPolicy, CompiledRule, ResponseSpec } from '../compile.js'
import type { DecisionContext } from '../context.js'
import {
  type Decision,
  type DecisionCode,
  deny,
  EMPTY_LIST,
  EMPTY_OBJECT,
  type HeaderEntry,
  type QueryParameter,
  type ShadowRecord,
} from '../decision.js'
import type { EvalResult, RuleProgram } from '../evaluator.js'
import { toExternalDecision } from '../external.js'

/**
 * What the decision adds so far. The lists are never changed in place (`appended` builds a new one),
 * so they start as the shared frozen empty list and take a frozen list as it is: a decision that
 * adds nothing, or one frozen list, allocates nothing for them.
 */
export interface Acc {
  headers: readonly HeaderEntry[]
  headersToRemove: readonly string[]
  responseHeadersToAdd: readonly HeaderEntry[]
  queryParametersToSet: readonly QueryParameter[]
  queryParametersToRemove: readonly string[]
  dynamicMetadata: Record<string, unknown> | undefined
  shadow: ShadowRecord[] | undefined
  rule: string | undefined
  /** The failures of the current layer's allow rules, for its fallback's reason. */
  allowErrors: string[] | undefined
}

/** `list` then `more`, changing neither: a new list unless one of them is empty and the other may be shared. */
export function appended<T>(list: readonly T[], more: readonly T[]): readonly T[] {
  if (more.length === 0) return list
  if (list.length === 0) return Object.isFrozen(more) ? more : more.slice()
  return list.concat(more)
}

export function isThenable<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown })?.then === 'function'
}

export function errorText(e: unknown): string {
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
export function dedupeHeaders(list: readonly HeaderEntry[]): readonly HeaderEntry[] {
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

/** The lists of a layer in the order they run (see the module comment). */
const SHADOW = 0
const DECIDE = 1
const DENY = 2
const REQUIRE = 3
const ALLOW = 4

function phaseRules(layer: CompiledLayer, phase: number): readonly CompiledRule[] {
  switch (phase) {
    case SHADOW:
      return layer.shadow
    case DECIDE:
      return layer.decide
    case DENY:
      return layer.deny
    case REQUIRE:
      return layer.require
    default:
      return layer.allow
  }
}

/** `step`: go on with the next rule. */
const NEXT = 1
/** `step`: an allow rule matched, the layer allows. */
const ALLOWS = 2

/** What one rule's outcome does in its list: a deny of the layer, NEXT, or ALLOWS. */
function step(
  policy: CompiledPolicy,
  layer: CompiledLayer,
  rule: CompiledRule,
  phase: number,
  m: RuleOutcome,
  acc: Acc,
): Decision | typeof NEXT | typeof ALLOWS {
  if (phase === SHADOW) {
    recordShadow(acc, rule, m)
    return NEXT
  }
  if (m === 'skip') return NEXT
  if (phase === DECIDE) {
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
    acc.headers = appended(appended(acc.headers, ext.headers), rule.headers)
    acc.headersToRemove = appended(acc.headersToRemove, ext.headersToRemove)
    acc.responseHeadersToAdd = appended(acc.responseHeadersToAdd, ext.responseHeadersToAdd)
    acc.queryParametersToSet = appended(acc.queryParametersToSet, ext.queryParametersToSet)
    acc.queryParametersToRemove = appended(acc.queryParametersToRemove, ext.queryParametersToRemove)
    if (ext.dynamicMetadata !== undefined)
      acc.dynamicMetadata = { ...acc.dynamicMetadata, ...ext.dynamicMetadata }
    acc.rule ??= rule.id
    return NEXT
  }
  if (phase === DENY) {
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
    return NEXT
  }
  if (phase === REQUIRE) {
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
    return NEXT
  }
  if (m.error !== undefined) {
    acc.allowErrors ??= []
    acc.allowErrors.push(`${rule.id}: ${m.error}`)
    return NEXT
  }
  if (!m.matched) return NEXT
  acc.headers = appended(acc.headers, rule.headers)
  acc.rule = rule.id
  return ALLOWS
}

/** No allow rule matched: the layer's fallback. */
function fallback(policy: CompiledPolicy, layer: CompiledLayer, acc: Acc): Decision | undefined {
  if (layer.fallback !== 'deny') return undefined
  const errors = acc.allowErrors
  const why = errors === undefined ? '' : ` (failed: ${errors.join('; ')})`
  const inLayer = policy.layers.length > 1 ? ` in layer ${layer.name}` : ''
  return denyFromRule(policy, layer, undefined, 'no_match', `no allow rule matched${inLayer}${why}`, false)
}

/**
 * Evaluate one layer; returns a deny Decision, or undefined when the layer allows. Synchronous
 * unless an evaluator answers with a promise: then the rest of the layer runs once it settles.
 */
export function evalLayer(
  policy: CompiledPolicy,
  layer: CompiledLayer,
  ctx: DecisionContext,
  acc: Acc,
): Decision | undefined | Promise<Decision | undefined> {
  acc.allowErrors = undefined
  return continueLayer(policy, layer, ctx, acc, SHADOW, 0)
}

/** The rest of a layer from rule `index` of list `phase`. */
function continueLayer(
  policy: CompiledPolicy,
  layer: CompiledLayer,
  ctx: DecisionContext,
  acc: Acc,
  phase: number,
  index: number,
): Decision | undefined | Promise<Decision | undefined> {
  for (; phase <= ALLOW; phase++, index = 0) {
    const rules = phaseRules(layer, phase)
    for (; index < rules.length; index++) {
      const rule = rules[index]!
      const m = evalRule(rule, ctx)
      if (isThenable(m)) {
        const at = phase
        const next = index + 1
        return m.then((x) => {
          const r = step(policy, layer, rule, at, x, acc)
          if (r === ALLOWS) return undefined
          return r === NEXT ? continueLayer(policy, layer, ctx, acc, at, next) : r
        })
      }
      const r = step(policy, layer, rule, phase, m, acc)
      if (r === ALLOWS) return undefined
      if (r !== NEXT) return r
    }
  }
  return fallback(policy, layer, acc)
}

export function newAcc(): Acc {
  return {
    headers: EMPTY_LIST,
    headersToRemove: EMPTY_LIST,
    responseHeadersToAdd: EMPTY_LIST,
    queryParametersToSet: EMPTY_LIST,
    queryParametersToRemove: EMPTY_LIST,
    dynamicMetadata: undefined,
    shadow: undefined,
    rule: undefined,
    allowErrors: undefined,
  }
}

type RuleOutcome = Match | 'skip'
