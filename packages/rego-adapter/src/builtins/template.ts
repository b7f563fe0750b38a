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
 */
import type { RegoBuiltin } from '../rego-policy.js'
import { compareUtf8, fromUtf8, utf8 } from './bytes.js'
import { goJson, isObj, isStr, type Obj } from './scope.js'
import { GoString, goSprintf } from './sdk.js'

class TemplateError extends Error {}
function fail(m: string): never {
  throw new TemplateError(m)
}

/** A JSON number as a template sees it: Go's json.Number, a string kind holding the number's text. */
class Num {
  constructor(readonly text: string) {}
}
const NO_VALUE = Symbol('no value')

// ---- lexing: text and actions ----

type Piece = { text: string } | { action: string }

function split(src: string): Piece[] {
  const out: Piece[] = []
  let i = 0
  let trimNext = false
  for (;;) {
    const open = src.indexOf('{{', i)
    let text = open === -1 ? src.slice(i) : src.slice(i, open)
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, '')
    trimNext = false
    if (open === -1) {
      out.push({ text })
      return out
    }
    let start = open + 2
    // `{{- ` trims the white space before the action, ` -}}` the white space after it.
    if (/^-[ \t\r\n]/.test(src.slice(start))) {
      text = text.replace(/[ \t\r\n]+$/, '')
      start += 1
    }
    out.push({ text })
    let j = start
    let quote = ''
    for (; j < src.length; j++) {
      const c = src[j]!
      if (quote !== '') {
        if (c === '\\' && quote !== '`') j++
        else if (c === quote) quote = ''
      } else if (c === '"' || c === '`' || c === "'") quote = c
      else if (src.startsWith('/*', j)) {
        const end = src.indexOf('*/', j + 2)
        if (end === -1) fail('unclosed comment')
        j = end + 1
      } else if (src.startsWith('}}', j)) break
    }
    if (j >= src.length) fail('unclosed action')
    let body = src.slice(start, j)
    if (/[ \t\r\n]-$/.test(body)) {
      body = body.slice(0, -1)
      trimNext = true
    }
    out.push({ action: body })
    i = j + 2
  }
}

type Tok =
  | { k: 'field'; v: string[]; chained: boolean }
  | { k: 'var'; v: string; fields: string[] }
  | { k: 'ident'; v: string }
  | { k: 'str'; v: string }
  | { k: 'num'; v: string }
  | { k: 'rune'; v: number }
  | { k: 'bool'; v: boolean }
  | { k: 'nil' }
  | { k: 'op'; v: string }

function unquote(q: string): string {
  if (q.startsWith('`')) return q.slice(1, -1)
  if (q.startsWith("'")) {
    const s = JSON.parse(`"${q.slice(1, -1).replace(/\\'/g, "'").replace(/"/g, '\\"')}"`) as string
    return String(s.codePointAt(0))
  }
  return JSON.parse(
    q
      .replace(/\\x([0-9a-fA-F]{2})/g, '\\u00$1')
      .replace(/\\a/g, '\\u0007')
      .replace(/\\v/g, '\\u000b'),
  ) as string
}

function lex(action: string): Tok[] {
  const out: Tok[] = []
  const re =
    /\s+|\/\*[\s\S]*?\*\/|(:=|=|\||\(|\)|,)|("(?:[^"\\]|\\.)*"|`[^`]*`|'(?:[^'\\]|\\.)+')|(\$[A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+)*)|((?:\.[A-Za-z0-9_]+)+|\.)|([+-]?(?:0[xX][0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+))|([A-Za-z_][A-Za-z0-9_]*)/y
  let i = 0
  while (i < action.length) {
    re.lastIndex = i
    const m = re.exec(action)
    if (m === null) fail(`unexpected ${action.slice(i, i + 10)}`)
    i = re.lastIndex
    const [, op, q, dollar, dollarFields, field, num, ident] = m!
    if (op !== undefined) out.push({ k: 'op', v: op })
    else if (q !== undefined)
      out.push(q.startsWith("'") ? { k: 'rune', v: Number(unquote(q)) } : { k: 'str', v: unquote(q) })
    else if (dollar !== undefined)
      out.push({ k: 'var', v: dollar, fields: dollarFields === '' ? [] : dollarFields!.slice(1).split('.') })
    else if (field !== undefined) {
      // `(pipeline).Field`: a field right after a closing parenthesis applies to its value.
      const chained = m.index > 0 && action[m.index - 1] === ')'
      out.push({ k: 'field', v: field === '.' ? [] : field.slice(1).split('.'), chained })
    } else if (num !== undefined) out.push({ k: 'num', v: num })
    else if (ident === 'true' || ident === 'false') out.push({ k: 'bool', v: ident === 'true' })
    else if (ident === 'nil') out.push({ k: 'nil' })
    else if (ident !== undefined) out.push({ k: 'ident', v: ident })
  }
  return out
}

// ---- parsing: actions into a tree ----

type Arg =
  | { t: 'field'; path: string[] }
  | { t: 'var'; name: string; path: string[] }
  | { t: 'lit'; v: unknown }
  | { t: 'fn'; name: string }
  | { t: 'pipe'; pipe: Pipe }
  | { t: 'chain'; base: Arg; path: string[] }
  | { t: 'nil' }
type Cmd = Arg[]
interface Pipe {
  decl: string[]
  assign: boolean
  cmds: Cmd[]
}
type Node =
  | { n: 'text'; v: string }
  | { n: 'out'; pipe: Pipe }
  | { n: 'if' | 'with'; pipe: Pipe; body: Node[]; orElse: Node[] }
  | { n: 'range'; pipe: Pipe; body: Node[]; orElse: Node[] }
  | { n: 'template'; name: string; pipe?: Pipe }
  | { n: 'break' | 'continue' }

function parsePipe(toks: Tok[], allowDecl: boolean): Pipe {
  let pos = 0
  const pipe: Pipe = { decl: [], assign: false, cmds: [] }
  // `$x :=`, `$i, $v :=`, `$x =`
  if (allowDecl) {
    let p = 0
    const vars: string[] = []
    while (toks[p]?.k === 'var' && (toks[p] as { fields: string[] }).fields.length === 0) {
      vars.push((toks[p] as { v: string }).v)
      p++
      const t = toks[p]
      if (t?.k === 'op' && t.v === ',') {
        p++
        continue
      }
      if (t?.k === 'op' && (t.v === ':=' || t.v === '=')) {
        pipe.decl = vars
        pipe.assign = t.v === '='
        pos = p + 1
      }
      break
    }
  }
  const parseArgs = (stop: (t: Tok) => boolean): Cmd[] => {
    const cmds: Cmd[] = []
    let cmd: Cmd = []
    while (pos < toks.length && !stop(toks[pos]!)) {
      const t = toks[pos++]!
      if (t.k === 'op' && t.v === '|') {
        if (cmd.length === 0) fail('missing command')
        cmds.push(cmd)
        cmd = []
      } else if (t.k === 'op' && t.v === '(') {
        const inner = parseArgs((x) => x.k === 'op' && x.v === ')')
        if (toks[pos]?.k !== 'op') fail('unclosed (')
        pos++
        cmd.push({ t: 'pipe', pipe: { decl: [], assign: false, cmds: inner } })
      } else if (t.k === 'op') fail(`unexpected ${t.v}`)
      else if (t.k === 'field' && t.chained && cmd.length > 0)
        cmd.push({ t: 'chain', base: cmd.pop()!, path: t.v })
      else if (t.k === 'field') cmd.push({ t: 'field', path: t.v })
      else if (t.k === 'var') cmd.push({ t: 'var', name: t.v, path: t.fields })
      else if (t.k === 'str' || t.k === 'bool') cmd.push({ t: 'lit', v: t.v })
      else if (t.k === 'num') cmd.push({ t: 'lit', v: Number(t.v) })
      else if (t.k === 'rune') cmd.push({ t: 'lit', v: t.v })
      else if (t.k === 'nil') cmd.push({ t: 'nil' })
      else cmd.push({ t: 'fn', name: t.v })
    }
    if (cmd.length > 0) cmds.push(cmd)
    else if (cmds.length > 0) fail('missing command')
    return cmds
  }
  pipe.cmds = parseArgs(() => false)
  if (pipe.cmds.length === 0) fail('missing value')
  return pipe
}

const KEYWORDS = new Set([
  'if',
  'else',
  'end',
  'range',
  'with',
  'define',
  'template',
  'block',
  'break',
  'continue',
])

function parse(src: string, defs: Map<string, Node[]>): Node[] {
  const pieces = split(src)
  let i = 0
  const block = (inRange: boolean): { nodes: Node[]; end: string; rest: Tok[] } => {
    const nodes: Node[] = []
    while (i < pieces.length) {
      const p = pieces[i++]!
      if ('text' in p) {
        if (p.text !== '') nodes.push({ n: 'text', v: p.text })
        continue
      }
      const toks = lex(p.action)
      if (toks.length === 0) continue // a comment
      const head = toks[0]!
      const word = head.k === 'ident' && KEYWORDS.has(head.v) ? head.v : undefined
      if (word === 'end' || word === 'else') return { nodes, end: word, rest: toks.slice(1) }
      if (word === 'break' || word === 'continue') {
        if (!inRange) fail(`${word} outside range`)
        nodes.push({ n: word })
      } else if (word === 'if' || word === 'with' || word === 'range')
        nodes.push(control(word, toks.slice(1), inRange))
      else if (word === 'define' || word === 'block') {
        const name = toks[1]
        if (name?.k !== 'str') fail(`${word} needs a name`)
        const body = block(false)
        if (body.end !== 'end') fail(`${word} without end`)
        defs.set((name as { v: string }).v, body.nodes)
        if (word === 'block')
          nodes.push({
            n: 'template',
            name: (name as { v: string }).v,
            pipe: parsePipe(toks.slice(2), false),
          })
      } else if (word === 'template') {
        const name = toks[1]
        if (name?.k !== 'str') fail('template needs a name')
        nodes.push({
          n: 'template',
          name: (name as { v: string }).v,
          ...(toks.length > 2 ? { pipe: parsePipe(toks.slice(2), false) } : {}),
        })
      } else nodes.push({ n: 'out', pipe: parsePipe(toks, true) })
    }
    return { nodes, end: '', rest: [] }
  }
  const control = (word: 'if' | 'with' | 'range', toks: Tok[], inRange: boolean): Node => {
    const pipe = parsePipe(toks, true)
    const body = block(word === 'range' || inRange)
    let elseNodes: Node[] = []
    if (body.end === 'else') {
      const first = body.rest[0]
      // `else if`: a nested if sharing this one's end (`else with` is newer than OPA's Go).
      if (first?.k === 'ident' && first.v === 'if') {
        elseNodes = [control(first.v, body.rest.slice(1), inRange)]
        return { n: word, pipe, body: body.nodes, orElse: elseNodes }
      }
      const e = block(inRange)
      if (e.end !== 'end') fail(`${word} without end`)
      elseNodes = e.nodes
    } else if (body.end !== 'end') fail(`${word} without end`)
    return { n: word, pipe, body: body.nodes, orElse: elseNodes }
  }
  const top = block(false)
  if (top.end !== '') fail(`unexpected ${top.end}`)
  return top.nodes
}

// ---- values, as Go sees them ----

function truth(v: unknown): boolean {
  if (v === null || v === undefined || v === NO_VALUE) return false
  if (v instanceof Num) return true
  if (typeof v === 'number') return v !== 0
  if (typeof v === 'boolean') return v
  if (typeof v === 'string') return v !== ''
  if (Array.isArray(v)) return v.length > 0
  if (isObj(v)) return Object.keys(v).length > 0
  return true
}

/** A value as fmt's %v writes it. */
function show(v: unknown, top = true): string {
  if (v === NO_VALUE) return '<no value>'
  if (v === null || v === undefined) return top ? '<no value>' : '<nil>'
  if (v instanceof Num) return v.text
  if (typeof v === 'string') return v
  if (typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) return `[${v.map((x) => show(x, false)).join(' ')}]`
  if (isObj(v))
    return `map[${Object.keys(v)
      .sort(compareUtf8)
      .map((k) => `${k}:${show(v[k], false)}`)
      .join(' ')}]`
  return String(v)
}

/** JSON from the host: numbers become Go's json.Number. */
function fromJson(v: unknown): unknown {
  if (typeof v === 'number') return new Num(goJson(v))
  if (Array.isArray(v)) return v.map(fromJson)
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromJson(x)]))
  return v
}

type Kind = 'bool' | 'string' | 'int' | 'float' | 'other'
function kind(v: unknown): Kind {
  if (typeof v === 'boolean') return 'bool'
  if (typeof v === 'string' || v instanceof Num) return 'string'
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float'
  return 'other'
}
const text = (v: unknown) => (v instanceof Num ? v.text : v)

function compare(a: unknown, b: unknown): number {
  const [ka, kb] = [kind(a), kind(b)]
  if (ka !== kb || ka === 'other') fail('incompatible types for comparison')
  if (ka === 'string') return compareUtf8(text(a) as string, text(b) as string)
  return Number(a) - Number(b)
}

function goHtml(s: string): string {
  return s.replace(
    /[&'<>"\0]/g,
    (c) => ({ '&': '&amp;', "'": '&#39;', '<': '&lt;', '>': '&gt;', '"': '&#34;', '\0': '\uFFFD' })[c]!,
  )
}

function goJs(s: string): string {
  let out = ''
  for (const ch of s) {
    const c = ch.codePointAt(0)!
    if (ch === '\\') out += '\\\\'
    else if (ch === "'") out += "\\'"
    else if (ch === '"') out += '\\"'
    else if (ch === '<') out += '\\u003C'
    else if (ch === '>') out += '\\u003E'
    else if (ch === '&') out += '\\u0026'
    else if (ch === '=') out += '\\u003D'
    else if (c < 0x20) out += `\\u${c.toString(16).toUpperCase().padStart(4, '0')}`
    else out += ch
  }
  return out
}

const evalArgs = (args: unknown[]) => args.map((a) => show(a, false))

/** fmt.Sprint: spaces only between operands when neither is a string. */
function sprint(args: unknown[]): string {
  let out = ''
  args.forEach((a, i) => {
    const isString = typeof a === 'string' || a instanceof Num
    const prevString = i > 0 && (typeof args[i - 1] === 'string' || args[i - 1] instanceof Num)
    if (i > 0 && !isString && !prevString) out += ' '
    out += show(a, false)
  })
  return out
}

const FUNCS: Record<string, (args: unknown[]) => unknown> = {
  not: (a) => (a.length === 1 ? !truth(a[0]) : fail('not: one argument')),
  len: ([x]) => {
    const v = text(x)
    if (typeof v === 'string') return utf8(v).length
    if (Array.isArray(v)) return v.length
    if (isObj(v)) return Object.keys(v).length
    return fail('len of a non-collection')
  },
  index: ([x, ...keys]) => {
    let v = x
    for (const k of keys) {
      if (Array.isArray(v)) {
        const i = k instanceof Num ? Number(k.text) : typeof k === 'number' ? k : fail('index type')
        if (!Number.isInteger(i) || i < 0 || i >= v.length) fail('index out of range')
        v = v[i as number]
      } else if (isObj(v)) v = isStr(k) ? (Object.hasOwn(v, k) ? v[k] : null) : fail('index type')
      else fail('index of a non-collection')
    }
    return v
  },
  print: (a) => sprint(a),
  println: (a) => `${evalArgs(a).join(' ')}\n`,
  printf: ([f, ...a]) =>
    isStr(f)
      ? goSprintf(
          f,
          a.map((x) => (x instanceof Num ? new GoString(x.text, 'json.Number') : x)),
        )
      : fail('printf format'),
  slice: ([x, ...idx]) => {
    if (idx.length > 3 || !idx.every((i) => typeof i === 'number' && Number.isInteger(i) && i >= 0))
      fail('slice: bad indexes')
    const v = text(x)
    const seq = typeof v === 'string' ? utf8(v) : Array.isArray(v) ? v : fail('slice of a non-sequence')
    if (typeof v === 'string' && idx.length === 3) fail('slice: 3-index slice of a string')
    const [i = 0, j = seq.length, k = seq.length] = idx as number[]
    if (!(i <= j && j <= k && k <= seq.length)) fail('slice: index out of range')
    return typeof v === 'string'
      ? fromUtf8((seq as Uint8Array).subarray(i, j))
      : (seq as unknown[]).slice(i, j)
  },
  html: (a) => goHtml(sprint(a)),
  js: (a) => goJs(sprint(a)),
  urlquery: (a) =>
    encodeURIComponent(sprint(a))
      .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
      .replace(/%20/g, '+'),
  eq: ([a, ...bs]) => (bs.length === 0 ? fail('eq: missing argument') : bs.some((b) => compare(a, b) === 0)),
  ne: ([a, b]) => compare(a, b) !== 0,
  lt: ([a, b]) => compare(a, b) < 0,
  le: ([a, b]) => compare(a, b) <= 0,
  gt: ([a, b]) => compare(a, b) > 0,
  ge: ([a, b]) => compare(a, b) >= 0,
}

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
