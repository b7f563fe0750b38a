/** A decision against a case's expectation: the differences, and both in a few words. */
import type { Decision } from '../decision.js'
import type { Expectation } from './case-file.js'

/** One difference between expectation and decision. */
export interface CaseDiff {
  readonly field: string
  readonly expected: unknown
  readonly actual: unknown
}

/** `allow 200`, `deny 403`, `deny`: the outcome a case states, in the demo table's words. */
export function expectationSummary(e: Expectation): string {
  const allowed =
    e.allowed ?? (e.status === undefined ? undefined : e.status === 200 && e.mcpError === undefined)
  const word = allowed === undefined ? 'any' : allowed ? 'allow' : 'deny'
  return e.status !== undefined ? `${word} ${e.status}` : word
}

/** `allow 200` / `deny 403` for a decision, to compare with `expectationSummary`. */
export function decisionSummary(d: Decision, e: Expectation | undefined = undefined): string {
  const word = d.allowed ? 'allow' : 'deny'
  return e !== undefined && e.status === undefined ? word : `${word} ${d.status}`
}

/** Compare a decision with a case's expectation; empty when it passes. */
export function diffDecision(d: Decision, e: Expectation): CaseDiff[] {
  const diffs: CaseDiff[] = []
  const check = (field: string, expected: unknown, actual: unknown) => {
    if (expected !== undefined && expected !== actual) diffs.push({ field, expected, actual })
  }
  check('allowed', e.allowed, d.allowed)
  check('status', e.status, d.status)
  check('code', e.code, d.code)
  // `rule: null` expects that no rule decided.
  if (e.rule === null) {
    if (d.rule !== undefined) diffs.push({ field: 'rule', expected: null, actual: d.rule })
  } else check('rule', e.rule, d.rule)
  if (e.headers !== undefined) {
    const got = new Map(d.headers.map((h) => [h.key.toLowerCase(), h.value]))
    for (const [k, v] of Object.entries(e.headers))
      check(`headers.${k.toLowerCase()}`, v, got.get(k.toLowerCase()))
  }
  check('body', e.body, d.body)
  if (e.bodyContains !== undefined && !(d.body ?? '').includes(e.bodyContains)) {
    diffs.push({ field: 'body (contains)', expected: e.bodyContains, actual: d.body })
  }
  if (e.reasonContains !== undefined && !d.reason.includes(e.reasonContains)) {
    diffs.push({ field: 'reason (contains)', expected: e.reasonContains, actual: d.reason })
  }
  if (e.mcpError !== undefined) {
    let err: { code?: unknown; message?: unknown } | undefined
    try {
      err = (JSON.parse(d.body ?? '') as { error?: { code?: unknown; message?: unknown } }).error
    } catch {
      err = undefined
    }
    if (err === undefined) diffs.push({ field: 'mcpError', expected: e.mcpError, actual: d.body })
    else {
      check('mcpError.code', e.mcpError.code, err.code)
      check('mcpError.message', e.mcpError.message, err.message)
    }
  }
  return diffs
}
