/**
 * `rego.parse_module` (`builtins/rego-parse.ts`): every `.rego` file of the repository, every parity
 * module and 600 seeded random modules parse to exactly what `opa eval` answers, number texts
 * included (the parity suite compares parsed JSON, where `1.0` and `1` are equal), or are refused;
 * malformed, deeply nested and unusual input fails closed. The comparisons with OPA need `opa` on
 * PATH or OPA_BIN and are skipped otherwise, with the reason printed.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { describe, expect, test } from 'vitest'
import { parseModuleJson } from './builtins/rego-parse.js'
import { HOST_BUILTINS } from './builtins.js'
import { findOpa, runOpa } from './testing/find-opa.js'
import { REGO_PARSE_ERRORS, REGO_PARSE_MODULES } from './testing/parity-cases/rego-parse.js'

const opa = findOpa()
if (opa.why !== undefined)
  console.log(`[rego-adapter rego.parse_module] SKIPPED the comparisons with opa eval: ${opa.why}`)

const ROOT = new URL('../../../', import.meta.url).pathname

/** Every `.rego` file under the repository's examples, bench, test and packages. */
function regoFiles(): string[] {
  const out: string[] = []
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name === 'node_modules' || e.name.startsWith('.')) continue
      const p = join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.name.endsWith('.rego')) out.push(p)
    }
  }
  for (const d of ['examples', 'bench', 'test', 'packages']) walk(join(ROOT, d))
  return out.sort()
}

/** JSON text with numbers kept as their text and object keys sorted, for exact comparison. */
function canonical(json: string | undefined): string {
  if (json === undefined) return 'undefined'
  const numbersAsText = json.replace(/"(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*/g, (t) =>
    t.startsWith('"') ? t : `"#${t}"`,
  )
  return JSON.stringify(JSON.parse(numbersAsText), (_k, x: unknown) =>
    typeof x === 'object' && x !== null && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  )
}

/**
 * What `opa eval` makes of `rego.parse_module(file, src)` for each module (undefined: an error), as
 * JSON text: `json.marshal` writes numbers with the text the module had.
 */
function opaParse(modules: readonly { file: string; src: string }[]): (string | undefined)[] {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-parse-module-'))
  try {
    writeFileSync(join(dir, 'input.json'), JSON.stringify(modules))
    writeFileSync(
      join(dir, 'q.rego'),
      'package q\n\nout[i] := json.marshal(m) if {\n\tsome i\n\tm := rego.parse_module(input[i].file, input[i].src)\n}\n',
    )
    const out = runOpa(opa.bin!, [
      'eval',
      '--format',
      'json',
      '-d',
      join(dir, 'q.rego'),
      '-i',
      join(dir, 'input.json'),
      'data.q.out',
    ])
    const found = (JSON.parse(out) as { result: [{ expressions: [{ value: Record<string, string> }] }] })
      .result[0].expressions[0].value
    return modules.map((_m, i) => found[String(i)])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe.skipIf(opa.bin === undefined)('rego.parse_module against opa eval', () => {
  test("every .rego file in the repository parses to opa's AST, number texts included", () => {
    const files = regoFiles()
    expect(files.length).toBeGreaterThan(5)
    const modules = files.map((f) => ({ file: relative(ROOT, f), src: readFileSync(f, 'utf8') }))
    const want = opaParse(modules)
    const bad = modules.filter((m, i) => canonical(parseModuleJson(m.file, m.src)) !== canonical(want[i]))
    console.log(
      `[rego-adapter rego.parse_module] ${modules.length - bad.length}/${modules.length} .rego files of the repository equal opa eval`,
    )
    expect(want.every((w) => w !== undefined)).toBe(true)
    expect(bad.map((m) => m.file)).toEqual([])
  }, 60_000)

  test('the parity modules parse as opa does, number texts included; the malformed ones fail in both', () => {
    const modules = [...REGO_PARSE_MODULES, ...REGO_PARSE_ERRORS].map((src) => ({ file: 'p.rego', src }))
    const want = opaParse(modules)
    const bad = modules
      .map((m, i) => ({
        src: m.src,
        want: canonical(want[i]),
        got: canonical(parseModuleJson(m.file, m.src)),
      }))
      .filter((x) => x.want !== x.got)
    expect(bad).toEqual([])
    expect(want.slice(0, REGO_PARSE_MODULES.length).every((w) => w !== undefined)).toBe(true)
    expect(want.slice(REGO_PARSE_MODULES.length).every((w) => w === undefined)).toBe(true)
  }, 60_000)
  test('random modules: never an answer OPA does not give; almost all OPA parses answered', () => {
    const modules = randomModules(20_260_101, 600).map((src) => ({ file: 'r.rego', src }))
    const want = opaParse(modules)
    let answered = 0
    let opaAnswered = 0
    const wrong: string[] = []
    modules.forEach((m, i) => {
      const got = parseModuleJson(m.file, m.src)
      if (want[i] !== undefined) opaAnswered++
      if (got === undefined) return
      answered++
      if (canonical(got) !== canonical(want[i])) wrong.push(m.src)
    })
    console.log(
      `[rego-adapter rego.parse_module] random modules: ${modules.length}, opa parsed ${opaAnswered}, verdict ${answered} (all equal: ${wrong.length === 0})`,
    )
    expect(wrong).toEqual([])
    expect(opaAnswered).toBeGreaterThan(modules.length / 2)
    expect(answered).toBeGreaterThan(opaAnswered * 0.97)
  }, 60_000)
})

/** Random Rego modules from a grammar of the constructs the parser knows (seeded: the same each run). */
function randomModules(seed: number, count: number): string[] {
  let state = seed >>> 0
  const rnd = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const times = (lo: number, hi: number, f: () => string, sep: string) =>
    Array.from({ length: lo + Math.floor(rnd() * (hi - lo + 1)) }, f).join(sep)
  const vars = ['x', 'y', 'k', 'v', '_', 'input', 'data', 'user']
  const leaf = () =>
    pick([
      pick(['0', '1', '-1', '1.5', '1e3', '-0.0', '2E-2', '12345678901234567890']),
      pick(['"a"', '"b c"', '""', '"\\u00e9"', '`raw \\ x`', '"x\\"y"', '"é😀"']),
      pick(vars),
      pick(['true', 'false', 'null']),
    ])
  const ref = (d: number): string =>
    pick(vars) +
    times(0, 3, () => pick(['.a', '.in', '.if', '[0]', '["k-1"]', '[_]', '[x]', `[${term(d + 1)}]`]), '')
  const term = (d: number): string => {
    if (d > 3) return leaf()
    const r = rnd()
    if (r < 0.3) return leaf()
    if (r < 0.5) return ref(d)
    if (r < 0.6)
      return `${pick(['f', 'count', 'object.get', 'a.b'])}(${times(0, 3, () => expr(d + 1), ', ')})`
    if (r < 0.65) return `[${times(0, 3, () => expr(d + 1), ', ')}]`
    if (r < 0.7) return `{${times(1, 3, () => expr(d + 1), ', ')}}`
    if (r < 0.75) return `{${times(0, 3, () => `${pick(['"a"', '1', 'x', '[1]'])}: ${expr(d + 1)}`, ', ')}}`
    if (r < 0.8) return `[${term(d + 1)} | ${body(d + 1, '; ')}]`
    if (r < 0.85) return `{${term(d + 1)} | ${body(d + 1, '; ')}}`
    if (r < 0.9) return `{${term(d + 1)}: ${term(d + 1)} | ${body(d + 1, '; ')}}`
    if (r < 0.95) return `(${expr(d + 1)})`
    return pick(['set()', '- 2', '-3.5'])
  }
  const ops = ['+', '-', '*', '/', '%', '|', '&', '==', '!=', '<', '<=', '>', '>=', 'in']
  const expr = (d: number): string =>
    term(d) + (d < 3 ? times(0, 2, () => `${pick([' ', '\n\t'])}${pick(ops)} ${term(d + 1)}`, '') : '')
  const literal = (d: number): string => {
    const r = rnd()
    if (r < 0.08)
      return `some ${pick(['x', 'x, y', `x in ${ref(d + 1)}`, `k, v in ${ref(d + 1)}`, '_ in xs'])}`
    if (r < 0.13) return `every ${pick(['x', 'k, v', '_'])} in ${term(d + 1)} { ${body(d + 1, '; ')} }`
    if (r < 0.22) return `not ${expr(d)}`
    let e = r < 0.45 ? `${pick(['x', 'y', '[a, b]', '_'])} ${pick([':=', '='])} ${expr(d)}` : expr(d)
    if (rnd() < 0.1) e += ` with ${pick(['input', 'data.x', 'input.y'])} as ${term(d + 1)}`
    return e
  }
  const body = (d: number, sep?: string) =>
    times(1, 3, () => literal(d), sep ?? pick(['; ', '\n\t', '\n\t# c\n\t']))
  const rule = () => {
    if (rnd() < 0.1)
      return `default ${pick(['p', 'f(x)', 'p.q'])} := ${pick(['1', 'true', '{"a": [1]}', '[]', '{1, 2}'])}`
    const op = pick(['', '', ` := ${expr(0)}`, ` = ${expr(0)}`, ` contains ${term(0)}`])
    let s = pick(['p', 'allow', 'r.s', 'p[x]', 'p.q[x]', 'p["k"]', 'f(x)', 'f(_, y)', 'a.b(x)', 'p[1]']) + op
    if (op === '' || rnd() < 0.8) {
      s += ` if ${pick([`{ ${body(0)} }`, `{\n\t${body(0, '\n\t')}\n}`, literal(0)])}`
      if (!op.includes('contains') && rnd() < 0.25)
        s += pick([' else := 2', ' else if { x }', '\nelse = 3 if y'])
    }
    return rnd() < 0.2 ? `${s} # trailing` : s
  }
  return Array.from(
    { length: count },
    () =>
      `${pick(['', '# header\n', '# METADATA\n# title: t\n'])}package ${pick(['a', 'a.b', 'x["y"]'])}\n\n` +
      `${times(0, 2, () => pick(['import rego.v1\n', 'import data.x as y\n', 'import input.z\n']), '')}\n` +
      `${times(1, 5, rule, '\n\n')}\n`,
  )
}

describe('rego.parse_module without opa', () => {
  const parse = (src: string) => {
    const json = parseModuleJson('f.rego', src)
    return json === undefined ? undefined : (JSON.parse(json) as Record<string, unknown>)
  }

  test('a small module: package path, a rule with its generated true value and body', () => {
    expect(parse('package a.b\nallow if input.x == 1\n')).toEqual({
      package: {
        path: [
          { type: 'var', value: 'data' },
          { type: 'string', value: 'a' },
          { type: 'string', value: 'b' },
        ],
      },
      rules: [
        {
          head: {
            name: 'allow',
            ref: [{ type: 'var', value: 'allow' }],
            value: { type: 'boolean', value: true },
          },
          body: [
            {
              index: 0,
              terms: [
                { type: 'ref', value: [{ type: 'var', value: 'equal' }] },
                {
                  type: 'ref',
                  value: [
                    { type: 'var', value: 'input' },
                    { type: 'string', value: 'x' },
                  ],
                },
                { type: 'number', value: 1 },
              ],
            },
          ],
        },
      ],
    })
  })

  test('numbers keep their text in the JSON; the builtin hands the module raw JSON text', () => {
    expect(parseModuleJson('f.rego', 'package a\np := [1.0, 1e3, -0]')).toContain(
      '"value":[{"type":"number","value":1.0},{"type":"number","value":1e3},{"type":"number","value":-0}]',
    )
    const out = HOST_BUILTINS['rego.parse_module']!('f.rego', 'package a\np := 1.50')
    expect(out).toBeInstanceOf(ArrayBuffer)
    expect(new TextDecoder().decode(out as ArrayBuffer)).toContain('"value":1.50')
  })

  test('comments carry the file name, row, column in characters and their bytes in base64', () => {
    const m = parse('package a\np := "é" # cé\n#')
    expect(m?.comments).toEqual([
      { Location: { file: 'f.rego', row: 2, col: 10 }, Text: Buffer.from(' cé').toString('base64') },
      { Location: { file: 'f.rego', row: 3, col: 1 }, Text: null },
    ])
  })

  test('malformed modules and non-string arguments are undefined (an error), never thrown', () => {
    for (const src of REGO_PARSE_ERRORS) expect(parseModuleJson('f.rego', src), src).toBeUndefined()
    const builtin = HOST_BUILTINS['rego.parse_module']!
    expect(builtin(1, 'package a')).toBeUndefined()
    expect(builtin('f.rego', ['package a'])).toBeUndefined()
    expect(builtin('f.rego', 'package a\np := {')).toBeUndefined()
  })

  test('deep nesting is refused without overflowing the stack; long flat input parses', () => {
    for (const [open, close] of [
      ['[', ']'],
      ['{', '}'],
      ['(', ')'],
      ['f(', ')'],
      ['{x | ', '}'],
    ] as const) {
      const deep = `package a\np := ${open.repeat(50_000)}1${close.repeat(50_000)}\n`
      expect(parseModuleJson('f.rego', deep), open).toBeUndefined()
    }
    const deepBody = `package a\np if ${'{ '.repeat(20_000)}`
    expect(parseModuleJson('f.rego', deepBody)).toBeUndefined()
    const nested = `package a\np := ${'['.repeat(40)}1${']'.repeat(40)}\n`
    expect(parse(nested)).toBeDefined()
    const long = `package a\n${Array.from({ length: 5000 }, (_, i) => `r${i} := {"k": [${i}, "v"]} if input.x[${i}] == ${i}`).join('\n')}\n`
    expect((parse(long)?.rules as unknown[] | undefined)?.length).toBe(5000)
    const wide = `package a\np := 0${' + 1'.repeat(20_000)}\n`
    expect(parseModuleJson('f.rego', wide)).toBeUndefined()
  })

  test('what verdict refuses where OPA answers: equal numbers written differently in a set, comprehensions of one kind in a set', () => {
    expect(parse('package a\np := {1, 1.0}')).toBeUndefined()
    expect(parse('package a\np := {[x | x := 1], [y | y := 2]}')).toBeUndefined()
    // OPA answers a number it cannot represent as Infinity, which is not JSON.
    expect(parse('package a\np := 9e999')).toBeUndefined()
  })
})
