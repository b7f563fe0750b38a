/** XAccessPolicy contributions as one policy: a layer per Gateway, then the chosen backend's layer. */
import { ruleId } from '../context.js'
import { isObj, type Obj } from '../read.js'
import type { XAccessContribution } from '../translate/xaccesspolicy.js'
import { authorizerLayer, resolveAuthorizer, wrappedRules } from './authorizer.js'
import { type AssembleContext, chooseTarget } from './context.js'

export function assembleXAccess(xap: XAccessContribution[], ctx: AssembleContext): Obj | undefined {
  const targets = [
    ...new Set(xap.flatMap((c) => c.targets.filter((t) => t.kind !== 'Gateway').map((t) => t.name))),
  ]
  const chosen = chooseTarget(targets, ctx)
  if (!chosen.ok) return undefined
  const target = chosen.target
  const layers: Obj[] = []
  const layer = (name: string, members: XAccessContribution[]): void => {
    const ext: Obj[] = []
    const allow: Obj[] = []
    for (const c of members) {
      c.externalAuth.forEach((ref, i) => {
        const a = resolveAuthorizer(ref.service, ref.scope, ref.at, ctx)
        if (a === undefined) return
        Object.assign(ctx.bundles, a.bundles)
        const always = isObj(ref.when.match) && ref.when.match.always === true
        if (a.rules.some((r) => r.action === 'allow')) {
          // An allow-list authorizer decides alone what it sees: its own layer, for every request only.
          if (always) layers.push(authorizerLayer(a, ref.service))
          else
            ref.scope.problem(
              'import_external_auth',
              `the authorizer for ${ref.service} has allow rules; it can stand only for a policy that delegates every request`,
              ref.at,
            )
          return
        }
        const prefix = ruleId(ref.scope.namespace, ref.scope.name, `external-auth-${i}`)
        ext.push(...wrappedRules(a, ref.when, prefix, ref.scope, ref.at, ctx))
      })
      allow.push(...c.allowRules)
    }
    const l: Obj = { name, rules: [...ext, ...allow] }
    // Once an Allow policy targets it, unmatched requests are denied. v1alpha1 does not open the MCP
    // base protocol by itself (a rule with MATCH_BASE_PROTOCOL_METHODS does); v0alpha0 does.
    if (allow.length === 0) l.default = 'allow'
    else if (members.some((c) => c.version === 'v1alpha1' && c.action === 'Allow')) l.default = 'deny'
    layers.push(l)
  }
  const gateways = [
    ...new Set(xap.flatMap((c) => c.targets.filter((t) => t.kind === 'Gateway').map((t) => t.name))),
  ]
  for (const g of gateways)
    layer(
      `gateway/${g}`,
      xap.filter((c) => c.targets.some((t) => t.kind === 'Gateway' && t.name === g)),
    )
  if (target !== undefined)
    layer(
      target,
      xap.filter((c) => c.targets.some((t) => t.kind !== 'Gateway' && t.name === target)),
    )
  const policy: Obj = {
    version: 'verdict/v1',
    name: `xaccesspolicy-${target ?? gateways.join('-')}`,
    description: 'imported from kube-agentic-networking XAccessPolicy resources',
    mcp: { denial: 'jsonrpc' },
    layers,
  }
  return policy
}
