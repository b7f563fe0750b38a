/**
 * A direct evaluator for the shapes of CEL that authorization rules are mostly made of: field
 * selection, `has()`, `==`/`!=` on strings, booleans and null, `in` over lists and maps, `&&`, `||`,
 * `!`, `?:`, `startsWith`/`endsWith`/`contains`/`matches`. Each expression is compiled once into
 * one generated function (fast-path-codegen.ts, the same semantics written out as straight-line
 * code) or, where the runtime refuses to generate code, into the tree of closures of this file;
 * either reads the request's own values (no CEL views, no activation object).
 *
 * It only ever answers when it is sure to give `@bufbuild/cel`'s answer: any value it does not
 * model (numbers, bytes, nested list or map equality, a result that is not a boolean, an error
 * reaching the top) makes it give up, and the expression runs on `@bufbuild/cel` instead. The
 * expression is pure, so running it again costs time, never correctness. Comprehensions built from
 * these parts (`exists`, `all`) run here too; expressions with other constructs (arithmetic,
 * ordering, `size`, other functions, map literals) are never compiled here.
 * `fast-path.test.ts` checks both paths agree with the engine on a corpus of expressions and
 * requests, on the generated functions and on the closures.
 */

import type { Expr, Expr_Comprehension } from '@bufbuild/cel-spec/cel/expr/syntax_pb.js'
import type { RequestContext } from '@verdict/core'
import { constantScalars, generateFast, mcpShapeOf, scalarLiteral } from './fast-path-codegen.js'
import {
  binaryString,
  ERR,
  equals,
  Fields,
  GIVE_UP,
  giveUp,
  isRecord,
  logical,
  lookup,
  type Node,
  STRING_METHODS,
} from './fast-path-values.js'
import type { RegexEngine } from './regex-cache.js'
import {
  ENGINE_ONLY_REQUEST_FIELDS,
  IDENTITY_READERS,
  jwtClaims,
  MCP_READERS,
  type McpShapeKind,
  mcpShapeField,
  PEER_READERS,
  REQUEST_READERS,
} from './variables.js'

/** What compiling needs: the literal sets of `@verdict_in_set`, the regex cache, the iteration cap. */
export interface FastPathEnvironment {
  readonly sets: ReadonlyArray<ReadonlySet<string>>
  readonly regex: RegexEngine
  readonly maxIterations: number
}

/** The result of a fast evaluation: a boolean, or `undefined` when the engine must decide. */
export type FastProgram = (ctx: RequestContext) => boolean | undefined

/**
 * Thrown for an unsupported construct: compilation stops and the expression always runs on the
 * engine. A plain object, so a policy of a thousand such rules does not capture a thousand stacks.
 */
const UNSUPPORTED = { unsupported: true }

const hasOwn = Object.hasOwn

/** One compiled expression; see the module comment for what it covers. */
class FastCompiler {
  /** Comprehension variables in scope, innermost last, with their slot in `frame`. */
  private readonly scope: Array<{ readonly name: string; readonly slot: number }> = []
  /**
   * The values of comprehension variables while one evaluation runs. Evaluation is synchronous
   * and never re-enters a program, so one frame per compiled expression suffices.
   */
  readonly frame: unknown[] = []
  /** Input elements the running evaluation may still iterate over; reset by each run. */
  readonly budget = { remaining: 0 }

  constructor(private readonly env: FastPathEnvironment) {}

  private local(name: string): number | undefined {
    for (let i = this.scope.length - 1; i >= 0; i--)
      if (this.scope[i]!.name === name) return this.scope[i]!.slot
    return undefined
  }

  compile(e: Expr | undefined): Node {
    if (e === undefined) throw UNSUPPORTED
    const k = e.exprKind
    switch (k.case) {
      case 'constExpr': {
        const c = k.value.constantKind
        if (c.case === 'stringValue' || c.case === 'boolValue') {
          const v = c.value
          return () => v
        }
        if (c.case === 'nullValue') return () => null
        throw UNSUPPORTED
      }
      case 'identExpr': {
        const slot = this.local(k.value.name)
        if (slot === undefined) return this.root(k.value.name)
        const frame = this.frame
        return () => frame[slot]
      }
      case 'comprehensionExpr':
        return this.comprehension(k.value)
      case 'selectExpr': {
        const { operand, field, testOnly } = k.value
        const shape = this.mcpShape(operand)
        if (shape !== undefined) {
          // `mcp.tool.name`, `has(mcp.tool.arguments)`: read from the message, no record built.
          return (ctx) => {
            const m = ctx.mcp
            if (m === undefined || m[shape] === undefined) return ERR
            const v = mcpShapeField(m, ctx, shape, field)
            return testOnly ? v !== undefined : v === undefined ? ERR : v
          }
        }
        const fromRecord = this.recordField(operand, field)
        if (fromRecord !== undefined) {
          if (testOnly) {
            return (ctx) => {
              const v = fromRecord(ctx)
              return v === ERR ? ERR : v !== undefined
            }
          }
          return (ctx) => {
            const v = fromRecord(ctx)
            return v === undefined ? ERR : v
          }
        }
        const of = this.compile(operand)
        if (!testOnly) return (ctx) => lookup(of(ctx), field)
        return (ctx) => {
          const m = of(ctx)
          if (m === ERR) return ERR
          if (m instanceof Fields) return m.get(field) !== undefined
          if (!isRecord(m)) throw GIVE_UP
          return lookup(m, field) !== ERR
        }
      }
      case 'listExpr': {
        if (k.value.optionalIndices.length > 0) throw UNSUPPORTED
        const elements = k.value.elements
        const items = elements.map((x) => this.compile(x))
        if (elements.every((x) => x.exprKind.case === 'constExpr')) {
          // A literal list is built once, not on every evaluation.
          const constant = Object.freeze(items.map((f) => f(undefined as never)))
          return () => constant
        }
        return (ctx) => {
          const out = new Array<unknown>(items.length)
          for (let i = 0; i < items.length; i++) {
            const v = items[i]!(ctx)
            // An element that fails makes the list fail, as in the engine.
            if (v === ERR) return ERR
            out[i] = v
          }
          return out
        }
      }
      case 'callExpr':
        return this.call(k.value.function, k.value.target, k.value.args)
      default:
        throw UNSUPPORTED
    }
  }

  /** `jwt`, `metadata` and `context` are values; the record-like variables only appear selected. */
  private root(name: string): Node {
    switch (name) {
      case 'jwt':
        return (ctx) => jwtClaims(ctx) ?? ERR
      case 'metadata':
        return (ctx) => ctx.input.filterMetadata
      case 'context':
        return (ctx) => ctx.input.contextExtensions
      default:
        throw UNSUPPORTED
    }
  }

  /** `tool`, `prompt` or `resource` when `e` is `mcp.tool`, `mcp.prompt` or `mcp.resource`. */
  private mcpShape(e: Expr | undefined): McpShapeKind | undefined {
    return mcpShapeOf(e, this.local('mcp') !== undefined)
  }

  /**
   * `request.headers`, `mcp.tool`, `source.address`, ...: a direct read of the request. The reader
   * returns undefined for an absent field (`has()` is false) and ERR for an absent variable.
   */
  private recordField(operand: Expr | undefined, field: string): Node | undefined {
    const k = operand?.exprKind
    if (k?.case !== 'identExpr' || this.local(k.value.name) !== undefined) return undefined
    const name = k.value.name
    switch (name) {
      case 'request': {
        if (ENGINE_ONLY_REQUEST_FIELDS.has(field)) throw UNSUPPORTED
        const read = REQUEST_READERS[field]
        return read === undefined ? () => undefined : read
      }
      case 'mcp': {
        const read = MCP_READERS[field]
        return (ctx) => {
          const m = ctx.mcp
          if (m === undefined) return ERR
          return read === undefined ? undefined : read(m, ctx)
        }
      }
      case 'jwt': {
        // Claims other than `rawToken` are read from the verified claims themselves.
        if (field === 'rawToken') return undefined
        return (ctx) => {
          const claims = ctx.jwt
          if (claims === undefined) return ERR
          if (!hasOwn(claims, field)) return undefined
          const v = claims[field]
          return typeof v === 'function' || typeof v === 'symbol' ? undefined : v
        }
      }
      case 'source':
      case 'destination': {
        const read = PEER_READERS[field]
        if (read === undefined) return () => undefined
        if (field === 'identity') {
          return (ctx) => {
            const s = ctx.input[name].spiffe
            return s === undefined ? undefined : new Fields(IDENTITY_READERS, s)
          }
        }
        return (ctx) => read(ctx.input[name], ctx, name)
      }
      default:
        return undefined
    }
  }

  /**
   * A comprehension (`exists`, `all`, and any other macro built from supported parts) over a list
   * or a map's keys, run as its expansion reads: accumulate, test the loop condition, step.
   */
  private comprehension(c: Expr_Comprehension): Node {
    if (c.iterVar2 !== '') throw UNSUPPORTED
    const range = this.compile(c.iterRange)
    const init = this.compile(c.accuInit)
    const iterSlot = this.frame.push(undefined) - 1
    const accuSlot = this.frame.push(undefined) - 1
    this.scope.push({ name: c.iterVar, slot: iterSlot }, { name: c.accuVar, slot: accuSlot })
    const condition = this.compile(c.loopCondition)
    const step = this.compile(c.loopStep)
    this.scope.splice(this.scope.length - 2, 1)
    const result = this.compile(c.result)
    this.scope.pop()
    const { frame, budget } = this
    return (ctx) => {
      const r = range(ctx)
      if (r === ERR) return ERR
      let items: readonly unknown[]
      if (Array.isArray(r)) items = r
      else if (isRecord(r) && !(r instanceof Fields)) items = Object.keys(r)
      else throw GIVE_UP
      budget.remaining -= items.length
      // Over the iteration limit: the engine reports it.
      if (budget.remaining < 0) throw GIVE_UP
      frame[accuSlot] = init(ctx)
      for (let i = 0; i < items.length; i++) {
        frame[iterSlot] = items[i]
        if (condition(ctx) === false) break
        frame[accuSlot] = step(ctx)
      }
      return result(ctx)
    }
  }

  private call(fn: string, target: Expr | undefined, args: readonly Expr[]): Node {
    if (target !== undefined) {
      if (args.length !== 1) throw UNSUPPORTED
      return this.method(fn, this.compile(target), this.compile(args[0]))
    }
    if (fn === 'matches' && args.length === 2) {
      return this.method(fn, this.compile(args[0]), this.compile(args[1]))
    }
    if (fn === '@verdict_in_set') return this.inSet(args)
    const [a, b, c] = args.map((x) => this.compile(x)) as [Node, Node | undefined, Node | undefined]
    switch (args.length === 1 ? fn : args.length === 2 ? `${fn}/2` : `${fn}/3`) {
      case '!_':
        return (ctx) => {
          const v = a(ctx)
          if (v === ERR) return ERR
          return typeof v === 'boolean' ? !v : giveUp()
        }
      case '@not_strictly_false':
      case '__not_strictly_false__':
        return (ctx) => a(ctx) !== false
      case '_&&_/2':
        return logical(a, b!, false)
      case '_||_/2':
        return logical(a, b!, true)
      case '_==_/2':
      case '_!=_/2': {
        const negate = fn === '_!=_'
        // Against a string, boolean or null literal, CEL's equality is `===` (see `equals`).
        const literal = scalarLiteral(args[1]!) ?? scalarLiteral(args[0]!)
        if (literal !== undefined) {
          const other = scalarLiteral(args[1]!) !== undefined ? a : b!
          const v = literal.value
          return negate
            ? (ctx) => {
                const x = other(ctx)
                return x === ERR ? ERR : x !== v
              }
            : (ctx) => {
                const x = other(ctx)
                return x === ERR ? ERR : x === v
              }
        }
        if (!negate) return (ctx) => equals(a(ctx), b!(ctx))
        return (ctx) => {
          const r = equals(a(ctx), b!(ctx))
          return r === ERR ? ERR : !r
        }
      }
      case '@in/2':
        return this.membership(a, b!, constantScalars(args[1]!))
      case '_[_]/2': {
        const key = scalarLiteral(args[1]!)?.value
        if (typeof key === 'string') return (ctx) => lookup(a(ctx), key)
        return (ctx) => lookup(a(ctx), b!(ctx))
      }
      case '_?_:_/3':
        return (ctx) => {
          const cond = a(ctx)
          if (cond === ERR) return ERR
          if (typeof cond !== 'boolean') throw GIVE_UP
          return cond ? b!(ctx) : c!(ctx)
        }
      default:
        throw UNSUPPORTED
    }
  }

  private inSet(args: readonly Expr[]): Node {
    const index = args[1]?.exprKind
    if (index?.case !== 'constExpr' || index.value.constantKind.case !== 'int64Value') throw UNSUPPORTED
    const set = this.env.sets[Number(index.value.constantKind.value)]
    if (set === undefined) throw UNSUPPORTED
    const x = this.compile(args[0])
    return (ctx) => {
      const v = x(ctx)
      if (v === ERR) return ERR
      return typeof v === 'string' && set.has(v)
    }
  }

  private membership(x: Node, container: Node, scalars: readonly unknown[] | undefined): Node {
    const { budget } = this
    if (scalars !== undefined) {
      // `x in ["a", "b"]`: CEL's equality with a string, boolean or null is `===` (see `equals`).
      return (ctx) => {
        const v = x(ctx)
        if (v === ERR) return ERR
        budget.remaining -= scalars.length
        if (budget.remaining < 0) throw GIVE_UP
        for (let i = 0; i < scalars.length; i++) if (v === scalars[i]) return true
        return false
      }
    }
    return (ctx) => {
      const v = x(ctx)
      const c = container(ctx)
      if (v === ERR || c === ERR) return ERR
      if (Array.isArray(c)) {
        // A scan of a list counts against the iteration budget, as the engine counts it (inside a
        // comprehension too): past it, the engine reports the error.
        budget.remaining -= c.length
        if (budget.remaining < 0) throw GIVE_UP
        for (let i = 0; i < c.length; i++) if (equals(v, c[i]) === true) return true
        return false
      }
      if (typeof v !== 'string') throw GIVE_UP
      return lookup(c, v) !== ERR
    }
  }

  private method(fn: string, target: Node, arg: Node): Node {
    const op = STRING_METHODS[fn]
    if (op === undefined) {
      if (fn !== 'matches') throw UNSUPPORTED
      const regex = this.env.regex
      return binaryString(target, arg, (s, p) => {
        try {
          return regex.compile(p).test(s)
        } catch {
          // An invalid pattern or an oversized text: the engine reports it.
          throw GIVE_UP
        }
      })
    }
    return binaryString(target, arg, op)
  }
}

/**
 * Compile `expr` (already checked and rewritten) for the fast path, or undefined when it uses
 * anything the fast path does not cover.
 */
export function compileFast(expr: Expr, env: FastPathEnvironment): FastProgram | undefined {
  return generateFast(expr, env) ?? compileClosures(expr, env)
}

/** The fast program as a tree of closures: where code generation is refused (fast-path-codegen.ts). */
function compileClosures(expr: Expr, env: FastPathEnvironment): FastProgram | undefined {
  let node: Node
  const compiler = new FastCompiler(env)
  try {
    node = compiler.compile(expr)
  } catch (err) {
    if (err === UNSUPPORTED) return undefined
    throw err
  }
  const { budget, frame } = compiler
  return (ctx) => {
    let v: unknown
    budget.remaining = env.maxIterations
    try {
      v = node(ctx)
    } catch (err) {
      if (err === GIVE_UP) return undefined
      throw err
    } finally {
      // Do not keep request values alive between decisions.
      if (frame.length > 0) frame.fill(undefined)
    }
    return typeof v === 'boolean' ? v : undefined
  }
}
