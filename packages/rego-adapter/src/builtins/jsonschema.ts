/**
 * `json.verify_schema` and `json.match_schema` on ajv (draft-04 through ajv-draft-04, draft-06 and
 * draft-07 through ajv), with ajv's errors rewritten in the shape OPA returns (its vendored
 * gojsonschema): `{"error", "type", "field", "desc"}`, the type names and message templates of
 * gojsonschema's default locale, fields as dotted paths with `(Root)` for the document itself.
 *
 * OPA's behaviour kept: a schema without `$schema` accepts both draft-04 and later forms (boolean
 * `exclusiveMaximum` as well as numeric); `pattern` is not enforced (OPA 1.7.1 accepts any string
 * and any pattern, the parity test checks it); a document or schema given as a string is JSON text.
 * Known differences (docs/rego.md): the order of several errors, the messages of an invalid schema
 * (`verify_schema`'s second element), and the nested errors gojsonschema adds under `contains`.
 */
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv'
import draft06 from 'ajv/dist/refs/json-schema-draft-06.json' with { type: 'json' }
import ajvDraft04 from 'ajv-draft-04'
import ajvFormats from 'ajv-formats'
import type { RegoBuiltin } from '../rego-policy.js'
import { compareUtf8 } from './bytes.js'
import { goJson, isObj, isStr, type Obj } from './scope.js'

const OPTIONS: Options = {
  allErrors: true,
  strict: false,
  multipleOfPrecision: 12,
  validateFormats: true,
  logger: false,
}

type Draft = 4 | 6 | 7

const FULL_TIME = '([01]?[0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]+)?'
const OFFSET = '(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])'

/** A calendar date that exists (Go's time.Parse checks the day against the month). */
function realDate(y: string, m: string, d: string): boolean {
  const date = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)))
  return date.getUTCMonth() === Number(m) - 1 && date.getUTCDate() === Number(d)
}

const ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~\\u0080-\\uffff-]+"
const DOT_ATOM = `${ATOM}(\\.${ATOM})*`
const QUOTED = '"([^"\\\\]|\\\\.)*"'
const ADDR_SPEC = new RegExp(`^(${DOT_ATOM}|${QUOTED})@(${DOT_ATOM}|\\[[^\\[\\]\\\\]*\\])$`)

/** Go's mail.ParseAddress: an addr-spec, or a display name with the address in angle brackets. */
function goMailAddress(s: string): boolean {
  const named = /^[^<>]*<([^<>]*)>$/.exec(s.trim())
  return ADDR_SPEC.test(named === null ? s.trim() : named[1]!)
}

/**
 * Formats where gojsonschema's checks (Go's parsers) and ajv-formats' differ: date-time is Go's
 * RFC 3339 (upper-case `T` and `Z`), time may omit the offset, email is Go's mail.ParseAddress
 * (no dot needed in the domain), uri-reference anything Go's url.Parse accepts.
 */
const GO_FORMATS: Record<string, (s: string) => boolean> = {
  'date-time': (s) => {
    const m = new RegExp(`^([0-9]{4})-([0-9]{2})-([0-9]{2})T${FULL_TIME}${OFFSET}$`).exec(s)
    return m !== null && realDate(m[1]!, m[2]!, m[3]!)
  },
  time: (s) => new RegExp(`^${FULL_TIME}${OFFSET}?$`).test(s),
  email: goMailAddress,
  'uri-reference': (s) =>
    ![...s].some((c) => c.charCodeAt(0) < 0x20 || c === '\u007f') && !/%(?![0-9a-fA-F]{2})/.test(s),
}

function newAjv(draft: Draft): Ajv {
  // Both packages are CommonJS whose module object is the default export and has `.default`.
  const ajv = draft === 4 ? (new ajvDraft04.default(OPTIONS) as unknown as Ajv) : new Ajv(OPTIONS)
  if (draft === 6) ajv.addMetaSchema(draft06)
  ajvFormats.default(ajv)
  for (const [name, check] of Object.entries(GO_FORMATS)) ajv.addFormat(name, check)
  // OPA does not enforce `pattern`.
  ajv.removeKeyword('pattern')
  return ajv
}

/** Which draft a schema asks for; without `$schema`, draft-04 when it uses draft-04 forms. */
function draftOf(schema: unknown): Draft {
  const s = isObj(schema) ? schema.$schema : undefined
  if (isStr(s)) {
    if (s.includes('draft-04')) return 4
    if (s.includes('draft-06')) return 6
    if (s.includes('draft-07')) return 7
  }
  return /"exclusive(Max|Min)imum":(true|false)/.test(goJson(schema)) ? 4 : 7
}

/** `$schema` of an unknown draft, or the draft-04 meta-schema's own URL form, read as given. */
function withoutSchemaKey(schema: unknown, draft: Draft): unknown {
  if (!isObj(schema) || !isStr(schema.$schema)) return schema
  if (draft === 7 && !schema.$schema.includes('draft-07')) {
    const { $schema: _drop, ...rest } = schema
    return rest
  }
  return schema
}

const cache = new Map<string, { fn?: ValidateFunction; error?: string }>()

/** A compiled validator, or the reason the schema is not one. Cached by schema text. */
function compile(schema: unknown): { fn?: ValidateFunction; error?: string } {
  const key = goJson(schema)
  const hit = cache.get(key)
  if (hit !== undefined) return hit
  const draft = draftOf(schema)
  let out: { fn?: ValidateFunction; error?: string }
  const bounds = boundsError(schema)
  if (typeof schema !== 'boolean' && !isObj(schema)) out = { error: 'schema must be an object' }
  else if (bounds !== undefined) out = { error: bounds }
  else
    try {
      out = { fn: newAjv(draft).compile(withoutSchemaKey(schema, draft) as Obj) }
    } catch (e) {
      out = { error: e instanceof Error ? e.message : String(e) }
    }
  if (cache.size >= 64) cache.delete(cache.keys().next().value as string)
  cache.set(key, out)
  return out
}

/** gojsonschema refuses a schema whose minLength or minProperties exceeds its maximum. */
function boundsError(schema: unknown): string | undefined {
  if (Array.isArray(schema)) {
    for (const x of schema) {
      const e = boundsError(x)
      if (e !== undefined) return e
    }
    return undefined
  }
  if (!isObj(schema)) return undefined
  for (const [min, max] of [
    ['minLength', 'maxLength'],
    ['minProperties', 'maxProperties'],
  ] as const) {
    const [a, b] = [schema[min], schema[max]]
    if (typeof a === 'number' && typeof b === 'number' && a > b) return `${min} cannot be greater than ${max}`
  }
  for (const x of Object.values(schema)) {
    const e = boundsError(x)
    if (e !== undefined) return e
  }
  return undefined
}

/**
 * gojsonschema stops validating a value against a schema once its type does not match: drop the
 * other errors ajv reports for that schema and value (its keywords and subschemas).
 */
function afterTypeFailures(errors: readonly ErrorObject[]): ErrorObject[] {
  const failed = errors
    .filter((e) => e.keyword === 'type')
    .map((e) => ({ node: e.schemaPath.slice(0, -'/type'.length), at: e.instancePath }))
  const inside = (e: ErrorObject, f: { node: string; at: string }) =>
    e.schemaPath !== `${f.node}/type` &&
    e.schemaPath.startsWith(`${f.node}/`) &&
    (e.instancePath === f.at || e.instancePath.startsWith(`${f.at}/`))
  return errors.filter((e) => !failed.some((f) => inside(e, f)))
}

interface AllOf {
  readonly allOf: string
  readonly schemaPath: string
}

/**
 * gojsonschema adds an `allOf` error after its members' (ajv reports the members only): one per
 * `allOf` schema and value that failed.
 */
function withAllOf(errors: readonly ErrorObject[]): Array<ErrorObject | AllOf> {
  const out: Array<ErrorObject | AllOf> = []
  const seen = new Set<string>()
  errors.forEach((e, i) => {
    out.push(e)
    const m = /^(.*\/allOf)\/[0-9]+\//.exec(e.schemaPath)
    if (m === null) return
    const key = `${m[1]}\u0000${e.instancePath}`
    const next = errors[i + 1]
    const continues = next?.schemaPath.startsWith(`${m[1]}/`) === true && next.instancePath === e.instancePath
    if (!continues && !seen.has(key)) {
      seen.add(key)
      out.push({ allOf: e.instancePath, schemaPath: m[1]! })
    }
  })
  return out
}

/** A string argument is JSON text; an object is itself. Anything else, or bad JSON, is undefined. */
function operand(x: unknown): { value?: unknown; bad?: true } {
  if (isObj(x)) return { value: x }
  if (!isStr(x)) return { bad: true }
  try {
    return { value: JSON.parse(x) as unknown }
  } catch {
    return { bad: true }
  }
}

/** gojsonschema's name for a value's type. */
function goType(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number'
  return typeof v
}

function unescapePointer(s: string): string {
  return s.replaceAll('~1', '/').replaceAll('~0', '~')
}

function fieldOf(instancePath: string): string {
  if (instancePath === '') return '(Root)'
  return instancePath.slice(1).split('/').map(unescapePointer).join('.')
}

function valueAt(doc: unknown, instancePath: string): unknown {
  let cur = doc
  if (instancePath === '') return cur
  for (const seg of instancePath.slice(1).split('/').map(unescapePointer)) {
    if (Array.isArray(cur)) cur = cur[Number(seg)]
    else if (isObj(cur)) cur = cur[seg]
    else return undefined
  }
  return cur
}

/** A JSON value as gojsonschema writes it in a message (Go's json.Marshal). */
const text = (v: unknown) => goJson(v)
const num = (v: unknown) => (typeof v === 'number' ? String(v) : text(v))

/** One ajv error as gojsonschema's (type, description), or undefined to leave it out. */
function describe(e: ErrorObject, field: string, doc: unknown): [string, string] | undefined {
  const p = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'required':
      return ['required', `${p.missingProperty} is required`]
    case 'type': {
      const expected = String(p.type)
      return [
        'invalid_type',
        `Invalid type. Expected: ${expected.includes(',') ? `[${expected}]` : expected}, given: ${goType(valueAt(doc, e.instancePath))}`,
      ]
    }
    case 'additionalProperties':
      return ['additional_property_not_allowed', `Additional property ${p.additionalProperty} is not allowed`]
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      const c = String(p.comparison)
      const type = { '>=': 'number_gte', '>': 'number_gt', '<=': 'number_lte', '<': 'number_lt' }[c]
      const words = {
        '>=': 'greater than or equal to',
        '>': 'greater than',
        '<=': 'less than or equal to',
        '<': 'less than',
      }[c]
      return type === undefined ? undefined : [type, `Must be ${words} ${num(p.limit)}`]
    }
    case 'minLength':
      return ['string_gte', `String length must be greater than or equal to ${num(p.limit)}`]
    case 'maxLength':
      return ['string_lte', `String length must be less than or equal to ${num(p.limit)}`]
    case 'minItems':
      return ['array_min_items', `Array must have at least ${num(p.limit)} items`]
    case 'maxItems':
      return ['array_max_items', `Array must have at most ${num(p.limit)} items`]
    case 'minProperties':
      return ['array_min_properties', `Must have at least ${num(p.limit)} properties`]
    case 'maxProperties':
      return ['array_max_properties', `Must have at most ${num(p.limit)} properties`]
    case 'uniqueItems': {
      const [i, j] = [Number(p.i), Number(p.j)].sort((a, b) => a - b)
      return ['unique', `array items[${i},${j}] must be unique`]
    }
    case 'additionalItems':
      return ['array_no_additional_items', 'No additional items allowed on array']
    case 'contains':
      return ['contains', 'At least one of the items must match']
    case 'enum': {
      const allowed = (p.allowedValues as unknown[]).map(text).join(', ')
      return ['enum', `${field} must be one of the following: ${allowed}`]
    }
    case 'const':
      return ['const', `${field} does not match: ${text(p.allowedValue)}`]
    case 'multipleOf':
      return ['multiple_of', `Must be a multiple of ${num(p.multipleOf)}`]
    case 'not':
      return ['number_not', 'Must not validate the schema (not)']
    case 'anyOf':
      return ['number_any_of', 'Must validate at least one schema (anyOf)']
    case 'oneOf':
      return ['number_one_of', 'Must validate one and only one schema (oneOf)']
    case 'allOf':
      return ['number_all_of', 'Must validate all the schemas (allOf)']
    case 'dependencies':
      return ['missing_dependency', `Has a dependency on ${p.missingProperty}`]
    case 'propertyNames':
      return ['invalid_property_name', `Property name of "${p.propertyName}" does not match`]
    case 'if':
      return p.failingKeyword === 'then'
        ? ['condition_then', 'Must validate "then" as "if" was valid']
        : ['condition_else', 'Must validate "else" as "if" was not valid']
    case 'format':
      return ['format', `Does not match format '${p.format}'`]
    case 'false schema':
      return ['false', 'False always fails validation']
    default:
      return [e.keyword, e.message ?? e.keyword]
  }
}

/** Where a keyword's errors come in gojsonschema's walk of one schema, by the value's JSON type. */
const RANK_ANY = new Map<string, number>([
  ['type', 0],
  ['anyOf', 1],
  ['oneOf', 2],
  ['allOf', 3],
  ['not', 4],
  ['dependencies', 5],
  ['if', 6],
  ['then', 6],
  ['else', 6],
])
const RANK_BY_TYPE: Record<string, Record<string, number>> = {
  number: {
    multipleOf: 10,
    maximum: 11,
    exclusiveMaximum: 12,
    minimum: 13,
    exclusiveMinimum: 14,
    const: 20,
    enum: 21,
  },
  string: { const: 10, enum: 11, format: 12, minLength: 13, maxLength: 14 },
  array: {
    const: 10,
    enum: 11,
    items: 12,
    additionalItems: 13,
    minItems: 14,
    maxItems: 15,
    uniqueItems: 16,
    contains: 17,
  },
  object: {
    const: 10,
    enum: 11,
    minProperties: 12,
    maxProperties: 13,
    required: 14,
    additionalProperties: 15,
    patternProperties: 16,
    propertyNames: 17,
    properties: 18,
  },
}

type Key = Array<number | string>

/**
 * The position of an error in gojsonschema's output: its schema path walked keyword by keyword
 * (ranked as gojsonschema checks them for the value's type), with property names and item
 * indexes where gojsonschema iterates (properties sorted by name).
 */
function orderKey(e: ErrorObject | AllOf, doc: unknown): Key {
  const segs = e.schemaPath
    .replace(/^#\/?/, '')
    .split('/')
    .filter((x) => x !== '')
  const inst = 'allOf' in e ? e.allOf : e.instancePath
  const instSegs = inst === '' ? [] : inst.slice(1).split('/').map(unescapePointer)
  let value = doc
  let depth = 0
  const key: Key = []
  const descend = () => {
    const name = instSegs[depth++] ?? ''
    value = Array.isArray(value) ? value[Number(name)] : isObj(value) ? value[name] : undefined
    return name
  }
  for (let i = 0; i < segs.length; i++) {
    const kw = segs[i]!
    const type = goType(value) === 'integer' ? 'number' : goType(value)
    key.push(RANK_ANY.get(kw) ?? RANK_BY_TYPE[type]?.[kw] ?? 99)
    if (kw === 'anyOf' || kw === 'oneOf' || kw === 'allOf') {
      if (i + 1 < segs.length) key.push(Number(segs[++i]))
    } else if (kw === 'then' || kw === 'else') key.push(1)
    else if (kw === 'properties' || kw === 'patternProperties') {
      if (i + 1 < segs.length) {
        i++
        key.push(descend())
      }
    } else if (kw === 'items') {
      if (i + 1 < segs.length && /^[0-9]+$/.test(segs[i + 1]!)) i++
      if (i + 1 < segs.length) key.push(Number(descend()))
    } else if ((kw === 'additionalItems' || kw === 'additionalProperties') && i + 1 < segs.length)
      key.push(descend())
    else if (kw === 'propertyNames') {
      const name =
        'allOf' in e
          ? ''
          : String((e.params as { propertyName?: unknown }).propertyName ?? e.propertyName ?? '')
      key.push(name, i + 1 < segs.length ? 1 : 0)
    }
  }
  // gojsonschema writes allOf's own error after its members'.
  if ('allOf' in e) key.push(Number.POSITIVE_INFINITY)
  return key
}

function compareKeys(a: Key, b: Key): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const [x, y] = [a[i]!, b[i]!]
    if (x === y) continue
    if (typeof x === 'number' && typeof y === 'number') return x - y
    return compareUtf8(String(x), String(y))
  }
  return a.length - b.length
}

function matchSchema(document: unknown, schema: unknown): unknown {
  const d = operand(document)
  const s = operand(schema)
  if (d.bad === true || s.bad === true) return undefined
  const c = compile(s.value)
  if (c.fn === undefined) return undefined
  if (c.fn(d.value) === true) return [true, []]
  const out: Obj[] = []
  const keyed = withAllOf(afterTypeFailures(c.fn.errors ?? [])).map((e, i) => ({
    e,
    i,
    key: orderKey(e, d.value),
  }))
  keyed.sort((x, y) => compareKeys(x.key, y.key) || x.i - y.i)
  for (const { e } of keyed) {
    if ('allOf' in e) {
      const field = fieldOf(e.allOf)
      const desc = 'Must validate all the schemas (allOf)'
      out.push({ error: `${field}: ${desc}`, type: 'number_all_of', field, desc })
      continue
    }
    const field = fieldOf(e.instancePath)
    const got = describe(e, field, d.value)
    if (got === undefined) continue
    const [type, desc] = got
    out.push({ error: `${field}: ${desc}`, type, field, desc })
  }
  return [false, out]
}

function verifySchema(schema: unknown): unknown {
  if (isStr(schema)) {
    const s = operand(schema)
    if (s.bad === true) return [false, 'jsonschema: invalid JSON string']
    schema = s.value
  } else if (!isObj(schema)) return undefined
  const c = compile(schema)
  return c.fn !== undefined ? [true, null] : [false, `jsonschema: ${c.error}`]
}

export const jsonSchemaBuiltins: Record<string, RegoBuiltin> = {
  'json.match_schema': matchSchema,
  'json.verify_schema': verifySchema,
}
