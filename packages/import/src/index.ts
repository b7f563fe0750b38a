/**
 * `@verdict/import`: the Kubernetes resources users already write, as verdict policy documents.
 * `importResources(text, options)` reads every document of the text (a `kubectl get -o yaml`
 * `List` too), translates each resource with its kind's module, and returns the policy with every
 * problem located at its line and column in the text. Nothing is dropped silently: a field is
 * translated, documented as having no say in decisions (docs/kubernetes.md), or a problem.
 */
import { PolicyError, type Problem } from '@verdict/core'
import {
  AGENTGATEWAY_KINDS,
  type AgentgatewayContribution,
  importAgentgatewayPolicy,
  secretKeys,
} from './agentgateway.js'
import { type AuthConfigContribution, hostsRule, importAuthConfig } from './authorino.js'
import { commonFields, type ImportOptions, ruleId, Scope } from './context.js'
import { type IstioContribution, importAuthorizationPolicy, importRequestAuthentication } from './istio.js'
import {
  isObj,
  looksLikeResources,
  type Obj,
  type Position,
  readResources,
  type SourceDocument,
} from './read.js'
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
  const ag: AgentgatewayContribution[] = []
  const istio: IstioContribution[] = []
  const istioProviders: Obj[] = []
  const authConfigs: AuthConfigContribution[] = []
  const authorizers: { service: string; doc: Obj; scope: Scope }[] = []
  const secrets = new Map<string, { keys: Obj[]; scope: Scope }>()
  const origins = new Map<Obj, Origin>()
  for (const r of resources) {
    const s = new Scope(r, problems, options)
    const g = group(r.apiVersion)
    if (r.kind === 'XAccessPolicy' && XACCESS_GROUPS.includes(g)) {
      const c = importXAccessPolicy(s)
      if (c === undefined) continue
      xap.push(c)
      for (const [rule, p] of c.origins) origins.set(rule, { scope: s, pointer: p })
    } else if (Object.hasOwn(AGENTGATEWAY_KINDS, r.kind) && AGENTGATEWAY_KINDS[r.kind]!.includes(g)) {
      const c = importAgentgatewayPolicy(s)
      if (c === undefined) continue
      ag.push(c)
      for (const [rule, p] of c.origins) origins.set(rule, { scope: s, pointer: p })
    } else if (r.kind === 'AuthorizationPolicy' && g === 'security.istio.io') {
      const c = importAuthorizationPolicy(s)
      if (c !== undefined) istio.push(c)
    } else if (r.kind === 'RequestAuthentication' && g === 'security.istio.io') {
      istioProviders.push(...importRequestAuthentication(s))
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
    } else if (r.kind === 'ExternalAuthorizer' && g === 'verdict.dev') {
      const doc = externalAuthorizer(s)
      if (doc !== undefined) authorizers.push({ service: `${s.namespace}/${s.name}`, doc, scope: s })
    } else if (r.kind === 'Secret' && r.apiVersion === 'v1') {
      secrets.set(`${s.namespace}/${s.name}`, { keys: secretKeys(s), scope: s })
    } else {
      s.problem('import_unsupported_kind', `${r.apiVersion} ${r.kind} is not a kind verdict imports`, '/kind')
    }
  }
  const ctx: AssembleContext = { options, problems, origins, authConfigs, authorizers, secrets, bundles: {} }
  const families = [xap.length > 0, ag.length > 0, istio.length > 0].filter(Boolean).length
  let policy: Obj | undefined
  if (families > 1)
    problems.push({
      code: 'import_mixed',
      message:
        'the input mixes XAccessPolicy, agentgateway and Istio policies: convert them one kind at a time',
      path: '',
    })
  else if (xap.length > 0) policy = assembleXAccess(xap, ctx)
  else if (ag.length > 0) policy = assembleAgentgateway(ag, ctx)
  else if (istio.length > 0) policy = assembleIstio(istio, istioProviders, ctx)
  else if (authConfigs.length > 0) policy = assembleAuthorino(authConfigs, origins)
  else if (problems.length === 0)
    problems.push({ code: 'import_empty', message: 'the input holds no policy verdict imports', path: '' })
  if (policy !== undefined && Object.keys(ctx.bundles).length > 0)
    policy.bundles = { ...(isObj(policy.bundles) ? policy.bundles : {}), ...ctx.bundles }
  const targets = [
    ...new Set(
      [...xap, ...ag].flatMap((c) => c.targets.filter((t) => t.kind !== 'Gateway').map((t) => t.name)),
    ),
    ...new Set(istio.flatMap((c) => c.targets)),
  ]
  return { policy, problems, targets, source: withPositions(policy, origins) }
}

/** `verdict.dev/v1` `ExternalAuthorizer`: what an external authorization Service decides, as verdict rules. */
function externalAuthorizer(s: Scope): Obj | undefined {
  let doc: Obj | undefined
  const fields = commonFields(s)
  fields.spec = (spec, at) => {
    if (!isObj(spec)) return void s.problem('import_invalid', 'spec must be an object', at)
    const allowed = ['rules', 'responses', 'bundles', 'default', 'description']
    for (const k of Object.keys(spec))
      if (!allowed.includes(k))
        s.problem('import_unsupported_field', `field "${k}" is not supported`, `${at}/${k}`)
    doc = spec
  }
  s.fields(s.value, '', fields)
  if (doc === undefined) s.problem('import_invalid', 'spec is required', '')
  return doc
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

/** An external authorizer as verdict rules. */
interface Authorizer {
  readonly rules: Obj[]
  readonly bundles: Record<string, Obj>
  readonly denied?: Obj
  readonly default?: string
}

/** Where the input or the options say what an external authorizer Service decides. */
function resolveAuthorizer(
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
function wrappedRules(
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
function authorizerLayer(a: Authorizer, service: string): Obj {
  const l: Obj = { name: `external-auth/${service}`, rules: a.rules }
  if (a.denied) l.denied = a.denied
  if (a.default !== undefined) l.default = a.default
  else if (a.rules.length === 0) l.default = 'allow'
  return l
}

interface AssembleContext {
  readonly options: ImportOptions
  readonly problems: Problem[]
  readonly origins: Map<Obj, Origin>
  readonly authConfigs: readonly AuthConfigContribution[]
  readonly authorizers: readonly { service: string; doc: Obj; scope: Scope }[]
  readonly secrets: ReadonlyMap<string, { keys: Obj[]; scope: Scope }>
  readonly bundles: Record<string, Obj>
}

/** The single target of the input's policies, `options.target`, or a problem. */
function chooseTarget(targets: string[], ctx: AssembleContext): { ok: boolean; target?: string } {
  let target = ctx.options.target
  if (target !== undefined) {
    target = target.includes('/') ? target.slice(target.indexOf('/') + 1) : target
    if (!targets.includes(target)) {
      ctx.problems.push({
        code: 'import_target',
        message: `no policy targets "${ctx.options.target}" (targets: ${targets.join(', ') || 'none'})`,
        path: '',
      })
      return { ok: false }
    }
    return { ok: true, target }
  }
  if (targets.length > 1) {
    ctx.problems.push({
      code: 'import_target',
      message: `the policies target several backends (${targets.join(', ')}): choose one (--target <name>)`,
      path: '',
    })
    return { ok: false }
  }
  return targets[0] === undefined ? { ok: true } : { ok: true, target: targets[0] }
}

function assembleXAccess(xap: XAccessContribution[], ctx: AssembleContext): Obj | undefined {
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

function assembleAgentgateway(ag: AgentgatewayContribution[], ctx: AssembleContext): Obj | undefined {
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
  const seen = new Map<string, number>()
  for (const p of providers) {
    const iss = String(p.issuer)
    const n = seen.get(iss) ?? 0
    seen.set(iss, n + 1)
    p.name = n === 0 ? iss : `${iss}#${n}`
  }
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

function assembleIstio(ip: IstioContribution[], providers: Obj[], ctx: AssembleContext): Obj | undefined {
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
  const seen = new Map<string, number>()
  for (const p of providers) {
    const iss = String(p.issuer)
    const n = seen.get(iss) ?? 0
    seen.set(iss, n + 1)
    p.name = n === 0 ? iss : `${iss}#${n}`
  }
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

/**
 * Install the import layer as core's policy importer (`Symbol.for('verdict.policyImporter')`,
 * read by `loadPolicyFile`, so `createEngineFromFile`, `watchPolicyFile` and case files take files
 * of Kubernetes resources). A `file.yaml#target` path overrides `options.target`. Returns a
 * function that puts back the importer that was installed before.
 *
 * @example
 * ```ts
 * installPolicyImporter({ trustDomain: 'example.org' })
 * const engine = await createEngineFromFile('xaccesspolicy.yaml', { evaluators })
 * ```
 */
export function installPolicyImporter(options: ImportOptions = {}): () => void {
  const key = Symbol.for('verdict.policyImporter')
  const g = globalThis as Record<symbol, unknown>
  const before = g[key]
  g[key] = (text: string, file: { path: string; target?: string }): SourceDocument | undefined => {
    if (!looksLikeResources(text)) return undefined
    const o = file.target === undefined ? options : { ...options, target: file.target }
    return { ...importPolicyText(text, o), origin: file.path }
  }
  return () => {
    g[key] = before
  }
}
