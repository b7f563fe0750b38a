/**
 * The environment expressions compile against: CEL's standard library, the strings extension,
 * verdict's functions, the declared variable names, the limits, and the caches shared by every
 * expression of one evaluator.
 */
import { type CelEnv, CelScalar, celEnv, celFunc } from '@bufbuild/cel'
import { STRINGS_EXTENSION, VERDICT_FUNCTIONS } from '../functions.js'
import { createRegexCache, type RegexEngine } from '../regex-cache.js'
import type { CompileOutcome } from './compile-cel.js'
import { type CelLimits, DEFAULT_CEL_LIMITS } from './limits.js'

/** The functions, variable names and limits expressions compile against. */
export interface CelEnvironment {
  readonly limits: CelLimits
  readonly variables: ReadonlySet<string>
  /** @internal */
  readonly env: CelEnv
  /** @internal */
  readonly regex: RegexEngine
  /** @internal qualified names (types, enum values) that resolve without variables */
  readonly constants: Map<string, boolean>
  /** @internal compile results by source, so reloading a policy re-parses only what changed */
  readonly compiled: Map<string, CompileOutcome>
  /** @internal constant string lists used with `in`, as sets (see `IN_SET_FUNCTION`) */
  readonly constSets: ConstSets
}

/** Sets of literal strings for `x in [...]`, deduplicated by content so reloads do not pile up. */
export interface ConstSets {
  readonly list: Array<ReadonlySet<string>>
  readonly byKey: Map<string, number>
}

/**
 * Internal function that `x in ["a", "b", ...]` becomes when the list is literal strings: a set
 * lookup instead of building and scanning the list on every evaluation (flat from 10 to 10k
 * entries). A name starting with `@` cannot be written in an expression.
 */
export const IN_SET_FUNCTION = '@verdict_in_set'

/**
 * Create an environment declaring `variables`, with CEL's standard library, the strings extension,
 * verdict's functions and the given limits.
 */
export function createCelEnvironment(
  variables: Iterable<string>,
  limits: Partial<CelLimits> = {},
): CelEnvironment {
  const l: CelLimits = { ...DEFAULT_CEL_LIMITS, ...definedOnly(limits) }
  const regex = createRegexCache(l.regexCacheSize, l.maxRegexLength, l.maxRegexTextLength)
  const constSets: ConstSets = { list: [], byKey: new Map() }
  // Heterogeneous equality: a value that is not a string is in no list of strings.
  const inSet = celFunc(IN_SET_FUNCTION, [CelScalar.DYN, CelScalar.INT], CelScalar.BOOL, (x, i) => {
    return typeof x === 'string' && constSets.list[Number(i)]!.has(x)
  })
  const env = celEnv({ funcs: [...STRINGS_EXTENSION, ...VERDICT_FUNCTIONS, inSet], re2: regex })
  return {
    limits: l,
    variables: new Set(variables),
    env,
    regex,
    constants: new Map(),
    compiled: new Map(),
    constSets,
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {}
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v
  return out
}
