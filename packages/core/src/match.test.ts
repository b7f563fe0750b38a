import { describe, expect, test } from 'vitest'
import { createEngine } from './engine.js'
import { PolicyError } from './errors.js'
import { matchEvaluator } from './match.js'

async function allowed(match: Record<string, unknown>, input: Record<string, unknown>): Promise<boolean> {
  const engine = await createEngine({ rules: [{ id: 'm', action: 'allow', match }] })
  return (await engine.decide({ path: '/', ...input })).allowed
}

describe('built-in match', () => {
  test.each([
    [{ always: true }, {}, true],
    [{ always: false }, {}, false],
    [{ methods: ['get', 'POST'] }, { method: 'post' }, true],
    [{ methods: ['GET'] }, { method: 'DELETE' }, false],
    [{ paths: [{ exact: '/a' }] }, { path: '/a?x=1' }, true],
    [{ paths: [{ exact: '/a' }] }, { path: '/a/' }, false],
    [{ paths: [{ prefix: '/api/' }] }, { path: '/api/x' }, true],
    [{ paths: [{ suffix: '.json' }] }, { path: '/x.json' }, true],
    [{ paths: [{ contains: 'admin' }] }, { path: '/x/admin/y' }, true],
    [{ paths: [{ prefix: '/a' }, { prefix: '/b' }] }, { path: '/b' }, true],
    [{ hosts: [{ exact: 'svc' }] }, { headers: { host: 'svc' } }, true],
    [{ principals: [{ suffix: '/sa/a' }] }, { source: { principal: 'spiffe://td/ns/x/sa/a' } }, true],
    [{ principals: [{ suffix: '/sa/a' }] }, {}, false],
    [{ headers: [{ name: 'X-Ext-Authz', exact: 'allow' }] }, { headers: { 'x-ext-authz': 'allow' } }, true],
    [{ headers: [{ name: 'x-ext-authz', exact: 'allow' }] }, { headers: { 'x-ext-authz': 'Allow' } }, false],
    [{ headers: [{ name: 'x-ext-authz', present: false }] }, {}, true],
    [{ headers: [{ name: 'x-ext-authz', present: true }] }, {}, false],
    [
      {
        headers: [
          { name: 'a', prefix: 'x' },
          { name: 'b', contains: 'y' },
        ],
      },
      { headers: { a: 'xx', b: 'zyz' } },
      true,
    ],
    [{ headers: [{ name: 'a', suffix: 'x' }] }, { headers: { a: 'ab' } }, false],
    [{ methods: ['GET'], paths: [{ prefix: '/a' }] }, { method: 'GET', path: '/b' }, false],
  ])('%j on %j -> %s', async (match, input, want) => {
    expect(await allowed(match, input)).toBe(want)
  })
})

describe('matchers that would match everything are refused', () => {
  test.each([
    ['a header name without a condition', { headers: [{ name: 'x-admin' }] }, '/rules/0/match/headers/0'],
    [
      'a header entry with two conditions',
      { headers: [{ name: 'x-a', exact: 'a', prefix: 'b' }] },
      '/rules/0/match/headers/0',
    ],
    ['an empty matcher', {}, '/rules/0/match'],
  ])('%s is a load error', async (_, match, path) => {
    const err = await createEngine({ rules: [{ id: 'm', action: 'allow', match }] }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PolicyError)
    expect((err as PolicyError).problems.map((p) => p.path)).toEqual([path])
  })

  test('the evaluator refuses them too, when called without the document schema', () => {
    const site = { ruleId: 'm', path: '/rules/0/match' } as Parameters<typeof matchEvaluator.compile>[1]
    const bare = matchEvaluator.compile({ headers: [{ name: 'x-admin' }] }, site)
    expect(bare).toMatchObject({ ok: false, problems: [{ path: '/rules/0/match/headers/0' }] })
    expect(matchEvaluator.compile({}, site)).toMatchObject({
      ok: false,
      problems: [{ path: '/rules/0/match' }],
    })
    expect(matchEvaluator.compile({ always: true }, site)).toMatchObject({ ok: true })
  })
})
