/**
 * Compile one CEL expression on `@bufbuild/cel`: parse, enforce the size and nesting limits, reject
 * unknown variables and functions (the engine has no type checker, so this walk is what finds
 * them at load time), rewrite `default(...)`, check regex literals, then plan it once.
 *
 * This is the only file besides `functions.ts` that knows which CEL engine runs underneath.
 */
import {
  type CelEnv,
  CelScalar,
  type CelValue,
  celEnv,
  celFunc,
  isCelError,
  parse,
  plan,
} from '@bufbuild/cel'
import {
  type Expr,
  type Expr_Call,
  Expr_CallSchema,
  Expr_ComprehensionSchema,
  Expr_CreateListSchema,
  ExprSchema,
  type ParsedExpr,
} from '@bufbuild/cel-spec/cel/expr/syntax_pb.js'
import { create } from '@bufbuild/protobuf'
import { NullValue } from '@bufbuild/protobuf/wkt'
import { MAP_PUT, NEW_MAP } from './agentgateway.js'
import { typeProblems } from './check-types.js'
import { compileFast, type FastProgram } from './fast-path.js'
import { STRINGS_EXTENSION, VERDICT_FUNCTIONS } from './functions.js'
import { headerReads } from './header-reads.js'
import { createRegexCache, type RegexEngine } from './regex-cache.js'
import { diagnoseSyntax, plainParserMessage } from './syntax-message.js'
import { withBudget } from './value-view.js'
import { VARIABLES_BINDING } from './variables.js'

/** Load-time and run-time limits of CEL expressions. */
export interface CelLimits {
  /** Longest expression accepted, in UTF-16 code units (default 16,384). */
  readonly maxExpressionLength: number
  /** Deepest syntax tree accepted (default 64). */
  readonly maxDepth: number
  /** Most comprehensions (`all`, `exists`, `map`, ...) nested inside each other (default 3). */
  readonly maxComprehensionDepth: number
  /** Most input elements one evaluation may iterate over, summed over comprehensions (default 1,000,000). */
  readonly maxIterations: number
  /** Compiled regular expressions kept (default 256). */
  readonly regexCacheSize: number
  /** Longest regular expression accepted (default 1,024). */
  readonly maxRegexLength: number
  /** Longest text a regular expression is run on (default 262,144 characters). */
  readonly maxRegexTextLength: number
}

export const DEFAULT_CEL_LIMITS: CelLimits = Object.freeze({
  maxExpressionLength: 16_384,
  maxDepth: 64,
  maxComprehensionDepth: 3,
  maxIterations: 1_000_000,
  regexCacheSize: 256,
  maxRegexLength: 1_024,
  maxRegexTextLength: 262_144,
})

/** Stable codes of CEL load-time problems. */
export type CelProblemCode =
  | 'cel_syntax'
  | 'cel_unknown_variable'
  | 'cel_unknown_function'
  | 'cel_limit'
  | 'cel_regex'
  | 'cel_unavailable_variable'
  | 'cel_type'

/** One problem in an expression; `line`/`column` are 1-based, inside the expression. */
export interface CelProblem {
  readonly code: CelProblemCode
  readonly message: string
  readonly line: number
  readonly column: number
}

/** Result of running a compiled expression. Errors carry `line:column:` of the failing part. */
export type CelRunResult =
  | { readonly ok: true; readonly value: CelValue }
  | { readonly ok: false; readonly error: string }

/** A compiled expression. */
export interface CompiledExpression {
  readonly source: string
  /** The declared variables the expression reads, in first-use order. */
  readonly variables: readonly string[]
  /** Headers read as one value, or `'all'` (see header-reads.ts). */
  readonly headerReads: readonly string[] | 'all'

  /** Evaluate with `bindings[name]` for each variable; an absent binding is an absent variable. */
  run(bindings: object): CelRunResult
  /**
   * @internal The direct evaluator over a request (fast-path.ts), when the expression's shape
   * allows one: a boolean, or undefined when `run` must answer.
   */
  readonly fast: FastProgram | undefined
}

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
interface ConstSets {
  readonly list: Array<ReadonlySet<string>>
  readonly byKey: Map<string, number>
}

/**
 * Internal function that `x in ["a", "b", ...]` becomes when the list is literal strings: a set
 * lookup instead of building and scanning the list on every evaluation (flat from 10 to 10k
 * entries). A name starting with `@` cannot be written in an expression.
 */
const IN_SET_FUNCTION = '@verdict_in_set'
/** Shorter literal lists stay as they are: scanning a few strings is as fast as hashing. */
const IN_SET_MIN_ELEMENTS = 4

type CompileOutcome = { ok: true; expression: CompiledExpression } | { ok: false; problems: CelProblem[] }

const COMPILE_CACHE_MAX = 10_000

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

/**
 * agentgateway variables that have no value when a request is authorized, with the reason: using
 * one is a load problem (`cel_unavailable_variable`), not an expression that fails on every request.
 */
export const UNAVAILABLE_VARIABLES: ReadonlyMap<string, string> = new Map([
  ['response', 'response-time data: agentgateway evaluates it after the upstream answers'],
  ['llm', 'LLM routing data: agentgateway fills it only for its own AI backends'],
  ['llmRequest', "LLM routing data: the raw LLM request, only inside agentgateway's LLM policies"],
  ['backend', 'LLM and backend routing data: the backend agentgateway selected'],
  ['extproc', "metadata of agentgateway's ext_proc filters, which run around the upstream call"],
  ['extauthz', 'metadata returned by an external authorizer to agentgateway (verdict is the authorizer)'],
  ['mcpGuardrails', "metadata of agentgateway's MCP guardrail processors"],
  ['proxy', "agentgateway's gateway, listener and route names and timings"],
  ['env', "agentgateway's pod and gateway names"],
])

/** Fields of available variables that only exist after the response. */
const UNAVAILABLE_FIELDS: ReadonlyMap<string, string> = new Map([
  ['request.endTime', 'response-time data: the time the request completed'],
])

/** Variables that are absent rather than failing: `jwt == null` is true without a token. */
const NULLABLE_VARIABLES = new Set([
  'jwt',
  'apiKey',
  'basicAuth',
  'mcp',
  'source',
  'destination',
  'metadata',
  'context',
  'request',
])

/** agentgateway's functions that take an expression, with their arity. */
const MACROS = new Set(['with', 'mapValues', 'filterKeys'])

/** Calls the planner implements itself instead of looking them up as functions. */
const PLANNER_CALLS = new Set([
  '_&&_',
  '_||_',
  '_?_:_',
  '_[_]',
  '_[?_]',
  '_?._',
  '@not_strictly_false',
  '__not_strictly_false__',
])

/** Offsets of line starts, for turning an offset into line and column. */
function lineStarts(s: string): number[] {
  const starts = [0]
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 10) starts.push(i + 1)
  return starts
}

function lineColumn(starts: readonly number[], offset: number): { line: number; column: number } {
  let lo = 0
  let hi = starts.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (starts[mid]! <= offset) lo = mid
    else hi = mid - 1
  }
  return { line: lo + 1, column: offset - starts[lo]! + 1 }
}

/** Dotted name of an identifier or a chain of field selections (`google.protobuf.Timestamp`). */
function qualifiedName(e: Expr | undefined): string | undefined {
  if (e === undefined) return undefined
  const k = e.exprKind
  if (k.case === 'identExpr') return k.value.name
  if (k.case === 'selectExpr' && !k.value.testOnly) {
    const parent = qualifiedName(k.value.operand)
    return parent === undefined ? undefined : `${parent}.${k.value.field}`
  }
  return undefined
}

class Checker {
  readonly problems: CelProblem[] = []
  readonly roots: string[] = []
  private nextId: bigint
  private depthReported = false

  constructor(
    private readonly cenv: CelEnvironment,
    private readonly parsed: ParsedExpr,
    private readonly starts: readonly number[],
  ) {
    let max = 0n
    for (const k of Object.keys(parsed.sourceInfo?.positions ?? {})) if (BigInt(k) > max) max = BigInt(k)
    this.nextId = max + 1n
  }

  private at(e: Expr): { line: number; column: number } {
    const off = this.parsed.sourceInfo?.positions[String(e.id)] ?? 0
    return lineColumn(this.starts, off)
  }

  private report(code: CelProblemCode, e: Expr, what: string): void {
    const { line, column } = this.at(e)
    this.problems.push({ code, message: `${line}:${column}: ${what}`, line, column })
  }

  private unavailable(e: Expr, name: string, why: string): void {
    this.report('cel_unavailable_variable', e, `'${name}' is not available at authorization time: ${why}`)
  }

  private isConstant(name: string): boolean {
    let known = this.cenv.constants.get(name)
    if (known === undefined) {
      try {
        known = !isCelError(plan(this.cenv.env, parse(name))())
      } catch {
        known = false
      }
      this.cenv.constants.set(name, known)
    }
    return known
  }

  private useRoot(name: string): void {
    if (!this.roots.includes(name)) this.roots.push(name)
  }

  /** An identifier that is neither a variable nor a comprehension variable. */
  private unknownIdent(name: string, scope: ReadonlySet<string>): boolean {
    return !scope.has(name) && !this.cenv.variables.has(name)
  }

  visit(e: Expr | undefined, scope: ReadonlySet<string>, depth: number, comprehensions: number): void {
    if (e === undefined) return
    if (depth > this.cenv.limits.maxDepth) {
      if (!this.depthReported) {
        this.depthReported = true
        this.report('cel_limit', e, `expression is nested deeper than ${this.cenv.limits.maxDepth}`)
      }
      return
    }
    const d = depth + 1
    const k = e.exprKind
    switch (k.case) {
      case 'identExpr': {
        const name = k.value.name
        if (scope.has(name)) return
        if (this.cenv.variables.has(name)) this.useRoot(name)
        else if (UNAVAILABLE_VARIABLES.has(name)) this.unavailable(e, name, UNAVAILABLE_VARIABLES.get(name)!)
        else if (!this.isConstant(name)) this.report('cel_unknown_variable', e, `unknown variable '${name}'`)
        return
      }
      case 'selectExpr': {
        const q = qualifiedName(e)
        const root = q?.split('.')[0]
        if (q !== undefined && root !== undefined && !scope.has(root)) {
          const why = UNAVAILABLE_FIELDS.get(q)
          if (why !== undefined) {
            this.unavailable(e, q, why)
            return
          }
        }
        if (q !== undefined && root !== undefined && this.unknownIdent(root, scope)) {
          // A variable with a dotted name (`a.b`), or a qualified constant such as
          // `google.protobuf.Timestamp` or an enum value.
          const parts = q.split('.')
          for (let n = parts.length; n > 1; n--) {
            const name = parts.slice(0, n).join('.')
            if (this.cenv.variables.has(name)) {
              this.useRoot(name)
              return
            }
            if (this.isConstant(name)) return
          }
        }
        this.visit(k.value.operand, scope, d, comprehensions)
        return
      }
      case 'callExpr':
        this.visitCall(e, k.value, scope, d, comprehensions)
        return
      case 'listExpr':
        for (const x of k.value.elements) this.visit(x, scope, d, comprehensions)
        return
      case 'structExpr':
        for (const entry of k.value.entries) {
          if (entry.keyKind.case === 'mapKey') this.visit(entry.keyKind.value, scope, d, comprehensions)
          this.visit(entry.value, scope, d, comprehensions)
        }
        return
      case 'comprehensionExpr': {
        const c = k.value
        if (comprehensions + 1 > this.cenv.limits.maxComprehensionDepth) {
          this.report(
            'cel_limit',
            e,
            `comprehensions nested deeper than ${this.cenv.limits.maxComprehensionDepth}`,
          )
          return
        }
        this.visit(c.iterRange, scope, d, comprehensions)
        this.visit(c.accuInit, scope, d, comprehensions)
        const inner = new Set(scope).add(c.iterVar).add(c.accuVar)
        if (c.iterVar2 !== '') inner.add(c.iterVar2)
        this.visit(c.loopCondition, inner, d, comprehensions + 1)
        this.visit(c.loopStep, inner, d, comprehensions + 1)
        this.visit(c.result, new Set(scope).add(c.accuVar), d, comprehensions + 1)
        return
      }
      default:
        return
    }
  }

  private visitCall(e: Expr, call: Expr_Call, scope: ReadonlySet<string>, d: number, comp: number): void {
    const fn = call.function
    if (MACROS.has(fn) && call.target !== undefined) {
      this.visitMacro(e, call, scope, d, comp)
      return
    }
    if (fn === 'variables' && call.target === undefined && call.args.length === 0) {
      e.exprKind = { case: 'identExpr', value: { $typeName: 'cel.expr.Expr.Ident', name: VARIABLES_BINDING } }
      return
    }
    for (const a of call.args) this.visit(a, scope, d, comp)
    if (
      fn === 'coalesce' &&
      call.target === undefined &&
      this.cenv.env.funcs.find('coalesce') === undefined
    ) {
      if (call.args.length === 0)
        this.report('cel_unknown_function', e, 'coalesce() takes at least one argument')
      else this.rewriteCoalesce(e, call.args)
      return
    }
    if ((fn === '_==_' || fn === '_!=_') && call.args.length === 2 && this.rewriteNullCompare(e, call, scope))
      return
    if (PLANNER_CALLS.has(fn)) {
      this.visit(call.target, scope, d, comp)
      return
    }
    const funcs = this.cenv.env.funcs
    if (call.target !== undefined) {
      // `base64.encode(x)`: a function in a namespace, not a method on a variable `base64`.
      const q = qualifiedName(call.target)
      const root = q?.split('.')[0]
      if (q !== undefined && root !== undefined && this.unknownIdent(root, scope)) {
        if (funcs.find(`${q}.${fn}`) !== undefined) {
          this.checkArity(e, `${q}.${fn}`, false, call)
          return
        }
        if (funcs.find(fn) === undefined) {
          this.report('cel_unknown_function', e, `unknown function '${q}.${fn}'`)
          return
        }
      }
      this.visit(call.target, scope, d, comp)
    } else if (fn === 'default' && call.args.length === 2 && funcs.find('default') === undefined) {
      this.rewriteDefault(e, call)
      return
    } else if (fn === '@in' && call.args.length === 2 && this.rewriteInConstantList(e, call)) {
      return
    }
    if (funcs.find(fn) === undefined) {
      const hint = fn === 'has' ? ' (has() takes a field selection such as has(jwt.sub))' : ''
      this.report('cel_unknown_function', e, `unknown function '${fn}'${hint}`)
      return
    }
    this.checkArity(e, fn, call.target !== undefined, call)
    if (fn === 'matches') this.checkRegex(call)
  }

  private checkArity(e: Expr, name: string, method: boolean, call: Expr_Call): void {
    const group = this.cenv.env.funcs.find(name)
    if (group === undefined) return
    for (const f of group) {
      if ((f.target !== undefined) === method && f.arguments.length === call.args.length) return
    }
    const kind = method ? 'method' : 'function'
    const n = call.args.length
    this.report('cel_unknown_function', e, `no ${kind} '${name}' takes ${n} argument${n === 1 ? '' : 's'}`)
  }

  /** A literal pattern is compiled now, so a bad one fails the load, not every request. */
  private checkRegex(call: Expr_Call): void {
    const arg = call.args[call.args.length - 1]
    const k = arg?.exprKind
    if (arg === undefined || k?.case !== 'constExpr' || k.value.constantKind.case !== 'stringValue') return
    try {
      this.cenv.regex.compile(k.value.constantKind.value)
    } catch (err) {
      this.report('cel_regex', arg, `invalid regular expression: ${(err as Error).message}`)
    }
  }

  private node(e: Expr, exprKind: Expr['exprKind']): Expr {
    const id = this.nextId++
    const positions = this.parsed.sourceInfo?.positions
    if (positions !== undefined) positions[String(id)] = positions[String(e.id)] ?? 0
    return create(ExprSchema, { id, exprKind })
  }

  /** `x in [literal strings]` becomes `@verdict_in_set(x, <set index>)`; false when not applicable. */
  private rewriteInConstantList(e: Expr, call: Expr_Call): boolean {
    const list = call.args[1]?.exprKind
    if (list?.case !== 'listExpr' || list.value.optionalIndices.length > 0) return false
    const elements = list.value.elements
    if (elements.length < IN_SET_MIN_ELEMENTS) return false
    const values: string[] = []
    for (const el of elements) {
      const k = el.exprKind
      if (k.case !== 'constExpr' || k.value.constantKind.case !== 'stringValue') return false
      values.push(k.value.constantKind.value)
    }
    const sets = this.cenv.constSets
    const key = JSON.stringify(values)
    let index = sets.byKey.get(key)
    if (index === undefined) {
      index = sets.list.push(new Set(values)) - 1
      sets.byKey.set(key, index)
    }
    const indexConst = this.node(e, {
      case: 'constExpr',
      value: {
        $typeName: 'cel.expr.Constant',
        constantKind: { case: 'int64Value', value: BigInt(index) },
      },
    })
    e.exprKind = {
      case: 'callExpr',
      value: create(Expr_CallSchema, { function: IN_SET_FUNCTION, args: [call.args[0]!, indexConst] }),
    }
    return true
  }

  private ident(e: Expr, name: string): Expr {
    return this.node(e, { case: 'identExpr', value: { $typeName: 'cel.expr.Expr.Ident', name } })
  }

  private call(e: Expr, fn: string, args: Expr[], target?: Expr): Expr {
    return this.node(e, { case: 'callExpr', value: create(Expr_CallSchema, { function: fn, args, target }) })
  }

  private constant(
    e: Expr,
    constantKind: { case: 'nullValue'; value: NullValue } | { case: 'boolValue'; value: boolean },
  ): Expr {
    return this.node(e, { case: 'constExpr', value: { $typeName: 'cel.expr.Constant', constantKind } })
  }

  /**
   * A comprehension that runs `result` once with `name` bound to `value` (cel-go's `cel.bind`):
   * no elements, so the accumulator is the value.
   */
  private bind(e: Expr, name: string, value: Expr, result: Expr): Expr {
    const empty = this.node(e, { case: 'listExpr', value: create(Expr_CreateListSchema, {}) })
    return this.node(e, {
      case: 'comprehensionExpr',
      value: create(Expr_ComprehensionSchema, {
        iterVar: '@unused',
        iterRange: empty,
        accuVar: name,
        accuInit: value,
        loopCondition: this.constant(e, { case: 'boolValue', value: false }),
        loopStep: this.ident(e, name),
        result,
      }),
    })
  }

  /**
   * agentgateway's `x.with(name, expr)`, `m.mapValues(v, expr)` and `m.filterKeys(k, expr)`: the
   * second argument is evaluated with the first bound, so they are rewritten into comprehensions.
   */
  private visitMacro(e: Expr, call: Expr_Call, scope: ReadonlySet<string>, d: number, comp: number): void {
    const fn = call.function
    const [id, body] = call.args
    const name = id?.exprKind.case === 'identExpr' ? id.exprKind.value.name : undefined
    if (call.args.length !== 2 || name === undefined) {
      this.report(
        'cel_unknown_function',
        e,
        `${fn}() takes a variable name and an expression, as in x.${fn}(v, v...)`,
      )
      return
    }
    const target = call.target!
    this.visit(target, scope, d, comp)
    // `with` runs its expression once; the map functions once per entry, as a comprehension does.
    const inner = fn === 'with' ? comp : comp + 1
    if (inner > this.cenv.limits.maxComprehensionDepth) {
      this.report(
        'cel_limit',
        e,
        `comprehensions nested deeper than ${this.cenv.limits.maxComprehensionDepth}`,
      )
      return
    }
    this.visit(body, new Set(scope).add(name), d, inner)
    if (fn === 'with') {
      e.exprKind = this.bind(e, name, target, body!).exprKind
      return
    }
    // m.mapValues(v, E): with m as @m, for each key @k: put(@acc, @k, with @m[@k] as v: E)
    // m.filterKeys(k, E): with m as @m, for each key @k: (with @k as k: E) ? put(@acc, @k, @m[@k]) : @acc
    const m = '@m'
    const k = '@k'
    const acc = '@acc'
    const entry = () => this.call(e, '_[_]', [this.ident(e, m), this.ident(e, k)])
    const step =
      fn === 'mapValues'
        ? this.call(e, MAP_PUT, [this.ident(e, acc), this.ident(e, k), this.bind(e, name, entry(), body!)])
        : this.call(e, '_?_:_', [
            this.bind(e, name, this.ident(e, k), body!),
            this.call(e, MAP_PUT, [this.ident(e, acc), this.ident(e, k), entry()]),
            this.ident(e, acc),
          ])
    const loop = this.node(e, {
      case: 'comprehensionExpr',
      value: create(Expr_ComprehensionSchema, {
        iterVar: k,
        iterRange: this.ident(e, m),
        accuVar: acc,
        accuInit: this.call(e, NEW_MAP, []),
        loopCondition: this.constant(e, { case: 'boolValue', value: true }),
        loopStep: step,
        result: this.ident(e, acc),
      }),
    })
    e.exprKind = this.bind(e, m, target, loop).exprKind
  }

  /**
   * `coalesce(a, b, ..., z)`: the first argument that is neither null nor an error; when every one
   * is, null if one of them was null, else the error. Rewritten into conditionals, as `default`.
   */
  private rewriteCoalesce(e: Expr, args: readonly Expr[]): void {
    const nullOrError = (x: Expr) =>
      this.call(e, '@not_strictly_false', [
        this.call(e, '_==_', [x, this.constant(e, { case: 'nullValue', value: NullValue.NULL_VALUE })]),
      ])
    const last = args[args.length - 1]!
    // After the last argument: null when an earlier one was null, else the last one's outcome.
    let tail: Expr = last
    if (args.length > 1) {
      const earlierNull = args
        .slice(0, -1)
        .map((x) =>
          this.call(e, '_==_', [x, this.constant(e, { case: 'nullValue', value: NullValue.NULL_VALUE })]),
        )
        .reduce((l, r) => this.call(e, '_||_', [l, r]))
      tail = this.call(e, '_?_:_', [
        nullOrError(last),
        this.call(e, '_?_:_', [
          earlierNull,
          this.constant(e, { case: 'nullValue', value: NullValue.NULL_VALUE }),
          last,
        ]),
        last,
      ])
    }
    let out = tail
    for (let i = args.length - 2; i >= 0; i--) {
      out = this.call(e, '_?_:_', [nullOrError(args[i]!), out, args[i]!])
    }
    e.exprKind = out.exprKind
  }

  /**
   * `jwt == null` (or `mcp`, ...): agentgateway leaves a variable out when the request has none, so
   * comparing it with null is true then; the absent variable's error counts as null.
   */
  private rewriteNullCompare(e: Expr, call: Expr_Call, scope: ReadonlySet<string>): boolean {
    const [a, b] = call.args as [Expr, Expr]
    const isNull = (x: Expr) =>
      x.exprKind.case === 'constExpr' && x.exprKind.value.constantKind.case === 'nullValue'
    const isVar = (x: Expr) =>
      x.exprKind.case === 'identExpr' &&
      NULLABLE_VARIABLES.has(x.exprKind.value.name) &&
      !scope.has(x.exprKind.value.name)
    if (!((isVar(a) && isNull(b)) || (isNull(a) && isVar(b)))) return false
    const eq = this.call(e, '_==_', [a, b])
    const guard = this.call(e, '@not_strictly_false', [eq])
    e.exprKind = (call.function === '_==_' ? guard : this.call(e, '!_', [guard])).exprKind
    return true
  }

  /**
   * `default(a, b)` becomes `@not_strictly_false(a == null) ? b : a`: the guard is true when `a`
   * is null or fails (a missing key, an absent variable, a type error), so `b` is used then.
   */
  private rewriteDefault(e: Expr, call: Expr_Call): void {
    const [a, b] = call.args as [Expr, Expr]
    const nullConst = this.node(e, {
      case: 'constExpr',
      value: {
        $typeName: 'cel.expr.Constant',
        constantKind: { case: 'nullValue', value: NullValue.NULL_VALUE },
      },
    })
    const isNull = this.node(e, {
      case: 'callExpr',
      value: create(Expr_CallSchema, { function: '_==_', args: [a, nullConst] }),
    })
    const guard = this.node(e, {
      case: 'callExpr',
      value: create(Expr_CallSchema, { function: '@not_strictly_false', args: [isNull] }),
    })
    e.exprKind = {
      case: 'callExpr',
      value: create(Expr_CallSchema, { function: '_?_:_', args: [guard, b, a] }),
    }
  }
}

/**
 * Offset of the first bracket nested deeper than `max`, outside string literals; -1 if none.
 * The parser recurses per bracket and overflows the stack near 800 levels, so this runs first.
 */
function tooDeepAt(s: string, max: number): number {
  let depth = 0
  for (let i = 0; i < s.length; i++) {
    const c = s[i]
    if (c === '"' || c === "'") {
      const triple = s.startsWith(c.repeat(3), i)
      const close = triple ? c.repeat(3) : c
      const raw = i > 0 && (s[i - 1] === 'r' || s[i - 1] === 'R')
      i += close.length
      while (i < s.length && !s.startsWith(close, i)) i += !raw && s[i] === '\\' ? 2 : 1
      i += close.length - 1
    } else if (c === '(' || c === '[' || c === '{') {
      if (++depth > max) return i
    } else if (c === ')' || c === ']' || c === '}') depth--
  }
  return -1
}

/**
 * A parse failure in words, where it is: the token scan of syntax-message.ts names the unclosed
 * bracket or the operator without an operand; else the parser's own message, made plainer.
 */
function syntaxProblem(err: unknown, source: string): CelProblem {
  const diagnosis = diagnoseSyntax(source)
  if (diagnosis !== undefined) {
    const { line, column } = lineColumn(lineStarts(source), diagnosis.offset)
    return {
      code: 'cel_syntax',
      message: `${line}:${column}: syntax error: ${diagnosis.message}`,
      line,
      column,
    }
  }
  const e = err as { message?: string; location?: { start?: { line?: number; column?: number } } }
  const line = e.location?.start?.line ?? 1
  const column = e.location?.start?.column ?? 1
  const text = plainParserMessage((e.message ?? String(err)).replace(/^<input>:\d+:\d+:\s*/, ''))
  return { code: 'cel_syntax', message: `${line}:${column}: syntax error: ${text}`, line, column }
}

/**
 * Compile `source` against `cenv`. Never throws. Results are cached per environment (compiled
 * expressions are stateless), so a reloaded policy only compiles the expressions that changed.
 */
export function compileCel(source: string, cenv: CelEnvironment): CompileOutcome {
  const hit = cenv.compiled.get(source)
  if (hit !== undefined) return hit
  const outcome = compileUncached(source, cenv)
  if (cenv.compiled.size >= COMPILE_CACHE_MAX)
    cenv.compiled.delete(cenv.compiled.keys().next().value as string)
  cenv.compiled.set(source, outcome)
  return outcome
}

function compileUncached(source: string, cenv: CelEnvironment): CompileOutcome {
  const limits = cenv.limits
  if (source.length > limits.maxExpressionLength) {
    return {
      ok: false,
      problems: [
        {
          code: 'cel_limit',
          message: `1:1: expression is longer than ${limits.maxExpressionLength} characters`,
          line: 1,
          column: 1,
        },
      ],
    }
  }
  const deep = tooDeepAt(source, limits.maxDepth)
  if (deep !== -1) {
    const { line, column } = lineColumn(lineStarts(source), deep)
    const message = `${line}:${column}: expression is nested deeper than ${limits.maxDepth}`
    return { ok: false, problems: [{ code: 'cel_limit', message, line, column }] }
  }
  let parsed: ParsedExpr & { expr: Expr }
  try {
    parsed = parse(source)
  } catch (err) {
    if (err instanceof RangeError) {
      const message = `1:1: expression is nested too deeply to parse`
      return { ok: false, problems: [{ code: 'cel_limit', message, line: 1, column: 1 }] }
    }
    return { ok: false, problems: [syntaxProblem(err, source)] }
  }
  const starts = lineStarts(source)
  // Types first, on the tree as written (the checker below rewrites parts of it).
  const mistyped = typeProblems(parsed.expr, cenv.variables)
  const checker = new Checker(cenv, parsed, starts)
  checker.visit(parsed.expr, new Set(), 0, 0)
  if (checker.problems.length > 0) return { ok: false, problems: checker.problems }
  if (mistyped.length > 0) {
    const positions = parsed.sourceInfo?.positions ?? {}
    const problems = mistyped.map((p): CelProblem => {
      const { line, column } = lineColumn(starts, positions[String(p.id)] ?? 0)
      return { code: 'cel_type', message: `${line}:${column}: ${p.message}`, line, column }
    })
    return { ok: false, problems }
  }
  let fn: (bindings?: Record<string, unknown>) => unknown
  try {
    fn = plan(cenv.env, parsed) as typeof fn
  } catch (err) {
    const message = `1:1: cannot plan expression: ${(err as Error).message}`
    return { ok: false, problems: [{ code: 'cel_syntax', message, line: 1, column: 1 }] }
  }
  const positions = parsed.sourceInfo?.positions ?? {}
  const where = (id: bigint | undefined): string => {
    if (id === undefined) return ''
    const off = positions[String(id)]
    if (off === undefined) return ''
    const { line, column } = lineColumn(starts, off)
    return `${line}:${column}: `
  }
  const maxIterations = limits.maxIterations
  const fast = compileFast(parsed.expr, { sets: cenv.constSets.list, regex: cenv.regex, maxIterations })
  const expression: CompiledExpression = {
    source,
    fast,
    variables: checker.roots,
    headerReads: headerReads(parsed.expr),
    run(bindings: object): CelRunResult {
      let v: unknown
      try {
        v = withBudget(maxIterations, () => fn(bindings as Record<string, unknown>))
      } catch (err) {
        return { ok: false, error: `evaluation failed: ${(err as Error)?.message ?? String(err)}` }
      }
      if (isCelError(v)) return { ok: false, error: `${where(v.exprId)}${v.message}` }
      return { ok: true, value: v as CelValue }
    },
  }
  return { ok: true, expression }
}
