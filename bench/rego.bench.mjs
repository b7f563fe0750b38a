// Rego rules (OPA wasm) through @verdict/rego-adapter next to calling opa-wasm's `evaluate()`
// directly on the same module, data and input. Target (issue 5): a rule's cost within 1.3x of the
// direct call. The module is the WAT fixture of packages/rego-adapter (it does almost nothing, so
// the ratio shows the adapter's overhead at its largest); with `opa` on PATH or OPA_BIN set, the
// example OPA-Envoy policy is compiled and measured too.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadPolicy } from '@open-policy-agent/opa-wasm'
import { createEngine } from '@verdict/core'
import { createRegoEvaluator } from '@verdict/rego-adapter'
import wabt from 'wabt'
import { checkRequest } from './core.bench.mjs'
import { compare, table } from './harness.mjs'

const root = new URL('../', import.meta.url)

async function fixtureWasm() {
  const text = readFileSync(
    new URL('packages/rego-adapter/fixtures/opa-abi-fixture.wat', root),
    'utf8',
  ).replace(/^.*;; @builtins$/m, '(data (i32.const 1024) "{\\"bench.capture\\":0}\\00")')
  const w = await wabt()
  const mod = w.parseWat('fixture.wat', text)
  const bytes = mod.toBinary({}).buffer
  mod.destroy()
  return bytes
}

/** A minimal RequestContext: a prebuilt input view and a fresh per-decision memo. */
function context(input) {
  const memo = new Map()
  return {
    opaEnvoyInput: () => input,
    authorinoInput: () => input,
    memo(key, make) {
      if (!memo.has(key)) memo.set(key, make())
      return memo.get(key)
    },
  }
}

/** The OPA-Envoy input verdict builds for `request`, captured through a host builtin. */
async function capturedInput(wasm, request) {
  let input
  const engine = await createEngine(
    { rules: [{ id: 'r', action: 'allow', rego: { bundle: 'f', entrypoint: 'fixture/builtin' } }] },
    {
      evaluators: [
        createRegoEvaluator({
          bundles: { f: { wasm } },
          builtins: {
            'bench.capture': (x) => {
              input = x
              return true
            },
          },
        }),
      ],
    },
  )
  await engine.decide(request)
  engine.close()
  return input
}

async function measure(report, title, { wasm, data, entrypoint, request, input, builtins = {} }) {
  const direct = await loadPolicy(wasm, {}, builtins)
  direct.setData(data)
  const evaluator = createRegoEvaluator({ bundles: { b: { wasm, data } }, builtins })
  const site = {
    ruleId: 'r',
    path: '/rules/0/rego',
    resources: { read: () => Promise.reject() },
    document: {},
  }
  const compiled = await evaluator.compile({ bundle: 'b', entrypoint, dialect: 'opa-envoy' }, site)
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.problems))
  const program = compiled.program
  const engine = await createEngine(
    { rules: [{ id: 'r', action: 'decide', rego: { bundle: 'b', entrypoint } }] },
    { evaluators: [createRegoEvaluator({ bundles: { b: { wasm, data } }, builtins })] },
  )
  const baseline = await createEngine({ rules: [{ id: 'r', action: 'allow', match: { methods: ['POST'] } }] })
  // Same answer from both paths before timing anything.
  const want = JSON.stringify(direct.evaluate(input, entrypoint)[0].result)
  const got = program.evaluate(context(input))
  if (!got.ok || JSON.stringify(got.value) !== want)
    throw new Error(`adapter and direct disagree: ${JSON.stringify(got)}`)
  const rows = await compare([
    { name: 'opa-wasm evaluate() direct', fn: () => direct.evaluate(input, entrypoint) },
    {
      name: 'rego-adapter rule (serialize once + evaluate + checks)',
      fn: () => program.evaluate(context(input)),
    },
    { name: 'engine.decide, one rego decide rule', fn: () => engine.decide(request), async: true },
    {
      name: 'engine.decide, one match rule (core baseline)',
      fn: () => baseline.decide(request),
      async: true,
    },
  ])
  engine.close()
  baseline.close()
  const ratio = rows[1].medianNs / rows[0].medianNs
  report.section(
    title,
    `${table(rows, ['opa-wasm evaluate() direct'])}\n\nAdapter / direct: **${ratio.toFixed(2)}x** (target ≤ 1.3x). ` +
      `Input: the OPA-Envoy view of core.bench's CheckRequest (${JSON.stringify(input).length} bytes of JSON).`,
  )
}

function findOpa() {
  const bin = process.env.OPA_BIN || 'opa'
  const r = spawnSync(bin, ['version'], { encoding: 'utf8' })
  return r.status === 0 ? bin : undefined
}

export default async function (report) {
  const wasm = await fixtureWasm()
  const input = await capturedInput(wasm, checkRequest)
  await measure(report, 'Rego adapter vs opa-wasm evaluate() (WAT fixture of the OPA wasm ABI 1.2)', {
    wasm,
    data: { allowed: true, headers: { 'x-checked': 'yes' } },
    entrypoint: 'fixture/data',
    request: checkRequest,
    input,
    builtins: { 'bench.capture': () => true },
  })
  const opa = findOpa()
  if (opa === undefined) {
    report.section(
      'Rego adapter vs opa-wasm evaluate() (compiled example policy)',
      'Skipped: no `opa` binary on PATH and OPA_BIN is not set, so `examples/rego/envoy-authz` could not be compiled.',
    )
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'verdict-rego-bench-'))
  try {
    const out = join(dir, 'bundle.tar.gz')
    const src = new URL('examples/rego/envoy-authz/bundle', root).pathname
    const r = spawnSync(opa, ['build', '-t', 'wasm', '-e', 'envoy/authz/allow', '-o', out, '-b', src], {
      encoding: 'utf8',
    })
    if (r.status !== 0) throw new Error(`opa build failed: ${r.stderr}`)
    const { readBundle } = await import('@verdict/rego-adapter')
    const bundle = await readBundle(readFileSync(out))
    if (Array.isArray(bundle)) throw new Error(bundle.join('\n'))
    const data = JSON.parse(JSON.stringify(bundle.data))
    await measure(
      report,
      'Rego adapter vs opa-wasm evaluate() (examples/rego/envoy-authz compiled with opa)',
      {
        wasm: bundle.modules[0].bytes,
        data,
        entrypoint: 'envoy/authz/allow',
        request: checkRequest,
        input,
      },
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
