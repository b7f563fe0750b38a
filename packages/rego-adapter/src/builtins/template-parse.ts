/**
 * The Go text/template parser for `strings.render_template` (`template.ts`): the source into text
 * and actions, actions into tokens, tokens into a tree of nodes (pipelines, `if`/`range`/`with`,
 * `define`/`template`/`block`). Anything it does not know is a `TemplateError`.
 */

export class TemplateError extends Error {}
export function fail(m: string): never {
  throw new TemplateError(m)
}

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

export type Arg =
  | { t: 'field'; path: string[] }
  | { t: 'var'; name: string; path: string[] }
  | { t: 'lit'; v: unknown }
  | { t: 'fn'; name: string }
  | { t: 'pipe'; pipe: Pipe }
  | { t: 'chain'; base: Arg; path: string[] }
  | { t: 'nil' }
export type Cmd = Arg[]
export interface Pipe {
  decl: string[]
  assign: boolean
  cmds: Cmd[]
}
export type Node =
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

export function parse(src: string, defs: Map<string, Node[]>): Node[] {
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
