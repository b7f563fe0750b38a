/**
 * CEL values as plain JSON-like data: the result of a `decide` rule, error messages, `toJson()`.
 */
import { type CelValue, isCelList, isCelMap, isCelType, isCelUint } from '@bufbuild/cel'
import { base64Encode } from '@verdict/core/internal'

const MAX_RESULT_NODES = 10_000

/**
 * A non-boolean result as plain JSON-like data, for `decide` rules and for error messages:
 * ints become numbers (strings beyond 2^53), bytes stay `Uint8Array`, timestamps ISO strings.
 */
export function toPlain(
  v: CelValue,
  budget = { nodes: MAX_RESULT_NODES },
  bytes: 'keep' | 'base64' = 'keep',
): unknown {
  if (--budget.nodes < 0) throw new Error(`result has more than ${MAX_RESULT_NODES} values`)
  switch (typeof v) {
    case 'bigint':
      return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString()
    case 'object':
      break
    default:
      return v
  }
  if (v === null) return v
  if (v instanceof Uint8Array) return bytes === 'keep' ? v : base64Encode(v)
  if (isCelUint(v)) return toPlain(v.value, budget, bytes)
  if (isCelType(v)) return v.name
  if (isCelList(v)) return Array.from(v, (x) => toPlain(x, budget, bytes))
  if (isCelMap(v)) {
    const out: Record<string, unknown> = Object.create(null)
    for (const [k, x] of v) out[String(isCelUint(k) ? k.value : k)] = toPlain(x, budget, bytes)
    return out
  }
  const m = (v as { message?: { $typeName?: string; seconds?: bigint; nanos?: number } }).message
  if (m?.$typeName === 'google.protobuf.Timestamp') {
    return new Date(Number(m.seconds ?? 0n) * 1000 + Math.floor((m.nanos ?? 0) / 1e6)).toISOString()
  }
  if (m?.$typeName === 'google.protobuf.Duration') return `${m.seconds ?? 0n}s`
  return String(v)
}

/** `toPlain` with bytes as base64 text, so the result serializes as JSON. */
export function toPlainValue(v: CelValue): unknown {
  return toPlain(v, { nodes: MAX_RESULT_NODES }, 'base64')
}
