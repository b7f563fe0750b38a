// How decide() scales with the reference policy (lib/reference-policy.mjs): 10 / 1k / 10k rules,
// 10 / 1k / 10k allowed tools (target: flat within 1.2x), request bodies of 1 KB / 100 KB / 1 MB,
// and many JWT issuers with the token from the last one. The request always names the last rule's
// or the last allowed tool, the worst case for anything that scans a list.
import { createCelEvaluator } from '@verdict/cel-adapter'
import { compare, fmtNs, table } from './harness.mjs'
import { optionalImport } from './lib/packages.mjs'
import {
  celList,
  celPolicy,
  createIssuer,
  createUserSide,
  engineFor,
  HEADER_EXPR,
  handCheck,
  jwtAuthentication,
  mcpPolicy,
  REPOS,
  toolCall,
} from './lib/reference-policy.mjs'

const SIZES = [10, 1_000, 10_000]
const label = (n) => (n >= 1000 ? `${n / 1000}k` : String(n))
const toolNames = (n) => Array.from({ length: n }, (_, i) => `tool-${i}`)
// A 10k-name list literal is ~150 kB of CEL; the default limit (16 kB) is for hand-written rules.
const cel = () => createCelEvaluator({ maxExpressionLength: 1_000_000 })

async function timed(make) {
  const t0 = process.hrtime.bigint()
  const v = await make()
  return [v, Number(process.hrtime.bigint() - t0)]
}

async function expectAllowed(name, engine, request) {
  const d = await engine.decide(request)
  if (!d.allowed) throw new Error(`${name}: bench request denied: ${d.reason}`)
  const other = await engine.decide({ ...request, body: request.body.replace(/"tool-\d+"/, '"tool-x"') })
  if (other.allowed) throw new Error(`${name}: a tool outside the list was allowed`)
}

/** N rules, one per tool; the request matches only the last. */
async function manyRules(report, issuer, token, mcp) {
  const rows = []
  const loads = []
  for (const n of SIZES) {
    // N rules in all: the header rule and one per tool (the schema allows at most 10,000).
    const tools = toolNames(n - 1)
    const request = toolCall({ token, tool: tools[n - 2], args: { repoName: REPOS[0] } })
    const kinds = [
      {
        kind: 'CEL',
        base: celPolicy([issuer]),
        evaluator: cel,
        body: (t) => ({ cel: `mcp.tool.name == "${t}" && mcp.tool.arguments.repoName in ${celList(REPOS)}` }),
      },
    ]
    if (mcp !== undefined)
      kinds.push({
        kind: 'mcp',
        base: mcpPolicy([issuer]),
        evaluator: () => mcp.createMcpEvaluator(),
        body: (t) => ({ mcp: { tools: [t], arguments: { repoName: { in: REPOS } } } }),
      })
    const contenders = []
    const engines = []
    for (const { kind, base, evaluator, body } of kinds) {
      base.rules = [base.rules[0], ...tools.map((t) => ({ id: `tool-${t}`, action: 'allow', ...body(t) }))]
      const [engine, load] = await timed(() => engineFor(base, [evaluator()]))
      await expectAllowed(`${n} ${kind} rules`, engine, request)
      engines.push(engine)
      contenders.push({ name: `${label(n)} ${kind} rules`, fn: () => engine.decide(request), async: true })
      loads.push(`| ${label(n)} | ${kind} | ${fmtNs(load)} |`)
    }
    rows.push(...(await compare(contenders, { rounds: 5 })))
    for (const e of engines) e.close()
  }
  const per = (kind) => {
    const a = rows.find((r) => r.name === `10 ${kind} rules`)
    const b = rows.find((r) => r.name === `10k ${kind} rules`)
    return a && b ? fmtNs((b.medianNs - a.medianNs) / (10_000 - 10)) : 'n/a'
  }
  report.section(
    'Scale: 10 / 1k / 10k rules',
    `The reference policy (JWT cache hit, header rule) with N rules: the header rule and one allow
rule per tool, \`tool-0\` ... \`tool-N-2\`; the request calls the last one, so every rule is evaluated (allow rules run in order
and the first true one wins: cost grows linearly by design). Each size is measured in its own
interleaved run (a 10k-rule engine holds its rules while it runs).

${table(rows, ['10 CEL rules'])}

Cost of one more rule that does not match: CEL ${per('CEL')}, mcp ${per('mcp')}.

Load time (createEngine: schema validation and compiling every rule), one load each:

| rules | kind | load |
|---|---|---|
${loads.join('\n')}`,
  )
}

/** One rule whose allow-list holds N tools; the request calls the last one. */
async function manyTools(report, issuer, token, user, mcp) {
  const contenders = []
  const engines = []
  for (const n of SIZES) {
    const tools = toolNames(n)
    const request = toolCall({ token, tool: tools[n - 1], args: { repoName: REPOS[0] } })
    const celEngine = await engineFor(celPolicy([issuer], { tools }), [cel()])
    await expectAllowed(`CEL, ${n} tools`, celEngine, request)
    engines.push(celEngine)
    contenders.push({
      name: `CEL \`in\` list, ${label(n)} tools`,
      fn: () => celEngine.decide(request),
      async: true,
    })
    if (mcp !== undefined) {
      const mcpEngine = await engineFor(mcpPolicy([issuer], { tools }), [mcp.createMcpEvaluator()])
      await expectAllowed(`mcp, ${n} tools`, mcpEngine, request)
      engines.push(mcpEngine)
      contenders.push({
        name: `mcp rule, ${label(n)} tools`,
        fn: () => mcpEngine.decide(request),
        async: true,
      })
    }
    const hand = user.authorizer(handCheck(tools))
    if (!(await hand(request))) throw new Error('hand-written denied the bench request')
    contenders.push({ name: `hand-written (Set), ${label(n)} tools`, fn: () => hand(request), async: true })
  }
  const rows = await compare(contenders)
  for (const e of engines) e.close()
  const flat = (prefix) => {
    const a = rows.find((r) => r.name === `${prefix}, 10 tools`)
    const b = rows.find((r) => r.name === `${prefix}, 10k tools`)
    if (!a || !b) return undefined
    const r = b.medianNs / a.medianNs
    return `| ${prefix} | ${r.toFixed(2)}x | ${r <= 1.2 ? 'met' : '**missed**'} |`
  }
  const verdicts = ['CEL `in` list', 'mcp rule', 'hand-written (Set)'].map(flat).filter(Boolean)
  report.section(
    'Scale: 10 / 1k / 10k allowed tools',
    `The reference policy with an allow-list of N tools (one rule; the request calls the last tool of
the list): as a CEL list literal (\`mcp.tool.name in [...]\`), as an \`mcp\` rule's \`tools\`, and the
hand-written end-to-end function with a Set. All sizes in one interleaved run.

${table(rows, ['CEL `in` list, 10 tools'])}

Target: latency flat within 1.2x from 10 to 10k allowed tools.

| allow-list as | 10k / 10 | target |
|---|---|---|
${verdicts.join('\n')}`,
  )
}

/** The reference policy on 1 KB / 100 KB / 1 MB bodies (a padding argument). */
async function bodies(report, issuer, token, user) {
  const engine = await engineFor(celPolicy([issuer], { maxBodyBytes: 2 * 1024 * 1024 }), [
    createCelEvaluator(),
  ])
  const hand = user.authorizer(handCheck())
  const contenders = []
  for (const [name, bytes] of [
    ['1 KB', 1024],
    ['100 KB', 100 * 1024],
    ['1 MB', 1024 * 1024],
  ]) {
    const request = toolCall({ token, padBytes: bytes })
    const d = await engine.decide(request)
    if (!d.allowed || !(await hand(request))) throw new Error(`${name} body denied: ${d.reason}`)
    contenders.push(
      { name: `decide() · CEL, ${name}`, fn: () => engine.decide(request), async: true },
      { name: `hand-written, ${name}`, fn: () => hand(request), async: true },
      { name: `JSON.parse only, ${name}`, fn: () => JSON.parse(request.body) },
    )
  }
  const rows = await compare(contenders, { rounds: 5, sampleMs: 200 })
  engine.close()
  const ratio = (size) =>
    (
      rows.find((r) => r.name === `decide() · CEL, ${size}`).medianNs /
      rows.find((r) => r.name === `JSON.parse only, ${size}`).medianNs
    ).toFixed(2)
  report.section(
    'Scale: request bodies of 1 KB / 100 KB / 1 MB',
    `The reference policy (CEL rules, JWT cache hit) on a tools/call whose arguments carry a padding
string up to the size; \`input.maxBodyBytes\` raised to 2 MiB. The hand-written row parses the body
once with \`JSON.parse\` and checks the call; the \`JSON.parse only\` rows are the floor any
authorizer that reads the body pays.

${table(rows, ['JSON.parse only, 1 KB'])}

decide() / JSON.parse of the same body: 1 KB ${ratio('1 KB')}x, 100 KB ${ratio('100 KB')}x, 1 MB ${ratio('1 MB')}x.`,
  )
}

/** Many providers, the token from the last; cache hits and cold verification. */
async function issuers(report) {
  const many = []
  for (let i = 0; i < 100; i++) many.push(await createIssuer(`https://idp-${i}.bench.example`, `k${i}`))
  let cap = many.length
  let note = ''
  try {
    await engineFor(celPolicy(many), [createCelEvaluator()])
  } catch (e) {
    // The policy schema bounds the provider list; measure at the bound and say so.
    cap = 64
    const why = e.problems?.map((p) => `\`${p.path}\`: ${p.message}`).join('; ') ?? String(e.message)
    note = `A policy with ${many.length} providers is rejected when it loads (${why}), so the largest set measured is ${cap} providers, the schema's maximum.`
  }
  const last = many[cap - 1]
  const token = await last.sign()
  const request = toolCall({ token })
  const contenders = []
  const engines = []
  for (const [n, list] of [
    [1, [last]],
    [cap, many.slice(0, cap)],
  ]) {
    for (const [mode, cache] of [
      ['cache hit', undefined],
      ['cold (cache off)', { maxEntries: 0 }],
    ]) {
      const policy = {
        name: `issuers-${n}`,
        authentication: jwtAuthentication(list, cache),
        rules: [{ id: 'ext-authz-header', action: 'allow', cel: HEADER_EXPR }],
      }
      const engine = await engineFor(policy, [createCelEvaluator()])
      const d = await engine.decide(request)
      if (!d.allowed) throw new Error(`${n} issuers, ${mode}: denied: ${d.reason}`)
      engines.push(engine)
      contenders.push({
        name: `${n} provider${n > 1 ? 's' : ''}, ${mode}`,
        fn: () => engine.decide(request),
        async: true,
      })
    }
  }
  const rows = await compare(contenders, { rounds: 5 })
  for (const e of engines) e.close()
  report.section(
    `Scale: ${cap} JWT issuers`,
    `A policy with N JWT providers (each its own ES256 key, inline JWKS) and one CEL header rule; the
token comes from the last provider listed. Cache hits skip verification; with the cache off every
decision verifies the signature again.${note ? `\n\n${note}` : ''}

${table(rows, ['1 provider, cache hit', '1 provider, cold (cache off)'])}`,
  )
}

export default async function (report) {
  const issuer = await createIssuer()
  const token = await issuer.sign()
  const user = createUserSide([issuer])
  const mcp = await optionalImport('@verdict/mcp')
  const mcpMod = typeof mcp === 'string' ? undefined : mcp
  await manyTools(report, issuer, token, user, mcpMod)
  await manyRules(report, issuer, token, mcpMod)
  await bodies(report, issuer, token, user)
  await issuers(report)
}
