/**
 * The values of the fast path (fast-path.ts) and CEL's rules over them: the error value `&&` and
 * `||` may absorb, giving up to the engine, on-demand records, map lookup, equality of scalars,
 * the string methods, and the logical operators.
 */
import type { RequestContext } from '@verdict/core'

/** A CEL error value (a missing key, an absent variable): `&&` and `||` may still absorb it. */
export const ERR: unique symbol = Symbol('cel-error')

/** Thrown when a value falls outside what this path models: the expression goes to the engine. */
export const GIVE_UP = { giveUp: true }

/** A record whose fields are read on demand (`source.identity`). */
export class Fields {
  constructor(
    readonly readers: Readonly<Record<string, (from: never) => unknown>>,
    readonly from: unknown,
  ) {}
  get(key: string): unknown {
    const r = this.readers[key]
    return r === undefined ? undefined : (r as (from: unknown) => unknown)(this.from)
  }
}

export type Node = (ctx: RequestContext) => unknown

const hasOwn = Object.hasOwn

/** A plain or null-prototype object from the request (a `Fields` record also passes: test it first). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

/** A JSON string, boolean or null: the scalars this path compares. */
function isSimple(v: unknown): boolean {
  return typeof v === 'string' || typeof v === 'boolean' || v === null
}

/** A map lookup with CEL's semantics over a plain or null-prototype object. */
export function lookup(m: unknown, key: unknown): unknown {
  if (m === ERR || key === ERR) return ERR
  if (typeof key !== 'string') throw GIVE_UP
  if (m instanceof Fields) {
    const v = m.get(key)
    return v === undefined ? ERR : v
  }
  if (!isRecord(m)) throw GIVE_UP
  if (!hasOwn(m, key)) return ERR
  const v = m[key]
  if (v === undefined || typeof v === 'function' || typeof v === 'symbol') return ERR
  return v
}

/**
 * CEL `==` where it is decidable without the engine's numeric and aggregate rules: a string,
 * boolean or null equals only the same value (values of different types are unequal in CEL).
 */
export function equals(a: unknown, b: unknown): boolean | typeof ERR {
  if (a === ERR || b === ERR) return ERR
  if (isSimple(a) || isSimple(b)) return a === b
  return giveUp()
}

export function giveUp(): never {
  throw GIVE_UP
}

export const STRING_METHODS: Readonly<Record<string, ((s: string, t: string) => boolean) | undefined>> = {
  startsWith: (s, t) => s.startsWith(t),
  endsWith: (s, t) => s.endsWith(t),
  contains: (s, t) => s.includes(t),
}

export function binaryString(a: Node, b: Node, op: (s: string, t: string) => boolean): Node {
  return (ctx) => {
    const s = a(ctx)
    const t = b(ctx)
    if (s === ERR || t === ERR) return ERR
    if (typeof s !== 'string' || typeof t !== 'string') throw GIVE_UP
    return op(s, t)
  }
}

/**
 * CEL `&&` (`wins` false) and `||` (`wins` true): the winning value decides whichever side it is
 * on, even next to an error; otherwise both sides must be booleans.
 */
export function logical(a: Node, b: Node, wins: boolean): Node {
  const loses = !wins
  return (ctx) => {
    const l = a(ctx)
    if (l === wins) return wins
    const r = b(ctx)
    if (r === wins) return wins
    if (l === loses && r === loses) return loses
    if ((l === loses || l === ERR) && (r === loses || r === ERR)) return ERR
    throw GIVE_UP
  }
}
