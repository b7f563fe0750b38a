/**
 * The fast path (fast-path.ts) as one generated JavaScript function per expression. The closure
 * tree calls every node through code shared by all nodes of its kind, so V8 sees polymorphic calls
 * it cannot inline; a generated function is straight-line code, with the same semantics node by
 * node: the same order of reads, ERR absorbed by `&&` and `||`, GIVE_UP thrown to the engine, the
 * same iteration budget, comprehension variables as locals.
 *
 * SAFETY RULE: no text of the policy ever becomes code. The generated source is assembled only
 * from text written in this file (operators, helper names, property names from its own tables) and
 * identifiers it makes itself (`t0`, `k0`, `list3`, ...). Every value that comes from the
 * expression (a string literal, a field name, a list, a set, a regex engine, a reader) is put in
 * the constants array `k`, which the generated code copies into locals (`const k0 = k[0]`);
 * property reads with such names are `o[k0]` behind `Object.hasOwn` checks or readers, as the
 * closures do. Numbers in the source are only indices and lengths this file counted; names of
 * comprehension variables only choose which local a read uses. `fast-path.test.ts` compiles expressions whose strings and keys are quotes,
 * backquotes, `__proto__` and `constructor` and checks the answers and the generated source.
 *
 * Where code generation is refused (a Content-Security-Policy without `unsafe-eval` makes
 * `new Function` throw an EvalError), `compileFast` keeps the closures.
 */

import type { Expr, Expr_Comprehension } from '@bufbuild/cel-spec/cel/expr/syntax_pb.js'
import type { FastPathEnvironment, FastProgram } from './fast-path.js'
import { ERR, equals, Fields, GIVE_UP, isRecord } from './fast-path-values.js'
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

/** Thrown for a construct the generator does not cover: the expression keeps the closures. */
const UNSUPPORTED = { unsupported: true }

/** `s.matches(p)`: the engine reports an invalid pattern or an oversized text. */
function regexTest(regex: RegexEngine, s: string, p: string): boolean {
  try {
    return regex.compile(p).test(s)
  } catch {
    throw GIVE_UP
  }
}

/** What the generated code may use, by the names it uses. */
const HELPERS = { ERR, GIVE_UP, Fields, isRecord, equals, jwtClaims, mcpShapeField, regexTest }
const PRELUDE = `const { ${Object.keys(HELPERS).join(', ')} } = H\nconst hasOwn = Object.hasOwn\n`

/** The string methods, as the JavaScript method each one is (this file's own text). */
const STRING_METHOD_CODE: Readonly<Record<string, string>> = {
  startsWith: 'startsWith',
  endsWith: 'endsWith',
  contains: 'includes',
}

/** `ctx.mcp.tool`, `.prompt`, `.resource`; `ctx.input.source`, `.destination` (this file's text). */
const MCP_SHAPE_CODE: Readonly<Record<McpShapeKind, string>> = {
  tool: 'tool',
  prompt: 'prompt',
  resource: 'resource',
}
const PEER_CODE: Readonly<Record<'source' | 'destination', string>> = {
  source: 'source',
  destination: 'destination',
}

/** Lists of literals up to this length are tested with one `===` each, unrolled. */
const UNROLL_MAX = 8

/**
 * A value of the generated code: a temporary, a constant `k<i>`, or a literal of this file
 * (`true`, `false`, `null`, `undefined`, `ERR`). Reading it twice has no effect.
 */
type Out = string

class Generator {
  readonly constants: unknown[] = []
  private readonly constIndex = new Map<unknown, number>()
  private temps = 0
  private lines: string[] = []
  /** Comprehension variables in scope, innermost last, with their local. */
  private readonly scope: Array<{ readonly name: string; readonly id: string }> = []

  constructor(private readonly env: FastPathEnvironment) {}

  /** `k<i>`, a local holding `k[i]` = `v` (strings, readers and sets are stored once). */
  k(v: unknown): Out {
    let i = this.constIndex.get(v)
    if (i === undefined) {
      i = this.constants.push(v) - 1
      this.constIndex.set(v, i)
    }
    return `k${i}`
  }

  temp(): string {
    return `t${this.temps++}`
  }

  emit(line: string): void {
    this.lines.push(line)
  }

  /** The statements `f` emits, apart, with the value it returns. */
  block(f: () => Out): { code: string; out: Out } {
    const saved = this.lines
    this.lines = []
    try {
      const out = f()
      return { code: this.lines.join('\n'), out }
    } finally {
      this.lines = saved
    }
  }

  /** The body of the generated factory: the constants as locals, then the program. */
  program(e: Expr): string {
    const out = this.gen(e)
    const budget = this.k(this.env.maxIterations)
    const names = (n: number, prefix: string, value: (i: number) => string) =>
      Array.from({ length: n }, (_, i) => `${prefix}${i}${value(i)}`).join(', ')
    const decls = this.temps > 0 ? `let ${names(this.temps, 't', () => '')}\n` : ''
    return (
      `const ${names(this.constants.length, 'k', (i) => ` = k[${i}]`)}\n` +
      `return function fastProgram(ctx) {\n${decls}let budget = ${budget}\n` +
      `try {\n${this.lines.join('\n')}\n} catch (err) {\nif (err === GIVE_UP) return undefined\nthrow err\n}\n` +
      `return typeof ${out} === 'boolean' ? ${out} : undefined\n}`
    )
  }

  private local(name: string): string | undefined {
    for (let i = this.scope.length - 1; i >= 0; i--)
      if (this.scope[i]!.name === name) return this.scope[i]!.id
    return undefined
  }

  gen(e: Expr | undefined): Out {
    if (e === undefined) throw UNSUPPORTED
    const x = e.exprKind
    switch (x.case) {
      case 'constExpr': {
        const c = x.value.constantKind
        if (c.case === 'stringValue') return this.k(c.value)
        if (c.case === 'boolValue') return c.value ? 'true' : 'false'
        if (c.case === 'nullValue') return 'null'
        throw UNSUPPORTED
      }
      case 'identExpr': {
        const id = this.local(x.value.name)
        return id ?? this.root(x.value.name)
      }
      case 'comprehensionExpr':
        return this.comprehension(x.value)
      case 'selectExpr':
        return this.select(x.value.operand, x.value.field, x.value.testOnly)
      case 'listExpr': {
        if (x.value.optionalIndices.length > 0) throw UNSUPPORTED
        const elements = x.value.elements
        if (elements.every((el) => el.exprKind.case === 'constExpr')) {
          const values = elements.map((el) => {
            const lit = scalarLiteral(el)
            if (lit === undefined) throw UNSUPPORTED
            return lit.value
          })
          return this.k(Object.freeze(values))
        }
        // Elements in order; the first that fails makes the list fail, the rest not evaluated.
        const r = this.temp()
        const label = `list${this.temps}`
        const outs: Out[] = []
        this.emit(`${label}: {`)
        for (const el of elements) {
          const v = this.gen(el)
          outs.push(v)
          this.emit(`if (${v} === ERR) {\n${r} = ERR\nbreak ${label}\n}`)
        }
        this.emit(`${r} = [${outs.join(', ')}]\n}`)
        return r
      }
      case 'callExpr':
        return this.call(x.value.function, x.value.target, x.value.args)
      default:
        throw UNSUPPORTED
    }
  }

  private root(name: string): Out {
    const r = this.temp()
    switch (name) {
      case 'jwt':
        this.emit(`${r} = jwtClaims(ctx) ?? ERR`)
        return r
      case 'metadata':
        this.emit(`${r} = ctx.input.filterMetadata`)
        return r
      case 'context':
        this.emit(`${r} = ctx.input.contextExtensions`)
        return r
      default:
        throw UNSUPPORTED
    }
  }

  private mcpShape(e: Expr | undefined): McpShapeKind | undefined {
    return mcpShapeOf(e, this.local('mcp') !== undefined)
  }

  private select(operand: Expr | undefined, field: string, testOnly: boolean): Out {
    const r = this.temp()
    const shape = this.mcpShape(operand)
    if (shape !== undefined) {
      const m = this.temp()
      const v = this.temp()
      const done = testOnly ? `${v} !== undefined` : `${v} === undefined ? ERR : ${v}`
      this.emit(
        `${m} = ctx.mcp\nif (${m} === undefined || ${m}.${MCP_SHAPE_CODE[shape]} === undefined) ${r} = ERR\n` +
          `else {\n${v} = mcpShapeField(${m}, ctx, ${this.k(shape)}, ${this.k(field)})\n${r} = ${done}\n}`,
      )
      return r
    }
    const fromRecord = this.recordField(operand, field)
    if (fromRecord !== undefined) {
      this.emit(
        testOnly
          ? `${r} = ${fromRecord} === ERR ? ERR : ${fromRecord} !== undefined`
          : `${r} = ${fromRecord} === undefined ? ERR : ${fromRecord}`,
      )
      return r
    }
    const m = this.gen(operand)
    const key = this.k(field)
    if (!testOnly) {
      this.lookup(r, m, key, true)
      return r
    }
    // As the closures: a `Fields` record tells presence, a plain record a lookup that succeeds.
    const v = this.temp()
    this.lookup(v, m, key, true)
    this.emit(`${r} = ${m} === ERR ? ERR : ${v} !== ERR`)
    return r
  }

  /** As `FastCompiler.recordField`: undefined for an absent field, ERR for an absent variable. */
  private recordField(operand: Expr | undefined, field: string): Out | undefined {
    const x = operand?.exprKind
    if (x?.case !== 'identExpr' || this.local(x.value.name) !== undefined) return undefined
    const name = x.value.name
    switch (name) {
      case 'request': {
        if (ENGINE_ONLY_REQUEST_FIELDS.has(field)) throw UNSUPPORTED
        const read = REQUEST_READERS[field]
        if (read === undefined) return 'undefined'
        const r = this.temp()
        this.emit(`${r} = ${this.k(read)}(ctx)`)
        return r
      }
      case 'mcp': {
        const read = MCP_READERS[field]
        const r = this.temp()
        const m = this.temp()
        const value = read === undefined ? 'undefined' : `${this.k(read)}(${m}, ctx)`
        this.emit(`${m} = ctx.mcp\n${r} = ${m} === undefined ? ERR : ${value}`)
        return r
      }
      case 'jwt': {
        if (field === 'rawToken') return undefined
        const r = this.temp()
        const c = this.temp()
        const key = this.k(field)
        this.emit(
          `${c} = ctx.jwt\nif (${c} === undefined) ${r} = ERR\nelse if (!hasOwn(${c}, ${key})) ${r} = undefined\n` +
            `else {\n${r} = ${c}[${key}]\nif (typeof ${r} === 'function' || typeof ${r} === 'symbol') ${r} = undefined\n}`,
        )
        return r
      }
      case 'source':
      case 'destination': {
        const read = PEER_READERS[field]
        if (read === undefined) return 'undefined'
        const r = this.temp()
        const side = PEER_CODE[name]
        if (field === 'identity') {
          const s = this.temp()
          this.emit(
            `${s} = ctx.input.${side}.spiffe\n${r} = ${s} === undefined ? undefined : new Fields(${this.k(IDENTITY_READERS)}, ${s})`,
          )
          return r
        }
        this.emit(`${r} = ${this.k(read)}(ctx.input.${side}, ctx, ${this.k(name)})`)
        return r
      }
      default:
        return undefined
    }
  }

  private comprehension(c: Expr_Comprehension): Out {
    if (c.iterVar2 !== '') throw UNSUPPORTED
    const range = this.block(() => this.gen(c.iterRange))
    const init = this.block(() => this.gen(c.accuInit))
    const iter = this.temp()
    const accu = this.temp()
    this.scope.push({ name: c.iterVar, id: iter }, { name: c.accuVar, id: accu })
    const condition = this.block(() => this.gen(c.loopCondition))
    const step = this.block(() => this.gen(c.loopStep))
    this.scope.splice(this.scope.length - 2, 1)
    const result = this.block(() => this.gen(c.result))
    this.scope.pop()
    const r = this.temp()
    const items = this.temp()
    const i = this.temp()
    const rv = range.out
    this.emit(
      `${range.code}\nif (${rv} === ERR) ${r} = ERR\nelse {\n` +
        `if (Array.isArray(${rv})) ${items} = ${rv}\n` +
        `else if (isRecord(${rv}) && !(${rv} instanceof Fields)) ${items} = Object.keys(${rv})\n` +
        `else throw GIVE_UP\n` +
        // Over the iteration limit: the engine reports it.
        `budget -= ${items}.length\nif (budget < 0) throw GIVE_UP\n` +
        `${init.code}\n${accu} = ${init.out}\n` +
        `for (${i} = 0; ${i} < ${items}.length; ${i}++) {\n${iter} = ${items}[${i}]\n` +
        `${condition.code}\nif (${condition.out} === false) break\n${step.code}\n${accu} = ${step.out}\n}\n` +
        `${result.code}\n${r} = ${result.out}\n}`,
    )
    return r
  }

  private call(fn: string, target: Expr | undefined, args: readonly Expr[]): Out {
    if (target !== undefined) {
      if (args.length !== 1) throw UNSUPPORTED
      return this.method(fn, target, args[0]!)
    }
    if (fn === 'matches' && args.length === 2) return this.method(fn, args[0]!, args[1]!)
    if (fn === '@verdict_in_set') return this.inSet(args)
    const r = this.temp()
    switch (args.length === 1 ? fn : args.length === 2 ? `${fn}/2` : `${fn}/3`) {
      case '!_': {
        const a = this.gen(args[0])
        this.emit(
          `if (${a} === ERR) ${r} = ERR\nelse if (typeof ${a} !== 'boolean') throw GIVE_UP\nelse ${r} = !${a}`,
        )
        return r
      }
      case '@not_strictly_false':
      case '__not_strictly_false__': {
        const a = this.gen(args[0])
        this.emit(`${r} = ${a} !== false`)
        return r
      }
      case '_&&_/2':
        return this.logical(r, args[0]!, args[1]!, false)
      case '_||_/2':
        return this.logical(r, args[0]!, args[1]!, true)
      case '_==_/2':
      case '_!=_/2': {
        const negate = fn === '_!=_'
        const literal = scalarLiteral(args[1]!) ?? scalarLiteral(args[0]!)
        if (literal !== undefined) {
          const other = this.gen(scalarLiteral(args[1]!) !== undefined ? args[0] : args[1])
          const v = literal.value
          const lit = typeof v === 'string' ? this.k(v) : v === null ? 'null' : v ? 'true' : 'false'
          this.emit(`${r} = ${other} === ERR ? ERR : ${other} ${negate ? '!==' : '==='} ${lit}`)
          return r
        }
        const a = this.gen(args[0])
        const b = this.gen(args[1])
        this.emit(`${r} = equals(${a}, ${b})`)
        if (negate) this.emit(`if (${r} !== ERR) ${r} = !${r}`)
        return r
      }
      case '@in/2':
        return this.membership(r, args[0]!, args[1]!)
      case '_[_]/2': {
        const key = scalarLiteral(args[1]!)?.value
        const a = this.gen(args[0])
        const isString = typeof key === 'string'
        this.lookup(r, a, isString ? this.k(key) : this.gen(args[1]), isString)
        return r
      }
      case '_?_:_/3': {
        const cond = this.gen(args[0])
        const yes = this.block(() => this.gen(args[1]))
        const no = this.block(() => this.gen(args[2]))
        this.emit(
          `if (${cond} === ERR) ${r} = ERR\nelse if (typeof ${cond} !== 'boolean') throw GIVE_UP\n` +
            `else if (${cond}) {\n${yes.code}\n${r} = ${yes.out}\n} else {\n${no.code}\n${r} = ${no.out}\n}`,
        )
        return r
      }
      default:
        throw UNSUPPORTED
    }
  }

  /**
   * `r = lookup(m, key)` (fast-path-values.ts) written out at each use, so that each read of a
   * request object has its own feedback in V8. `keyIsString`: the key is a string literal.
   */
  private lookup(r: string, m: Out, key: Out, keyIsString: boolean): void {
    const first = keyIsString
      ? `if (${m} === ERR) ${r} = ERR\n`
      : `if (${m} === ERR || ${key} === ERR) ${r} = ERR\nelse if (typeof ${key} !== 'string') throw GIVE_UP\n`
    this.emit(
      first +
        `else if (${m} instanceof Fields) {\n${r} = ${m}.get(${key})\nif (${r} === undefined) ${r} = ERR\n}\n` +
        `else if (!isRecord(${m})) throw GIVE_UP\nelse if (!hasOwn(${m}, ${key})) ${r} = ERR\n` +
        `else {\n${r} = ${m}[${key}]\n` +
        `if (${r} === undefined || typeof ${r} === 'function' || typeof ${r} === 'symbol') ${r} = ERR\n}`,
    )
  }

  /** CEL `&&` (`wins` false) and `||` (`wins` true), as `logical` in fast-path-values.ts. */
  private logical(r: string, left: Expr, right: Expr, wins: boolean): Out {
    const w = wins ? 'true' : 'false'
    const l = !wins ? 'true' : 'false'
    const a = this.gen(left)
    const b = this.block(() => this.gen(right))
    const rb = b.out
    this.emit(
      `if (${a} === ${w}) ${r} = ${w}\nelse {\n${b.code}\n` +
        `if (${rb} === ${w}) ${r} = ${w}\n` +
        `else if (${a} === ${l} && ${rb} === ${l}) ${r} = ${l}\n` +
        `else if ((${a} === ${l} || ${a} === ERR) && (${rb} === ${l} || ${rb} === ERR)) ${r} = ERR\n` +
        `else throw GIVE_UP\n}`,
    )
    return r
  }

  private inSet(args: readonly Expr[]): Out {
    const index = args[1]?.exprKind
    if (index?.case !== 'constExpr' || index.value.constantKind.case !== 'int64Value') throw UNSUPPORTED
    const set = this.env.sets[Number(index.value.constantKind.value)]
    if (set === undefined) throw UNSUPPORTED
    const x = this.gen(args[0])
    const r = this.temp()
    this.emit(`${r} = ${x} === ERR ? ERR : typeof ${x} === 'string' && ${this.k(set)}.has(${x})`)
    return r
  }

  private membership(r: string, element: Expr, container: Expr): Out {
    const scalars = constantScalars(container)
    if (scalars !== undefined) {
      // Checked as the closures check it: the container compiles (a list of literals).
      const v = this.gen(element)
      const n = scalars.length
      const test =
        n === 0
          ? 'false'
          : n <= UNROLL_MAX
            ? scalars.map((s) => `${v} === ${scalarCode(this, s)}`).join(' || ')
            : `${this.k(scalars)}.includes(${v})`
      this.emit(
        `if (${v} === ERR) ${r} = ERR\nelse {\nbudget -= ${n}\nif (budget < 0) throw GIVE_UP\n${r} = ${test}\n}`,
      )
      return r
    }
    // `"x" in m`: a string literal is neither an error nor another type.
    const isString = typeof scalarLiteral(element)?.value === 'string'
    const v = this.gen(element)
    const c = this.gen(container)
    const i = this.temp()
    const found = this.temp()
    const inMap = this.block(() => {
      this.lookup(found, c, v, true)
      return `${found} !== ERR`
    })
    this.emit(
      `if (${isString ? '' : `${v} === ERR || `}${c} === ERR) ${r} = ERR\nelse if (Array.isArray(${c})) {\n` +
        // A scan of a list counts against the iteration budget, as the engine counts it.
        `budget -= ${c}.length\nif (budget < 0) throw GIVE_UP\n${r} = false\n` +
        `for (${i} = 0; ${i} < ${c}.length; ${i}++) if (equals(${v}, ${c}[${i}]) === true) {\n${r} = true\nbreak\n}\n` +
        `}${isString ? '' : ` else if (typeof ${v} !== 'string') throw GIVE_UP`}\nelse {\n${inMap.code}\n${r} = ${inMap.out}\n}`,
    )
    return r
  }

  private method(fn: string, target: Expr, arg: Expr): Out {
    const op = STRING_METHOD_CODE[fn]
    if (op === undefined && fn !== 'matches') throw UNSUPPORTED
    const s = this.gen(target)
    const t = this.gen(arg)
    const r = this.temp()
    const apply = op === undefined ? `regexTest(${this.k(this.env.regex)}, ${s}, ${t})` : `${s}.${op}(${t})`
    this.emit(
      `if (${s} === ERR || ${t} === ERR) ${r} = ERR\n` +
        `else if (typeof ${s} !== 'string' || typeof ${t} !== 'string') throw GIVE_UP\nelse ${r} = ${apply}`,
    )
    return r
  }
}

/**
 * `tool`, `prompt` or `resource` when `e` is `mcp.tool`, `mcp.prompt` or `mcp.resource` (and `mcp`
 * is the variable, not a comprehension variable of that name). Shared with the closures (fast-path.ts).
 */
export function mcpShapeOf(e: Expr | undefined, mcpLocal: boolean): McpShapeKind | undefined {
  const x = e?.exprKind
  if (x?.case !== 'selectExpr' || x.value.testOnly) return undefined
  const of = x.value.operand?.exprKind
  if (of?.case !== 'identExpr' || of.value.name !== 'mcp' || mcpLocal) return undefined
  const f = x.value.field
  return f === 'tool' || f === 'prompt' || f === 'resource' ? f : undefined
}

/** The code of a string, boolean or null literal: `k[i]` for a string. */
function scalarCode(g: Generator, v: unknown): Out {
  if (typeof v === 'string') return g.k(v)
  return v === null ? 'null' : v ? 'true' : 'false'
}

/** A string, boolean or null literal, boxed (a null literal is `{ value: null }`); else undefined. */
export function scalarLiteral(e: Expr): { readonly value: string | boolean | null } | undefined {
  const x = e.exprKind
  if (x.case !== 'constExpr') return undefined
  const c = x.value.constantKind
  if (c.case === 'stringValue' || c.case === 'boolValue') return { value: c.value }
  if (c.case === 'nullValue') return { value: null }
  return undefined
}

/** The values of a list literal of strings, booleans and nulls only; else undefined. */
export function constantScalars(e: Expr): readonly unknown[] | undefined {
  const x = e.exprKind
  if (x.case !== 'listExpr' || x.value.optionalIndices.length > 0) return undefined
  const out: unknown[] = []
  for (const el of x.value.elements) {
    const lit = scalarLiteral(el)
    if (lit === undefined) return undefined
    out.push(lit.value)
  }
  return Object.freeze(out)
}

/**
 * The program of `expr` as one generated function; undefined when the generator does not cover it
 * or the runtime refuses to generate code (then the closures run).
 */
export function generateFast(expr: Expr, env: FastPathEnvironment): FastProgram | undefined {
  const CodeFunction = globalThis.Function
  if (CodeFunction === refusedBy) return undefined
  const g = new Generator(env)
  let body: string
  try {
    body = g.program(expr)
  } catch (err) {
    if (err === UNSUPPORTED) return undefined
    throw err
  }
  let make: (k: readonly unknown[], h: typeof HELPERS) => FastProgram
  try {
    make = new CodeFunction('k', 'H', PRELUDE + body) as typeof make
  } catch (err) {
    // Refused (an EvalError under a Content-Security-Policy, in Cloudflare Workers, or with Node's
    // --disallow-code-generation-from-strings): closures instead, and no more attempts. Any other
    // error also leaves the closures; tests check that code is generated wherever it is allowed.
    if (err instanceof EvalError) refusedBy = CodeFunction
    return undefined
  }
  return make(Object.freeze(g.constants), HELPERS)
}

/**
 * The `Function` constructor that refused to generate code: not asked again, since a browser
 * reports every refusal (a CSP violation event and a console message).
 */
let refusedBy: unknown
