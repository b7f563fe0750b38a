/**
 * The built-in `match` rule body: methods, paths, hosts, principals and headers, with no engine
 * behind it. Every listed field must match; within a list any entry may match.
 */
import type { RequestContext } from './context.js'
import type { Problem } from './errors.js'
import { type CompileResult, type CompileSite, type EvalResult, type Evaluator, ok } from './evaluator.js'

interface StringMatch {
  exact?: string
  prefix?: string
  suffix?: string
  contains?: string
}

interface HeaderMatch extends StringMatch {
  name: string
  present?: boolean
}

interface MatchConfig {
  methods?: string[]
  paths?: StringMatch[]
  hosts?: StringMatch[]
  principals?: StringMatch[]
  headers?: HeaderMatch[]
  always?: boolean
}

type Test = (ctx: RequestContext) => boolean

function stringTest(m: StringMatch): (s: string) => boolean {
  if (m.exact !== undefined) {
    const e = m.exact
    return (s) => s === e
  }
  if (m.prefix !== undefined) {
    const p = m.prefix
    return (s) => s.startsWith(p)
  }
  if (m.suffix !== undefined) {
    const x = m.suffix
    return (s) => s.endsWith(x)
  }
  const c = m.contains ?? ''
  return (s) => s.includes(c)
}

function anyOf(list: StringMatch[]): (s: string | undefined) => boolean {
  const tests = list.map(stringTest)
  return (s) => s !== undefined && tests.some((t) => t(s))
}

const TRUE: EvalResult = ok(true)
const FALSE: EvalResult = ok(false)

/** The `match` evaluator; always registered by the engine. */
export const matchEvaluator: Evaluator = {
  kind: 'match',
  compile(config: unknown, site?: CompileSite): CompileResult {
    // Shape already checked by the policy schema.
    const c = config as MatchConfig
    const tests: Test[] = []
    if (c.always === false) tests.push(() => false)
    if (c.methods !== undefined) {
      const set = new Set(c.methods.map((m) => m.toUpperCase()))
      tests.push((ctx) => set.has(ctx.input.method))
    }
    if (c.paths !== undefined) {
      const t = anyOf(c.paths)
      tests.push((ctx) => t(ctx.input.path))
    }
    if (c.hosts !== undefined) {
      const t = anyOf(c.hosts)
      tests.push((ctx) => t(ctx.input.host))
    }
    if (c.principals !== undefined) {
      const t = anyOf(c.principals)
      tests.push((ctx) => t(ctx.input.source.principal))
    }
    const problems: Problem[] = []
    const readsHeaders: string[] = []
    for (const [i, h] of (c.headers ?? []).entries()) {
      const name = h.name.toLowerCase()
      const conditions = [h.present, h.exact, h.prefix, h.suffix, h.contains].filter((x) => x !== undefined)
      // A name alone would add no test and match every request.
      if (conditions.length !== 1)
        problems.push({
          code: 'compile',
          message: 'a header entry needs exactly one condition',
          path: `${site?.path ?? ''}/headers/${i}`,
        })
      if (h.present !== undefined) {
        const want = h.present
        tests.push((ctx) => (ctx.input.headers[name] !== undefined) === want)
      }
      if (
        h.exact !== undefined ||
        h.prefix !== undefined ||
        h.suffix !== undefined ||
        h.contains !== undefined
      ) {
        const t = stringTest(h)
        readsHeaders.push(name)
        tests.push((ctx) => {
          const v = ctx.input.headers[name]
          return v !== undefined && t(v)
        })
      }
    }
    // An empty matcher matches everything: only `always: true` may say so.
    if (tests.length === 0 && c.always !== true && problems.length === 0)
      problems.push({
        code: 'compile',
        message: 'an empty matcher matches every request: write always: true',
        path: site?.path ?? '',
      })
    if (problems.length > 0) return { ok: false, problems }
    const program = {
      evaluate(ctx: RequestContext): EvalResult {
        for (const t of tests) if (!t(ctx)) return FALSE
        return TRUE
      },
      readsHeaders,
    }
    return { ok: true, program }
  },
}
