/**
 * Istio AuthorizationPolicy contributions as one policy: ALLOW, DENY and AUDIT rules in one layer,
 * CUSTOM policies as external-authorizer layers, RequestAuthentication issuers as JWT providers.
 */
import { ruleId } from '../context.js'
import type { Obj } from '../read.js'
import type { IstioContribution } from '../translate/istio.js'
import { authorizerLayer, resolveAuthorizer, wrappedRules } from './authorizer.js'
import { type AssembleContext, chooseTarget, nameProviders } from './context.js'

export function assembleIstio(
  ip: IstioContribution[],
  providers: Obj[],
  ctx: AssembleContext,
): Obj | undefined {
  const chosen = chooseTarget([...new Set(ip.flatMap((c) => c.targets))], ctx)
  if (!chosen.ok) return undefined
  const members = ip.filter(
    (c) => c.targets.length === 0 || (chosen.target !== undefined && c.targets.includes(chosen.target)),
  )
  const layers: Obj[] = []
  const rules: Obj[] = []
  let allowPolicies = 0
  for (const c of members) {
    const s = c.scope
    const made = c.rules.map((r, i) => {
      const o = { id: ruleId(s.namespace, s.name, `rule-${i}`), cel: r.cel }
      ctx.origins.set(o, { scope: s, pointer: r.at })
      return o
    })
    if (c.action === 'CUSTOM') {
      // Requests no rule selects never reach the authorizer; a CUSTOM policy without rules selects none.
      if (made.length === 0 || c.provider === undefined) continue
      const a = resolveAuthorizer(c.provider, s, '/spec/provider', ctx)
      if (a === undefined) continue
      Object.assign(ctx.bundles, a.bundles)
      const cond = made.length === 1 ? made[0]!.cel : made.map((m) => `(${m.cel})`).join(' || ')
      if (a.rules.some((r) => r.action === 'allow')) {
        const l = authorizerLayer(a, c.provider)
        l.rules = [
          ...(l.rules as Obj[]),
          { id: ruleId(s.namespace, s.name, 'not-delegated'), action: 'allow', cel: `!(${cond})` },
        ]
        layers.push(l)
      } else
        layers.push({
          name: `external-auth/${c.provider}`,
          default: 'allow',
          rules: wrappedRules(a, { cel: cond }, ruleId(s.namespace, s.name), s, '/spec/provider', ctx),
        })
      continue
    }
    if (c.action === 'ALLOW') allowPolicies++
    for (const m of made) {
      // AUDIT only marks requests for logging: recorded in decision.shadow, never enforced.
      const r: Obj =
        c.action === 'ALLOW'
          ? { ...m, action: 'allow' }
          : c.action === 'DENY'
            ? { ...m, action: 'deny' }
            : { ...m, action: 'deny', shadow: true }
      const o = ctx.origins.get(m)
      if (o) ctx.origins.set(r, o)
      rules.push(r)
    }
  }
  // Once an ALLOW policy applies, what none of its rules allows is denied (an ALLOW policy without
  // rules allows nothing); without one, what no DENY rule denies passes.
  layers.push({ name: 'istio', default: allowPolicies > 0 ? 'deny' : 'allow', rules })
  nameProviders(providers)
  return {
    version: 'verdict/v1',
    name: `istio-${chosen.target ?? members.map((c) => c.scope.name).join('-')}`,
    description: 'imported from Istio AuthorizationPolicy resources',
    // Istio: an invalid token is 401, a missing one passes to the authorization policies.
    ...(providers.length > 0 ? { authentication: { jwt: { mode: 'Optional', providers } } } : {}),
    responses: { denied: { status: 403, body: 'RBAC: access denied' } },
    layers,
  }
}
