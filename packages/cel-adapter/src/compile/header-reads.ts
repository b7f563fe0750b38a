/**
 * Which headers an expression reads as one value. The engine refuses a request where such a header
 * has several values (`x-role: user,admin`), so a rule written against one value never decides on
 * a list. Reads of every value (`request.headerValues`) and presence tests (`has(...)`, `in`) do
 * not count.
 */
import type { Expr } from '@bufbuild/cel-spec/cel/expr/syntax_pb.js'

function isRequest(e: Expr | undefined): boolean {
  return e?.exprKind.case === 'identExpr' && e.exprKind.value.name === 'request'
}

/** `request.headers` itself. */
function isHeaders(e: Expr | undefined): boolean {
  if (e?.exprKind.case !== 'selectExpr') return false
  const s = e.exprKind.value
  return !s.testOnly && s.field === 'headers' && isRequest(s.operand)
}

/** agentgateway's header views: `request.headers.join()`, `.split()`, `.raw()`, `.redacted()`. */
const VIEWS = new Set(['join', 'split', 'raw', 'redacted'])

/**
 * `request.headers` or a view of it: `'one'` when a lookup gives the header as one value (the map
 * itself, `redacted()` of it), `'list'` when the expression asked for every value (`split()`,
 * `raw()`, and `join()`, which says it wants them joined), undefined for anything else.
 */
function headerView(e: Expr | undefined): 'one' | 'list' | undefined {
  if (isHeaders(e)) return 'one'
  if (e?.exprKind.case !== 'callExpr') return undefined
  const c = e.exprKind.value
  if (!VIEWS.has(c.function) || c.args.length !== 0) return undefined
  const of = headerView(c.target)
  if (of === undefined) return undefined
  if (c.function === 'redacted') return of
  return 'list'
}

/**
 * Lower-case names from `request.headers["x"]` and `request.headers.x`, or `'all'` when the
 * expression reads the map any other way (a computed key, iteration, the whole map or `request`).
 */
export function headerReads(root: Expr): readonly string[] | 'all' {
  const names: string[] = []
  let all = false
  const add = (n: string): void => {
    const lower = n.toLowerCase()
    if (!names.includes(lower)) names.push(lower)
  }
  const visit = (e: Expr | undefined): void => {
    if (e === undefined || all) return
    const k = e.exprKind
    switch (k.case) {
      case 'identExpr':
        // `request` as a whole: passed on, iterated, compared; `variables()` (rewritten to
        // `@variables` when the expression loads) hands `request` over too.
        if (k.value.name === 'request' || k.value.name === '@variables') all = true
        return
      case 'selectExpr': {
        const op = k.value.operand
        const view = headerView(op)
        if (view !== undefined) {
          if (!k.value.testOnly && view === 'one') add(k.value.field)
          return
        }
        if (isHeaders(e)) {
          all = true
          return
        }
        if (isRequest(op)) return
        visit(op)
        return
      }
      case 'callExpr': {
        const c = k.value
        const indexed = c.function === '_[_]' || c.function === '_[?_]' ? headerView(c.args[0]) : undefined
        if (indexed !== undefined) {
          const idx = c.args[1]?.exprKind
          if (idx?.case === 'constExpr' && idx.value.constantKind.case === 'stringValue') {
            if (indexed === 'one') add(idx.value.constantKind.value)
          } else if (indexed === 'one') all = true
          else visit(c.args[1])
          return
        }
        // `"x" in request.headers` tests presence.
        if (c.function === '@in' && headerView(c.args[1]) !== undefined) {
          visit(c.args[0])
          return
        }
        // A view as a whole: one value per header, or every value (`split()`, `raw()`).
        const view = headerView(e)
        if (view !== undefined) {
          if (view === 'one') all = true
          return
        }
        // `request.headers.cookie("name")`: the cookie header, one cookie list whatever the lines.
        if (c.function === 'cookie' && headerView(c.target) !== undefined) {
          add('cookie')
          for (const a of c.args) visit(a)
          return
        }
        // `variables()` hands every variable over, `request` included.
        if (c.function === 'variables' && c.target === undefined && c.args.length === 0) {
          all = true
          return
        }
        visit(c.target)
        for (const a of c.args) visit(a)
        return
      }
      case 'listExpr':
        for (const x of k.value.elements) visit(x)
        return
      case 'structExpr':
        for (const entry of k.value.entries) {
          if (entry.keyKind.case === 'mapKey') visit(entry.keyKind.value)
          visit(entry.value)
        }
        return
      case 'comprehensionExpr': {
        const c = k.value
        visit(c.iterRange)
        visit(c.accuInit)
        visit(c.loopCondition)
        visit(c.loopStep)
        visit(c.result)
        return
      }
      default:
        return
    }
  }
  visit(root)
  return all ? 'all' : names
}
