import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { loadRegoPolicy, type RegoPolicy, SDK_BUILTINS } from './rego-policy.js'
import { type FixtureOptions, fixtureWasm } from './testing/opa-fixture.js'

const bytes = (v: unknown): ArrayBuffer => new TextEncoder().encode(JSON.stringify(v)).buffer as ArrayBuffer

async function load(
  o: FixtureOptions = {},
  data: Record<string, unknown> = {},
  opts: Parameters<typeof loadRegoPolicy>[2] = {},
): Promise<RegoPolicy> {
  const p = await loadRegoPolicy(await fixtureWasm(o), data, opts)
  if (Array.isArray(p)) throw new Error(p.map((x) => x.message).join('\n'))
  return p
}

async function problems(o: FixtureOptions, opts: Parameters<typeof loadRegoPolicy>[2] = {}) {
  const p = await loadRegoPolicy(await fixtureWasm(o), {}, opts)
  if (!Array.isArray(p)) throw new Error('expected load problems')
  return p
}

describe('load checks', () => {
  test('the fixture loads: ABI, entrypoints, builtins', async () => {
    const p = await load({ builtins: ['sprintf'] })
    expect(p.abiVersion).toBe('1.2')
    expect(p.entrypoints['fixture/data']).toBe(0)
    expect(p.entrypoints['fixture/garbage']).toBe(8)
    expect(p.builtins).toEqual(['sprintf'])
  })

  test('an unsupported ABI major version is a load problem', async () => {
    const p = await problems({ abiVersion: 2 })
    expect(p).toEqual([{ code: 'rego_abi', message: expect.stringContaining('unsupported ABI version 2') }])
  })

  const cases: Array<[string, FixtureOptions, string]> = [
    ['no ABI version global', { omitExports: ['opa_wasm_abi_version'] }, 'global opa_wasm_abi_version'],
    ['no opa_json_dump', { omitExports: ['opa_json_dump'] }, 'lacks OPA wasm ABI exports: opa_json_dump'],
    ['no entrypoints()', { omitExports: ['entrypoints'] }, 'entrypoints'],
    ['neither opa_eval nor eval', { omitExports: ['opa_eval', 'eval'] }, 'eval'],
    [
      'ABI 1.2 without opa_eval',
      { omitExports: ['opa_eval'], abiMinorVersion: 2 },
      'lacks the export opa_eval',
    ],
    [
      'ABI 1.1 without the context exports',
      { omitExports: ['opa_eval_ctx_new'], abiMinorVersion: 1 },
      'lacks exports: opa_eval_ctx_new',
    ],
  ]
  test.each(cases)('%s', async (_name, o, message) => {
    const p = await problems(o)
    expect(p[0]!.code).toBe('rego_abi')
    expect(p.map((x) => x.message).join('\n')).toContain(message)
  })

  test('a builtin neither the SDK nor the options provide is named at load', async () => {
    const p = await problems({ builtins: ['sprintf', 'http.send', 'custom.lookup', 'custom.other'] })
    expect(p).toEqual([
      { code: 'rego_builtin', message: expect.stringMatching(/needs builtin "http\.send" \(network/) },
      {
        code: 'rego_builtin',
        message: expect.stringMatching(/needs builtins "custom\.lookup", "custom\.other", not provided/),
      },
    ])
    const ok = await loadRegoPolicy(
      await fixtureWasm({ builtins: ['http.send'] }),
      {},
      {
        builtins: { 'http.send': () => ({ status_code: 200 }) },
      },
    )
    expect(Array.isArray(ok)).toBe(false)
  })

  test('builtin names shaped like Object.prototype members are not "provided" by accident', async () => {
    const p = await problems(
      { builtins: ['toString', '__proto__', 'constructor'] },
      { builtins: { toString: () => 'x' } },
    )
    expect(p[0]!.message).toContain('"toString", "__proto__", "constructor"')
  })

  test('the SDK builtin list matches the installed SDK', () => {
    const require = createRequire(import.meta.url)
    const dir = dirname(require.resolve('@open-policy-agent/opa-wasm'))
    const sdk = require(join(dir, 'builtins', 'index.js')) as Record<string, unknown>
    expect(Object.keys(sdk).sort()).toEqual([...SDK_BUILTINS].sort())
  })

  test('bytes that are not wasm, and unknown imports, are load problems', async () => {
    const notWasm = await loadRegoPolicy(new TextEncoder().encode('not wasm'), {})
    expect(notWasm).toEqual([
      { code: 'rego_module', message: expect.stringContaining('not a valid wasm module') },
    ])
    const wabt = await (await import('wabt')).default()
    const m = wabt.parseWat(
      'x.wat',
      '(module (import "env" "fetch" (func)) (import "wasi" "memory" (memory 1)))',
    )
    const p = await loadRegoPolicy(m.toBinary({}).buffer, {})
    m.destroy()
    expect(Array.isArray(p) && p.map((x) => x.message)).toEqual(
      expect.arrayContaining([
        'module imports function env.fetch, which the OPA wasm ABI 1.x does not define',
        'module imports memory wasi.memory, which the OPA wasm ABI 1.x does not define',
      ]),
    )
  })

  test('a memory maximum below what the module imports is a load problem', async () => {
    const wabt = await (await import('wabt')).default()
    const text = readFileSync(new URL('../fixtures/opa-abi-fixture.wat', import.meta.url), 'utf8').replace(
      '(memory 2)',
      '(memory 8)',
    )
    const m = wabt.parseWat('big.wat', text)
    const p = await loadRegoPolicy(m.toBinary({}).buffer, {}, { memory: { initialPages: 5, maxPages: 6 } })
    m.destroy()
    expect(Array.isArray(p) && p[0]!.message).toMatch(/failed to load: .*check memory.initialPages/)
  })
})

// Both evaluation paths of the SDK: ABI 1.2 (`opa_eval`) and 1.0/1.1 (`opa_eval_ctx_*` + `eval`).
describe.each([2, 1])('evaluation, ABI 1.%i', (minor) => {
  test('every result shape and error, as a case table', async () => {
    const p = await load({ abiMinorVersion: minor }, { allowed: true, http_status: 200 })
    const cases: Array<[string, unknown, { ok: true; value: unknown } | { ok: false; error: RegExp }]> = [
      ['fixture/data', {}, { ok: true, value: { allowed: true, http_status: 200 } }],
      ['fixture/input', true, { ok: true, value: true }],
      ['fixture/input', false, { ok: true, value: false }],
      ['fixture/input', { a: [1, 'x'] }, { ok: true, value: { a: [1, 'x'] } }],
      ['fixture/undefined', {}, { ok: false, error: /is undefined for this input \(empty result set\)/ }],
      ['fixture/several', {}, { ok: false, error: /produced 2 results, expected exactly one/ }],
      ['fixture/binding', {}, { ok: false, error: /returned a binding without "result"/ }],
      ['fixture/abort', {}, { ok: false, error: /aborted: fixture abort/ }],
      ['fixture/trap', {}, { ok: false, error: /module trapped: unreachable/ }],
      ['fixture/garbage', {}, { ok: false, error: /module returned malformed JSON/ }],
    ]
    for (const [ep, input, want] of cases) {
      const r = p.evaluate(bytes(input), p.entrypoints[ep]!, ep)
      if (want.ok) expect(r, ep).toEqual(want)
      else {
        expect(r.ok, ep).toBe(false)
        expect(!r.ok && r.error, ep).toMatch(want.error)
        expect(!r.ok && r.error, ep).toMatch(new RegExp(`^${ep}[: ]`))
      }
    }
    // An entrypoint id the module does not have: the module aborts.
    expect(p.evaluate(bytes({}), 99, 'x')).toEqual({ ok: false, error: 'x: aborted: unknown entrypoint' })
  })

  test('JSON text given as a string is written into the module as is: same answers as bytes', async () => {
    const p = await load({ abiMinorVersion: minor }, {}, { memory: { initialPages: 2, maxPages: 8 } })
    const echo = p.entrypoints['fixture/input']!
    const values: unknown[] = [
      { a: [1, 'x'], nested: { é: 'ü €', emoji: '😀' } },
      true,
      'text',
      { s: 'y'.repeat(150_000) }, // more than the initial pages: memory grows to hold it
      { s: 'é😀'.repeat(25_000) }, // 150,000 bytes of UTF-8 from 75,000 UTF-16 units: grown to the exact length
    ]
    for (const v of values) {
      const text = JSON.stringify(v)
      expect(p.evaluate(text, echo)).toEqual({ ok: true, value: v })
      expect(p.evaluate(text, echo)).toEqual(p.evaluate(bytes(v), echo))
    }
    const huge = p.evaluate(JSON.stringify({ s: 'x'.repeat(600_000) }), echo)
    expect(!huge.ok && huge.error).toMatch(/memory limit of 8 pages|aborted: out of memory/)
    p.evaluate('{"k":1}', echo)
    const heap = p.heapPointer()
    for (let i = 0; i < 1000; i++) p.evaluate('{"k":1}', echo)
    expect(p.heapPointer()).toBe(heap)
    expect(p.evaluate('{"k":1}', echo)).toEqual({ ok: true, value: { k: 1 } })
  })

  test('custom builtins: values, and thrown strings, objects and errors become error values', async () => {
    let mode = 'value'
    const p = await load(
      { abiMinorVersion: minor, builtins: ['custom.f'] },
      {},
      {
        builtins: {
          'custom.f': (x: unknown) => {
            if (mode === 'string') throw 'lookup refused'
            if (mode === 'object') throw { code: 42 }
            if (mode === 'message') throw { message: 'object with message' }
            if (mode === 'error') throw new TypeError('bad type')
            return { seen: x }
          },
        },
      },
    )
    const ep = p.entrypoints['fixture/builtin']!
    expect(p.evaluate(bytes({ q: 1 }), ep)).toEqual({ ok: true, value: { seen: { q: 1 } } })
    const want: Record<string, string> = {
      string: 'entrypoint: aborted: lookup refused',
      object: 'entrypoint: threw {"code":42}',
      message: 'entrypoint: object with message',
      error: 'entrypoint: bad type',
    }
    for (const [m, error] of Object.entries(want)) {
      mode = m
      expect(p.evaluate(bytes({}), ep)).toEqual({ ok: false, error })
    }
    mode = 'value'
    expect(p.evaluate(bytes(1), ep)).toEqual({ ok: true, value: { seen: 1 } })
  })

  test('memory is bounded: too large an input is an error, and the instance keeps working', async () => {
    const p = await load({ abiMinorVersion: minor }, {}, { memory: { initialPages: 2, maxPages: 8 } })
    const echo = p.entrypoints['fixture/input']!
    // Needs more pages than the maximum just to hold the input.
    const huge = p.evaluate(bytes({ s: 'x'.repeat(600_000) }), echo)
    expect(huge.ok).toBe(false)
    expect(!huge.ok && huge.error).toMatch(/memory limit of 8 pages|aborted: out of memory/)
    // Fits, but the module's own copy does not: its allocator aborts.
    const copy = p.evaluate(bytes({ s: 'x'.repeat(200_000) }), echo)
    expect(copy).toEqual({ ok: false, error: 'entrypoint: aborted: out of memory' })
    expect(p.memoryPages()).toBeLessThanOrEqual(8)
    expect(p.evaluate(bytes({ s: 'small' }), echo)).toEqual({ ok: true, value: { s: 'small' } })
  })

  test('the heap does not grow across a million evaluations', async () => {
    const p = await load({ abiMinorVersion: minor }, { allowed: true })
    const ep = p.entrypoints['fixture/data']!
    const input = bytes({ attributes: { request: { http: { method: 'GET', path: '/x' } } } })
    p.evaluate(input, ep)
    const heap = p.heapPointer()
    const pages = p.memoryPages()
    const n = minor === 2 ? 1_000_000 : 200_000
    let allowed = 0
    for (let i = 0; i < n; i++) {
      const r = p.evaluate(input, ep)
      if (r.ok && (r.value as { allowed: boolean }).allowed) allowed++
    }
    expect(allowed).toBe(n)
    expect(p.heapPointer()).toBe(heap)
    expect(p.memoryPages()).toBe(pages)
  })

  test('dispose releases the instance; evaluations then fail closed', async () => {
    const p = await load({ abiMinorVersion: minor })
    p.dispose()
    expect(p.evaluate(bytes({}), 0, 'x')).toEqual({
      ok: false,
      error: 'x: the bundle was released (policy replaced)',
    })
  })
})
