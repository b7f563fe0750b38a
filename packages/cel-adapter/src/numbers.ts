/**
 * Integers beyond 2^53 from the request are not compared as if they were exact.
 *
 * JSON.parse rounds `9007199254740993` to `9007199254740992`; the value reaches CEL as a `double`
 * that an upstream reading the JSON exactly (Python, Go int64, Java) would not see. So any
 * comparison (`<`, `<=`, `>`, `>=`), equality or `in` with another number, arithmetic, or conversion
 * (`int()`, `uint()`, `string()`) of such a value read from the request is an error, which the
 * engine turns into a deny for a deny or require rule and into no match for an allow rule.
 *
 * These are `@bufbuild/cel`'s standard overloads, registered again (same name and argument types,
 * so they replace the originals) with the check in front of the original implementation. Which
 * doubles are rounded request integers is recorded per evaluation by value-view.ts; a literal such
 * as `1e20` in an expression keeps CEL's double semantics.
 */
import {
  type CelFunc,
  CelScalar,
  type CelType,
  type CelValue,
  celEnv,
  celFunc,
  isCelError,
  isCelList,
  isCelMap,
  isCelUint,
  listType,
  mapType,
} from '@bufbuild/cel'
import { isRoundedRequestInteger } from './value-view.js'

const { DOUBLE, DYN, INT, UINT } = CelScalar

const ROUNDED =
  'an integer beyond 2^53 from the request was rounded by JSON.parse: comparing or computing with it would not be exact'

const STANDARD = celEnv().funcs

/** The standard overload `name(args)` (a function, not a method). */
function standard(name: string, args: readonly CelType[]): CelFunc {
  const id = `${name}(${args.map((a) => a.name).join(',')})`
  for (const f of STANDARD.find(name) ?? []) if (f.target === undefined && f.id === id) return f
  throw new Error(`@bufbuild/cel has no standard overload ${id}`)
}

/** Call a standard overload; its error becomes an exception, which the engine turns back into one. */
function callStandard(f: CelFunc, args: CelValue[]): CelValue {
  const r = f.call(0, undefined, args)
  if (r === undefined) throw new Error(`no matching overload for ${f.name}`)
  if (isCelError(r)) throw new Error(r.message)
  return r as CelValue
}

/** `f` again, failing when any argument is a rounded request integer. */
function guarded(name: string, args: readonly CelType[]): CelFunc {
  const f = standard(name, args)
  const impl = (...a: CelValue[]): CelValue => {
    for (const x of a) if (isRoundedRequestInteger(x)) throw new Error(ROUNDED)
    return callStandard(f, a)
  }
  return celFunc(name, args, f.result, impl as never)
}

const isNumber = (v: unknown): boolean => typeof v === 'number' || typeof v === 'bigint' || isCelUint(v)

const INEXACT = 'inexact'

/**
 * CEL equality, with `INEXACT` where the answer depends on a rounded request integer compared
 * with a number, at any depth of lists and maps. A pair that is unequal anyway decides.
 */
function equality(l: CelValue, r: CelValue, standardEquals: CelFunc, depth = 0): boolean | typeof INEXACT {
  if (isRoundedRequestInteger(l)) return isNumber(r) ? INEXACT : false
  if (isRoundedRequestInteger(r)) return isNumber(l) ? INEXACT : false
  if (depth < 64 && isCelList(l) && isCelList(r)) {
    if (l.size !== r.size) return false
    let inexact = false
    for (let i = 0; i < l.size; i++) {
      const e = equality(l.get(i)!, r.get(i)!, standardEquals, depth + 1)
      if (e === false) return false
      if (e === INEXACT) inexact = true
    }
    return inexact ? INEXACT : true
  }
  if (depth < 64 && isCelMap(l) && isCelMap(r)) {
    if (l.size !== r.size) return false
    let inexact = false
    for (const [k, v] of l) {
      const rv = r.get(k)
      if (rv === undefined) return false
      const e = equality(v, rv, standardEquals, depth + 1)
      if (e === false) return false
      if (e === INEXACT) inexact = true
    }
    return inexact ? INEXACT : true
  }
  return callStandard(standardEquals, [l, r]) === true
}

const COMPARISONS = ['_<_', '_<=_', '_>_', '_>=_']
const WITH_DOUBLE: ReadonlyArray<readonly CelType[]> = [
  [DOUBLE, DOUBLE],
  [DOUBLE, INT],
  [INT, DOUBLE],
  [DOUBLE, UINT],
  [UINT, DOUBLE],
]

function numberFunctions(): CelFunc[] {
  const out: CelFunc[] = []
  for (const op of COMPARISONS) for (const args of WITH_DOUBLE) out.push(guarded(op, args))
  for (const op of ['_+_', '_-_', '_*_', '_/_']) out.push(guarded(op, [DOUBLE, DOUBLE]))
  out.push(guarded('-_', [DOUBLE]))
  for (const conversion of ['int', 'uint', 'string']) out.push(guarded(conversion, [DOUBLE]))
  out.push(guarded('@in', [DOUBLE, mapType(DYN, DYN)]))

  const eq = standard('_==_', [DYN, DYN])
  const exactly = (l: CelValue, r: CelValue): boolean => {
    const e = equality(l, r, eq)
    if (e === INEXACT) throw new Error(ROUNDED)
    return e
  }
  out.push(celFunc('_==_', [DYN, DYN], CelScalar.BOOL, exactly))
  out.push(celFunc('_!=_', [DYN, DYN], CelScalar.BOOL, (l, r) => !exactly(l, r)))
  // `x in list`: an exact match decides; otherwise a rounded integer met on the way is an error.
  out.push(
    celFunc('@in', [DYN, listType(DYN)], CelScalar.BOOL, (x, list) => {
      let inexact = false
      for (const e of list) {
        const r = equality(x, e, eq)
        if (r === true) return true
        if (r === INEXACT) inexact = true
      }
      if (inexact) throw new Error(ROUNDED)
      return false
    }),
  )
  return out
}

/** The standard numeric overloads with the rounded-integer check; registered after the standard library. */
export const NUMBER_FUNCTIONS: readonly CelFunc[] = numberFunctions()
