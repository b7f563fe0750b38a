// CEL: the issue's five expressions through the adapter (program.evaluate with a real
// RequestContext from core) and through the raw engines in the same run; large inputs; RE2 vs
// backtracking regex; loading 1,000 expressions. Target: adapter at most 1.5x raw @bufbuild/cel.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parse as bufParse, celEnv, isCelError, plan } from '@bufbuild/cel'
import { parse as marcParse } from '@marcbachmann/cel-js'
import { createCelEvaluator } from '@verdict/cel-adapter'
import { createEngine } from '@verdict/core'
import { evaluate as celJsEvaluate, parse as celJsParse } from 'cel-js'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { compare, fmtNs, table } from './harness.mjs'
import { captureContext as capture, compileProgram, freshDecision } from './lib/context-capture.mjs'
import { STREAMABLE_HTTP_HEADERS } from './lib/reference-policy.mjs'

const EXPRESSIONS = [
  'jwt.sub == "alice"',
  'jwt.email.endsWith("@company.com") && "admin" in jwt.roles',
  'request.headers["x-ext-authz"] == "allow" && request.method in ["GET", "POST"]',
  'mcp.tool.name in ["get-sum", "get-diff"] && mcp.tool.arguments.repoName.startsWith("kubernetes-sigs/")',
  'has(jwt.groups) && jwt.groups.exists(g, g.startsWith("team-")) && request.headers["user-agent"].matches("^curl/[0-9.]+$")',
]

const ISSUER = 'https://issuer.bench'
const { privateKey, publicKey } = await generateKeyPair('ES256')
const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] }

/** 11 claims once verified: iss, sub, aud, exp, iat, jti, email, name, roles, groups, scope. */
const token = await new SignJWT({
  sub: 'alice',
  aud: 'mcp',
  jti: 'b7c1',
  email: 'alice@company.com',
  name: 'Alice Example',
  roles: ['admin', 'dev'],
  groups: ['eng', 'team-platform'],
  scope: 'tools:call tools:list',
})
  .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
  .setIssuer(ISSUER)
  .setIssuedAt()
  .setExpirationTime('1h')
  .sign(privateKey)

const AUTHENTICATION = { jwt: { mode: 'Strict', providers: [{ issuer: ISSUER, jwks: { inline: jwks } }] } }
const captureContext = (input) => capture(input, AUTHENTICATION)

/** A Streamable HTTP tools/call with 15 headers and 5 tool arguments (plus `extra` ones). */
function toolCall(extraArgs = {}) {
  const args = {
    repoName: 'kubernetes-sigs/gateway-api',
    question: 'How do HTTPRoutes attach to Gateways?',
    depth: 2,
    includeCode: true,
    tags: ['routing', 'gateway'],
    ...extraArgs,
  }
  return {
    method: 'POST',
    path: '/mcp',
    host: 'mcp.internal',
    scheme: 'https',
    headers: {
      ...STREAMABLE_HTTP_HEADERS,
      authorization: `Bearer ${token}`,
      // Expression 5 matches `^curl/`.
      'user-agent': 'curl/8.5.0',
      'x-ext-authz': 'allow',
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: { name: 'get-sum', arguments: args },
    }),
  }
}

/** The plain-object activation a user of a raw engine would pass for the same request. */
function plainActivation(c) {
  return {
    jwt: { ...c.jwt },
    request: {
      method: c.input.method,
      path: c.input.path,
      host: c.input.host,
      headers: { ...c.input.headers },
    },
    mcp: {
      method: c.mcp.method,
      id: c.mcp.id,
      tool: { name: c.mcp.tool.name, arguments: c.mcp.tool.arguments },
    },
  }
}

const evaluator = createCelEvaluator()
/** The same adapter with every expression on @bufbuild/cel (no direct evaluation). */
const engineOnly = createCelEvaluator({ fastPath: false })
const adapterProgram = (expr, ev = evaluator) => compileProgram(ev, expr)

const bufEnv = celEnv()
const bufProgram = (expr) => plan(bufEnv, bufParse(expr))

function check(name, v) {
  if (v !== true) throw new Error(`${name} returned ${isCelError(v) ? v.message : String(v)}`)
}

async function expressions(report, ctx) {
  const raw = plainActivation(ctx)
  const rows = []
  const ratios = []
  for (const [i, expr] of EXPRESSIONS.entries()) {
    const adapter = adapterProgram(expr)
    const slow = adapterProgram(expr, engineOnly)
    const buf = bufProgram(expr)
    const marc = marcParse(expr)
    const cj = celJsParse(expr)
    check('adapter', adapter.evaluate(freshDecision(ctx)).value)
    check('adapter, fastPath: false', slow.evaluate(freshDecision(ctx)).value)
    check('buf', buf(raw))
    check('marc', marc(raw))
    let celJsOk = false
    try {
      celJsOk = celJsEvaluate(cj.cst, raw) === true
    } catch {}
    const contenders = [
      { name: 'adapter', fn: () => adapter.evaluate(freshDecision(ctx)) },
      { name: 'adapter, fastPath: false', fn: () => slow.evaluate(freshDecision(ctx)) },
      { name: '@bufbuild/cel (raw)', fn: () => buf(raw) },
      { name: '@marcbachmann/cel-js', fn: () => marc(raw) },
    ]
    if (celJsOk) contenders.push({ name: 'cel-js (npm)', fn: () => celJsEvaluate(cj.cst, raw) })
    const res = await compare(contenders)
    const get = (n) => res.find((r) => r.name === n)?.medianNs
    const ratio = get('adapter') / get('@bufbuild/cel (raw)')
    ratios.push(ratio)
    rows.push(
      `| ${i + 1} | ${fmtNs(get('adapter'))} | ${fmtNs(get('adapter, fastPath: false'))} | ${fmtNs(get('@bufbuild/cel (raw)'))} | ${ratio.toFixed(2)}x | ${fmtNs(get('@marcbachmann/cel-js'))} | ${celJsOk ? fmtNs(get('cel-js (npm)')) : 'unsupported (no string methods)'} |`,
    )
  }
  const list = EXPRESSIONS.map((e, i) => `${i + 1}. \`${e}\``).join('\n')
  report.section(
    'CEL: five expressions, adapter vs raw engines',
    `${list}\n\nRealistic activation: 15 headers, 11 verified JWT claims, a tools/call with 5 arguments. ` +
      'The adapter runs `program.evaluate(ctx)` on the RequestContext core built for the request, with a ' +
      'fresh per-decision memo each time (so the variables are rebuilt as in a new decision); the raw ' +
      'engines get a plain-object activation built once. All five take the direct path ' +
      '(docs/cel.md, "Direct evaluation"; 5 spends its time in the RE2 match); `fastPath: false` ' +
      'runs every expression on @bufbuild/cel. Target: adapter at most 1.5x raw @bufbuild/cel.\n\n' +
      '| expr | adapter | adapter, fastPath: false | @bufbuild/cel raw | adapter / raw | @marcbachmann/cel-js | cel-js (npm) |\n|---|---|---|---|---|---|---|\n' +
      `${rows.join('\n')}\n\nWorst adapter / raw ratio: ${Math.max(...ratios).toFixed(2)}x.`,
  )
}

async function largeInputs(report) {
  const expr = 'mcp.tool.arguments.repoName.startsWith("kubernetes-sigs/")'
  const adapter = adapterProgram(expr)
  const buf = bufProgram(expr)
  const rows = []
  for (const n of [1_000, 10_000, 100_000]) {
    const extra = Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))
    const ctx = await captureContext(toolCall(extra))
    const raw = plainActivation(ctx)
    check('adapter', adapter.evaluate(freshDecision(ctx)).value)
    const res = await compare(
      [
        { name: `adapter, ${n} keys`, fn: () => adapter.evaluate(freshDecision(ctx)) },
        { name: `@bufbuild/cel raw, ${n} keys`, fn: () => buf(raw) },
      ],
      { rounds: 5 },
    )
    rows.push(...res)
  }
  const strRows = []
  const re = adapterProgram('mcp.tool.arguments.text.matches("^(a+)+$")')
  const contains = adapterProgram('mcp.tool.arguments.text.contains("needle")')
  for (const size of [10_000, 100_000, 250_000, 1_000_000]) {
    const ctx = await captureContext(toolCall({ text: `${'a'.repeat(size)}!` }))
    const contenders = [
      { name: `contains("needle"), ${size / 1000} kB`, fn: () => contains.evaluate(freshDecision(ctx)) },
    ]
    // Over 256 Ki characters a regex is an error (fail closed), by the adapter's default limit.
    if (size < 262_144) {
      contenders.push({
        name: `matches("^(a+)+$"), ${size / 1000} kB`,
        fn: () => re.evaluate(freshDecision(ctx)),
      })
    }
    strRows.push(...(await compare(contenders, { rounds: 5, sampleMs: 200 })))
  }
  report.section(
    'CEL: large inputs stay linear',
    `\`${expr}\` with an argument object of growing size: the adapter's lazy map view looks one key up; ` +
      'raw @bufbuild/cel copies every entry on each access.\n\n' +
      `${table(rows)}\n\nA string argument of growing size (RE2 regex, linear scan):\n\n${table(strRows)}`,
  )
}

function redos(report) {
  const lines = []
  const adapter = adapterProgram('mcp.tool.arguments.text.matches("^(a+)+$")')
  const time = (fn) => {
    const t0 = process.hrtime.bigint()
    const v = fn()
    return [Number(process.hrtime.bigint() - t0), v]
  }
  return (async () => {
    for (const n of [30, 1000]) {
      const ctx = await captureContext(toolCall({ text: `${'a'.repeat(n)}!` }))
      adapter.evaluate(freshDecision(ctx))
      const [ns, v] = time(() => adapter.evaluate(freshDecision(ctx)))
      lines.push(`| adapter (@bufbuild/cel, RE2) | ${n} | ${fmtNs(ns)} | ${v.value} |`)
    }
    const marc = marcParse('s.matches("^(a+)+$")')
    for (let i = 0; i < 50; i++) marc({ s: `${'a'.repeat(8)}!` })
    for (const n of [16, 18, 20, 22]) {
      const [ns, v] = time(() => marc({ s: `${'a'.repeat(n)}!` }))
      lines.push(`| @marcbachmann/cel-js (JS RegExp) | ${n} | ${fmtNs(ns)} | ${v} |`)
    }
    report.section(
      'CEL: catastrophic backtracking',
      '`"a" x n + "!"` against `^(a+)+$`, one evaluation each (marc is stopped at n = 22: every extra ' +
        'character doubles its time; protocols.md measured 12.4 s at n = 29).\n\n' +
        `| engine | n | time | result |\n|---|---|---|---|\n${lines.join('\n')}`,
    )
  })()
}

async function loading(report) {
  const rules = Array.from({ length: 1000 }, (_, i) => ({
    id: `r${i}`,
    action: i % 3 === 0 ? 'deny' : 'allow',
    cel:
      `jwt.sub == "user${i}" && request.headers["x-team"] in ["t${i}", "ops"] && ` +
      `mcp.tool.name.startsWith("tool-${i % 17}") && default(mcp.tool.arguments.limit, 0) < ${i + 10}`,
  }))
  const times = []
  for (let k = 0; k < 5; k++) {
    const t0 = process.hrtime.bigint()
    const engine = await createEngine({ rules }, { evaluators: [createCelEvaluator()] })
    times.push(Number(process.hrtime.bigint() - t0))
    engine.close()
  }
  times.sort((a, b) => a - b)
  const t0 = process.hrtime.bigint()
  for (const r of rules) compileProgram(evaluator, r.cel)
  const compileOnly = Number(process.hrtime.bigint() - t0)
  const reuse = createCelEvaluator()
  await createEngine({ rules }, { evaluators: [reuse] })
  const t1 = process.hrtime.bigint()
  await createEngine({ rules }, { evaluators: [reuse] })
  const reload = Number(process.hrtime.bigint() - t1)
  const cold = coldLoad(rules)
  report.section(
    'CEL: loading 1,000 expressions',
    'A policy with 1,000 CEL rules (each ~150 characters, 4 clauses), loaded with createEngine ' +
      '(schema validation + compile of every expression). Target: under 1 s.\n\n' +
      '| load | time |\n|---|---|\n' +
      `| cold: a fresh Node process, first policy (parser not yet optimized by V8) | ${fmtNs(cold)} |\n` +
      `| warm: median of 5 loads in this process (min ${fmtNs(times[0])}, max ${fmtNs(times[4])}) | ${fmtNs(times[2])} |\n` +
      `| warm: the 1,000 CEL compiles alone | ${fmtNs(compileOnly)} |\n` +
      `| reload of the same policy with the same evaluator (compile cache) | ${fmtNs(reload)} |`,
  )
}

/** One load in a new process: what a gateway pays when it starts with this policy. */
function coldLoad(rules) {
  const script = `
    import { readFileSync } from 'node:fs'
    import { createEngine } from '@verdict/core'
    import { createCelEvaluator } from '@verdict/cel-adapter'
    const rules = JSON.parse(readFileSync(0, 'utf8'))
    const t0 = process.hrtime.bigint()
    await createEngine({ rules }, { evaluators: [createCelEvaluator()] })
    console.log(Number(process.hrtime.bigint() - t0))`
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    input: JSON.stringify(rules),
    cwd: fileURLToPath(new URL('.', import.meta.url)),
    encoding: 'utf8',
  })
  return Number(out.trim())
}

export default async function (report) {
  const ctx = await captureContext(toolCall())
  await expressions(report, ctx)
  await largeInputs(report)
  await redos(report)
  await loading(report)
}
