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
        // `request` as a whole: passed on, iterated, compared.
        if (k.value.name === 'request') all = true
        return
      case 'selectExpr': {
        const op = k.value.operand
        if (isHeaders(op)) {
          if (!k.value.testOnly) add(k.value.field)
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
        if ((c.function === '_[_]' || c.function === '_[?_]') && isHeaders(c.args[0])) {
          const idx = c.args[1]?.exprKind
          if (idx?.case === 'constExpr' && idx.value.constantKind.case === 'stringValue')
            add(idx.value.constantKind.value)
          else all = true
          return
        }
        // `"x" in request.headers` tests presence.
        if (c.function === '@in' && isHeaders(c.args[1])) {
          visit(c.args[0])
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
