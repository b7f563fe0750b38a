/**
 * Vitest matchers for decisions: `expect.extend(verdictMatchers)` then
 * `expect(decision).toAllow()` / `expect(decision).toDeny({ status: 403 })`.
 */
/// <reference types="vitest" preserve="true" />
// The reference is kept in the emitted .d.ts (an `import type {} from 'vitest'` is dropped), so the
// `declare module 'vitest'` below augments vitest whatever order a test file imports them in.
import type { Decision } from '../decision.js'

export interface DenyExpectation {
  readonly status?: number
  readonly code?: string
  readonly rule?: string
  /** Exact body, or a RegExp it must match. */
  readonly body?: string | RegExp
  /** Substring or RegExp the reason must match. */
  readonly reason?: string | RegExp
}

interface MatcherResult {
  pass: boolean
  message: () => string
}

function isDecision(v: unknown): v is Decision {
  return typeof v === 'object' && v !== null && typeof (v as Decision).allowed === 'boolean'
}

function describe(d: Decision): string {
  return `${d.allowed ? 'allow' : 'deny'} ${d.status} (${d.code}${d.rule ? `, rule ${d.rule}` : ''}): ${d.reason}`
}

function matches(v: string | undefined, want: string | RegExp, exact: boolean): boolean {
  if (v === undefined) return false
  if (typeof want === 'string') return exact ? v === want : v.includes(want)
  return want.test(v)
}

export const verdictMatchers = {
  /** The decision allows (optionally by a given rule). */
  toAllow(received: unknown, expected?: { rule?: string }): MatcherResult {
    if (!isDecision(received)) return { pass: false, message: () => 'expected a verdict Decision' }
    const pass = received.allowed && (expected?.rule === undefined || received.rule === expected.rule)
    return {
      pass,
      message: () =>
        pass
          ? `expected a deny, got ${describe(received)}`
          : `expected an allow${expected?.rule ? ` by rule ${expected.rule}` : ''}, got ${describe(received)}`,
    }
  },
  /** The decision denies, with the given status, code, rule, body or reason when stated. */
  toDeny(received: unknown, expected: DenyExpectation = {}): MatcherResult {
    if (!isDecision(received)) return { pass: false, message: () => 'expected a verdict Decision' }
    const problems: string[] = []
    if (received.allowed) problems.push('it allowed')
    if (expected.status !== undefined && received.status !== expected.status)
      problems.push(`status ${received.status} is not ${expected.status}`)
    if (expected.code !== undefined && received.code !== expected.code)
      problems.push(`code ${received.code} is not ${expected.code}`)
    if (expected.rule !== undefined && received.rule !== expected.rule)
      problems.push(`rule ${received.rule} is not ${expected.rule}`)
    if (expected.body !== undefined && !matches(received.body, expected.body, true))
      problems.push(`body ${JSON.stringify(received.body)} does not match`)
    if (expected.reason !== undefined && !matches(received.reason, expected.reason, false))
      problems.push('reason does not match')
    const pass = problems.length === 0
    return {
      pass,
      message: () =>
        pass
          ? `expected no such deny, got ${describe(received)}`
          : `expected a deny: ${problems.join('; ')} — got ${describe(received)}`,
    }
  },
}

declare module 'vitest' {
  interface Assertion<T> {
    toAllow(expected?: { rule?: string }): T
    toDeny(expected?: DenyExpectation): T
  }
  interface AsymmetricMatchersContaining {
    toAllow(expected?: { rule?: string }): void
    toDeny(expected?: DenyExpectation): void
  }
}
