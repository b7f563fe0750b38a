// The reference benchmark's contenders (bench/lib/reference-suite.mjs) decide the shared case list
// right, so `pnpm bench` times engines that make the same decisions; and the like-for-like rows
// reject what decide() rejects and the plain user-side code lets through.
import { describe, expect, test } from 'vitest'

// Plain JavaScript modules without declarations: imported through a path the type checker leaves alone.
const SUITE = '../bench/lib/reference-suite.mjs'
const POLICY = '../bench/lib/reference-policy.mjs'

describe('reference benchmark contenders', () => {
  test('every contender answers the shared cases right, the input-checked ones included', async () => {
    const { prepareContenders } = await import(SUITE)
    const p = await prepareContenders()
    const names = (p.endToEnd as Array<[string, unknown]>).map(([n]) => n)
    const contenders = [
      'hand-written JS',
      '@bufbuild/cel (raw engine)',
      '@marcbachmann/cel-js',
      'casbin',
      '@casl/ability',
      '@cedar-policy/cedar-wasm',
    ]
    // Every contender end to end, and each again behind verdict's input checks (like for like).
    expect([...names].sort()).toEqual(
      [...contenders, ...contenders.map((n) => `${n} + verdict's input checks`)].sort(),
    )
    expect(p.cases.length).toBeGreaterThanOrEqual(10)
    for (const { engine } of p.decideRows) engine.close()
  })

  test('a contender with a wrong answer is refused before timing', async () => {
    const { createIssuer, referenceCases, verifyCases } = await import(POLICY)
    const cases = await referenceCases(await createIssuer())
    await expect(verifyCases('always allow', cases, () => true)).rejects.toThrow(
      /always allow answered true on "no token"/,
    )
    await expect(verifyCases('always deny', cases, () => false)).rejects.toThrow(/on "allowed call"/)
  })

  test('behind the input checks, every contender refuses what decide() refuses and the plain one allows', async () => {
    const { prepareContenders } = await import(SUITE)
    const { toolCall } = await import(POLICY)
    const p = await prepareContenders()
    const ok = toolCall({ token: await p.issuer.sign() })
    const smuggled = { ...ok, body: ok.body.replace('"name":', '"Name":"delete_repo","name":') }
    const [decide] = p.decideRows as Array<{ engine: { decide(r: unknown): Promise<{ allowed: boolean }> } }>
    expect((await decide!.engine.decide(ok)).allowed).toBe(true)
    expect((await decide!.engine.decide(smuggled)).allowed).toBe(false)
    const run = new Map(p.endToEnd as Array<[string, (r: unknown) => Promise<boolean>]>)
    const checked = [...run.keys()].filter((n) => n.endsWith("+ verdict's input checks"))
    expect(checked).toHaveLength(6)
    for (const name of checked) {
      expect(await run.get(name)!(ok), name).toBe(true)
      expect(await run.get(name)!(smuggled), name).toBe(false)
      expect(await run.get(name.replace(" + verdict's input checks", ''))!(smuggled), name).toBe(true)
    }
    for (const { engine } of p.decideRows) engine.close()
  })

  test('the input-checked user side rejects smuggling the plain one lets through', async () => {
    const { createIssuer, createUserSide, handCheck, toolCall } = await import(POLICY)
    const issuer = await createIssuer()
    const user = createUserSide([issuer])
    const ok = toolCall({ token: await issuer.sign() })
    // A second, case-variant `name`: JSON.parse keeps the allowed tool, a lenient server may run the other.
    const smuggled = {
      ...ok,
      body: ok.body.replace('"name":', '"Name":"delete_repo","name":'),
    }
    const plain = user.authorizer(handCheck())
    const checked = user.hardenedAuthorizer(handCheck())
    expect(await plain(ok)).toBe(true)
    expect(await checked(ok)).toBe(true)
    expect(await plain(smuggled)).toBe(true)
    expect(await checked(smuggled)).toBe(false)
    // A header value with CR LF: the input checks refuse it, the plain side does not look.
    const injected = { ...ok, headers: { ...ok.headers, 'x-tenant': 'acme\r\nx-admin: 1' } }
    expect(await plain(injected)).toBe(true)
    expect(await checked(injected)).toBe(false)
  })
})
