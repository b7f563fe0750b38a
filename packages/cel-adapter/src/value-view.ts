/**
 * Lazy, read-only CEL views over plain JSON-like values.
 *
 * `@bufbuild/cel` turns a plain object into a CEL map by copying all of its entries, and it does
 * so again on every access (`jwt.sub` copies every claim; a 100k-key argument object cost 115 ms
 * per evaluation). These views answer `get`/`has` with one own-property lookup, convert values only
 * when read, and never copy the object. They identify as CEL maps and lists through the registered
 * symbols that `isCelMap` / `isCelList` test.
 *
 * Iterating a view (comprehensions, `size`, `in` on lists, equality) is charged to the running
 * evaluation's budget, so nested comprehensions over a large input fail instead of running for
 * minutes.
 */
import type { CelList, CelMap, CelUint, CelValue } from '@bufbuild/cel'
import { isReflectMessage } from '@bufbuild/protobuf/reflect'

const CEL_MAP = Symbol.for('@bufbuild/cel/map')
const CEL_LIST = Symbol.for('@bufbuild/cel/list')

/** Raised when an evaluation walks more input elements than its budget allows. */
class BudgetExceeded extends Error {
  override readonly name = 'BudgetExceeded'
}

/** The element budget of the evaluation that is running (evaluation is synchronous). */
const budget = { remaining: Number.POSITIVE_INFINITY, limit: Number.POSITIVE_INFINITY }

/**
 * The integers beyond 2^53 that the running evaluation read from the request (JSON.parse rounded
 * them). numbers.ts makes comparing or computing with them an error; the values are noted so that
 * a literal such as `1e20` in an expression keeps CEL's double semantics.
 */
const rounded: { values: Set<number> | undefined; depth: number } = { values: undefined, depth: 0 }

/** Note `v` when it is an integer beyond 2^53 read while an evaluation runs. */
function noteNumber(v: number): void {
  if (rounded.depth > 0 && Number.isInteger(v) && !Number.isSafeInteger(v)) {
    rounded.values ??= new Set()
    rounded.values.add(v)
  }
}

/** True when `v` is an integer beyond 2^53 that the running evaluation read from the request. */
export function isRoundedRequestInteger(v: unknown): boolean {
  return typeof v === 'number' && rounded.values !== undefined && rounded.values.has(v)
}

/**
 * Run `fn` (one evaluation) with an iteration budget of `limit` input elements, and its own record
 * of the rounded integers it reads.
 */
export function withBudget<T>(limit: number, fn: () => T): T {
  const prevRemaining = budget.remaining
  const prevLimit = budget.limit
  const prevRounded = rounded.values
  budget.remaining = limit
  budget.limit = limit
  rounded.values = undefined
  rounded.depth++
  try {
    return fn()
  } finally {
    budget.remaining = prevRemaining
    budget.limit = prevLimit
    rounded.values = prevRounded
    rounded.depth--
  }
}

function charge(n: number): void {
  budget.remaining -= n
  if (budget.remaining < 0) {
    throw new BudgetExceeded(`evaluation iterated over more than ${budget.limit} input elements`)
  }
}

/** Views are CEL maps and lists by the engine's symbol test; these casts are where that is asserted. */
const asCelMap = (v: MapView): CelMap => v as unknown as CelMap
const asCelList = (v: ListView): CelList => v as unknown as CelList

type Key = bigint | string | boolean | CelUint | number

/**
 * Convert a JSON-like value to a CEL value without copying. Integers that fit a double exactly
 * become CEL `int` (as agentgateway does for JSON claims); other numbers stay `double`, and an
 * integer beyond 2^53 is noted as rounded (see `isRoundedRequestInteger`).
 */
export function celView(v: unknown): CelValue | undefined {
  switch (typeof v) {
    case 'string':
    case 'boolean':
    case 'bigint':
      return v
    case 'number':
      if (Number.isSafeInteger(v)) return BigInt(v)
      noteNumber(v)
      return v
    case 'object':
      if (v === null) return null
      if (Array.isArray(v)) return asCelList(new ListView(v))
      if (v instanceof Uint8Array) return v
      if (CEL_MAP in v || CEL_LIST in v) return v as unknown as CelValue
      // A CEL timestamp or duration (a reflected protobuf message).
      if (isReflectMessage(v)) return v as unknown as CelValue
      return asCelMap(new MapView(v as Readonly<Record<string, unknown>>))
    default:
      return undefined
  }
}

/** A CEL map over a plain or null-prototype object: own enumerable string keys only. */
class MapView implements ReadonlyMap<Key, CelValue> {
  readonly [CEL_MAP] = true
  private keyList: string[] | undefined

  constructor(private readonly obj: Readonly<Record<string, unknown>>) {}

  private ownKeys(): string[] {
    this.keyList ??= Object.keys(this.obj)
    return this.keyList
  }

  get size(): number {
    return this.ownKeys().length
  }

  get(key: Key): CelValue | undefined {
    if (typeof key !== 'string' || !Object.hasOwn(this.obj, key)) return undefined
    return celView(this.obj[key])
  }

  has(key: Key): boolean {
    return typeof key === 'string' && Object.hasOwn(this.obj, key) && celView(this.obj[key]) !== undefined
  }

  keys(): MapIterator<string> {
    const keys = this.ownKeys()
    charge(keys.length)
    return keys.values()
  }

  *values(): MapIterator<CelValue> {
    for (const k of this.keys()) yield celView(this.obj[k]) ?? null
  }

  *entries(): MapIterator<[string, CelValue]> {
    for (const k of this.keys()) yield [k, celView(this.obj[k]) ?? null]
  }

  forEach(cb: (value: CelValue, key: Key, map: ReadonlyMap<Key, CelValue>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) cb.call(thisArg, v, k, this)
  }

  [Symbol.iterator](): MapIterator<[string, CelValue]> {
    return this.entries()
  }
}

/**
 * A CEL map with a fixed set of keys whose values are computed on first read and kept, for the
 * variables built from the request (no object is assembled for keys nobody reads).
 */
class FieldsView implements ReadonlyMap<Key, CelValue> {
  readonly [CEL_MAP] = true
  private readonly seen = new Map<string, CelValue | undefined>()

  constructor(
    private readonly names: readonly string[],
    private readonly read: (name: string) => unknown,
  ) {}

  get(key: Key): CelValue | undefined {
    if (typeof key !== 'string') return undefined
    if (this.seen.has(key)) {
      // Kept from an earlier evaluation of the same decision: note a rounded integer again.
      const kept = this.seen.get(key)
      if (typeof kept === 'number') noteNumber(kept)
      return kept
    }
    const v = this.names.includes(key) ? celView(this.read(key)) : undefined
    this.seen.set(key, v)
    return v
  }

  has(key: Key): boolean {
    return this.get(key) !== undefined
  }

  private present(): string[] {
    return this.names.filter((k) => this.get(k) !== undefined)
  }

  get size(): number {
    return this.present().length
  }

  keys(): MapIterator<string> {
    return this.present().values()
  }

  *values(): MapIterator<CelValue> {
    for (const k of this.present()) yield this.get(k)!
  }

  *entries(): MapIterator<[string, CelValue]> {
    for (const k of this.present()) yield [k, this.get(k)!]
  }

  forEach(cb: (value: CelValue, key: Key, map: ReadonlyMap<Key, CelValue>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) cb.call(thisArg, v, k, this)
  }

  [Symbol.iterator](): MapIterator<[string, CelValue]> {
    return this.entries()
  }
}

/** `FieldsView` as the engine's map type. */
export const fieldsView = (names: readonly string[], read: (name: string) => unknown): CelValue =>
  new FieldsView(names, read) as unknown as CelMap

/** A CEL list over an array. */
class ListView {
  readonly [CEL_LIST] = true

  constructor(private readonly arr: readonly unknown[]) {}

  get size(): number {
    return this.arr.length
  }

  get(index: number): CelValue | undefined {
    if (!Number.isInteger(index) || index < 0 || index >= this.arr.length) return undefined
    return celView(this.arr[index]) ?? null
  }

  *values(): IterableIterator<CelValue> {
    charge(this.arr.length)
    for (const v of this.arr) yield celView(v) ?? null
  }

  [Symbol.iterator](): IterableIterator<CelValue> {
    return this.values()
  }
}
