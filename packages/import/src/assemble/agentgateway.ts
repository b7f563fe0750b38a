/**
 * agentgateway policy contributions as one policy: authentication (JWT, API keys from Secrets,
 * basic auth), the authorization rules as one layer, MCP rules, external authorizers as layers.
 */
import type { Obj } from '../read.js'
import type { AgentgatewayContribution } from '../translate/agentgateway.js'
import { authorizerLayer, resolveAuthorizer } from './authorizer.js'
import { type AssembleContext, chooseTarget, nameProviders } from './context.js'

export function assembleAgentgateway(ag: AgentgatewayContribution[], ctx: AssembleContext): Obj | undefined {
  const targets = [
    ...new Set(ag.flatMap((c) => c.targets.filter((t) => t.kind !== 'Gateway').map((t) => t.name))),
  ]
  const chosen = chooseTarget(targets, ctx)
  if (!chosen.ok) return undefined
  const members = ag.filter(
    (c) => c.targets.length === 0 || c.targets.some((t) => t.kind === 'Gateway' || t.name === chosen.target),
  )
  const authentication: Obj = {}
  const providers: Obj[] = []
  let mode: string | undefined
  const rules: Obj[] = []
  const mcpRules: Obj[] = []
  const layers: Obj[] = []
  for (const c of members) {
    if (c.jwt) {
      if (mode !== undefined && mode !== c.jwt.mode)
        c.scope.problem(
          'import_conflict',
          `JWT mode ${c.jwt.mode} conflicts with ${mode} of another policy`,
          c.jwt.at,
        )
      mode = c.jwt.mode
      providers.push(...c.jwt.providers)
    }
    if (c.apiKey) {
      const secret = ctx.secrets.get(`${c.scope.namespace}/${c.apiKey.secret}`)
      if (secret === undefined)
        c.scope.problem(
          'import_secret',
          `Secret ${c.scope.namespace}/${c.apiKey.secret} is not in the input: add it (its keys are the API keys)`,
          c.apiKey.at,
        )
      else if (authentication.apiKey !== undefined)
        c.scope.problem('import_conflict', 'two policies configure API key authentication', c.apiKey.at)
      else
        authentication.apiKey = {
          mode: c.apiKey.mode,
          keys: secret.keys,
          ...(c.apiKey.location ? { location: c.apiKey.location } : {}),
        }
    }
    if (c.basicAuth) authentication.basicAuth = c.basicAuth
    rules.push(...c.rules)
    for (const r of c.rules) ctx.origins.set(r, { scope: c.scope, pointer: c.origins.get(r) ?? '' })
    mcpRules.push(...c.mcpRules)
    if (c.extAuth) {
      const a = resolveAuthorizer(c.extAuth.service, c.scope, c.extAuth.at, ctx)
      if (a !== undefined) {
        Object.assign(ctx.bundles, a.bundles)
        layers.push(authorizerLayer(a, c.extAuth.service))
      }
    }
  }
  // Issuers shared by providers get agentgateway's per-provider keys; names keep them apart.
  nameProviders(providers)
  if (providers.length > 0) authentication.jwt = { mode: mode ?? 'Strict', providers }
  const policy: Obj = {
    version: 'verdict/v1',
    name: `agentgateway-${chosen.target ?? members.map((c) => c.scope.name).join('-')}`,
    description: 'imported from agentgateway policies',
  }
  if (Object.keys(authentication).length > 0) policy.authentication = authentication
  if (mcpRules.length > 0) {
    policy.mcpAuthorization = { rules: mcpRules }
    // agentgateway hides what a caller may not use: 400 -32602 Unknown tool.
    policy.mcp = { denial: 'hidden' }
  }
  policy.responses = { denied: { status: 403, body: 'authorization failed' } }
  if (rules.length > 0) layers.push({ name: 'authorization', rules })
  else if (mcpRules.length === 0 || layers.length > 0)
    layers.push({ name: 'authorization', default: 'allow', rules: [] })
  if (layers.length > 0) policy.layers = layers
  return policy
}
