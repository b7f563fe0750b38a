/**
 * google.protobuf.Struct <-> plain JSON. Filter metadata arrives as a Struct and must be plain JSON
 * before any policy sees it; dynamic metadata leaves as one.
 */

/** A Struct as proto-loader decodes it (`{fields: {name: Value}}`). */
export interface StructMessage {
  fields?: Record<string, ValueMessage>
}

/** A Value: exactly one of its members is set (none means null). */
export interface ValueMessage {
  nullValue?: string | number
  numberValue?: number
  stringValue?: string
  boolValue?: boolean
  structValue?: StructMessage
  listValue?: { values?: ValueMessage[] }
}

/** Thrown when a Struct nests deeper than allowed; callers turn it into a malformed-input denial. */
export class StructTooDeep extends Error {
  override readonly name = 'StructTooDeep'
}

/** Deepest Struct accepted or produced. JSON bodies get the same default limit in core. */
export const MAX_STRUCT_DEPTH = 64

function setKey(o: Record<string, unknown>, k: string, v: unknown): void {
  // A `__proto__` key must stay data, as JSON.parse keeps it, never become the prototype.
  if (k === '__proto__')
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
  else o[k] = v
}

function valueToJson(v: ValueMessage | null | undefined, depth: number): unknown {
  if (v === null || v === undefined) return null
  if (v.stringValue !== undefined) return v.stringValue
  if (v.numberValue !== undefined) return v.numberValue
  if (v.boolValue !== undefined) return v.boolValue
  if (v.structValue !== undefined) return structToJson(v.structValue, depth + 1)
  if (v.listValue !== undefined) {
    if (depth + 1 > MAX_STRUCT_DEPTH)
      throw new StructTooDeep(`metadata nested deeper than ${MAX_STRUCT_DEPTH}`)
    const values = v.listValue.values ?? []
    return values.map((x) => valueToJson(x, depth + 1))
  }
  return null
}

/**
 * A decoded Struct as a plain JSON object.
 *
 * @example
 * ```ts
 * structToJson({ fields: { sub: { stringValue: 'alice' } } }) // { sub: 'alice' }
 * ```
 */
export function structToJson(s: StructMessage | null | undefined, depth = 1): Record<string, unknown> {
  if (depth > MAX_STRUCT_DEPTH) throw new StructTooDeep(`metadata nested deeper than ${MAX_STRUCT_DEPTH}`)
  const out: Record<string, unknown> = {}
  const fields = s?.fields
  if (fields === undefined || fields === null) return out
  for (const k of Object.keys(fields)) setKey(out, k, valueToJson(fields[k], depth))
  return out
}

function jsonToValue(v: unknown, depth: number): ValueMessage | undefined {
  switch (typeof v) {
    case 'string':
      return { stringValue: v }
    case 'number':
      return Number.isFinite(v) ? { numberValue: v } : { stringValue: String(v) }
    case 'boolean':
      return { boolValue: v }
    case 'bigint':
      return { stringValue: v.toString() }
    case 'object': {
      if (v === null) return { nullValue: 'NULL_VALUE' }
      if (depth >= MAX_STRUCT_DEPTH) return { nullValue: 'NULL_VALUE' }
      if (Array.isArray(v)) {
        const values: ValueMessage[] = []
        for (const x of v) values.push(jsonToValue(x, depth + 1) ?? { nullValue: 'NULL_VALUE' })
        return { listValue: { values } }
      }
      return { structValue: jsonToStruct(v as Record<string, unknown>, depth + 1) }
    }
    default:
      // undefined, functions and symbols have no JSON form: the key is left out.
      return undefined
  }
}

/** A plain JSON object as a Struct message (values nested past the depth limit become null). */
export function jsonToStruct(o: Readonly<Record<string, unknown>>, depth = 1): StructMessage {
  const fields: Record<string, ValueMessage> = {}
  for (const k of Object.keys(o)) {
    const v = jsonToValue(o[k], depth)
    if (v !== undefined) setKey(fields, k, v)
  }
  return { fields }
}
