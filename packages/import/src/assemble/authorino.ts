/** Authorino AuthConfigs as one policy: their hosts and rules in one layer, their JWT identities. */
import type { Obj } from '../read.js'
import { type AuthConfigContribution, hostsRule } from '../translate/authorino.js'
import type { Origin } from './context.js'

export function assembleAuthorino(authConfigs: AuthConfigContribution[], origins: Map<Obj, Origin>): Obj {
  const rules: Obj[] = []
  const bundles: Record<string, Obj> = {}
  const providers: Obj[] = []
  let anonymous = false
  for (const a of authConfigs) {
    const h = hostsRule(a)
    if (h) {
      rules.push(h)
      origins.set(h, { scope: a.scope, pointer: '/spec/hosts' })
    }
    rules.push(...a.rules)
    Object.assign(bundles, a.bundles)
    providers.push(...a.providers)
    anonymous ||= a.anonymous
  }
  const policy: Obj = {
    version: 'verdict/v1',
    name: `authconfig-${authConfigs.map((a) => a.scope.name).join('-')}`,
    description: 'imported from Authorino AuthConfig resources',
  }
  if (providers.length > 0)
    policy.authentication = { jwt: { mode: anonymous ? 'Permissive' : 'Strict', providers } }
  policy.layers = [{ name: 'authorino', default: 'allow', rules }]
  if (Object.keys(bundles).length > 0) policy.bundles = bundles
  return policy
}
