/**
 * The rewrites done while an expression loads, on the parsed tree, into calls the CEL planner
 * runs: `default`, `coalesce`, agentgateway's `with` / `mapValues` / `filterKeys`, `variables()`,
 * `jwt == null` for a variable left out, and `x in [literal strings]` as a set lookup. Each
 * replaces the node's `exprKind` in place; the checker (check-expression.ts) decides when.
 */
import {
  type Expr,
  type Expr_Call,
  Expr_CallSchema,
  Expr_ComprehensionSchema,
} from '@bufbuild/cel-spec/cel/expr/syntax_pb.js'
import { create } from '@bufbuild/protobuf'
import { NullValue } from '@bufbuild/protobuf/wkt'
import { MAP_PUT, NEW_MAP } from '../agentgateway/maps.js'
import { VARIABLES_BINDING } from '../variables.js'
import { type ConstSets, IN_SET_FUNCTION } from './environment.js'
import type { ExprBuilder } from './expr-builder.js'

/** Shorter literal lists stay as they are: scanning a few strings is as fast as hashing. */
const IN_SET_MIN_ELEMENTS = 4

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

/** `variables()` reads the binding that holds every variable of the request. */
export function rewriteVariablesCall(e: Expr): void {
  e.exprKind = { case: 'identExpr', value: { $typeName: 'cel.expr.Expr.Ident', name: VARIABLES_BINDING } }
}

/** `x in [literal strings]` becomes `@verdict_in_set(x, <set index>)`; false when not applicable. */
export function rewriteInConstantList(b: ExprBuilder, e: Expr, call: Expr_Call, sets: ConstSets): boolean {
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
  const key = JSON.stringify(values)
  let index = sets.byKey.get(key)
  if (index === undefined) {
    index = sets.list.push(new Set(values)) - 1
    sets.byKey.set(key, index)
  }
  const indexConst = b.node(e, {
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

/**
 * agentgateway's `x.with(name, body)`, `m.mapValues(name, body)` and `m.filterKeys(name, body)`,
 * already checked: `body` is evaluated with `name` bound, so they become comprehensions.
 */
export function rewriteMacro(
  b: ExprBuilder,
  e: Expr,
  fn: 'with' | 'mapValues' | 'filterKeys',
  name: string,
  target: Expr,
  body: Expr,
): void {
  if (fn === 'with') {
    e.exprKind = b.bind(e, name, target, body).exprKind
    return
  }
  // m.mapValues(v, E): with m as @m, for each key @k: put(@acc, @k, with @m[@k] as v: E)
  // m.filterKeys(k, E): with m as @m, for each key @k: (with @k as k: E) ? put(@acc, @k, @m[@k]) : @acc
  const m = '@m'
  const k = '@k'
  const acc = '@acc'
  const entry = () => b.call(e, '_[_]', [b.ident(e, m), b.ident(e, k)])
  const step =
    fn === 'mapValues'
      ? b.call(e, MAP_PUT, [b.ident(e, acc), b.ident(e, k), b.bind(e, name, entry(), body)])
      : b.call(e, '_?_:_', [
          b.bind(e, name, b.ident(e, k), body),
          b.call(e, MAP_PUT, [b.ident(e, acc), b.ident(e, k), entry()]),
          b.ident(e, acc),
        ])
  const loop = b.node(e, {
    case: 'comprehensionExpr',
    value: create(Expr_ComprehensionSchema, {
      iterVar: k,
      iterRange: b.ident(e, m),
      accuVar: acc,
      accuInit: b.call(e, NEW_MAP, []),
      loopCondition: b.constant(e, { case: 'boolValue', value: true }),
      loopStep: step,
      result: b.ident(e, acc),
    }),
  })
  e.exprKind = b.bind(e, m, target, loop).exprKind
}

/**
 * `coalesce(a, b, ..., z)`: the first argument that is neither null nor an error; when every one
 * is, null if one of them was null, else the error. Rewritten into conditionals, as `default`.
 */
export function rewriteCoalesce(b: ExprBuilder, e: Expr, args: readonly Expr[]): void {
  const nullOrError = (x: Expr) =>
    b.call(e, '@not_strictly_false', [
      b.call(e, '_==_', [x, b.constant(e, { case: 'nullValue', value: NullValue.NULL_VALUE })]),
    ])
  const last = args[args.length - 1]!
  // After the last argument: null when an earlier one was null, else the last one's outcome.
  let tail: Expr = last
  if (args.length > 1) {
    const earlierNull = args
      .slice(0, -1)
      .map((x) => b.call(e, '_==_', [x, b.constant(e, { case: 'nullValue', value: NullValue.NULL_VALUE })]))
      .reduce((l, r) => b.call(e, '_||_', [l, r]))
    tail = b.call(e, '_?_:_', [
      nullOrError(last),
      b.call(e, '_?_:_', [
        earlierNull,
        b.constant(e, { case: 'nullValue', value: NullValue.NULL_VALUE }),
        last,
      ]),
      last,
    ])
  }
  let out = tail
  for (let i = args.length - 2; i >= 0; i--) {
    out = b.call(e, '_?_:_', [nullOrError(args[i]!), out, args[i]!])
  }
  e.exprKind = out.exprKind
}

/**
 * `jwt == null` (or `mcp`, ...): agentgateway leaves a variable out when the request has none, so
 * comparing it with null is true then; the absent variable's error counts as null. False when the
 * comparison is not of that shape.
 */
export function rewriteNullCompare(
  b: ExprBuilder,
  e: Expr,
  call: Expr_Call,
  scope: ReadonlySet<string>,
): boolean {
  const [l, r] = call.args as [Expr, Expr]
  const isNull = (x: Expr) =>
    x.exprKind.case === 'constExpr' && x.exprKind.value.constantKind.case === 'nullValue'
  const isVar = (x: Expr) =>
    x.exprKind.case === 'identExpr' &&
    NULLABLE_VARIABLES.has(x.exprKind.value.name) &&
    !scope.has(x.exprKind.value.name)
  if (!((isVar(l) && isNull(r)) || (isNull(l) && isVar(r)))) return false
  const eq = b.call(e, '_==_', [l, r])
  const guard = b.call(e, '@not_strictly_false', [eq])
  e.exprKind = (call.function === '_==_' ? guard : b.call(e, '!_', [guard])).exprKind
  return true
}

/**
 * `default(a, b)` becomes `@not_strictly_false(a == null) ? b : a`: the guard is true when `a`
 * is null or fails (a missing key, an absent variable, a type error), so `b` is used then.
 */
export function rewriteDefault(b: ExprBuilder, e: Expr, call: Expr_Call): void {
  const [a, fallback] = call.args as [Expr, Expr]
  const nullConst = b.node(e, {
    case: 'constExpr',
    value: {
      $typeName: 'cel.expr.Constant',
      constantKind: { case: 'nullValue', value: NullValue.NULL_VALUE },
    },
  })
  const isNull = b.node(e, {
    case: 'callExpr',
    value: create(Expr_CallSchema, { function: '_==_', args: [a, nullConst] }),
  })
  const guard = b.node(e, {
    case: 'callExpr',
    value: create(Expr_CallSchema, { function: '@not_strictly_false', args: [isNull] }),
  })
  e.exprKind = {
    case: 'callExpr',
    value: create(Expr_CallSchema, { function: '_?_:_', args: [guard, fallback, a] }),
  }
}
