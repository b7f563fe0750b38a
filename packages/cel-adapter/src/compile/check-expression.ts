/**
 * The load-time walk over a parsed expression. `@bufbuild/cel` has no type checker, so this is what
 * finds, before any request, unknown variables and functions, wrong arities, variables agentgateway
 * only has after the response, trees and comprehensions nested too deep, and literal regular
 * expressions that do not compile. On the way it applies the rewrites of rewrites.ts, and it
 * collects the variables the expression reads. (Types are checked by check-types.ts.)
 */
import { isCelError, parse, plan } from '@bufbuild/cel'
import type { Expr, Expr_Call, ParsedExpr } from '@bufbuild/cel-spec/cel/expr/syntax_pb.js'
import type { CelEnvironment } from './environment.js'
import { ExprBuilder } from './expr-builder.js'
import { type CelProblem, type CelProblemCode, problemAt } from './problems.js'
import {
  rewriteCoalesce,
  rewriteDefault,
  rewriteInConstantList,
  rewriteMacro,
  rewriteNullCompare,
  rewriteVariablesCall,
} from './rewrites.js'

/**
 * agentgateway variables that have no value when a request is authorized, with the reason: using
 * one is a load problem (`cel_unavailable_variable`), not an expression that fails on every request.
 */
const UNAVAILABLE_VARIABLES: ReadonlyMap<string, string> = new Map([
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

/** agentgateway's functions that take an expression. */
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

/** What the walk found: problems, and the declared variables read, in first-use order. */
export interface ExpressionCheck {
  readonly problems: CelProblem[]
  readonly roots: string[]
}

/** Check `parsed` against `cenv`, rewriting it in place for the planner. */
export function checkExpression(
  cenv: CelEnvironment,
  parsed: ParsedExpr & { expr: Expr },
  starts: readonly number[],
): ExpressionCheck {
  const checker = new Checker(cenv, parsed, starts)
  checker.visit(parsed.expr, new Set(), 0, 0)
  return { problems: checker.problems, roots: checker.roots }
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
  private readonly build: ExprBuilder
  private depthReported = false

  constructor(
    private readonly cenv: CelEnvironment,
    private readonly parsed: ParsedExpr,
    private readonly starts: readonly number[],
  ) {
    this.build = new ExprBuilder(parsed)
  }

  private report(code: CelProblemCode, e: Expr, what: string): void {
    const off = this.parsed.sourceInfo?.positions[String(e.id)] ?? 0
    this.problems.push(problemAt(code, this.starts, off, what))
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
      rewriteVariablesCall(e)
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
      else rewriteCoalesce(this.build, e, call.args)
      return
    }
    if (
      (fn === '_==_' || fn === '_!=_') &&
      call.args.length === 2 &&
      rewriteNullCompare(this.build, e, call, scope)
    )
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
      rewriteDefault(this.build, e, call)
      return
    } else if (
      fn === '@in' &&
      call.args.length === 2 &&
      rewriteInConstantList(this.build, e, call, this.cenv.constSets)
    ) {
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

  /**
   * agentgateway's `x.with(name, expr)`, `m.mapValues(v, expr)` and `m.filterKeys(k, expr)`: the
   * second argument is checked with the first in scope, then the call becomes a comprehension.
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
    rewriteMacro(this.build, e, fn as 'with' | 'mapValues' | 'filterKeys', name, target, body!)
  }
}
