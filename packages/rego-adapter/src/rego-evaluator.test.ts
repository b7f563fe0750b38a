import { createSign, generateKeyPairSync } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  createEngine,
  createFileResourceLoader,
  type Decision,
  PolicyError,
  type Problem,
  type RequestContext,
  type ResourceLoader,
} from '@verdict/core'
import { DecisionContext, isDecision, normalizeInput } from '@verdict/core/internal'
import { beforeAll, describe, expect, test } from 'vitest'
import { createRegoEvaluator, INPUT_TEXT_KEYS, type RegoOptions } from './rego-evaluator.js'
import { fixtureBundle, fixtureWasm } from './testing/opa-fixture.js'

/** Resources from an in-memory file table (what a host's loader would read from disk). */
function memoryResources(files: Map<string, Uint8Array>): ResourceLoader {
  return {
    async read(location) {
      const b = files.get(location)
      if (b === undefined) throw new Error(`no such file: ${location}`)
      return b
    },
  }
}

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v))

async function engineFor(
  data: Record<string, unknown>,
  rule: Record<string, unknown>,
  opts: RegoOptions = {},
  policyExtra: Record<string, unknown> = {},
) {
  const files = new Map([['authz.tar.gz', await fixtureBundle(data, { builtins: ['custom.capture'] })]])
  return createEngine(
    { bundles: { authz: { path: 'authz.tar.gz' } }, rules: [{ id: 'r', ...rule }], ...policyExtra },
    {
      // The fixture declares `custom.capture`; cases that do not care get a harmless one.
      evaluators: [
        createRegoEvaluator({ ...opts, builtins: { 'custom.capture': () => true, ...opts.builtins } }),
      ],
      resources: memoryResources(files),
    },
  )
}

const GET = { method: 'GET', path: '/api/items?debug=1', headers: { host: 'api.example.com' } }

async function decideWith(
  data: Record<string, unknown>,
  rule: Record<string, unknown>,
  opts: RegoOptions = {},
) {
  const engine = await engineFor(data, rule, opts)
  try {
    return await engine.decide(GET)
  } finally {
    engine.close()
  }
}

const decideRule = (entrypoint = 'fixture/data') => ({
  action: 'decide',
  rego: { bundle: 'authz', entrypoint },
})

describe('decide rules: every result shape, as a case table', () => {
  // The fixture's `fixture/data` entrypoint returns the bundle's data document, so each case's
  // data is the policy's result.
  const shapes: Array<[string, Record<string, unknown>, Partial<Decision>]> = [
    [
      'allowed, nothing else',
      { allowed: true },
      { allowed: true, status: 200, code: 'allowed', reason: 'allowed by rule r' },
    ],
    [
      'allowed with every OPA-Envoy field',
      {
        allowed: true,
        headers: { 'x-user': 'alice', 'x-groups': ['a', 'b'] },
        response_headers_to_add: { 'x-served-by': 'verdict' },
        request_headers_to_remove: ['authorization'],
        query_parameters_to_set: { tenant: 'acme' },
        query_parameters_to_remove: ['debug'],
        dynamic_metadata: { decision_id: 'd-1' },
      },
      {
        allowed: true,
        headers: [
          { key: 'x-user', value: 'alice' },
          { key: 'x-groups', value: 'a' },
          { key: 'x-groups', value: 'b', append: 'append' },
        ],
        responseHeadersToAdd: [{ key: 'x-served-by', value: 'verdict' }],
        headersToRemove: ['authorization'],
        queryParametersToSet: [{ key: 'tenant', value: 'acme' }],
        queryParametersToRemove: ['debug'],
        dynamicMetadata: { decision_id: 'd-1' },
      },
    ],
    [
      'denied, default status',
      { allowed: false },
      { allowed: false, status: 403, code: 'denied', reason: 'denied by rule r', body: '' },
    ],
    [
      'denied with status, headers, body, metadata',
      {
        allowed: false,
        http_status: 429,
        headers: { 'retry-after': '5' },
        body: 'slow down',
        dynamic_metadata: { k: 1 },
      },
      {
        allowed: false,
        status: 429,
        code: 'denied',
        headers: [{ key: 'retry-after', value: '5' }],
        body: 'slow down',
        dynamicMetadata: { k: 1 },
      },
    ],
    [
      'no "allowed"',
      { headers: {} },
      { allowed: false, code: 'evaluator_error', reason: 'rule r failed: result has no "allowed" field' },
    ],
    [
      '"allowed" not boolean',
      { allowed: 'yes' },
      { allowed: false, code: 'evaluator_error', reason: 'rule r failed: "allowed" must be a boolean' },
    ],
    [
      'status not one Envoy can send',
      { allowed: false, http_status: 418 },
      {
        allowed: false,
        code: 'evaluator_error',
        reason: 'rule r failed: http_status 418 is not a valid HTTP status',
      },
    ],
    [
      'status not a number',
      { allowed: false, http_status: '403' },
      {
        allowed: false,
        code: 'evaluator_error',
        reason: 'rule r failed: http_status a string is not a valid HTTP status',
      },
    ],
    [
      'unknown field: ignored, as the plugin ignores it',
      { allowed: true, allow: false, reason: 'x' },
      { allowed: true, code: 'allowed' },
    ],
    [
      'body and status of an allow: ignored, as the plugin ignores them',
      { allowed: true, body: 5, http_status: 418 },
      { allowed: true, code: 'allowed' },
    ],

    [
      'header with a control character',
      { allowed: true, headers: { 'x-a': 'a\r\nx-b: b' } },
      {
        allowed: false,
        code: 'evaluator_error',
        reason: 'rule r failed: headers.x-a has a control character',
      },
    ],
  ]
  test.each(shapes)('%s', async (_name, data, want) => {
    expect(await decideWith(data, decideRule())).toMatchObject(want)
  })

  test('a boolean result (from the input echo)', async () => {
    const engine = await engineFor({}, decideRule('fixture/input'))
    // The OPA-Envoy input is an object without "allowed", not a decision: an error, so a deny.
    const d = await engine.decide(GET)
    expect(d).toMatchObject({ allowed: false, code: 'evaluator_error' })
    expect(d.reason).toMatch(/^rule r failed: result has no "allowed" field/)
    engine.close()
  })

  const errors: Array<[string, string]> = [
    [
      'fixture/undefined',
      'rule r failed: rego fixture/undefined is undefined for this input (empty result set)',
    ],
    ['fixture/several', 'rule r failed: rego fixture/several produced 2 results, expected exactly one'],
    [
      'fixture/binding',
      'rule r failed: rego fixture/binding returned a binding without "result" (compile with -e rego fixture/binding)',
    ],
    ['fixture/abort', 'rule r failed: rego fixture/abort: aborted: fixture abort'],
    ['fixture/trap', 'rule r failed: rego fixture/trap: module trapped: unreachable'],
  ]
  test.each(errors)('%s denies with a clear reason', async (entrypoint, reason) => {
    const d = await decideWith({}, decideRule(entrypoint))
    expect(d).toMatchObject({ allowed: false, status: 403, code: 'evaluator_error', reason })
  })

  test('malformed JSON from the module denies', async () => {
    const d = await decideWith({}, decideRule('fixture/garbage'))
    expect(d).toMatchObject({ allowed: false, code: 'evaluator_error' })
    expect(d.reason).toMatch(/^rule r failed: rego fixture\/garbage: module returned malformed JSON/)
  })

  test('a thrown string, object or error from a builtin denies', async () => {
    const thrown: Array<[unknown, string]> = [
      ['nope', 'aborted: nope'],
      [{ code: 7 }, 'threw {"code":7}'],
      [new Error('backend down'), 'backend down'],
    ]
    for (const [value, why] of thrown) {
      const d = await decideWith({}, decideRule('fixture/builtin'), {
        builtins: {
          'custom.capture': () => {
            throw value
          },
        },
      })
      expect(d).toMatchObject({
        allowed: false,
        code: 'evaluator_error',
        reason: `rule r failed: rego fixture/builtin: ${why}`,
      })
    }
  })
})

describe('allow, deny and require rules: only true matches', () => {
  const table: Array<[string, unknown, Partial<Decision>]> = [
    ['allow', true, { allowed: true, code: 'allowed' }],
    ['allow', false, { allowed: false, code: 'no_match' }],
    ['allow', { allowed: true }, { allowed: false, code: 'no_match' }],
    ['allow', 'true', { allowed: false, code: 'no_match' }],
    ['deny', true, { allowed: false, code: 'denied', reason: 'denied by rule r' }],
    ['deny', false, { allowed: true }],
    ['deny', 1, { allowed: false, code: 'evaluator_error' }],
    ['require', true, { allowed: true }],
    ['require', false, { allowed: false, code: 'denied', reason: 'require rule r not satisfied' }],
    ['require', null, { allowed: false, code: 'evaluator_error' }],
  ]
  test.each(table)('%s rule, result %j', async (action, result, want) => {
    // The custom builtin returns the case's value, so the policy's result is exactly it.
    const d = await decideWith(
      {},
      { action, rego: { bundle: 'authz', entrypoint: 'fixture/builtin' } },
      { builtins: { 'custom.capture': () => result } },
    )
    expect(d).toMatchObject(want)
  })

  test('an erroring allow rule does not allow', async () => {
    const d = await decideWith(
      {},
      { action: 'allow', rego: { bundle: 'authz', entrypoint: 'fixture/undefined' } },
    )
    expect(d).toMatchObject({ allowed: false, code: 'no_match' })
    expect(d.reason).toContain('empty result set')
  })
})

/** RS256 token signed with node:crypto, and the JWKS that verifies it. */
function rsaToken(claims: Record<string, unknown>) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const input = `${b64({ alg: 'RS256', kid: 'k1', typ: 'JWT' })}.${b64(claims)}`
  const sig = createSign('RSA-SHA256').update(input).sign(privateKey).toString('base64url')
  return { token: `${input}.${sig}`, jwks: { keys: [jwk] } }
}

describe('input dialects', () => {
  const ISS = 'https://idp.example.com'
  const now = Math.floor(Date.now() / 1000)
  const { token, jwks } = rsaToken({ iss: ISS, sub: 'alice', exp: now + 600, iat: now - 10 })
  const call = {
    jsonrpc: '2.0',
    id: 7,
    method: 'tools/call',
    params: { name: 'ask_question', arguments: { repoName: 'kubernetes-sigs/gateway-api' } },
  }
  const request = {
    method: 'POST',
    path: '/mcp',
    headers: {
      host: 'mcp.example.com',
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify(call),
  }

  async function seen(dialect: string): Promise<Record<string, any>> {
    let captured: unknown
    const engine = await engineFor(
      {},
      { action: 'allow', rego: { bundle: 'authz', entrypoint: 'fixture/builtin', dialect } },
      {
        builtins: {
          'custom.capture': (input: unknown) => {
            captured = input
            return true
          },
        },
      },
      { authentication: { jwt: { mode: 'Strict', providers: [{ issuer: ISS, jwks: { inline: jwks } }] } } },
    )
    const d = await engine.decide(request)
    engine.close()
    expect(d.allowed).toBe(true)
    return captured as Record<string, any>
  }

  test('opa-envoy: attributes, parsed path and body, JWT claims under input.jwt, MCP call under input.mcp', async () => {
    const input = await seen('opa-envoy')
    expect(input.attributes.request.http).toMatchObject({
      method: 'POST',
      path: '/mcp',
      host: 'mcp.example.com',
    })
    expect(input.parsed_path).toEqual(['mcp'])
    expect(input.parsed_body).toEqual(call)
    expect(input.version).toEqual({ encoding: 'protojson', ext_authz: 'v3' })
    expect(input.jwt).toMatchObject({ iss: ISS, sub: 'alice' })
    expect(input.mcp).toMatchObject({ method: 'tools/call', id: 7, tool: { name: 'ask_question' } })
  })

  test('authorino: request attributes, identity under input.auth.identity, MCP arguments in mcp_proxy metadata', async () => {
    const input = await seen('authorino')
    expect(input.request).toMatchObject({ method: 'POST', url_path: '/mcp', host: 'mcp.example.com' })
    expect(input.auth.identity).toMatchObject({ iss: ISS, sub: 'alice' })
    expect(input.metadata.filter_metadata.mcp_proxy.params.arguments.repoName).toBe(
      'kubernetes-sigs/gateway-api',
    )
    expect(input.attributes).toBeUndefined()
  })
})

describe('the input is serialized once per decision', () => {
  test('rules of one dialect share one serialization; each dialect has its own', async () => {
    const ev = createRegoEvaluator()
    const site = {
      ruleId: 'r',
      path: '/rules/0/rego',
      resources: memoryResources(new Map([['b.tar.gz', await fixtureBundle({ allowed: true })]])),
      document: { bundles: { b: { path: 'b.tar.gz' } } },
    }
    const compiled = await Promise.all(
      ['opa-envoy', 'opa-envoy', 'authorino'].map((dialect) =>
        ev.compile({ bundle: 'b', entrypoint: 'fixture/data', dialect }, site),
      ),
    )
    const programs = compiled.map((c) => {
      if (!c.ok) throw new Error(JSON.stringify(c.problems))
      return c.program
    })
    // Real decision contexts, each counting what its memo makes under the serialized-input keys.
    let serialized = 0
    const texts = new Set(Object.values(INPUT_TEXT_KEYS))
    function context(): RequestContext {
      const input = normalizeInput({
        method: 'POST',
        path: '/p',
        headers: { 'content-type': 'application/json' },
        body: '{"a":1}',
      })
      if (isDecision(input)) throw new Error(input.reason)
      const ctx = new DecisionContext(input, 0, 64)
      const memo = ctx.memo.bind(ctx)
      ctx.memo = (key, make) =>
        memo(key, () => {
          if (texts.has(key)) serialized++
          return make()
        })
      return ctx
    }
    const ctx = context()
    for (const p of programs) expect(p.evaluate(ctx)).toEqual({ ok: true, value: { allowed: true } })
    expect(serialized).toBe(2)
    programs[0]!.evaluate(context())
    expect(serialized).toBe(3)
    for (const p of programs) p.dispose?.()
    expect(programs[1]!.evaluate(context())).toEqual({
      ok: false,
      error: 'rego fixture/data: the bundle was released (policy replaced)',
    })
  })
})

describe('robustness through the engine', () => {
  test('an input that needs more memory than allowed denies, and the next request is decided', async () => {
    const engine = await engineFor({ allowed: true }, decideRule('fixture/data'), {
      memory: { initialPages: 2, maxPages: 8 },
    })
    const big = await engine.decide({ ...GET, method: 'POST', body: 'x'.repeat(700_000) })
    expect(big).toMatchObject({ allowed: false, code: 'evaluator_error' })
    expect(big.reason).toMatch(/memory limit of 8 pages|out of memory/)
    expect(await engine.decide(GET)).toMatchObject({ allowed: true })
    engine.close()
  })

  test('bundles swap through engine.update while decisions run', async () => {
    const files = new Map([
      ['authz.tar.gz', await fixtureBundle({ allowed: true, headers: { 'x-bundle': 'a' } })],
    ])
    const policy = () => ({
      bundles: { authz: { path: 'authz.tar.gz' } },
      rules: [{ id: 'r', action: 'decide', rego: { bundle: 'authz', entrypoint: 'fixture/data' } }],
    })
    const engine = await createEngine(policy(), {
      evaluators: [createRegoEvaluator()],
      resources: memoryResources(files),
    })
    const bundleOf = (d: Decision) => d.headers.find((h) => h.key === 'x-bundle')?.value
    const pending: Array<Promise<Decision>> = []
    for (let i = 0; i < 50; i++) pending.push(engine.decide(GET))
    files.set('authz.tar.gz', await fixtureBundle({ allowed: true, headers: { 'x-bundle': 'b' } }))
    let updated = false
    const update = engine.update(policy()).then(() => {
      updated = true
    })
    while (!updated) {
      pending.push(engine.decide(GET))
      await new Promise((r) => setImmediate(r))
    }
    await update
    const during = await Promise.all(pending)
    expect(during.every((d) => d.allowed)).toBe(true)
    const seen = new Set(during.map(bundleOf))
    expect(seen.has('a')).toBe(true)
    expect([...seen].every((b) => b === 'a' || b === 'b')).toBe(true)
    const after = await Promise.all(Array.from({ length: 20 }, () => engine.decide(GET)))
    expect(after.map(bundleOf)).toEqual(Array(20).fill('b'))
    expect(engine.info.generation).toBe(1)
    engine.close()
  })

  test('a raw wasm with data, and a bundle fetched from a URL by the host', async () => {
    const server: Server = createServer((req, res) => {
      if (req.url === '/bundles/authz.tar.gz') {
        fixtureBundle({ allowed: true, headers: { 'x-from': 'url' } }).then((b) => res.end(Buffer.from(b)))
      } else {
        res.statusCode = 404
        res.end()
      }
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const files = new Map([
        ['policy.wasm', await fixtureWasm()],
        ['data.json', enc({ allowed: true, headers: { 'x-from': 'wasm' } })],
      ])
      const local = memoryResources(files)
      const http = createFileResourceLoader({ baseDir: '/nonexistent', fetch: globalThis.fetch })
      const engine = await createEngine(
        {
          bundles: {
            raw: { wasm: 'policy.wasm', data: 'data.json' },
            remote: { url: `${base}/bundles/authz.tar.gz` },
          },
          rules: [
            { id: 'raw', action: 'decide', rego: { bundle: 'raw', entrypoint: 'fixture/data' } },
            { id: 'remote', action: 'decide', rego: { bundle: 'remote', entrypoint: 'fixture/data' } },
          ],
        },
        {
          evaluators: [createRegoEvaluator()],
          resources: { read: (l) => (l.startsWith('http') ? http.read(l) : local.read(l)) },
        },
      )
      const d = await engine.decide(GET)
      expect(d.allowed).toBe(true)
      expect(d.headers.filter((h) => h.key === 'x-from').map((h) => h.value)).toEqual(['url'])
      engine.close()
    } finally {
      server.close()
    }
  })

  test('preloaded bundle bytes through RegoOptions.bundles', async () => {
    const engine = await createEngine(
      { rules: [{ id: 'r', action: 'decide', rego: { bundle: 'mem', entrypoint: 'fixture/data' } }] },
      {
        evaluators: [
          createRegoEvaluator({ bundles: { mem: { tarGz: await fixtureBundle({ allowed: true }) } } }),
        ],
      },
    )
    expect(await engine.decide(GET)).toMatchObject({ allowed: true, rule: 'r' })
    engine.close()
  })
})

describe('load problems carry JSON paths', () => {
  async function problemsOf(
    doc: Record<string, unknown>,
    opts: RegoOptions = {},
    files: Record<string, Uint8Array> = {},
  ) {
    try {
      const e = await createEngine(doc, {
        evaluators: [createRegoEvaluator(opts)],
        resources: memoryResources(new Map(Object.entries(files))),
      })
      e.close()
    } catch (e) {
      if (e instanceof PolicyError)
        return e.problems.map((p: Problem) => ({ code: p.code, path: p.path, message: p.message }))
      throw e
    }
    throw new Error('expected the policy to be rejected')
  }
  const rule = (rego: Record<string, unknown>, id = 'r') => ({ id, action: 'allow', rego })
  let bundle: Uint8Array
  let needsHttp: Uint8Array
  beforeAll(async () => {
    bundle = await fixtureBundle({})
    needsHttp = await fixtureBundle({}, { builtins: ['http.send'] })
  })

  test('case table', async () => {
    const b = { 'b.tar.gz': bundle }
    const cases: Array<
      [
        string,
        Record<string, unknown>,
        RegoOptions,
        Record<string, Uint8Array>,
        Array<Record<string, string | RegExp>>,
      ]
    > = [
      [
        'undeclared bundle',
        { bundles: { b: { path: 'b.tar.gz' } }, rules: [rule({ bundle: 'x', entrypoint: 'a/b' })] },
        {},
        b,
        [
          {
            code: 'rego_config',
            path: '/rules/0/rego/bundle',
            message: 'bundle "x" is not declared in /bundles (declared: b)',
          },
        ],
      ],
      [
        'bad entrypoint syntax and dialect (schema)',
        { bundles: {}, rules: [rule({ bundle: 'b', entrypoint: 'data.a.b', dialect: 'envoy' })] },
        {},
        {},
        [{ path: '/rules/0/rego/dialect' }, { path: '/rules/0/rego/entrypoint' }],
      ],
      [
        'two sources',
        {
          bundles: { b: { path: 'b.tar.gz', url: 'https://x/y' } },
          rules: [rule({ bundle: 'b', entrypoint: 'a/b' })],
        },
        {},
        b,
        [
          {
            code: 'rego_bundle',
            path: '/bundles/b',
            message: 'a bundle needs exactly one of path, url or wasm',
          },
        ],
      ],
      [
        'unknown field in a bundle, with an escaped name',
        {
          bundles: { 'team/a': { path: 'b.tar.gz', sha: 'x' } },
          rules: [rule({ bundle: 'team/a', entrypoint: 'a/b' })],
        },
        {},
        b,
        [{ code: 'rego_bundle', path: '/bundles/team~1a/sha', message: 'unknown field "sha"' }],
      ],
      [
        'unreadable file',
        { bundles: { b: { path: 'missing.tar.gz' } }, rules: [rule({ bundle: 'b', entrypoint: 'a/b' })] },
        {},
        {},
        [
          {
            code: 'resource',
            path: '/bundles/b/path',
            message: 'cannot read missing.tar.gz: no such file: missing.tar.gz',
          },
        ],
      ],
      [
        'url that is not http',
        { bundles: { b: { url: 'file:///etc/passwd' } }, rules: [rule({ bundle: 'b', entrypoint: 'a/b' })] },
        {},
        {},
        [{ code: 'rego_bundle', path: '/bundles/b/url', message: 'url must be an http(s) URL' }],
      ],
      [
        'data without wasm',
        {
          bundles: { b: { path: 'b.tar.gz', data: 'd.json' } },
          rules: [rule({ bundle: 'b', entrypoint: 'a/b' })],
        },
        {},
        b,
        [{ path: '/bundles/b/data', message: 'data (a JSON file path) goes only with wasm' }],
      ],
      [
        'neither gzip nor wasm',
        { bundles: { b: { path: 'x.txt' } }, rules: [rule({ bundle: 'b', entrypoint: 'a/b' })] },
        {},
        { 'x.txt': enc('hello') },
        [{ path: '/bundles/b/path', message: 'x.txt is neither a gzipped bundle nor a wasm module' }],
      ],
      [
        'entrypoint the manifest does not list',
        {
          bundles: { b: { path: 'b.tar.gz' } },
          rules: [rule({ bundle: 'b', entrypoint: 'envoy/authz/allow' })],
        },
        {},
        b,
        [
          {
            code: 'rego_entrypoint',
            path: '/rules/0/rego/entrypoint',
            message: /has no wasm entrypoint envoy\/authz\/allow \(manifest lists: fixture\/data, /,
          },
        ],
      ],
      [
        'missing builtin, named, reported once for two rules',
        {
          bundles: { b: { path: 'h.tar.gz' } },
          rules: [
            rule({ bundle: 'b', entrypoint: 'fixture/data' }),
            rule({ bundle: 'b', entrypoint: 'fixture/input' }, 's'),
          ],
        },
        {},
        { 'h.tar.gz': needsHttp },
        [
          { code: 'rego_builtin', path: '/bundles/b', message: /needs builtin "http\.send"/ },
          { code: 'rego_bundle', path: '/rules/1/rego/bundle', message: 'bundle "b" failed to load' },
        ],
      ],
      [
        'declared twice',
        { bundles: { b: { path: 'b.tar.gz' } }, rules: [rule({ bundle: 'b', entrypoint: 'a/b' })] },
        { bundles: { b: { tarGz: bundle } } },
        b,
        [{ path: '/bundles/b', message: /declared in the document and given in RegoOptions.bundles/ }],
      ],
    ]
    for (const [name, doc, opts, files, want] of cases) {
      const got = await problemsOf(doc, opts, files)
      expect(got, name).toEqual(
        want.map((w) =>
          expect.objectContaining(
            Object.fromEntries(
              Object.entries(w).map(([k, v]) => [k, v instanceof RegExp ? expect.stringMatching(v) : v]),
            ),
          ),
        ),
      )
    }
  })

  test('entrypoint missing from a module without a manifest', async () => {
    const got = await problemsOf(
      { bundles: { w: { wasm: 'p.wasm' } }, rules: [rule({ bundle: 'w', entrypoint: 'envoy/authz/allow' })] },
      {},
      { 'p.wasm': await fixtureWasm() },
    )
    expect(got).toEqual([
      {
        code: 'rego_entrypoint',
        path: '/rules/0/rego/entrypoint',
        message: expect.stringMatching(
          /^module \/policy\.wasm of bundle "w" has no entrypoint envoy\/authz\/allow \(it has: fixture\/data/,
        ),
      },
    ])
  })

  test('invalid options throw at construction', () => {
    expect(() => createRegoEvaluator({ memory: { maxPages: 0 } })).toThrow(
      /memory.maxPages must be a positive integer/,
    )
    expect(() => createRegoEvaluator({ memory: { initialPages: 9, maxPages: 8 } })).toThrow(/exceeds/)
  })
})
