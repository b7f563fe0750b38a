/**
 * `strings.render_template`: the Go text/template language as OPA runs it (`missingkey=error`, the
 * variables as JSON values), for the constructs policies use: `{{.a.b}}`, `$` and variables
 * (`:=`, `=`), `if`/`else if`/`else`, `range` (with `$i, $v :=`, `else`, `break`, `continue`),
 * `with`, `define`/`template`/`block`, pipelines with `|` and parentheses, comments, `{{-`/`-}}`,
 * and the builtin functions `and`, `or`, `not`, `len`, `index`, `slice`, `print`, `printf`, `println`,
 * `html`, `js`, `urlquery`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`. Values print as Go's fmt prints
 * them (`[a b]`, `map[k:v]`, `<nil>`, `<no value>`). No JavaScript library implements Go templates.
 *
 * Known difference (docs/rego.md): OPA hands numbers to the template as the text they were written
 * in (`1.0` prints `1.0`); a host builtin receives them parsed, so they print in their shortest
 * form (`1`). Anything else the parser does not know is an error (undefined), never a guess.
 *
 * The parser is `template-parse.ts`, values and the builtin functions `template-values.ts`; this
 * file executes the tree.
 */
import type { RegoBuiltin } from '../rego-policy.js'
import { compareUtf8 } from './bytes.js'
import { isObj, isStr, type Obj } from './scope.js'
import { type Arg, type Cmd, fail, type Node, type Pipe, parse, TemplateError } from './template-parse.js'
import { FUNCS, fromJson, show, truth } from './template-values.js'

// ---- execution ----

class Break {}
class Continue {}

interface Scope {
  dot: unknown
  vars: Array<[string, unknown]>
}

function lookup(scope: Scope, name: string): unknown {
  for (let i = scope.vars.length - 1; i >= 0; i--) if (scope.vars[i]![0] === name) return scope.vars[i]![1]
  return fail(`undefined variable ${name}`)
}

function walk(v: unknown, path: string[]): unknown {
  let cur = v
  for (const k of path) {
    if (!isObj(cur)) fail(`can't evaluate field ${k}`)
    if (!Object.hasOwn(cur as Obj, k)) fail(`map has no entry for key ${k}`)
    cur = (cur as Obj)[k]
  }
  return cur
}

function run(nodes: Node[], scope: Scope, defs: Map<string, Node[]>, out: string[], depth: number): void {
  if (depth > 100) fail('template nesting too deep')
  for (const node of nodes) {
    switch (node.n) {
      case 'text':
        out.push(node.v)
        break
      case 'out': {
        const v = pipe(node.pipe, scope)
        if (node.pipe.decl.length === 0) out.push(show(v))
        break
      }
      case 'if':
      case 'with': {
        const mark = scope.vars.length
        const v = pipe(node.pipe, scope)
        if (truth(v)) run(node.body, node.n === 'with' ? { ...scope, dot: v } : scope, defs, out, depth)
        else run(node.orElse, scope, defs, out, depth)
        scope.vars.length = mark
        break
      }
      case 'range': {
        const mark = scope.vars.length
        const v = pipe({ ...node.pipe, decl: [] }, scope)
        const entries: Array<[unknown, unknown]> = Array.isArray(v)
          ? v.map((x, i) => [i, x])
          : isObj(v)
            ? Object.keys(v)
                .sort(compareUtf8)
                .map((k) => [k, v[k]])
            : v === null || v === undefined
              ? []
              : fail('range over a non-collection')
        if (entries.length === 0) run(node.orElse, scope, defs, out, depth)
        for (const [k, x] of entries) {
          const inner: Scope = { dot: x, vars: [...scope.vars] }
          if (node.pipe.decl.length === 1) inner.vars.push([node.pipe.decl[0]!, x])
          if (node.pipe.decl.length === 2) inner.vars.push([node.pipe.decl[0]!, k], [node.pipe.decl[1]!, x])
          try {
            run(node.body, inner, defs, out, depth)
          } catch (e) {
            if (e instanceof Break) break
            if (!(e instanceof Continue)) throw e
          }
          // Assignments to outer variables persist.
          for (let i = 0; i < scope.vars.length; i++) scope.vars[i] = inner.vars[i]!
        }
        scope.vars.length = mark
        break
      }
      case 'template': {
        const body = defs.get(node.name) ?? fail(`no such template ${node.name}`)
        const dot = node.pipe === undefined ? null : pipe(node.pipe, scope)
        run(body, { dot, vars: [['$', dot]] }, defs, out, depth + 1)
        break
      }
      case 'break':
        throw new Break()
      case 'continue':
        throw new Continue()
    }
  }
}

function arg(a: Arg, scope: Scope): unknown {
  switch (a.t) {
    case 'field':
      return walk(scope.dot, a.path)
    case 'var':
      return walk(lookup(scope, a.name), a.path)
    case 'lit':
      return a.v
    case 'pipe':
      return pipe(a.pipe, scope)
    case 'chain':
      return walk(arg(a.base, scope), a.path)
    case 'nil':
      return fail('nil is not a command')
    case 'fn':
      return call(a.name, [], scope)
  }
}

function call(name: string, args: unknown[], _scope: Scope): unknown {
  if (name === 'and') {
    for (const x of args) if (!truth(x)) return x
    return args[args.length - 1] ?? fail('and: missing arguments')
  }
  if (name === 'or') {
    for (const x of args) if (truth(x)) return x
    return args[args.length - 1] ?? fail('or: missing arguments')
  }
  const f = FUNCS[name] ?? fail(`function ${name} not defined`)
  return f(args)
}

function command(cmd: Cmd, scope: Scope, piped: unknown[]): unknown {
  const [head, ...rest] = cmd
  if (head!.t === 'fn') return call(head!.name, [...rest.map((a) => arg(a, scope)), ...piped], scope)
  if (rest.length > 0 || piped.length > 0) fail("can't give argument to non-function")
  return arg(head!, scope)
}

function pipe(p: Pipe, scope: Scope): unknown {
  let v: unknown
  p.cmds.forEach((cmd, i) => {
    v = command(cmd, scope, i === 0 ? [] : [v])
  })
  if (p.decl.length > 0) {
    const name = p.decl[p.decl.length - 1]!
    if (p.assign) {
      let i = scope.vars.length - 1
      while (i >= 0 && scope.vars[i]![0] !== name) i--
      if (i < 0) fail(`undefined variable ${name}`)
      scope.vars[i] = [name, v]
    } else scope.vars.push([name, v])
  }
  return v
}

function render(tpl: unknown, vars: unknown): unknown {
  if (!isStr(tpl) || !isObj(vars)) return undefined
  try {
    const defs = new Map<string, Node[]>()
    const nodes = parse(tpl, defs)
    const data = fromJson(vars)
    const out: string[] = []
    run(nodes, { dot: data, vars: [['$', data]] }, defs, out, 0)
    return out.join('')
  } catch (e) {
    if (e instanceof TemplateError || e instanceof SyntaxError) return undefined
    if (e instanceof Break || e instanceof Continue) return undefined
    throw e
  }
}

export const templateBuiltins: Record<string, RegoBuiltin> = {
  'strings.render_template': render,
}
