/**
 * External authorizers: what the Service a policy delegates to decides, as verdict rules (from an
 * `ExternalAuthorizer` resource, `ImportOptions.externalAuth`, or the input's Authorino AuthConfigs),
 * and how those rules join the policy (wrapped under the delegating condition, or a layer).
 */
import { ruleId, type Scope } from '../context.js'
import { isObj, type Obj } from '../read.js'
import { hostsRule } from '../translate/authorino.js'
import type { AssembleContext } from './context.js'

/** An external authorizer as verdict rules. */
export interface Authorizer {
  readonly rules: Obj[]
  readonly bundles: Record<string, Obj>
  readonly denied?: Obj
  readonly default?: string
}

/** Where the input or the options say what an external authorizer Service decides. */
export function resolveAuthorizer(
  service: string,
  s: Scope,
  at: string,
  ctx: AssembleContext,
): Authorizer | undefined {
  const name = service.split('/')[1] ?? service
  const fromDoc = (doc: Obj, origin: { scope: Scope; pointer: string }): Authorizer | undefined => {
    if (doc.layers !== undefined) {
      s.problem('import_external_auth', `the authorizer for ${service} has layers: give it as rules`, at)
      return undefined
    }
    const rules = (Array.isArray(doc.rules) ? doc.rules : []).filter(isObj).map((r) => ({ ...r }))
    for (const r of rules) ctx.origins.set(r, origin)
    if (rules.length === 0 && doc.default === undefined) {
      s.problem('import_external_auth', `the authorizer for ${service} has no rules`, at)
      return undefined
    }
    const denied = isObj(doc.responses) && isObj(doc.responses.denied) ? doc.responses.denied : undefined
    return {
      rules,
      bundles: isObj(doc.bundles) ? (doc.bundles as Record<string, Obj>) : {},
      ...(denied ? { denied } : {}),
      ...(typeof doc.default === 'string' ? { default: doc.default } : {}),
    }
  }
  const given = ctx.options.externalAuth?.[service] ?? ctx.options.externalAuth?.[name]
  if (given !== undefined) return fromDoc(given, { scope: s, pointer: at })
  const declared =
    ctx.authorizers.find((a) => a.service === service) ??
    ctx.authorizers.find((a) => a.service.endsWith(`/${name}`))
  if (declared !== undefined) return fromDoc(declared.doc, { scope: declared.scope, pointer: '/spec' })
  if (name.includes('authorino') && ctx.authConfigs.length > 0) {
    const rules: Obj[] = []
    const bundles: Record<string, Obj> = {}
    for (const a of ctx.authConfigs) {
      if (a.providers.length > 0)
        a.scope.problem(
          'import_unsupported',
          'JWT identities of an AuthConfig used as an external authorizer are not supported',
          '/spec/authentication',
        )
      Object.assign(bundles, a.bundles)
      const h = hostsRule(a)
      if (h) {
        rules.push(h)
        ctx.origins.set(h, { scope: a.scope, pointer: '/spec/hosts' })
      }
      rules.push(...a.rules)
    }
    return { rules, bundles }
  }
  s.problem(
    'import_external_auth',
    `external authorizer ${service}: say what it decides (an ExternalAuthorizer resource of apiVersion verdict.dev/v1 in the input, ImportOptions.externalAuth or verdict --external-auth ${service}=<policy.yaml>; an Authorino AuthConfig for an authorino Service)`,
    at,
  )
  return undefined
}

/** The authorizer's rules, each applying only under `when` (an authorizer of require/deny/decide rules). */
export function wrappedRules(
  a: Authorizer,
  when: Obj,
  prefix: string,
  s: Scope,
  at: string,
  ctx: AssembleContext,
): Obj[] {
  const out: Obj[] = []
  for (const r of a.rules) {
    if (r.when !== undefined) {
      s.problem('import_external_auth', `the authorizer's rule ${String(r.id)} has its own when`, at)
      continue
    }
    const w = { ...r, id: ruleId(prefix, String(r.id)), when }
    const o = ctx.origins.get(r)
    if (o) ctx.origins.set(w, o)
    out.push(w)
  }
  return out
}

/** The authorizer as a layer of its own (it may allow-list), for requests it always sees. */
export function authorizerLayer(a: Authorizer, service: string): Obj {
  const l: Obj = { name: `external-auth/${service}`, rules: a.rules }
  if (a.denied) l.denied = a.denied
  if (a.default !== undefined) l.default = a.default
  else if (a.rules.length === 0) l.default = 'allow'
  return l
}
