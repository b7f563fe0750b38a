// A RequestContext captured from a real decision, fresh per-decision copies of it, and rule
// programs compiled outside an engine, for benchmarks that time rule programs alone (cel.bench.mjs,
// the reference suite).
import { createEngine } from '@verdict/core'

/**
 * The RequestContext core builds for `input` under `authentication`, captured from inside a real
 * decision.
 */
export async function captureContext(input, authentication) {
  let captured
  const capture = {
    kind: 'capture',
    compile: () => ({
      ok: true,
      program: {
        evaluate(ctx) {
          captured = ctx
          return { ok: true, value: true }
        },
      },
    }),
  }
  const engine = await createEngine(
    {
      authentication,
      timeoutMs: 60_000,
      rules: [{ id: 'capture', action: 'allow', capture: {} }],
    },
    { evaluators: [capture] },
  )
  const d = await engine.decide(input)
  engine.close()
  if (!d.allowed || captured === undefined) throw new Error(`capture failed: ${d.reason}`)
  return captured
}

/**
 * The captured context for one more decision: same request, an empty per-decision memo, so every
 * iteration builds the CEL variables again as a new decision would. A class like core's own
 * DecisionContext (an object literal with a getter costs microseconds to create).
 */
class FreshDecision {
  constructor(c) {
    this.c = c
    this.input = c.input
    this.jwt = c.jwt
    this.identity = c.identity
    this.mcp = c.mcp
    this.now = c.now
    this.cache = undefined
  }
  get parsedBody() {
    return this.c.parsedBody
  }
  refuse(d) {
    this.c.refuse(d)
  }
  memo(key, make) {
    this.cache ??= new Map()
    if (this.cache.has(key)) return this.cache.get(key)
    const v = make()
    this.cache.set(key, v)
    return v
  }
}

export const freshDecision = (c) => new FreshDecision(c)

/** Where a bench rule body sits, for `evaluator.compile`. */
const SITE = {
  ruleId: 'bench',
  path: '/rules/0/cel',
  resources: { read: async () => new Uint8Array() },
  document: {},
}

/** The program `evaluator` compiles from `config` (a rule body); throws on any problem. */
export function compileProgram(evaluator, config) {
  const r = evaluator.compile(config, SITE)
  if (!r.ok) throw new Error(JSON.stringify(r.problems))
  return r.program
}
