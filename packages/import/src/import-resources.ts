/**
 * `importResources(text, options)`: read every document of the text (a `kubectl get -o yaml` `List`
 * too), translate each resource with its kind's module (translate/), assemble one policy from what
 * one family of resources contributed (assemble/), and locate every problem and every imported rule
 * at its line and column in the text.
 */
import type { Problem } from '@verdict/core'
import { assembleAgentgateway } from './assemble/agentgateway.js'
import { assembleAuthorino } from './assemble/authorino.js'
import type { AssembleContext, Origin } from './assemble/context.js'
import { assembleIstio } from './assemble/istio.js'
import { assembleXAccess } from './assemble/xaccesspolicy.js'
import { type ImportOptions, Scope } from './context.js'
import { isObj, type Obj, type Position, readResources, type SourceDocument } from './read.js'
import {
  AGENTGATEWAY_KINDS,
  type AgentgatewayContribution,
  importAgentgatewayPolicy,
  secretKeys,
} from './translate/agentgateway.js'
import { type AuthConfigContribution, importAuthConfig } from './translate/authorino.js'
import { importExternalAuthorizer } from './translate/external-authorizer.js'
import {
  type IstioContribution,
  importAuthorizationPolicy,
  importRequestAuthentication,
} from './translate/istio.js'
import { importXAccessPolicy, XACCESS_GROUPS, type XAccessContribution } from './translate/xaccesspolicy.js'

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
      const doc = importExternalAuthorizer(s)
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

/** The policy with each imported rule located at the resource it came from. */
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
