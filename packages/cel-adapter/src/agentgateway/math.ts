/** cel-go's `math` extension as agentgateway offers it: exact comparisons across number types, rounding, bits. */
import { type CelFunc, CelScalar, type CelValue, celFunc, celUint, isCelList, isCelUint } from '@bufbuild/cel'

const { BOOL, INT, UINT, DOUBLE, DYN } = CelScalar

const INT_MIN = -(2n ** 63n)
const celUintOf = (v: bigint): CelValue => celUint(v)

function asNumber(v: CelValue): number | bigint {
  if (typeof v === 'bigint' || typeof v === 'number') return v
  if (isCelUint(v)) return v.value
  throw new Error('math: no such overload (not a number)')
}

/** Compare two CEL numbers of any type exactly. */
export function compareNumbers(a: CelValue, b: CelValue): number {
  const x = asNumber(a)
  const y = asNumber(b)
  if (typeof x === 'number' && Number.isNaN(x)) return Number.NaN
  if (typeof y === 'number' && Number.isNaN(y)) return Number.NaN
  if (typeof x === 'bigint' && typeof y === 'bigint') return x < y ? -1 : x > y ? 1 : 0
  if (typeof x === 'number' && typeof y === 'number') return x < y ? -1 : x > y ? 1 : 0
  // Mixed: compare the double with the integer without rounding the integer.
  const [d, i, flip] = typeof x === 'number' ? [x, y as bigint, 1] : [y as number, x as bigint, -1]
  if (d === Number.POSITIVE_INFINITY) return flip
  if (d === Number.NEGATIVE_INFINITY) return -flip
  const fl = BigInt(Math.floor(d))
  if (fl < i) return -flip
  if (fl > i) return flip
  return d > Math.floor(d) ? flip : 0
}

function extreme(sign: 1 | -1, name: string) {
  return (...args: CelValue[]): CelValue => {
    const values: CelValue[] =
      args.length === 1 && isCelList(args[0]) ? Array.from(args[0] as Iterable<CelValue>) : args
    if (values.length === 0) throw new Error(`math.@${name}(list) argument must not be empty`)
    let best: unknown = values[0]!
    asNumber(best as CelValue)
    for (const v of values.slice(1)) {
      const c = compareNumbers(v, best as CelValue)
      if (Number.isNaN(c)) {
        // NaN wins, as in cel-go (a comparison with NaN is never false there).
        if (typeof v === 'number' && Number.isNaN(v)) best = v
        continue
      }
      if (c * sign > 0) best = v
    }
    return best as CelValue
  }
}

function roundHalfAway(d: number): number {
  if (!Number.isFinite(d)) return d
  return d < 0 ? -Math.round(-d) : Math.round(d)
}

function bitOperands(a: CelValue, b: CelValue): [bigint, bigint, 'int' | 'uint'] {
  if (typeof a === 'bigint' && typeof b === 'bigint') return [a, b, 'int']
  if (isCelUint(a) && isCelUint(b)) return [a.value, b.value, 'uint']
  throw new Error('math: no such overload')
}

function shift(left: boolean) {
  return (v: CelValue, n: CelValue): CelValue => {
    if (typeof n !== 'bigint') throw new Error('math: no such overload')
    if (n < 0n) throw new Error(`math.bitShift${left ? 'Left' : 'Right'}() negative offset: ${n}`)
    if (typeof v === 'bigint') {
      if (n > 63n) return 0n
      const u = BigInt.asUintN(64, v)
      return BigInt.asIntN(64, left ? u << n : u >> n)
    }
    if (isCelUint(v)) {
      if (n > 63n) return celUintOf(0n)
      return celUintOf(BigInt.asUintN(64, left ? v.value << n : v.value >> n))
    }
    throw new Error('math: no such overload')
  }
}

export function mathFunctions(): CelFunc[] {
  const out: CelFunc[] = []
  const greatest = extreme(1, 'greatest')
  const least = extreme(-1, 'least')
  for (let n = 1; n <= 16; n++) {
    const args = Array.from({ length: n }, () => DYN)
    out.push(celFunc('math.greatest', args, DYN, greatest as never))
    out.push(celFunc('math.least', args, DYN, least as never))
  }
  out.push(
    celFunc('math.ceil', [DOUBLE], DOUBLE, Math.ceil),
    celFunc('math.floor', [DOUBLE], DOUBLE, Math.floor),
    celFunc('math.round', [DOUBLE], DOUBLE, roundHalfAway),
    celFunc('math.trunc', [DOUBLE], DOUBLE, Math.trunc),
    celFunc(
      'math.isInf',
      [DOUBLE],
      BOOL,
      (d) => d === Number.POSITIVE_INFINITY || d === Number.NEGATIVE_INFINITY,
    ),
    celFunc('math.isNaN', [DOUBLE], BOOL, Number.isNaN),
    celFunc('math.isFinite', [DOUBLE], BOOL, Number.isFinite),
    celFunc('math.abs', [INT], INT, (i) => {
      if (i === INT_MIN) throw new Error('integer overflow')
      return i < 0n ? -i : i
    }),
    celFunc('math.abs', [UINT], UINT, (u) => u),
    celFunc('math.abs', [DOUBLE], DOUBLE, Math.abs),
    celFunc('math.sign', [INT], INT, (i) => (i > 0n ? 1n : i < 0n ? -1n : 0n)),
    celFunc('math.sign', [UINT], UINT, (u) => celUintOf(u.value > 0n ? 1n : 0n) as never),
    celFunc('math.sign', [DOUBLE], DOUBLE, (d) => (Number.isNaN(d) ? d : d > 0 ? 1 : d < 0 ? -1 : 0)),
    celFunc('math.sqrt', [DOUBLE], DOUBLE, Math.sqrt),
    celFunc('math.sqrt', [INT], DOUBLE, (i) => Math.sqrt(Number(i))),
    celFunc('math.sqrt', [UINT], DOUBLE, (u) => Math.sqrt(Number(u.value))),
    celFunc('math.bitNot', [INT], INT, (i) => BigInt.asIntN(64, ~i)),
    celFunc('math.bitNot', [UINT], UINT, (u) => celUintOf(BigInt.asUintN(64, ~u.value)) as never),
    celFunc('math.bitShiftLeft', [DYN, DYN], DYN, shift(true) as never),
    celFunc('math.bitShiftRight', [DYN, DYN], DYN, shift(false) as never),
  )
  const bit = (name: string, op: (a: bigint, b: bigint) => bigint) =>
    celFunc(name, [DYN, DYN], DYN, ((a: CelValue, b: CelValue) => {
      const [x, y, kind] = bitOperands(a, b)
      return kind === 'int' ? BigInt.asIntN(64, op(x, y)) : celUintOf(BigInt.asUintN(64, op(x, y)))
    }) as never)
  out.push(
    bit('math.bitAnd', (a, b) => a & b),
    bit('math.bitOr', (a, b) => a | b),
    bit('math.bitXor', (a, b) => a ^ b),
  )
  return out
}
