/**
 * Host builtins without an `opa` binary: loading through the WAT fixture (whose `fixture/builtin`
 * entrypoint calls builtin #0 on the input), the decision clock and per-decision caches, refusals.
 * Parity with `opa eval` is in builtins.parity.test.ts.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { CompileSite, RequestContext, RuleProgram } from '@verdict/core'
import { describe, expect, test } from 'vitest'
import { HOST_BUILTINS, UNSUPPORTED_BUILTINS, withDecisionScope } from './builtins.js'
import { createRegoEvaluator, INPUT_TEXT_KEYS, type RegoOptions } from './rego-evaluator.js'
import { loadRegoPolicy, type RegoPolicy } from './rego-policy.js'
import { fixtureBundle, fixtureWasm } from './testing/opa-fixture.js'

const bytes = (v: unknown): ArrayBuffer => new TextEncoder().encode(JSON.stringify(v)).buffer as ArrayBuffer

/** A module whose only host builtin is `name`, called by `fixture/builtin` on the input. */
async function moduleCalling(name: string, opts: RegoOptions = {}): Promise<RegoPolicy> {
  const p = await loadRegoPolicy(await fixtureWasm({ builtins: [name] }), {}, opts)
  if (Array.isArray(p)) throw new Error(p.map((x) => x.message).join('\n'))
  return p
}

function call(p: RegoPolicy, input: unknown): unknown {
  const r = p.evaluate(bytes(input), p.entrypoints['fixture/builtin']!)
  if (!r.ok) throw new Error(r.error)
  return r.value
}

describe('host builtins load and run', () => {
  test('a module importing crypto.sha256 loads and gets the hash', async () => {
    const p = await moduleCalling('crypto.sha256')
    expect(call(p, 'hello')).toBe('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824')
  })

  test.each([
    ['hex.encode', 'hi', '6869'],
    ['base64url.encode_no_pad', '??', 'Pz8'],
    ['semver.is_valid', 'v1.0.0', false],
    ['net.cidr_is_valid', '10.0.0.0/8', true],
    ['units.parse_bytes', '2KiB', 2048],
    ['urlquery.encode', 'a b', 'a+b'],
    ['time.parse_rfc3339_ns', '2017-06-02T19:00:00-07:00', 1496455200000000000],
    ['time.parse_duration_ns', '2562047h', 9223369200000000000],
    ['io.jwt.decode', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.', [{ alg: 'none' }, { sub: 'a' }, '']],
  ])('%s(%j) through the module', async (name, input, want) => {
    expect(call(await moduleCalling(name), input)).toEqual(want)
  })

  test('nanoseconds beyond 2^53 reach the module exactly (raw JSON, not a rounded double)', () => {
    const parse = HOST_BUILTINS['time.parse_rfc3339_ns']!
    const raw = parse('2017-06-02T19:00:00.123456789-07:00')
    expect(raw).toBeInstanceOf(ArrayBuffer)
    expect(new TextDecoder().decode(raw as ArrayBuffer)).toBe('1496455200123456789')
  })

  test('a builtin error is undefined (opa eval without strict errors); the parity test checks the module', () => {
    expect(HOST_BUILTINS['time.parse_duration_ns']!('1 day')).toBeUndefined()
    expect(HOST_BUILTINS['hex.decode']!('6g')).toBeUndefined()
  })

  test("a host's own registration wins over verdict's", async () => {
    const p = await moduleCalling('crypto.md5', { builtins: { 'crypto.md5': () => 'mine' } })
    expect(call(p, 'x')).toBe('mine')
  })
})

describe("the SDK's own sprintf and yaml.* give OPA's results", () => {
  test('yaml.unmarshal through a module reads YAML 1.1 as OPA does (the SDK read 1.2)', async () => {
    const p = await moduleCalling('yaml.unmarshal')
    expect(call(p, 'a: yes\nb: [x, y]\nc: 2024-01-01\n')).toEqual({
      a: true,
      b: ['x', true],
      c: '2024-01-01',
    })
  })

  test("the SDK's dispatch table holds verdict's implementations", () => {
    const require = createRequire(import.meta.url)
    const sdk = require(join(dirname(require.resolve('@open-policy-agent/opa-wasm')), 'builtins', 'index.js'))
    for (const name of ['sprintf', 'yaml.marshal', 'yaml.unmarshal', 'yaml.is_valid'])
      expect(sdk[name], name).toBe(HOST_BUILTINS[name])
  })

  test.each([
    ['%v', [{ b: [1], a: 'x' }], '{"a": "x", "b": [1]}'],
    ['%q|%5.1f|%05d', ['x"y', 2.25, 42], '"x\\"y"|  2.2|00042'],
    ['%v %v %v', [null, 1.5e300, 123456789.5], 'null 1.5e+300 1.234567895e+08'],
    ['%d %s', [1], '1 %!s(MISSING)'],
    ['%d', [1, 'a'], '1%!(EXTRA string=a)'],
  ])('sprintf(%j, %j) is %j', (format, args, want) => {
    expect(HOST_BUILTINS.sprintf!(format, args)).toBe(want)
  })

  test('yaml.marshal: sorted keys, unindented sequences, quotes as yaml.v2', () => {
    expect(HOST_BUILTINS['yaml.marshal']!({ b: 'yes', a: [1, { c: null }], d: 'a: b' })).toBe(
      'a:\n- 1\n- c: null\nb: "yes"\nd: \'a: b\'\n',
    )
  })
})

describe('refused builtins', () => {
  test('a module importing http.send does not load, and the message says which and why', async () => {
    const p = await loadRegoPolicy(await fixtureWasm({ builtins: ['http.send'] }), {})
    expect(p).toEqual([
      {
        code: 'rego_builtin',
        message:
          'module needs builtin "http.send" (network or host I/O, which verdict does not do inside a decision); ' +
          'remove the call from the Rego source or register an implementation in RegoOptions.builtins',
      },
    ])
  })

  test('each refused builtin is named with its reason; several are each reported', async () => {
    const p = await loadRegoPolicy(
      await fixtureWasm({ builtins: ['net.lookup_ip_addr', 'opa.runtime', 'http.send'] }),
      {},
    )
    expect(Array.isArray(p) && p.map((x) => x.message.split(';')[0])).toEqual([
      'module needs builtin "net.lookup_ip_addr" (network or host I/O, which verdict does not do inside a decision)',
      `module needs builtin "opa.runtime" (the OPA runtime's configuration and environment, which verdict has not)`,
      'module needs builtin "http.send" (network or host I/O, which verdict does not do inside a decision)',
    ])
  })

  test('through the evaluator the problem points at the bundle and the module', async () => {
    const ev = createRegoEvaluator({
      bundles: { b: { tarGz: await fixtureBundle({}, { builtins: ['http.send'] }) } },
    })
    const r = await ev.compile({ bundle: 'b', entrypoint: 'fixture/data' }, site('/rules/0/rego'))
    expect(r).toEqual({
      ok: false,
      problems: [
        {
          code: 'rego_builtin',
          path: '/rules/0/rego/bundle',
          message: expect.stringMatching(/^\/policy\.wasm: module needs builtin "http\.send" \(network/),
        },
      ],
    })
  })

  test('provided and refused do not overlap', () => {
    expect(Object.keys(HOST_BUILTINS).filter((b) => Object.hasOwn(UNSUPPORTED_BUILTINS, b))).toEqual([])
  })
})

const DOC = {}

function site(path: string): CompileSite {
  return {
    ruleId: 'r',
    path,
    document: DOC,
    resources: {
      read: async () => {
        throw new Error('no files')
      },
    },
  }
}

/** A decision context: its clock and its memo, which is all the builtins read. */
function decision(now: number, input: unknown = { attributes: {} }): RequestContext {
  const memo = new Map<object, unknown>([[INPUT_TEXT_KEYS['opa-envoy'], JSON.stringify(input)]])
  return {
    now,
    memo<T>(key: object, make: () => T): T {
      if (!memo.has(key)) memo.set(key, make())
      return memo.get(key) as T
    },
  } as unknown as RequestContext
}

/** Two rules of one policy over a module whose builtin #0 is `name`. */
async function twoRules(name: string): Promise<[RuleProgram, RuleProgram]> {
  const ev = createRegoEvaluator({ bundles: { b: { tarGz: await fixtureBundle({}, { builtins: [name] }) } } })
  const programs = await Promise.all(
    ['/rules/0/rego', '/rules/1/rego'].map(async (path) => {
      const r = await ev.compile({ bundle: 'b', entrypoint: 'fixture/builtin' }, site(path))
      if (!r.ok) throw new Error(JSON.stringify(r.problems))
      return r.program
    }),
  )
  return [programs[0]!, programs[1]!]
}

const resultOf = (p: RuleProgram, ctx: RequestContext) => {
  const r = p.evaluate(ctx)
  if (r instanceof Promise || !r.ok) throw new Error(`unexpected ${JSON.stringify(r)}`)
  return r.value
}

describe('one decision, one clock', () => {
  test('time.now_ns is the decision clock, exact, the same for every rule of the decision', async () => {
    const [a, b] = await twoRules('time.now_ns')
    const ctx = decision(1_700_000_000_123)
    expect(resultOf(a, ctx)).toBe(1_700_000_000_123_000_000)
    expect(resultOf(b, ctx)).toBe(1_700_000_000_123_000_000)
    expect(resultOf(a, decision(1_000))).toBe(1_000_000_000)
    a.dispose?.()
    b.dispose?.()
  })

  test('the raw value is exact: 1700000000123000001 is not representable, ...123000000 is written as text', () => {
    const raw = withDecisionScope({ nowMs: 1_700_000_000_123, cache: new Map() }, () =>
      HOST_BUILTINS['time.now_ns']!(),
    )
    expect(new TextDecoder().decode(raw as ArrayBuffer)).toBe('1700000000123000000')
  })

  test('uuid.rfc4122: one value per key in a decision, across rules; a new one in the next decision', async () => {
    const [a, b] = await twoRules('uuid.rfc4122')
    const ctx = decision(1, 'k')
    const first = resultOf(a, ctx)
    expect(first).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(resultOf(b, ctx)).toBe(first)
    expect(resultOf(a, decision(1, 'k'))).not.toBe(first)
  })

  test('rand.intn: in range, one value per (key, n) in a decision', () => {
    const intn = HOST_BUILTINS['rand.intn']!
    const scope = { nowMs: 0, cache: new Map() }
    const seen = withDecisionScope(scope, () => [
      intn('k', 1000),
      intn('k', 1000),
      intn('k', -1000),
      intn('k', 0),
    ])
    expect(seen[0]).toBe(seen[1])
    expect(seen[2]).toBe(seen[0])
    expect(seen[3]).toBe(0)
    expect(seen[0]).toBeGreaterThanOrEqual(0)
    expect(seen[0]).toBeLessThan(1000)
  })

  test('io.jwt.decode_verify checks exp and nbf against the decision clock unless given a time', () => {
    const h = Buffer.from('{"alg":"HS256"}').toString('base64url')
    const body = Buffer.from('{"exp":2000,"nbf":1000}').toString('base64url')
    const sig = HOST_BUILTINS['crypto.hmac.sha256']!(`${h}.${body}`, 'k') as string
    const jwt = `${h}.${body}.${Buffer.from(sig, 'hex').toString('base64url')}`
    const at = (nowMs: number, c: Record<string, unknown> = {}) =>
      withDecisionScope(
        { nowMs, cache: new Map() },
        () => (HOST_BUILTINS['io.jwt.decode_verify']!(jwt, { secret: 'k', ...c }) as unknown[])[0],
      )
    expect(at(1_500_000)).toBe(true)
    expect(at(2_000_000)).toBe(false)
    expect(at(999_000)).toBe(false)
    expect(at(2_000_000, { time: 1_500_000_000_000 })).toBe(true)
  })
})

describe('the builtins run outside Node (browser bundles)', () => {
  const dir = new URL('.', import.meta.url)
  const files = [
    'builtins.ts',
    ...readdirSync(new URL('builtins/', dir))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => `builtins/${f}`),
  ]

  test.each(files)('%s imports no node: module at run time and uses no Buffer', (f) => {
    const src = readFileSync(new URL(f, dir), 'utf8')
    const runtimeImports = [...src.matchAll(/^import (?!type )[^;]*?from '([^']+)'/gms)].map((m) => m[1])
    expect(runtimeImports.filter((m) => m?.startsWith('node:'))).toEqual([])
    expect(src).not.toMatch(/\bBuffer\b(?!`)/)
  })

  /** Run `fn` as in a runtime without `process.getBuiltinModule` (a browser). */
  function withoutNode<T>(fn: () => T): T {
    const proc = globalThis.process as { getBuiltinModule?: unknown }
    const saved = proc.getBuiltinModule
    proc.getBuiltinModule = undefined
    try {
      return fn()
    } finally {
      proc.getBuiltinModule = saved
    }
  }

  const HS_TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.UUtsUaeO3koQylSZ3wxP4lqVvgFw6mGsVzGNBNF_1sQ'

  test('hashes, HMAC and HS256 answer without node:crypto', () => {
    const h = HOST_BUILTINS
    withoutNode(() => {
      expect(h['crypto.sha256']!('hello')).toBe(
        '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824',
      )
      expect(h['crypto.hmac.sha512']!('a', 'k')).toMatch(/^[0-9a-f]{128}$/)
      expect(h['io.jwt.verify_hs256']!(HS_TOKEN, 'secret')).toBe(true)
      expect(h['io.jwt.verify_hs256']!(HS_TOKEN, 'other')).toBe(false)
      expect(h['graphql.is_valid']!('{ a }', 'type Query { a: Int }')).toBe(true)
      expect(h['json.match_schema']!({ a: 1 }, { required: ['b'] })).toEqual([
        false,
        [{ error: '(Root): b is required', type: 'required', field: '(Root)', desc: 'b is required' }],
      ])
    })
  })

  // An EC P-256 CA certificate and its key, generated for this test (openssl).
  const ROOT_KEY =
    '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQggaSnj6iSrUdDAok8\no0YUxe4OmDAKDOjDRVaGA/OPqCmhRANCAAS4y2ax8RfvrVHW1O/dY/SULtzby5XO\n1pfLhXwFSqFQFEfIjGhZ4NQEkcJgW7fIgc1U9vMDQDXls0os2NcadCf4\n-----END PRIVATE KEY-----\n'
  const ROOT_PEM =
    '-----BEGIN CERTIFICATE-----\nMIIBhDCCASmgAwIBAgIUY/rziMtHF/EuswOczzey96O1CvQwCgYIKoZIzj0EAwIw\nDzENMAsGA1UEAwwEUm9vdDAeFw0yNjEyMDMxMjUyMDBaFw0zNjExMzAxMjUyMDBa\nMA8xDTALBgNVBAMMBFJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAS4y2ax\n8RfvrVHW1O/dY/SULtzby5XO1pfLhXwFSqFQFEfIjGhZ4NQEkcJgW7fIgc1U9vMD\nQDXls0os2NcadCf4o2MwYTAdBgNVHQ4EFgQUFA4zE7r2Ov5BdfCt8rGOkJ3gBYgw\nHwYDVR0jBBgwFoAUFA4zE7r2Ov5BdfCt8rGOkJ3gBYgwDwYDVR0TAQH/BAUwAwEB\n/zAOBgNVHQ8BAf8EBAMCAQYwCgYIKoZIzj0EAwIDSQAwRgIhALYMo9v+0tKQY006\nGIj6G64XCDAhfyFbnrZ6ZDSa4hchAiEA/1vLDvluwvxm44bYxiE8O+BwQeYOVAeP\n7ZRfVCHpR94=\n-----END CERTIFICATE-----\n'

  test('X.509 parsing is pure JavaScript; key pairs need node:crypto and say so', () => {
    const certs = withoutNode(() => HOST_BUILTINS['crypto.x509.parse_certificates']!(ROOT_PEM))
    const [cert] = JSON.parse(new TextDecoder().decode(certs as ArrayBuffer)) as Array<
      Record<string, unknown>
    >
    expect(cert).toMatchObject({ IsCA: true, PublicKeyAlgorithm: 3, Subject: { CommonName: 'Root' } })
    expect(() => withoutNode(() => HOST_BUILTINS['crypto.x509.parse_keypair']!(ROOT_PEM, ROOT_KEY))).toThrow(
      /crypto\.x509\.parse_keypair needs node:crypto/,
    )
  })

  test('RS256 without node:crypto fails the call with an error naming the builtin (fails closed)', () => {
    expect(() =>
      withoutNode(() => HOST_BUILTINS['io.jwt.verify_rs256']!(HS_TOKEN, '-----BEGIN PUBLIC KEY-----')),
    ).toThrow(/builtin io\.jwt\.verify_rs256 needs node:crypto/)
    expect(() =>
      withoutNode(() =>
        HOST_BUILTINS['crypto.parse_private_keys']!(
          '-----BEGIN PRIVATE KEY-----\nAA\n-----END PRIVATE KEY-----',
        ),
      ),
    ).toThrow(/crypto\.parse_private_keys needs node:crypto/)
  })
})
