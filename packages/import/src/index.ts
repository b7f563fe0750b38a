/**
 * `@verdict/import`: the Kubernetes resources users already write, as verdict policy documents.
 * `importResources(text, options)` reads every document of the text (a `kubectl get -o yaml`
 * `List` too), translates each resource with its kind's module, and returns the policy with every
 * problem located at its line and column in the text. Nothing is dropped silently: a field is
 * translated, documented as having no say in decisions (docs/kubernetes.md), or a problem.
 */
import { PolicyError, type Problem } from '@verdict/core'
import { type AuthConfigContribution, hostsRule, importAuthConfig } from './authorino.js'
import { type ImportOptions, ruleId, Scope } from './context.js'
import { isObj, type Obj, type Position, readResources, type SourceDocument } from './read.js'
import { importXAccessPolicy, XACCESS_GROUPS, type XAccessContribution } from './xaccesspolicy.js'

export type { ImportOptions } from './context.js'
export { looksLikeResources, type Resource, readResources, type SourceDocument } from './read.js'

/** What an import came to. */
export interface ImportResult {
  /** The verdict policy document; undefined when nothing could be translated. */
  readonly policy: Obj | undefined
  /** Every problem, located in the resource text. An import with problems must not be used. */
  readonly problems: readonly Problem[]
  /** The targets (backends, gateways) the input's policies name, for `--target`. */
  readonly targets: readonly string[]
  /** The policy with positions: core's problems about it point at the resources' lines. */
  readonly source: SourceDocument
}

const group = (apiVersion: string): string => apiVersion.split('/')[0] ?? ''

type Origin = { scope: Scope; pointer: string }

/** Turn resources into one verdict policy document. */
export function importResources(text: string, options: ImportOptions = {}): ImportResult {
  const { resources, problems } = readResources(text)
  const xap: XAccessContribution[] = []
  const authConfigs: AuthConfigContribution[] = []
  const origins = new Map<Obj, Origin>()
  for (const r of resources) {
    const s = new Scope(r, problems, options)
    const g = group(r.apiVersion)
    if (r.kind === 'XAccessPolicy' && XACCESS_GROUPS.includes(g)) {
      const c = importXAccessPolicy(s)
      if (c === undefined) continue
      xap.push(c)
      for (const [rule, p] of c.origins) origins.set(rule, { scope: s, pointer: p })
    } else if (r.kind === 'AuthConfig' && g === 'authorino.kuadrant.io') {
      if (r.apiVersion.endsWith('/v1beta1')) {
        s.problem(
          'import_unsupported',
          'AuthConfig v1beta1 is not supported: use v1beta2 or v1beta3',
          '/apiVersion',
        )
        continue
      }
      const c = importAuthConfig(s)
      if (c === undefined) continue
      authConfigs.push(c)
      for (const [rule, p] of c.origins) origins.set(rule, { scope: s, pointer: p })
    } else {
      s.problem('import_unsupported_kind', `${r.apiVersion} ${r.kind} is not a kind verdict imports`, '/kind')
    }
  }

  const targets = [
    ...new Set(xap.flatMap((c) => c.targets.filter((t) => t.kind !== 'Gateway').map((t) => t.name))),
  ]
  let policy: Obj | undefined
  if (xap.length > 0) policy = assembleXAccess(xap, authConfigs, targets, options, problems, origins)
  else if (authConfigs.length > 0) policy = assembleAuthorino(authConfigs, origins)
  else if (problems.length === 0)
    problems.push({ code: 'import_empty', message: 'the input holds no resource verdict imports', path: '' })

  return { policy, problems, targets, source: withPositions(policy, origins) }
}

function withPositions(policy: Obj | undefined, origins: Map<Obj, Origin>): SourceDocument {
  const at = new Map<string, Position>()
  const layers = policy !== undefined && Array.isArray(policy.layers) ? policy.layers : []
  layers.forEach((l, i) => {
    const rules = isObj(l) && Array.isArray(l.rules) ? l.rules : []
    rules.forEach((r, j) => {
      const o = origins.get(r as Obj)
      const p = o?.scope.at(o.pointer)
      if (p !== undefined) at.set(`/layers/${i}/rules/${j}`, p)
    })
  })
  return {
    value: policy ?? {},
    locate: (pointer: string) => {
      for (let p = pointer; p !== ''; p = p.slice(0, p.lastIndexOf('/'))) {
        const hit = at.get(p)
        if (hit !== undefined) return hit
      }
      return undefined
    },
  }
}

/** The authorizer's rules for a delegation, each applying only under `when`. */
function authorizerRules(
  ref: XAccessContribution['externalAuth'][number],
  authConfigs: readonly AuthConfigContribution[],
  options: ImportOptions,
  bundles: Record<string, Obj>,
  origins: Map<Obj, Origin>,
  prefix: string,
): Obj[] | undefined {
  const s = ref.scope
  const name = ref.service.split('/')[1] ?? ref.service
  const given = options.externalAuth?.[ref.service] ?? options.externalAuth?.[name]
  const out: Obj[] = []
  const wrap = (rule: Obj, origin: Origin | undefined): void => {
    if (rule.when !== undefined) {
      s.problem('import_external_auth', `the authorizer's rule ${String(rule.id)} has its own when`, ref.at)
      return
    }
    const w = { ...rule, id: ruleId(prefix, String(rule.id)), when: ref.when }
    out.push(w)
    if (origin) origins.set(w, origin)
  }
  if (given !== undefined) {
    const rules = Array.isArray(given.rules) ? (given.rules as unknown[]) : []
    if (isObj(given.bundles)) Object.assign(bundles, given.bundles)
    for (const r of rules) {
      if (!isObj(r)) continue
      if (r.action === 'allow') {
        s.problem(
          'import_external_auth',
          `the authorizer for ${ref.service} has an allow rule (${String(r.id)}): an authorizer's rules are require, deny or decide`,
          ref.at,
        )
        continue
      }
      wrap(r, { scope: s, pointer: ref.at })
    }
    if (rules.length === 0)
      s.problem('import_external_auth', `the authorizer for ${ref.service} has no rules`, ref.at)
    return out
  }
  if (name.includes('authorino') && authConfigs.length > 0) {
    for (const a of authConfigs) {
      if (a.providers.length > 0)
        a.scope.problem(
          'import_unsupported',
          'JWT identities of an AuthConfig used as an ExternalAuth authorizer are not supported',
          '/spec/authentication',
        )
      Object.assign(bundles, a.bundles)
      const h = hostsRule(a)
      if (h) wrap(h, { scope: a.scope, pointer: '/spec/hosts' })
      for (const r of a.rules) wrap(r, origins.get(r))
    }
    return out
  }
  s.problem(
    'import_external_auth',
    `external authorizer ${ref.service}: give its verdict rules (ImportOptions.externalAuth, verdict --external-auth ${ref.service}=<policy.yaml>) or an Authorino AuthConfig in the same input`,
    ref.at,
  )
  return undefined
}

function assembleXAccess(
  xap: XAccessContribution[],
  authConfigs: AuthConfigContribution[],
  targets: string[],
  options: ImportOptions,
  problems: Problem[],
  origins: Map<Obj, Origin>,
): Obj | undefined {
  let target = options.target
  if (target !== undefined) {
    target = target.includes('/') ? target.slice(target.indexOf('/') + 1) : target
    if (!targets.includes(target)) {
      problems.push({
        code: 'import_target',
        message: `no policy targets "${options.target}" (targets: ${targets.join(', ') || 'none'})`,
        path: '',
      })
      return undefined
    }
  } else if (targets.length > 1) {
    problems.push({
      code: 'import_target',
      message: `the policies target several backends (${targets.join(', ')}): choose one (--target <name>)`,
      path: '',
    })
    return undefined
  } else target = targets[0]
  const bundles: Record<string, Obj> = {}
  const layer = (name: string, members: XAccessContribution[]): Obj => {
    const ext: Obj[] = []
    const allow: Obj[] = []
    for (const c of members) {
      c.externalAuth.forEach((ref, i) => {
        const rules = authorizerRules(
          ref,
          authConfigs,
          options,
          bundles,
          origins,
          ruleId(ref.scope.namespace, ref.scope.name, `external-auth-${i}`),
        )
        if (rules) ext.push(...rules)
      })
      allow.push(...c.allowRules)
    }
    const l: Obj = { name, rules: [...ext, ...allow] }
    // Once an Allow policy targets it, unmatched requests are denied. v1alpha1 does not open the MCP
    // base protocol by itself (a rule with MATCH_BASE_PROTOCOL_METHODS does); v0alpha0 does.
    if (allow.length === 0) l.default = 'allow'
    else if (members.some((c) => c.version === 'v1alpha1' && c.action === 'Allow')) l.default = 'deny'
    return l
  }
  const layers: Obj[] = []
  const gateways = [
    ...new Set(xap.flatMap((c) => c.targets.filter((t) => t.kind === 'Gateway').map((t) => t.name))),
  ]
  for (const g of gateways)
    layers.push(
      layer(
        `gateway/${g}`,
        xap.filter((c) => c.targets.some((t) => t.kind === 'Gateway' && t.name === g)),
      ),
    )
  if (target !== undefined)
    layers.push(
      layer(
        target,
        xap.filter((c) => c.targets.some((t) => t.kind !== 'Gateway' && t.name === target)),
      ),
    )
  const policy: Obj = {
    version: 'verdict/v1',
    name: `xaccesspolicy-${target ?? gateways.join('-')}`,
    description: 'imported from kube-agentic-networking XAccessPolicy resources',
    mcp: { denial: 'jsonrpc' },
    layers,
  }
  if (Object.keys(bundles).length > 0) policy.bundles = bundles
  return policy
}

function assembleAuthorino(authConfigs: AuthConfigContribution[], origins: Map<Obj, Origin>): Obj {
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

/**
 * For hosts: the policy of a text that holds Kubernetes resources, as a `SourceDocument` core
 * compiles; throws `PolicyError` with every problem (located in the text) when there is one.
 */
export function importPolicyText(text: string, options: ImportOptions = {}): SourceDocument {
  const r = importResources(text, options)
  if (r.problems.length > 0 || r.policy === undefined)
    throw new PolicyError(
      r.problems.length > 0 ? r.problems : [{ code: 'import_empty', message: 'nothing to import', path: '' }],
    )
  return r.source
}
