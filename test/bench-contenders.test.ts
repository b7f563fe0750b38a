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
    expect(names).toEqual(
      expect.arrayContaining([
        'casbin',
        '@cedar-policy/cedar-wasm',
        "casbin + verdict's input checks",
        "@cedar-policy/cedar-wasm + verdict's input checks",
      ]),
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
