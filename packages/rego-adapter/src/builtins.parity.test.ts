/**
 * Parity of verdict's host builtins with `opa eval`: one Rego module per run holds a rule per case,
 * `opa eval` answers `data.parity`, the same source compiled with `opa build -t wasm` runs through
 * the adapter, and the two documents must be equal (sets come out of both as sorted arrays).
 * Also derives the host-builtin list from the binary and checks each is provided or refused.
 * Needs `opa` on PATH or OPA_BIN; otherwise skipped with the reason printed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createEngine } from '@verdict/core'
import { beforeAll, describe, expect, test } from 'vitest'
import { HOST_BUILTINS, UNSUPPORTED_BUILTINS } from './builtins.js'
import { createRegoEvaluator } from './rego-evaluator.js'
import { loadRegoPolicy, SDK_BUILTINS } from './rego-policy.js'
import { KNOWN_DIFFERENCES, PARITY_CASES, PARITY_CASES_V0 } from './testing/builtins-parity-cases.js'
import { buildWasm, deriveHostBuiltins, findOpa, runOpa } from './testing/find-opa.js'

const opa = findOpa()
if (opa.why !== undefined)
  console.log(
    `[rego-adapter builtins] SKIPPED the parity test against opa eval and the builtin list check: ${opa.why}. ` +
      'Install OPA or set OPA_BIN to run them.',
  )

const NOT_COMPARED = new Set(['time.now_ns', 'rand.intn', 'uuid.rfc4122', 'trace'])

function source(cases: readonly string[], v0: boolean): string {
  return `package parity\n\n${cases.map((c, i) => `c${i} ${v0 ? '=' : ':='} ${c}`).join('\n')}\n`
}

/** What `opa eval` and the adapter each make of the cases. */
async function both(
  cases: readonly string[],
  v0 = false,
): Promise<{ want: Record<string, unknown>; got: Record<string, unknown> }> {
  const rego = source(cases, v0)
  const dir = mkdtempSync(join(tmpdir(), 'verdict-parity-'))
  let want: Record<string, unknown>
  try {
    writeFileSync(join(dir, 'p.rego'), rego)
    const out = JSON.parse(
      runOpa(opa.bin!, [
        'eval',
        '--format',
        'json',
        ...(v0 ? ['--v0-compatible'] : []),
        '-d',
        join(dir, 'p.rego'),
        'data.parity',
      ]),
    ) as { result: Array<{ expressions: Array<{ value: Record<string, unknown> }> }> }
    want = out.result[0]!.expressions[0]!.value
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const p = await loadRegoPolicy(buildWasm(opa.bin!, rego, 'parity', v0), {})
  if (Array.isArray(p)) throw new Error(p.map((x) => x.message).join('\n'))
  const r = p.evaluate(new TextEncoder().encode('{}').buffer as ArrayBuffer, p.entrypoints.parity!)
  if (!r.ok) throw new Error(r.error)
  return { want, got: r.value as Record<string, unknown> }
}

/** JSON with object keys sorted: Rego objects have no key order. */
function canonical(v: unknown): string | undefined {
  return JSON.stringify(v, (_k, x: unknown) =>
    typeof x === 'object' && x !== null && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  )
}

function mismatches(
  cases: readonly string[],
  want: Record<string, unknown>,
  got: Record<string, unknown>,
): string[] {
  const out: string[] = []
  cases.forEach((c, i) => {
    const w = canonical(want[`c${i}`])
    const g = canonical(got[`c${i}`])
    if (w !== g) out.push(`${c}\n    opa eval: ${w ?? 'undefined'}\n    verdict:  ${g ?? 'undefined'}`)
  })
  return out
}

describe.skipIf(opa.bin === undefined)('host builtins against opa', () => {
  let derived: Awaited<ReturnType<typeof deriveHostBuiltins>>
  beforeAll(async () => {
    derived = await deriveHostBuiltins(opa.bin!)
  }, 120_000)

  test('every host builtin of this opa is provided or refused with a reason', () => {
    expect(derived.all.length).toBeGreaterThan(50)
    const unknown = derived.all.filter(
      (b) =>
        !Object.hasOwn(HOST_BUILTINS, b) &&
        !Object.hasOwn(UNSUPPORTED_BUILTINS, b) &&
        !SDK_BUILTINS.includes(b),
    )
    expect(unknown).toEqual([])
    // Nothing is listed that this opa would not ask a host for.
    const extra = [...Object.keys(HOST_BUILTINS), ...Object.keys(UNSUPPORTED_BUILTINS)].filter(
      (b) => !derived.all.includes(b),
    )
    expect(extra).toEqual([])
  })

  test('every provided builtin has parity cases (or is non-deterministic by design)', () => {
    const covered = new Set(
      [...PARITY_CASES, ...PARITY_CASES_V0].flatMap((c) =>
        [...c.matchAll(/([a-z_0-9]+(?:\.[a-z_0-9]+)*)\(/g)].map((m) => m[1]!),
      ),
    )
    const missing = Object.keys(HOST_BUILTINS).filter((b) => !covered.has(b) && !NOT_COMPARED.has(b))
    expect(missing).toEqual([])
  })

  test('results equal opa eval (v1 Rego)', async () => {
    const { want, got } = await both(PARITY_CASES)
    const bad = mismatches(PARITY_CASES, want, got)
    console.log(
      `[rego-adapter builtins] parity: ${PARITY_CASES.length - bad.length}/${PARITY_CASES.length} cases equal opa eval`,
    )
    expect(bad.join('\n')).toBe('')
  }, 60_000)

  test('known differences (sets reach host builtins as arrays, numbers parsed) still differ', async () => {
    const { want, got } = await both(KNOWN_DIFFERENCES)
    expect(mismatches(KNOWN_DIFFERENCES, want, got)).toHaveLength(KNOWN_DIFFERENCES.length)
  }, 60_000)

  test('results equal opa eval (deprecated builtins, --v0-compatible)', async () => {
    const { want, got } = await both(PARITY_CASES_V0, true)
    expect(mismatches(PARITY_CASES_V0, want, got).join('\n')).toBe('')
  }, 60_000)

  test('a module built by opa that calls http.send fails to load, naming the builtin and the rule', async () => {
    const wasm = buildWasm(
      opa.bin!,
      'package t\n\nallow if http.send({"method": "get", "url": "https://example.com"}).status_code == 200\n',
      't/allow',
    )
    const engine = createEngine(
      { rules: [{ id: 'fetch', action: 'allow', rego: { bundle: 'b', entrypoint: 't/allow' } }] },
      { evaluators: [createRegoEvaluator({ bundles: { b: { wasm } } })] },
    )
    await expect(engine).rejects.toThrow(
      /\/rules\/0\/rego\/bundle.*\/policy\.wasm: module needs builtin "http\.send", called in data\.t\.allow \(network or host I\/O/s,
    )
  })

  test('time.now_ns in a compiled module is the decision clock (two rules, one time)', async () => {
    const now = 1_700_000_000_123
    const wasm = buildWasm(
      opa.bin!,
      `package t\n\nallow if time.now_ns() == ${now}000000\n\nsame if time.now_ns() == time.now_ns()\n`,
      ['t/allow', 't/same'],
    )
    const rules = [
      { id: 'same', action: 'require', rego: { bundle: 'b', entrypoint: 't/same' } },
      { id: 'now', action: 'decide', rego: { bundle: 'b', entrypoint: 't/allow' } },
    ]
    const engine = await createEngine(
      { rules },
      { evaluators: [createRegoEvaluator({ bundles: { b: { wasm } } })], now: () => now },
    )
    try {
      const d = await engine.decide({ method: 'GET', path: '/', headers: { host: 'a' } })
      expect(d.allowed, JSON.stringify(d)).toBe(true)
    } finally {
      engine.close()
    }
  })
})
