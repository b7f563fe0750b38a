/**
 * `rego.parse_module(filename, source)`: a Rego v1 module as the JSON of OPA's parsed (not
 * compiled) AST, as OPA 1.x answers it. No JavaScript library parses Rego into OPA's AST, so this
 * is hand-written, from OPA's observed output (`parity-cases/rego-parse.ts` and
 * `../rego-parse.test.ts` compare it with `opa eval`). What it does not know it refuses: a module
 * this parser is unsure of is an error (undefined), never a different AST.
 *
 * Shape, as OPA prints it: `package.path` (`data` then strings), `imports` (`path`, `alias`),
 * `rules` (`head` with `name` / `ref` / `key` / `value` / `args` / `assign`, `body` of exprs with
 * `index` / `terms` / `negated` / `with`, `default`, `else`), `comments` (row, column, file and
 * the bytes in base64). Infix operators are calls of their builtin names; `_` is `$0`, `$1`, ... in
 * source order; objects and sets are sorted and deduplicated in OPA's term order; numbers keep
 * the text they were written in (the result goes back to the module as raw JSON text).
 */
import type { RegoBuiltin } from '../rego-policy.js'
import { compareUtf8, toBase64, utf8 } from './bytes.js'
import { type Comment, RegoSyntaxError, type Token, tokenize } from './rego-lexer.js'
import { isStr, rawJson } from './scope.js'

type Term =
  | { readonly t: 'null' }
  | { readonly t: 'boolean'; readonly v: boolean }
  | { readonly t: 'number' | 'string' | 'var'; readonly v: string }
  | { readonly t: 'ref' | 'array' | 'set' | 'call'; readonly v: readonly Term[] }
  | { readonly t: 'object'; readonly v: readonly (readonly [Term, Term])[] }
  | { readonly t: 'arraycomprehension' | 'setcomprehension'; readonly term: Term; readonly body: Body }
  | { readonly t: 'objectcomprehension'; readonly key: Term; readonly value: Term; readonly body: Body }

interface With {
  readonly target: Term
  readonly value: Term
}

interface Expr {
  readonly negated: boolean
  readonly terms:
    | { readonly k: 'term'; readonly term: Term }
    | { readonly k: 'call'; readonly terms: readonly Term[] }
    | { readonly k: 'some'; readonly symbols: readonly Term[] }
    | {
        readonly k: 'every'
        readonly key: Term | undefined
        readonly value: Term
        readonly domain: Term
        readonly body: Body
      }
  readonly with: readonly With[]
}

type Body = readonly Expr[]

interface Head {
  name?: string
  ref: Term[]
  key?: Term
  value?: Term
  args?: Term[]
  assign?: boolean
}

interface Rule {
  readonly head: Head
  readonly body: Body
  readonly default?: boolean
  else?: Rule
}

interface Import {
  readonly path: Term
  readonly alias?: string
}

/** Nesting deeper than this (terms, bodies) is refused rather than risking the stack. */
const MAX_DEPTH = 200

const KEYWORDS = new Set([
  'package',
  'import',
  'as',
  'default',
  'else',
  'not',
  'with',
  'some',
  'if',
  'contains',
  'in',
  'every',
  'true',
  'false',
  'null',
])

const RELATIONS: Readonly<Record<string, string>> = {
  '==': 'equal',
  '!=': 'neq',
  '<': 'lt',
  '<=': 'lte',
  '>': 'gt',
  '>=': 'gte',
}
const ARITH: Readonly<Record<string, string>> = { '+': 'plus', '-': 'minus' }
const FACTOR: Readonly<Record<string, string>> = { '*': 'mul', '/': 'div', '%': 'rem' }

const fail = (why: string): never => {
  throw new RegoSyntaxError(why)
}

/** Input the parser gives up on whole: too deep, or too many comprehension attempts undone. */
class TooComplex extends RegoSyntaxError {}

/** Comprehension attempts that may fail and be parsed again as a collection (`[a | b]`). */
const MAX_RETRIES = 64
const v = (name: string): Term => ({ t: 'var', v: name })
const builtinRef = (...path: string[]): Term => ({
  t: 'ref',
  v: [v(path[0]!), ...path.slice(1).map((s): Term => ({ t: 'string', v: s }))],
})
const call = (op: Term, ...args: Term[]): Term => ({ t: 'call', v: [op, ...args] })

class Parser {
  private pos = 0
  private depth = 0
  private wildcards = 0

  constructor(private readonly tokens: readonly Token[]) {}

  private get tok(): Token {
    return this.tokens[this.pos]!
  }
  private peek(n = 1): Token {
    return this.tokens[Math.min(this.pos + n, this.tokens.length - 1)]!
  }
  private isOp(text: string, t: Token = this.tok): boolean {
    return t.kind === 'op' && t.text === text
  }
  private isWord(text: string, t: Token = this.tok): boolean {
    return t.kind === 'ident' && t.text === text
  }
  /** Past `in`; OPA reads `in[` and `in.` otherwise (refused). */
  private takeIn(): void {
    const next = this.peek()
    if (!next.space && (this.isOp('[', next) || this.isOp('.', next))) fail('in[ or in.')
    this.pos++
  }
  private expectOp(text: string): void {
    if (!this.isOp(text)) fail(`expected ${text}`)
    this.pos++
  }
  /** The next token touches the previous one (no space): refs, calls. */
  private touching(): boolean {
    return !this.tok.space
  }
  private retries = 0

  private enter(): void {
    if (++this.depth > MAX_DEPTH) throw new TooComplex('nesting too deep')
  }

  module(): { pkg: Term[]; imports: Import[]; rules: Rule[] } {
    if (!this.isWord('package')) fail('expected package')
    this.pos++
    const pkg: Term[] = [v('data'), { t: 'string', v: this.ident(true) }]
    for (;;) {
      if (this.isOp('.') && this.touching()) {
        this.pos++
        if (!this.touching()) fail('space after .')
        pkg.push({ t: 'string', v: this.ident(true) })
      } else if (this.isOp('[') && this.touching()) {
        this.pos++
        if (this.tok.kind !== 'str') fail('package path elements are strings')
        pkg.push({ t: 'string', v: this.tok.text })
        this.pos++
        this.expectOp(']')
      } else break
    }
    const imports: Import[] = []
    const rules: Rule[] = []
    while (this.tok.kind !== 'eof') {
      if (this.isWord('package')) fail('second package')
      if (this.isWord('import')) imports.push(this.importStmt())
      else rules.push(...this.rule())
    }
    return { pkg, imports, rules }
  }

  /** An identifier; keywords only where `allowKeyword` (after a dot). */
  private ident(allowKeyword = false): string {
    const t = this.tok
    if (t.kind !== 'ident' || (!allowKeyword && KEYWORDS.has(t.text))) fail('expected a name')
    this.pos++
    return t.text
  }

  private importStmt(): Import {
    this.pos++
    const path = this.termWithRefs()
    const elems = path.t === 'var' ? [path] : path.t === 'ref' ? path.v : fail('bad import')
    const head = elems[0]!
    if (head.t !== 'var') fail('bad import')
    const rest = elems
      .slice(1)
      .map((e) => (e.t === 'string' ? e.v : fail('import path elements are strings')))
    const root = (head as { v: string }).v
    if (root === 'future') {
      if (rest[0] !== 'keywords' || rest.length > 2) fail('bad future import')
      if (rest.length === 2 && !['in', 'every', 'if', 'contains'].includes(rest[1]!))
        fail('unknown future keyword')
    } else if (root === 'rego') {
      if (rest.length !== 1 || rest[0] !== 'v1') fail('bad rego import')
    } else if (root !== 'data' && root !== 'input') fail('import must start with data, input, future or rego')
    const ref: Term = { t: 'ref', v: elems }
    if (this.isWord('as')) {
      this.pos++
      const alias = this.ident()
      if (alias === 'data' || alias === 'input' || alias === '_') fail('bad import alias')
      if (this.isOp('.') || this.isOp('[')) fail('bad import alias')
      return { path: ref, alias }
    }
    return { path: ref }
  }

  /** One rule statement; more than one rule when it has several bodies. */
  private rule(): Rule[] {
    const isDefault = this.isWord('default')
    if (isDefault) this.pos++
    const head = this.headRef()
    // `f()` is `f` with no arguments written, except in what OPA makes of `p.q()`: refused.
    if (head.args?.length === 0 && head.ref.length === 2) fail('empty arguments on a two-part head')
    let explicit = false
    let contains = false
    if (this.isWord('contains')) {
      if (head.args !== undefined || isDefault) fail('contains on a function or default rule')
      this.pos++
      head.key = this.infix(false)
      contains = true
    } else if (this.isOp('=') || this.isOp(':=')) {
      if (this.isOp(':=')) head.assign = true
      this.pos++
      head.value = this.infix(false)
      explicit = true
      if (!isDefault && head.ref.length === 2 && head.args === undefined) {
        head.name = (head.ref[0] as { v: string }).v
        head.key = head.ref[1]!
      }
    }
    if (
      head.value === undefined &&
      head.key === undefined &&
      (head.ref.length !== 2 || head.args !== undefined)
    )
      head.value = { t: 'boolean', v: true }
    if (isDefault) {
      if (head.value === undefined) return fail('default rule without a value')
      if (head.args !== undefined && !head.args.every((a) => a.t === 'var'))
        fail('default function arguments')
      if (!constant(head.value)) fail('default rule value is not a constant')
      if (this.isWord('if') || this.isOp('{') || this.isWord('else')) fail('default rule with a body')
      return [{ head, body: TRUE_BODY, default: true }]
    }
    if (!this.isWord('if')) {
      if (!explicit && !contains && (head.args?.length ?? 0) === 0) fail('rule without a body or value')
      if (this.isOp('{') || this.isWord('else')) fail('body without if')
      return [{ head, body: TRUE_BODY }]
    }
    this.pos++
    if (!contains && head.ref.length === 2) {
      const last = head.ref[1]!
      if (head.value !== undefined) head.name = (head.ref[0] as { v: string }).v
      if ((!ground(last) || last.t === 'ref') && head.args === undefined) head.key = last
      else delete head.key
      head.value ??= { t: 'boolean', v: true }
    }
    const braced = this.isOp('{')
    const first: Rule = { head, body: this.ifBody() }
    const out: Rule[] = [first]
    if (this.isOp('{')) {
      // More bodies for the same head (`p if { a } { b }`).
      if (!braced) fail('body after a one-line body')
      while (this.isOp('{')) {
        const body = this.braceBody()
        out.push({ head: this.headCopy(head), body })
      }
      if (this.isWord('else')) fail('else after several bodies')
      return out
    }
    let last = first
    while (this.isWord('else')) {
      if (contains || head.key !== undefined) fail('else on a multi-value or partial object rule')
      if (!head.ref.slice(1).every(ground)) fail('else on a rule with variables in its ref')
      this.pos++
      const h: Head = { ref: head.ref }
      if (head.name !== undefined) h.name = head.name
      const args = this.headCopy(head).args
      if (args !== undefined) h.args = args
      if (this.isOp('=') || this.isOp(':=')) {
        if (this.isOp(':=')) h.assign = true
        this.pos++
        h.value = this.infix(false)
      } else {
        if (!this.isWord('if')) fail('else without a value or a body')
        h.value = { t: 'boolean', v: true }
        if (head.assign === true) h.assign = true
      }
      let body: Body = TRUE_BODY
      if (this.isWord('if')) {
        this.pos++
        if (this.isOp('{') && this.isOp('}', this.peek())) fail('else if {}')
        body = this.ifBody()
      } else if (this.isOp('{') || this.isWord('else')) fail('else after an else without a body')
      last.else = { head: h, body }
      last = last.else
    }
    return out
  }

  /**
   * The head again, for another body or an `else`: OPA gives each `_` argument (at the top level
   * of the argument list) a new wildcard; the rest is shared.
   */
  private headCopy(head: Head): Head {
    if (head.args === undefined) return head
    const args = head.args.map((a) => (a.t === 'var' && a.v.startsWith('$') ? this.wildcard() : a))
    return { ...head, args }
  }

  /** The rule head's name, ref and arguments. */
  private headRef(): Head {
    if (this.tok.kind !== 'ident' || KEYWORDS.has(this.tok.text)) fail('expected a rule head')
    const t = this.termWithRefs()
    if (t.t === 'var') {
      if (t.v.startsWith('$')) fail('_ as a rule name')
      return { name: t.v, ref: [t] }
    }
    if (t.t === 'ref' && t.v.length === 1) return { name: (t.v[0] as { v: string }).v, ref: [t.v[0]!] }
    if (t.t === 'ref') {
      if (t.v[0]!.t !== 'var') fail('bad rule head')
      return { ref: [...t.v] }
    }
    if (t.t === 'call') {
      const op = t.v[0]!
      const args = t.v.slice(1)
      if (op.t === 'ref' && op.v.length === 1) {
        const name = op.v[0] as { t: 'var'; v: string }
        return { name: name.v, ref: [name], args }
      }
      if (op.t !== 'ref') return fail('bad function head')
      return { ref: [...op.v], args }
    }
    return fail('bad rule head')
  }

  /**
   * After `if`: one literal, or a braced body. A `{` starts a literal, as in OPA, unless that
   * literal would be a set and nothing more (`if {a}` is the body `a`): `if {x | y}`,
   * `if {"k": 1}`, `if {}` and `if {1} == x` are literals of one term.
   */
  private ifBody(): Body {
    if (!this.isOp('{')) {
      const lit = this.literal()
      // OPA refuses a set alone after `if` (`if set()`, `if not {1}`).
      if (isBareSet(lit)) fail('a set alone after if')
      return [lit]
    }
    const start = this.pos
    const wild = this.wildcards
    const depth = this.depth
    let lit: Expr | undefined
    try {
      lit = this.literal()
    } catch (e) {
      if (!(e instanceof RegoSyntaxError) || e instanceof TooComplex) throw e
      if (++this.retries > MAX_RETRIES) throw new TooComplex('too many attempts')
    }
    if (lit !== undefined && !isBareSet(lit)) return [lit]
    this.pos = start
    this.wildcards = wild
    this.depth = depth
    return this.braceBody()
  }

  private braceBody(): Body {
    this.expectOp('{')
    const body = this.query('}')
    this.expectOp('}')
    return body
  }

  /** Literals separated by `;` or line breaks, up to (not over) the closing `end`. */
  private query(end: string): Body {
    this.enter()
    const out: Expr[] = []
    for (;;) {
      out.push(this.literal())
      if (this.isOp(end)) break
      if (this.isOp(';')) {
        this.pos++
        if (this.isOp(end)) fail('; before the end of a body')
        continue
      }
      if (!this.tok.newline) fail('expected ; or a line break between expressions')
    }
    this.depth--
    return out
  }

  private literal(): Expr {
    let negated = false
    if (this.isWord('not')) {
      this.pos++
      negated = true
      if (this.isWord('not') || this.isWord('some') || this.isWord('every')) fail('not before not/some/every')
    }
    let terms: Expr['terms']
    if (!negated && this.isWord('some')) terms = this.some()
    else if (!negated && this.isWord('every')) {
      terms = this.every()
      if (this.isWord('with')) fail('with on every')
    } else terms = this.expr()
    const withs: With[] = []
    while (this.isWord('with')) {
      this.pos++
      const target = this.termWithRefs()
      if (target.t !== 'var' && target.t !== 'ref') fail('with target')
      if (!this.isWord('as')) fail('expected as')
      this.pos++
      withs.push({ target, value: this.infix(false) })
    }
    return { negated, terms, with: withs }
  }

  private some(): Expr['terms'] {
    this.pos++
    const first = this.relation()
    if (this.isOp(',')) {
      this.pos++
      const second = this.relation()
      if (this.isWord('in')) {
        this.takeIn()
        const domain = this.relation()
        return { k: 'some', symbols: [call(builtinRef('internal', 'member_3'), first, second, domain)] }
      }
      const symbols = [first, second]
      while (this.isOp(',')) {
        this.pos++
        symbols.push(this.relation())
      }
      if (!symbols.every((s) => s.t === 'var')) fail('some declares variables')
      return { k: 'some', symbols }
    }
    if (this.isWord('in')) {
      this.takeIn()
      const domain = this.relation()
      return { k: 'some', symbols: [call(builtinRef('internal', 'member_2'), first, domain)] }
    }
    if (first.t !== 'var') fail('some declares variables')
    return { k: 'some', symbols: [first] }
  }

  private every(): Expr['terms'] {
    this.pos++
    const a = this.plainVar()
    let key: Term | undefined
    let value = a
    if (this.isOp(',')) {
      this.pos++
      key = a
      value = this.plainVar()
    }
    if (!this.isWord('in')) fail('expected in')
    this.takeIn()
    const domain = this.relation()
    if (!this.isOp('{') || this.isOp('}', this.peek())) fail('every needs a body')
    return { k: 'every', key, value, domain, body: this.braceBody() }
  }

  private plainVar(): Term {
    const name = this.ident()
    if (this.touching() && (this.isOp('.') || this.isOp('[') || this.isOp('('))) fail('expected a variable')
    return name === '_' ? this.wildcard() : v(name)
  }

  private wildcard(): Term {
    return v(`$${this.wildcards++}`)
  }

  private expr(): Expr['terms'] {
    const lhs = this.infix(true)
    if (this.isOp(':=') || this.isOp('=')) {
      const op = this.tok.text === ':=' ? 'assign' : 'eq'
      this.pos++
      const rhs = this.infix(false)
      return { k: 'call', terms: [builtinRef(op), lhs, rhs] }
    }
    if (lhs.t === 'call') return { k: 'call', terms: lhs.v }
    return { k: 'term', term: lhs }
  }

  /** `in` (and `k, v in x` where `keyVal`) over relations, left to right. */
  /** `seed`: the leftmost term, already parsed (the first element of a collection). */
  private infix(keyVal: boolean, seed?: Term): Term {
    this.enter()
    let lhs = this.relation(seed)
    if (keyVal && this.isOp(',')) {
      const save = this.pos
      const saveWild = this.wildcards
      this.pos++
      const mid = this.relation()
      if (this.isWord('in')) {
        this.takeIn()
        lhs = call(builtinRef('internal', 'member_3'), lhs, mid, this.relation())
      } else {
        this.pos = save
        this.wildcards = saveWild
      }
    }
    const depth = this.depth
    while (this.isWord('in')) {
      this.enter()
      this.takeIn()
      lhs = call(builtinRef('internal', 'member_2'), lhs, this.relation())
    }
    this.depth = depth - 1
    return lhs
  }

  private binary(next: (seed?: Term) => Term, ops: Readonly<Record<string, string>>, seed?: Term): Term {
    let lhs = next(seed)
    // Each operator nests the tree one level: counted against the depth limit.
    const depth = this.depth
    while (this.tok.kind === 'op' && Object.hasOwn(ops, this.tok.text)) {
      this.enter()
      const name = ops[this.tok.text]!
      this.pos++
      lhs = call(builtinRef(name), lhs, next())
    }
    this.depth = depth
    return lhs
  }

  private relation(seed?: Term): Term {
    return this.binary((s) => this.or(s), RELATIONS, seed)
  }
  private or(seed?: Term): Term {
    return this.binary((s) => this.and(s), { '|': 'or' }, seed)
  }
  private and(seed?: Term): Term {
    return this.binary((s) => this.arith(s), { '&': 'and' }, seed)
  }
  private arith(seed?: Term): Term {
    return this.binary((s) => this.factor(s), ARITH, seed)
  }
  private factor(seed?: Term): Term {
    return this.binary((s) => s ?? this.termWithRefs(), FACTOR, seed)
  }

  /** A term with the refs and calls written onto it (`a.b[c](d).e`). */
  private termWithRefs(): Term {
    this.enter()
    let t = this.primary()
    for (;;) {
      if (!this.touching()) break
      if (this.isOp('.')) {
        if (!refHead(t)) fail('ref on this term')
        this.pos++
        if (!this.touching()) fail('space after .')
        const key: Term = { t: 'string', v: this.ident(true) }
        t = t.t === 'ref' ? { t: 'ref', v: [...t.v, key] } : { t: 'ref', v: [t, key] }
      } else if (this.isOp('[')) {
        if (!refHead(t)) fail('ref on this term')
        this.pos++
        const key = this.infix(false)
        this.expectOp(']')
        t = t.t === 'ref' ? { t: 'ref', v: [...t.v, key] } : { t: 'ref', v: [t, key] }
      } else if (this.isOp('(')) {
        if (t.t !== 'var' && !(t.t === 'ref' && t.v[0]!.t === 'var')) fail('call on this term')
        if (t.t === 'var' && t.v.startsWith('$')) fail('call on _')
        this.pos++
        const args = this.list(')')
        const op: Term = t.t === 'var' ? { t: 'ref', v: [t] } : t
        t = { t: 'call', v: [op, ...args] }
      } else break
    }
    this.depth--
    return t
  }

  /** Comma-separated terms up to `end` (consumed), a trailing comma allowed. */
  private list(end: string): Term[] {
    const out: Term[] = []
    while (!this.isOp(end)) {
      out.push(this.infix(false))
      if (this.isOp(',')) this.pos++
      else if (!this.isOp(end)) fail(`expected , or ${end}`)
    }
    this.pos++
    return out
  }

  private primary(): Term {
    const t = this.tok
    if (t.kind === 'num') {
      this.pos++
      return { t: 'number', v: t.text }
    }
    if (t.kind === 'str') {
      this.pos++
      if (this.touching() && (this.isOp('.') || this.isOp('[') || this.isOp('('))) fail('ref on a string')
      return { t: 'string', v: t.text }
    }
    if (this.isOp('-') && this.peek().kind === 'num') {
      this.pos += 2
      return { t: 'number', v: `-${this.tokens[this.pos - 1]!.text}` }
    }
    if (t.kind === 'ident') {
      switch (t.text) {
        case 'true':
        case 'false':
          this.pos++
          return { t: 'boolean', v: t.text === 'true' }
        case 'null':
          this.pos++
          return { t: 'null' }
        case 'set':
          if (this.isOp('(', this.peek()) && !this.peek().space && this.isOp(')', this.peek(2))) {
            this.pos += 3
            return { t: 'set', v: [] }
          }
          break
      }
      if (KEYWORDS.has(t.text)) fail(`unexpected ${t.text}`)
      this.pos++
      if (t.text === 'input' || t.text === 'data') return { t: 'ref', v: [v(t.text)] }
      return t.text === '_' ? this.wildcard() : v(t.text)
    }
    if (this.isOp('(')) {
      this.pos++
      const inner = this.infix(false)
      this.expectOp(')')
      // `(x)[0]` is `x[0]` in OPA; other terms in parentheses followed by a ref are refused.
      if (this.touching() && (this.isOp('(') || ((this.isOp('.') || this.isOp('[')) && inner.t !== 'var')))
        fail('ref on parentheses')
      return inner
    }
    if (this.isOp('[')) return this.array()
    if (this.isOp('{')) return this.braces()
    return fail('expected a term')
  }

  /** A comprehension body after `|` up to `end`, or undefined (position restored) when none parses. */
  private tryComprehension(end: string): Body | undefined {
    const save = this.pos
    const saveWild = this.wildcards
    const saveDepth = this.depth
    try {
      this.pos++
      const body = this.query(end)
      this.expectOp(end)
      return body
    } catch (e) {
      if (!(e instanceof RegoSyntaxError) || e instanceof TooComplex) throw e
      if (++this.retries > MAX_RETRIES) throw new TooComplex('too many comprehension attempts')
      this.pos = save
      this.wildcards = saveWild
      this.depth = saveDepth
      return undefined
    }
  }

  /**
   * `[...]`: a comprehension when a single term (no operators) is followed by `|` and a body;
   * otherwise an array, whose first element continues from that term (`[a | b, c]` is an array).
   */
  private array(): Term {
    this.pos++
    if (this.isOp(']')) {
      this.pos++
      return { t: 'array', v: [] }
    }
    const term = this.termWithRefs()
    if (this.isOp('|')) {
      const body = this.tryComprehension(']')
      if (body !== undefined) return { t: 'arraycomprehension', term, body }
    }
    const first = this.infix(false, term)
    if (this.isOp(',')) this.pos++
    else if (!this.isOp(']')) fail('expected , or ]')
    return { t: 'array', v: [first, ...this.list(']')] }
  }

  /**
   * `{...}`: a set comprehension (a single term, `|`), an object comprehension (a key, `:`, a
   * single term, `|`), an object or a set.
   */
  private braces(): Term {
    this.pos++
    if (this.isOp('}')) {
      this.pos++
      return { t: 'object', v: [] }
    }
    const term = this.termWithRefs()
    if (this.isOp('|')) {
      const body = this.tryComprehension('}')
      if (body !== undefined) return { t: 'setcomprehension', term, body }
    }
    const first = this.infix(false, term)
    if (this.isOp(':')) {
      this.pos++
      const valueTerm = this.termWithRefs()
      if (this.isOp('|')) {
        const body = this.tryComprehension('}')
        if (body !== undefined) return { t: 'objectcomprehension', key: first, value: valueTerm, body }
      }
      const pairs: [Term, Term][] = [[first, this.infix(false, valueTerm)]]
      for (;;) {
        if (this.isOp(',')) this.pos++
        else if (!this.isOp('}')) fail('expected , or }')
        if (this.isOp('}')) break
        const k = this.infix(false)
        this.expectOp(':')
        pairs.push([k, this.infix(false)])
      }
      this.pos++
      return { t: 'object', v: canonicalObject(pairs) }
    }
    if (this.isOp(',')) this.pos++
    else if (!this.isOp('}')) fail('expected , or }')
    return { t: 'set', v: canonicalSet([first, ...this.list('}')]) }
  }
}

/** A literal that is one set term (negated or with `with`s): not a body OPA reads after `if`. */
const isBareSet = (e: Expr) => e.terms.k === 'term' && e.terms.term.t === 'set'

const TRUE_BODY: Body = [{ negated: false, terms: { k: 'term', term: { t: 'boolean', v: true } }, with: [] }]

/** Terms a ref may start from (OPA: not scalars). */
const refHead = (t: Term) => !['null', 'boolean', 'number', 'string'].includes(t.t)

function ground(t: Term): boolean {
  switch (t.t) {
    case 'var':
      return false
    case 'ref':
    case 'array':
    case 'set':
    case 'call':
      return t.v.every(ground)
    case 'object':
      return t.v.every(([k, x]) => ground(k) && ground(x))
    case 'arraycomprehension':
    case 'setcomprehension':
    case 'objectcomprehension':
      return false
    default:
      return true
  }
}

/** A default rule's value: no variables, refs or calls outside comprehensions. */
function constant(t: Term): boolean {
  switch (t.t) {
    case 'var':
    case 'ref':
    case 'call':
      return false
    case 'array':
    case 'set':
      return t.v.every(constant)
    case 'object':
      return t.v.every(([k, x]) => constant(k) && constant(x))
    default:
      return true
  }
}

const ORDER: Readonly<Record<Term['t'], number>> = {
  null: 0,
  boolean: 1,
  number: 2,
  string: 3,
  var: 4,
  ref: 5,
  array: 6,
  object: 7,
  set: 8,
  arraycomprehension: 9,
  objectcomprehension: 10,
  setcomprehension: 11,
  call: 12,
}

/** A number's text as sign, integer digits and a power of ten. */
function decimal(text: string): { neg: boolean; digits: bigint; exp: number } {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text) ?? fail('bad number')
  const frac = m[3] ?? ''
  return { neg: m[1] === '-', digits: BigInt(m[2]! + frac), exp: Number(m[4] ?? '0') - frac.length }
}

/** Exact order of two numbers' texts (OPA compares numbers exactly, not as doubles). */
function compareDecimal(a: string, b: string): number {
  const x = decimal(a)
  const y = decimal(b)
  if (Math.abs(x.exp - y.exp) > 1000) fail('numbers too far apart to compare')
  const sx = x.neg && x.digits !== 0n ? -1n : 1n
  const sy = y.neg && y.digits !== 0n ? -1n : 1n
  const low = Math.min(x.exp, y.exp)
  const vx = sx * x.digits * 10n ** BigInt(x.exp - low)
  const vy = sy * y.digits * 10n ** BigInt(y.exp - low)
  return vx < vy ? -1 : vx > vy ? 1 : 0
}

function compareList(a: readonly Term[], b: readonly Term[]): number {
  for (let i = 0; i < a.length && i < b.length; i++) {
    const c = compare(a[i]!, b[i]!)
    if (c !== 0) return c
  }
  return a.length - b.length
}

/**
 * OPA's order of terms, for sorting sets and object keys. Two numbers of equal value written
 * differently (`1`, `1.0`), and comprehensions (whose order depends on their bodies), are
 * refused: OPA keeps both and their order is not worth guessing.
 */
function compare(a: Term, b: Term): number {
  if (a.t !== b.t) return ORDER[a.t] - ORDER[b.t]
  switch (a.t) {
    case 'null':
      return 0
    case 'boolean':
      return Number(a.v) - Number((b as { v: boolean }).v)
    case 'number': {
      const c = compareDecimal(a.v, (b as { v: string }).v)
      if (c === 0 && a.v !== (b as { v: string }).v)
        fail('equal numbers written differently in a set or object')
      return c
    }
    case 'string':
    case 'var':
      return compareUtf8(a.v, (b as { v: string }).v)
    case 'ref':
    case 'array':
    case 'set':
    case 'call':
      return compareList(a.v, (b as { v: readonly Term[] }).v)
    case 'object': {
      const o = (b as { v: readonly (readonly [Term, Term])[] }).v
      for (let i = 0; i < a.v.length && i < o.length; i++) {
        const c = compare(a.v[i]![0], o[i]![0]) || compare(a.v[i]![1], o[i]![1])
        if (c !== 0) return c
      }
      return a.v.length - o.length
    }
    default:
      return fail('comprehensions in a set or object key')
  }
}

function canonicalSet(items: readonly Term[]): Term[] {
  const sorted = [...items].sort(compare)
  return sorted.filter((x, i) => i === 0 || compare(sorted[i - 1]!, x) !== 0)
}

function canonicalObject(pairs: readonly (readonly [Term, Term])[]): [Term, Term][] {
  // Sorted by key; of equal keys the last written wins.
  const indexed = pairs.map((p, i) => [p, i] as const)
  indexed.sort(([a, i], [b, j]) => compare(a[0], b[0]) || i - j)
  const out: [Term, Term][] = []
  for (let i = 0; i < indexed.length; i++) {
    const next = indexed[i + 1]
    if (next !== undefined && compare(indexed[i]![0][0], next[0][0]) === 0) continue
    out.push([indexed[i]![0][0], indexed[i]![0][1]])
  }
  return out
}

// JSON text of the AST. Numbers are written as they were in the source.

function termJson(t: Term): string {
  const typed = (value: string) => `{"type":"${t.t}","value":${value}}`
  switch (t.t) {
    case 'null':
      return typed('{}')
    case 'boolean':
      return typed(String(t.v))
    case 'number':
      return typed(t.v)
    case 'string':
    case 'var':
      return typed(JSON.stringify(t.v))
    case 'ref':
    case 'array':
    case 'set':
    case 'call':
      return typed(`[${t.v.map(termJson).join(',')}]`)
    case 'object':
      return typed(`[${t.v.map(([k, x]) => `[${termJson(k)},${termJson(x)}]`).join(',')}]`)
    case 'arraycomprehension':
    case 'setcomprehension':
      return typed(`{"term":${termJson(t.term)},"body":${bodyJson(t.body)}}`)
    case 'objectcomprehension':
      return typed(`{"key":${termJson(t.key)},"value":${termJson(t.value)},"body":${bodyJson(t.body)}}`)
  }
}

function exprJson(e: Expr, index: number): string {
  let terms: string
  switch (e.terms.k) {
    case 'term':
      terms = termJson(e.terms.term)
      break
    case 'call':
      terms = `[${e.terms.terms.map(termJson).join(',')}]`
      break
    case 'some':
      terms = `{"symbols":[${e.terms.symbols.map(termJson).join(',')}]}`
      break
    case 'every': {
      const x = e.terms
      terms = `{"key":${x.key === undefined ? 'null' : termJson(x.key)},"value":${termJson(x.value)},"domain":${termJson(x.domain)},"body":${bodyJson(x.body)}}`
    }
  }
  const parts = [`"index":${index}`, `"terms":${terms}`]
  if (e.negated) parts.push('"negated":true')
  if (e.with.length > 0)
    parts.push(
      `"with":[${e.with.map((w) => `{"target":${termJson(w.target)},"value":${termJson(w.value)}}`).join(',')}]`,
    )
  return `{${parts.join(',')}}`
}

function bodyJson(b: Body): string {
  return `[${b.map(exprJson).join(',')}]`
}

function ruleJson(r: Rule): string {
  const h = r.head
  const head: string[] = []
  if (h.name !== undefined) head.push(`"name":${JSON.stringify(h.name)}`)
  head.push(`"ref":[${h.ref.map(termJson).join(',')}]`)
  if (h.args !== undefined && h.args.length > 0) head.push(`"args":[${h.args.map(termJson).join(',')}]`)
  if (h.key !== undefined) head.push(`"key":${termJson(h.key)}`)
  if (h.value !== undefined) head.push(`"value":${termJson(h.value)}`)
  if (h.assign === true) head.push('"assign":true')
  const parts = [`"head":{${head.join(',')}}`, `"body":${bodyJson(r.body)}`]
  if (r.default === true) parts.push('"default":true')
  if (r.else !== undefined) parts.push(`"else":${ruleJson(r.else)}`)
  return `{${parts.join(',')}}`
}

function commentJson(c: Comment, file: string): string {
  const text = c.text === '' ? 'null' : JSON.stringify(toBase64(utf8(c.text)))
  return `{"Location":{"file":${JSON.stringify(file)},"row":${c.row},"col":${c.col}},"Text":${text}}`
}

/** The module's AST as OPA's JSON text, or undefined when it does not parse. */
export function parseModuleJson(filename: string, source: string): string | undefined {
  try {
    const { tokens, comments } = tokenize(source)
    const { pkg, imports, rules } = new Parser(tokens).module()
    const parts = [`"package":{"path":[${pkg.map(termJson).join(',')}]}`]
    if (imports.length > 0)
      parts.push(
        `"imports":[${imports
          .map(
            (i) =>
              `{"path":${termJson(i.path)}${i.alias === undefined ? '' : `,"alias":${JSON.stringify(i.alias)}`}}`,
          )
          .join(',')}]`,
      )
    if (rules.length > 0) parts.push(`"rules":[${rules.map(ruleJson).join(',')}]`)
    if (comments.length > 0)
      parts.push(`"comments":[${comments.map((c) => commentJson(c, filename)).join(',')}]`)
    return `{${parts.join(',')}}`
  } catch (e) {
    if (e instanceof RegoSyntaxError || e instanceof RangeError) return undefined
    throw e
  }
}

export const regoParseBuiltins: Record<string, RegoBuiltin> = {
  'rego.parse_module': (filename, source) => {
    if (!isStr(filename) || !isStr(source)) return undefined
    const json = parseModuleJson(filename, source)
    return json === undefined ? undefined : rawJson(json)
  },
}
