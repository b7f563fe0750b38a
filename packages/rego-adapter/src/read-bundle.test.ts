import { gzipSync } from 'node:zlib'
import { describe, expect, test } from 'vitest'
import { bundleFromWasm, readBundle, sniffBundle } from './read-bundle.js'
import { fixtureBundle, fixtureWasm, packBundle } from './testing/opa-fixture.js'

describe('readBundle', () => {
  test('a bundle as opa build -t wasm writes it: manifest, module, data at nested paths merged', async () => {
    const b = await readBundle(
      await fixtureBundle(
        { envoy: { settings: { mode: 'strict' } } },
        {
          roots: ['envoy', 'mcp/allowlist'],
          extra: {
            '/envoy/authz/data.json': { json: { users: ['alice'] } },
            'mcp/allowlist/repos/data.json': { json: ['kubernetes-sigs/gateway-api'] },
            '/envoy/authz/policy.rego': 'package envoy.authz\n',
          },
        },
      ),
    )
    if (Array.isArray(b)) throw new Error(b.join('\n'))
    expect(b.revision).toBe('test')
    expect(b.roots).toEqual(['envoy', 'mcp/allowlist'])
    expect(b.modules).toHaveLength(1)
    expect(b.modules[0]!.path).toBe('policy.wasm')
    expect(b.modules[0]!.entrypoints).toContain('fixture/data')
    expect(JSON.parse(JSON.stringify(b.data))).toEqual({
      envoy: { settings: { mode: 'strict' }, authz: { users: ['alice'] } },
      mcp: { allowlist: { repos: ['kubernetes-sigs/gateway-api'] } },
    })
  })

  test('without a manifest, /policy.wasm is the module and every entrypoint is allowed', async () => {
    const b = await readBundle(
      await packBundle({ 'policy.wasm': await fixtureWasm(), './data.json': '{"a":1}' }),
    )
    if (Array.isArray(b)) throw new Error(b.join('\n'))
    expect(b.modules.map((m) => [m.path, m.entrypoints])).toEqual([['policy.wasm', []]])
    expect(b.data.a).toBe(1)
  })

  test('hostile keys stay data', async () => {
    const b = await readBundle(
      await packBundle({
        '/policy.wasm': await fixtureWasm(),
        '/data.json': '{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}',
        '/__proto__/data.json': '{"y":2}',
      }),
    )
    if (Array.isArray(b)) throw new Error(b.join('\n'))
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.keys(b.data).sort()).toEqual(['__proto__', 'constructor'])
    expect(JSON.stringify(b.data.__proto__)).toBe('{"y":2,"polluted":true}')
  })

  const wasm = fixtureWasm()
  const broken: Array<[string, () => Promise<Uint8Array>, RegExp]> = [
    ['not gzip', async () => new TextEncoder().encode('plain text'), /not valid gzip/],
    [
      'gzip but not tar',
      async () => gzipSync('hello, this is not a tar archive'.repeat(40)),
      /not a valid tar/,
    ],
    ['no module', async () => packBundle({ '/data.json': '{}' }), /holds no wasm module/],
    [
      'manifest names a missing module',
      async () =>
        packBundle({
          '/.manifest': { json: { wasm: [{ entrypoint: 'a/b', module: '/other.wasm' }] } },
          '/policy.wasm': await wasm,
        }),
      /names module \/other\.wasm, which the bundle does not hold/,
    ],
    [
      'manifest not JSON',
      async () => packBundle({ '/.manifest': '{', '/policy.wasm': await wasm }),
      /\.manifest is not valid JSON/,
    ],
    [
      'malformed manifest fields',
      async () =>
        packBundle({
          '/.manifest': { json: { roots: 'x', wasm: [{ entrypoint: 1 }] } },
          '/policy.wasm': await wasm,
        }),
      /roots must be a list of strings[\s\S]*need string "entrypoint" and "module"/,
    ],
    [
      'data not JSON',
      async () => packBundle({ '/policy.wasm': await wasm, '/a/data.json': '{nope' }),
      /\/a\/data\.json is not valid JSON/,
    ],
    [
      'root data not an object',
      async () => packBundle({ '/policy.wasm': await wasm, '/data.json': '[1]' }),
      /must hold an object/,
    ],
    [
      'data outside the roots',
      async () =>
        packBundle({
          '/.manifest': { json: { roots: ['envoy/authz'] } },
          '/policy.wasm': await wasm,
          '/data.json': { json: { envoy: { authz: { ok: 1 }, other: 2 } } },
          '/secrets/data.json': { json: { k: 1 } },
        }),
      /data at \/envoy\/other is outside the manifest roots[\s\S]*data at \/secrets is outside/,
    ],
    [
      'the same key from two files',
      async () =>
        packBundle({
          '/policy.wasm': await wasm,
          '/data.json': { json: { a: { b: 1 } } },
          '/a/data.json': { json: { b: 2 } },
        }),
      /key "b" is defined twice/,
    ],
    [
      'a file twice',
      async () => packBundle({ '/policy.wasm': await wasm, 'policy.wasm': await wasm }),
      /holds \/policy\.wasm more than once/,
    ],
    [
      'YAML data',
      async () => packBundle({ '/policy.wasm': await wasm, '/x/data.yaml': 'a: 1' }),
      /YAML data files are not supported/,
    ],
  ]
  test.each(broken)('%s is a load problem', async (_name, make, want) => {
    const b = await readBundle(await make())
    expect(Array.isArray(b)).toBe(true)
    expect((b as string[]).join('\n')).toMatch(want)
  })

  test('a decompression bomb stops at the size ceiling', async () => {
    const bomb = await packBundle({
      '/policy.wasm': await wasm,
      '/data.json': `{"a":"${'x'.repeat(4_000_000)}"}`,
    })
    expect(bomb.length).toBeLessThan(100_000)
    expect(await readBundle(bomb, 1_000_000)).toEqual(['bundle is larger than 1000000 bytes uncompressed'])
  })
})

test('sniffBundle and bundleFromWasm', async () => {
  const w = await fixtureWasm()
  expect(sniffBundle(w)).toBe('wasm')
  expect(sniffBundle(await packBundle({ a: 'b' }))).toBe('gzip')
  expect(sniffBundle(new Uint8Array([1, 2]))).toBeUndefined()
  const b = bundleFromWasm(w, new TextEncoder().encode('{"x":{"__proto__":1}}'))
  expect(!Array.isArray(b) && JSON.stringify(b.data)).toBe('{"x":{"__proto__":1}}')
  expect(bundleFromWasm(w, new TextEncoder().encode('[]'))).toEqual(['data must be a JSON object'])
  expect(bundleFromWasm(w, new TextEncoder().encode('{'))).toEqual([
    expect.stringMatching(/^data is not valid JSON/),
  ])
})
