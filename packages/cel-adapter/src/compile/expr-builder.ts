/**
 * New syntax-tree nodes for the rewrites: each gets a fresh id and the source position of the
 * node it replaces, so an error raised inside a rewritten part still points at what was written.
 */
import {
  type Expr,
  Expr_CallSchema,
  Expr_ComprehensionSchema,
  Expr_CreateListSchema,
  ExprSchema,
  type ParsedExpr,
} from '@bufbuild/cel-spec/cel/expr/syntax_pb.js'
import { create } from '@bufbuild/protobuf'
import type { NullValue } from '@bufbuild/protobuf/wkt'

export class ExprBuilder {
  private nextId: bigint

  constructor(private readonly parsed: ParsedExpr) {
    let max = 0n
    for (const k of Object.keys(parsed.sourceInfo?.positions ?? {})) if (BigInt(k) > max) max = BigInt(k)
    this.nextId = max + 1n
  }

  /** A node standing where `e` is in the source. */
  node(e: Expr, exprKind: Expr['exprKind']): Expr {
    const id = this.nextId++
    const positions = this.parsed.sourceInfo?.positions
    if (positions !== undefined) positions[String(id)] = positions[String(e.id)] ?? 0
    return create(ExprSchema, { id, exprKind })
  }

  ident(e: Expr, name: string): Expr {
    return this.node(e, { case: 'identExpr', value: { $typeName: 'cel.expr.Expr.Ident', name } })
  }

  call(e: Expr, fn: string, args: Expr[], target?: Expr): Expr {
    return this.node(e, { case: 'callExpr', value: create(Expr_CallSchema, { function: fn, args, target }) })
  }

  constant(
    e: Expr,
    constantKind: { case: 'nullValue'; value: NullValue } | { case: 'boolValue'; value: boolean },
  ): Expr {
    return this.node(e, { case: 'constExpr', value: { $typeName: 'cel.expr.Constant', constantKind } })
  }

  /**
   * A comprehension that runs `result` once with `name` bound to `value` (cel-go's `cel.bind`):
   * no elements, so the accumulator is the value.
   */
  bind(e: Expr, name: string, value: Expr, result: Expr): Expr {
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
}
