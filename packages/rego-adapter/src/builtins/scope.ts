import { compareUtf8 } from './bytes.js'

/** The decision a builtin runs in: its clock and the caches of non-deterministic builtins. */
export interface DecisionScope {
  /** The decision's clock, milliseconds since the epoch (`ctx.now`). */
  readonly nowMs: number
  /** `uuid.rfc4122` and `rand.intn` answers by key, so a decision sees one value per key. */
  readonly cache: Map<string, unknown>
}

let active: DecisionScope | undefined

/** Set the active scope; returns the previous one. */
export function setScope(s: DecisionScope | undefined): DecisionScope | undefined {
  const prev = active
  active = s
  return prev
}

/** The active scope. Evaluations always run in one (`inScope`); outside, a fresh one. */
export function currentScope(): DecisionScope {
  return active ?? { nowMs: Date.now(), cache: new Map() }
}

/** Run `fn` in the active scope, or in a new one (one clock reading) when none is active. */
export function inScope<T>(fn: () => T): T {
  if (active !== undefined) return fn()
  active = { nowMs: Date.now(), cache: new Map() }
  try {
    return fn()
  } finally {
    active = undefined
  }
}

const encoder = new TextEncoder()

/** A JSON value as raw text, which the SDK copies into the module as is (exact big integers). */
export function rawJson(text: string): ArrayBuffer {
  return encoder.encode(text).buffer as ArrayBuffer
}

/** An integer result that may exceed 2^53 (nanoseconds), exact. */
export function exactInt(n: bigint): ArrayBuffer | number {
  const x = Number(n)
  return Number.isSafeInteger(x) ? x : rawJson(n.toString())
}

export type Obj = Record<string, unknown>
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
export const isStr = (v: unknown): v is string => typeof v === 'string'
export const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v)

/** Keys sorted as Go's encoding/json writes a map (byte order of UTF-8). */
export function sortKeys(o: Obj): string[] {
  return Object.keys(o).sort(compareUtf8)
}

/** Go's `json.Marshal` (or `MarshalIndent` when `pretty`): sorted keys, `<>&` and U+2028/9 escaped. */
export function goJson(v: unknown, indent = '', prefix = '', depth = 0, pretty = false): string {
  const nl = pretty ? `\n${prefix}${indent.repeat(depth + 1)}` : ''
  const end = pretty ? `\n${prefix}${indent.repeat(depth)}` : ''
  const sep = pretty ? ': ' : ':'
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]'
    return `[${v.map((x) => nl + goJson(x, indent, prefix, depth + 1, pretty)).join(',')}${end}]`
  }
  if (isObj(v)) {
    const keys = sortKeys(v)
    if (keys.length === 0) return '{}'
    return `{${keys.map((k) => `${nl}${goString(k)}${sep}${goJson(v[k], indent, prefix, depth + 1, pretty)}`).join(',')}${end}}`
  }
  if (typeof v === 'string') return goString(v)
  return JSON.stringify(v)
}

function goString(s: string): string {
  return JSON.stringify(s).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

/** The elements of a string, array or set (an array here), or undefined. */
export function strings(v: unknown): string[] | undefined {
  if (isStr(v)) return [v]
  if (Array.isArray(v) && v.every(isStr)) return v
  return undefined
}
