/**
 * The official CEL conformance data (`@bufbuild/cel-spec`), run through the adapter's compile
 * step (limits, load-time checks, `default` rewrite, verdict's functions) and evaluation.
 * Sections that need the conformance suite's protobuf message types are left out, and so are
 * single tests that construct or bind such messages. Every failure must be listed with its reason
 * in conformance/known-failures.json; a new failure, or a listed test that passes, fails this test.
 */
import { readFileSync } from 'node:fs'
import { type CelValue, celUint, isCelList, isCelMap, isCelType, isCelUint } from '@bufbuild/cel'
import type { Value } from '@bufbuild/cel-spec/cel/expr/value_pb.js'
import type { IncrementalTestSuite } from '@bufbuild/cel-spec/testdata/tests.js'
import { getConformanceSuite } from '@bufbuild/cel-spec/testdata/tests.js'
import { fromBinary } from '@bufbuild/protobuf'
import { DurationSchema, TimestampSchema } from '@bufbuild/protobuf/wkt'
import { expect, test } from 'vitest'
import { compileCel } from './compile/compile-cel.js'
import { type CelEnvironment, createCelEnvironment } from './compile/environment.js'

/**
 * Sections whose tests need no protobuf message types (proto2, proto2_ext, proto3, enums, wrappers
 * and namespace do), restricted to CEL's core and the extensions verdict enables (strings,
 * encoders, math). Not enabled, so not run: bindings_ext, block_ext, optionals, and macros2
 * (two-variable comprehensions, which @bufbuild/cel does not implement).
 */
const SECTIONS = [
  'basic',
  'comparisons',
  'conversions',
  'dynamic',
  'encoders_ext',
  'fields',
  'fp_math',
  'integer_math',
  'math_ext',
  'lists',
  'logic',
  'macros',
  'parse',
  'plumbing',
  'string',
  'string_ext',
  'timestamps',
  'type_deductions',
]

const TIMESTAMP_URL = 'type.googleapis.com/google.protobuf.Timestamp'
const DURATION_URL = 'type.googleapis.com/google.protobuf.Duration'

class NeedsMessages extends Error {}

/** A conformance `Value` as an input the engine accepts. */
function toInput(v: Value): unknown {
  const k = v.kind
  switch (k.case) {
    case 'nullValue':
      return null
    case 'boolValue':
    case 'stringValue':
    case 'doubleValue':
    case 'int64Value':
    case 'bytesValue':
      return k.value
    case 'uint64Value':
      return celUint(k.value)
    case 'enumValue':
      return BigInt(k.value.value)
    case 'listValue':
      return k.value.values.map(toInput)
    case 'mapValue':
      return new Map(k.value.entries.map((e) => [toInput(e.key!), toInput(e.value!)]))
    default:
      throw new NeedsMessages(k.case ?? 'empty value')
  }
}

function sameNumber(a: number, b: number): boolean {
  return Number.isNaN(a) ? Number.isNaN(b) : a === b
}

/** Exact comparison: type and value, as the conformance suite expects. */
function matches(actual: CelValue, expected: Value): boolean {
  const k = expected.kind
  switch (k.case) {
    case 'nullValue':
      return actual === null
    case 'boolValue':
    case 'stringValue':
      return actual === k.value
    case 'int64Value':
      return typeof actual === 'bigint' && actual === k.value
    case 'uint64Value':
      return isCelUint(actual) && actual.value === k.value
    case 'enumValue':
      return typeof actual === 'bigint' && actual === BigInt(k.value.value)
    case 'doubleValue':
      return typeof actual === 'number' && sameNumber(actual, k.value)
    case 'bytesValue':
      return actual instanceof Uint8Array && Buffer.from(actual).equals(Buffer.from(k.value))
    case 'typeValue':
      return isCelType(actual) && actual.name === k.value
    case 'listValue': {
      if (!isCelList(actual) || actual.size !== k.value.values.length) return false
      return k.value.values.every((e, i) => matches(actual.get(i)!, e))
    }
    case 'mapValue': {
      if (!isCelMap(actual) || actual.size !== k.value.entries.length) return false
      return k.value.entries.every((e) => {
        const got = actual.get(toInput(e.key!) as string)
        return got !== undefined && matches(got, e.value!)
      })
    }
    case 'objectValue': {
      const schema =
        k.value.typeUrl === TIMESTAMP_URL
          ? TimestampSchema
          : k.value.typeUrl === DURATION_URL
            ? DurationSchema
            : undefined
      if (schema === undefined) throw new NeedsMessages(k.value.typeUrl)
      const want = fromBinary(schema, k.value.value)
      const got = (actual as { message?: { $typeName?: string; seconds?: bigint; nanos?: number } })?.message
      return got?.$typeName === want.$typeName && got.seconds === want.seconds && got.nanos === want.nanos
    }
    default:
      return false
  }
}

type Outcome = 'pass' | 'excluded' | 'checked' | string

const envs = new Map<string, CelEnvironment>()

function environment(names: string[]): CelEnvironment {
  const key = names.sort().join(',')
  let env = envs.get(key)
  if (env === undefined) {
    env = createCelEnvironment(names)
    envs.set(key, env)
  }
  return env
}

function run(t: IncrementalTestSuite['tests'][number]): Outcome {
  const o = t.original
  if (o.checkOnly || o.container !== '' || /TestAllTypes|cel\.expr\.conformance/.test(o.expr))
    return 'excluded'
  const m = o.resultMatcher
  if (m.case === 'unknown' || m.case === 'anyUnknowns') return 'excluded'
  const bindings: Record<string, unknown> = {}
  try {
    for (const [name, ev] of Object.entries(o.bindings)) {
      if (ev.kind.case !== 'value') return 'excluded'
      bindings[name] = toInput(ev.kind.value)
    }
  } catch (e) {
    if (e instanceof NeedsMessages) return 'excluded'
    throw e
  }
  const names = o.typeEnv.filter((d) => d.declKind.case === 'ident').map((d) => d.name)
  const compiled = compileCel(o.expr, environment([...names, ...Object.keys(bindings)]))
  const wantsError = m.case === 'evalError' || m.case === 'anyEvalErrors'
  if (!compiled.ok) {
    if (wantsError) return 'pass'
    // Tests marked disableCheck evaluate expressions a checker rejects (`x || true` with `x`
    // undeclared); verdict rejects unknown names at load by design, so they do not apply.
    const byDesign = (p: { code: string }) =>
      p.code === 'cel_unknown_variable' || p.code === 'cel_unknown_function'
    if (o.disableCheck && compiled.problems.every(byDesign)) return 'checked'
    return `load error: ${compiled.problems[0]!.message}`
  }
  const r = compiled.expression.run(bindings)
  if (wantsError) return r.ok ? 'expected an error, got a value' : 'pass'
  if (!r.ok) return `error: ${r.error}`
  const expected: Value | undefined =
    m.case === 'value' ? m.value : m.case === 'typedResult' ? m.value.result : undefined
  try {
    if (expected === undefined) return r.value === true ? 'pass' : 'expected true'
    return matches(r.value, expected) ? 'pass' : 'wrong value'
  } catch (e) {
    if (e instanceof NeedsMessages) return 'excluded'
    throw e
  }
}

function collect(suite: IncrementalTestSuite, prefix: string, out: Map<string, Outcome>): void {
  for (const t of suite.tests) {
    let name = `${prefix}/${t.name}`
    for (let n = 2; out.has(name); n++) name = `${prefix}/${t.name} #${n}`
    out.set(name, run(t))
  }
  for (const s of suite.suites) collect(s, `${prefix}/${s.name}`, out)
}

const known: Record<string, string> = JSON.parse(
  readFileSync(new URL('../conformance/known-failures.json', import.meta.url), 'utf8'),
)

test('cel-spec conformance: at least 99% pass and every failure is a known one', () => {
  const results = new Map<string, Outcome>()
  const root = getConformanceSuite()
  for (const name of SECTIONS) {
    const section = root.suites.find((s) => s.name === name)
    expect(section, `section ${name}`).toBeDefined()
    collect(section!, name, results)
  }
  const ran = [...results].filter(([, o]) => o !== 'excluded' && o !== 'checked')
  const checked = [...results].filter(([, o]) => o === 'checked').length
  const failed = ran.filter(([, o]) => o !== 'pass')
  const rate = (ran.length - failed.length) / ran.length
  console.log(
    `cel-spec conformance: ${ran.length - failed.length}/${ran.length} pass (${(rate * 100).toFixed(1)}%), ` +
      `${results.size - ran.length - checked} excluded (protobuf message types), ` +
      `${checked} not applicable (unchecked evaluation), ${failed.length} known failures`,
  )
  const newFailures = failed.filter(([name]) => known[name] === undefined).map(([n, o]) => `${n}: ${o}`)
  const nowPassing = Object.keys(known).filter((name) => results.get(name) === 'pass')
  const unknownNames = Object.keys(known).filter((name) => !results.has(name))
  expect(newFailures, 'new failures (fix them or list them with a reason)').toEqual([])
  expect(nowPassing, 'listed failures that now pass (remove them from the list)').toEqual([])
  expect(unknownNames, 'listed failures that no longer exist').toEqual([])
  expect(ran.length).toBeGreaterThan(1000)
  expect(rate).toBeGreaterThanOrEqual(0.99)
})
