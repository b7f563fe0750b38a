/**
 * agentgateway's map and list functions: `merge`, `flatten`, `contains`, and the maps under
 * construction that the `mapValues` / `filterKeys` rewrites (compile/rewrites.ts) fill.
 */
import { type CelMap, type CelValue, celMap, isCelList, isCelMap, isCelUint } from '@bufbuild/cel'
import { toPlainValue } from '../plain.js'
import { compareNumbers } from './math.js'

// Maps

export function merge(a: CelMap, b: CelMap): CelMap {
  const out = new Map<bigint | string | boolean, CelValue>()
  for (const m of [a, b]) for (const [k, v] of m) out.set(isCelUint(k) ? k.value : (k as string), v)
  return celMap(out)
}

/** Maps under construction by the `mapValues`/`filterKeys` rewrites, by the CEL map handed out. */
const building = new WeakMap<object, Map<bigint | string | boolean, CelValue>>()

export function newMap(): CelMap {
  const m = new Map<bigint | string | boolean, CelValue>()
  const cm = celMap(m)
  building.set(cm, m)
  return cm
}

export function mapPut(target: CelMap, key: CelValue, value: CelValue): CelMap {
  const m = building.get(target)
  if (m === undefined) throw new Error('internal: not a map under construction')
  m.set(isCelUint(key) ? key.value : (key as string), value)
  return target
}

export function flatten(v: CelValue): CelValue {
  if (!isCelMap(v) && !isCelList(v)) throw new Error('flatten only works on a map or a list')
  return v
}

export function contains(container: CelValue, x: CelValue): boolean {
  if (isCelMap(container)) return container.has(x as never)
  for (const v of container as Iterable<CelValue>) if (sameValue(v, x)) return true
  return false
}

function sameValue(a: CelValue, b: CelValue): boolean {
  if (typeof a === typeof b && (typeof a !== 'object' || a === null)) return a === b
  try {
    return compareNumbers(a, b) === 0
  } catch {
    return toJsonSafe(a) === toJsonSafe(b)
  }
}

function toJsonSafe(v: CelValue): string {
  try {
    return JSON.stringify(toPlainValue(v))
  } catch {
    return String(Math.random())
  }
}

/** Internal names of the functions the macro rewrites use; `@` makes them unwritable. */
export const NEW_MAP = '@verdict_map_new'
export const MAP_PUT = '@verdict_map_put'
