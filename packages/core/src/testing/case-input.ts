/**
 * A case's request as a `decide()` input: a CheckRequest as written, or one built with the testing
 * helpers, with a token signed by a fixture issuer whose key replaces the provider's.
 */

import type { CaseSpec, Fixtures } from './case-file.js'
import { checkRequest, mcpRequest } from './inputs.js'
import { createTestIssuer, type TestIssuer } from './issuer.js'

type Obj = Record<string, unknown>

/** Point each fixture issuer's provider at a freshly generated key (inline JWKS). */
export async function issuersFor(
  policy: Obj,
  fixtures: Fixtures,
): Promise<Map<string, { issuer: TestIssuer; audience: string | undefined }>> {
  const out = new Map<string, { issuer: TestIssuer; audience: string | undefined }>()
  const entries = Object.entries(fixtures.issuers ?? {})
  if (entries.length === 0) return out
  const providers = ((policy.authentication as Obj | undefined)?.jwt as Obj | undefined)?.providers
  if (!Array.isArray(providers))
    throw new Error('fixtures.issuers needs a policy with authentication.jwt.providers')
  for (const [name, spec] of entries) {
    const idx = providers.findIndex((p: Obj) => p.name === spec.provider || p.issuer === spec.provider)
    if (idx === -1)
      throw new Error(`fixtures.issuers.${name}: no JWT provider named "${spec.provider}" in the policy`)
    const p = providers[idx] as Obj
    const issuer = await createTestIssuer({
      issuer: String(p.issuer),
      ...(spec.alg ? { alg: spec.alg } : {}),
      kid: `case-${name}`,
    })
    providers[idx] = { ...p, jwks: { inline: issuer.jwks } }
    const aud = Array.isArray(p.audiences) ? (p.audiences[0] as string | undefined) : undefined
    out.set(name, { issuer, audience: aud })
  }
  return out
}

export async function buildInput(
  c: CaseSpec,
  fixtures: Fixtures,
  issuers: Map<string, { issuer: TestIssuer; audience: string | undefined }>,
): Promise<unknown> {
  if (c.checkRequest !== undefined) return c.checkRequest
  const r = c.request ?? {}
  let token = r.token
  if (r.jwt !== undefined) {
    const iss = issuers.get(r.jwt.issuer)
    if (iss === undefined)
      throw new Error(`case "${c.name}": unknown issuer "${r.jwt.issuer}" (declare it in fixtures.issuers)`)
    token = await iss.issuer.sign({
      ...(iss.audience !== undefined ? { aud: iss.audience } : {}),
      ...(r.jwt.claims ?? {}),
    })
  }
  const principal =
    r.principal === undefined ? undefined : (fixtures.identities?.[r.principal] ?? r.principal)
  const common = {
    ...(r.path !== undefined ? { path: r.path } : {}),
    ...(r.host !== undefined ? { host: r.host } : {}),
    ...(r.headers !== undefined ? { headers: r.headers } : {}),
    ...(principal !== undefined ? { principal } : {}),
    ...(token !== undefined ? { token } : {}),
  }
  if (r.mcp !== undefined) {
    return mcpRequest({
      ...common,
      ...(r.mcp.method !== undefined ? { method: r.mcp.method } : {}),
      ...(r.mcp.tool !== undefined ? { tool: r.mcp.tool } : {}),
      ...(r.mcp.arguments !== undefined ? { arguments: r.mcp.arguments } : {}),
      ...(r.mcp.id !== undefined ? { id: r.mcp.id } : {}),
      ...(r.mcp.metadata !== undefined ? { metadata: r.mcp.metadata } : {}),
    })
  }
  return checkRequest({
    ...common,
    ...(r.method !== undefined ? { method: r.method } : {}),
    ...(r.body !== undefined ? { body: r.body as string | object } : {}),
  })
}
