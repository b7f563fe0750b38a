/**
 * kube-agentic-networking `XAccessPolicy`, v1alpha1 and the legacy v0alpha0, as verdict rules.
 *
 * Meaning kept (docs/kubernetes.md): rules of one policy and Allow policies on one target are
 * OR-ed allow rules of one layer; policies on a Gateway and on a backend are AND-ed layers; the
 * external authorizer's rules run first in the layer and its deny is final; once an Allow policy
 * targets something, what no rule allows is denied; a ServiceAccount source is the peer principal
 * `spiffe://<trustDomain>/ns/<ns>/sa/<name>`; MCP denials are the 200 JSON-RPC error.
 */
import { commonFields, readTargetRefs, ruleId, type Scope } from '../context.js'
import { isObj, type Obj } from '../read.js'

export const XACCESS_GROUPS = ['agentic.prototype.x-k8s.io', 'agentic.networking.x-k8s.io']

/** The delegation of some requests to an external authorizer. */
interface ExternalAuthRef {
  /** `namespace/name` of the Service. */
  readonly service: string
  /** Condition under which the authorizer is asked (a rule body for `when`). */
  readonly when: Obj
  /** Pointer of the reference, for problems. */
  readonly at: string
  readonly scope: Scope
}

/** What one policy contributes to its targets. */
export interface XAccessContribution {
  readonly targets: { kind: string; name: string }[]
  readonly version: 'v0alpha0' | 'v1alpha1'
  readonly action: 'Allow' | 'ExternalAuth'
  readonly allowRules: Obj[]
  readonly externalAuth: ExternalAuthRef[]
  readonly origins: Map<Obj, string>
}

import { type Condition, externalAuthRef, readAuthorization, readSource } from './xaccesspolicy-condition.js'
import { allowRule, delegation, mcpSource } from './xaccesspolicy-rules.js'

export function importXAccessPolicy(s: Scope): XAccessContribution | undefined {
  const version = s.resource.apiVersion.endsWith('/v0alpha0') ? 'v0alpha0' : 'v1alpha1'
  const out: XAccessContribution = {
    targets: [],
    version,
    action: 'Allow',
    allowRules: [],
    externalAuth: [],
    origins: new Map(),
  }
  let action: string | undefined
  let specExternal: string | undefined
  let rulesValue: unknown
  const fields = commonFields(s)
  fields.spec = (spec, at) => {
    s.fields(spec, at, {
      targetRefs: (t, p) =>
        readTargetRefs(s, t, p, 'XBackend', 'sectionName (one listener or port)', out.targets),
      action: (a, p) => {
        action = s.str(a, p)
        if (version === 'v0alpha0') s.problem('import_invalid', 'spec.action is a v1alpha1 field', p)
        else if (action !== 'Allow' && action !== 'ExternalAuth')
          s.problem('import_invalid', 'action must be Allow or ExternalAuth', p)
      },
      externalAuth: (x, p) => {
        specExternal = externalAuthRef(s, x, p)
      },
      rules: (r) => {
        rulesValue = r
      },
    })
  }
  if (!s.fields(s.value, '', fields)) return undefined
  if (!isObj(s.value.spec)) {
    s.problem('import_invalid', 'spec is required', '')
    return undefined
  }
  if (out.targets.length === 0) s.problem('import_invalid', 'spec.targetRefs names no target', '/spec')
  if (version === 'v1alpha1' && action === undefined)
    s.problem('import_invalid', 'spec.action is required', '/spec')
  if (action === 'ExternalAuth') {
    ;(out as { action: string }).action = 'ExternalAuth'
    if (specExternal === undefined)
      s.problem('import_invalid', 'externalAuth must be given when action is ExternalAuth', '/spec')
  } else if (specExternal !== undefined)
    s.problem('import_invalid', 'externalAuth goes only with action ExternalAuth', '/spec/externalAuth')
  const rules = rulesValue === undefined ? [] : s.list(rulesValue, '/spec/rules')
  if (rules.length > 10) s.problem('import_invalid', 'at most 10 rules', '/spec/rules')
  if (rules.length === 0) {
    if (version === 'v0alpha0')
      s.problem('import_invalid', 'a v0alpha0 policy needs at least one rule', '/spec')
    // v1alpha1 without rules: all traffic.
    if (action === 'ExternalAuth' && specExternal !== undefined)
      out.externalAuth.push({
        service: specExternal,
        when: { match: { always: true } },
        at: '/spec/externalAuth',
        scope: s,
      })
    else
      out.allowRules.push({
        id: ruleId(s.namespace, s.name, 'all'),
        action: 'allow',
        match: { always: true },
      })
  }
  let externalRules = 0
  const names = new Set<string>()
  rules.forEach((r, i) => {
    const at = `/spec/rules/${i}`
    const c: Condition = { principals: [], paths: [], cel: [], celAll: [], headers: [], hosts: [] }
    let name = `rule-${i}`
    let hasSource = false
    s.fields(r, at, {
      name: (n, p) => {
        name = s.str(n, p) ?? name
        if (names.has(name)) s.problem('import_invalid', `rule name "${name}" is used twice`, p)
        names.add(name)
      },
      source: (x, p) => {
        hasSource = true
        readSource(s, x, p, c)
      },
      authorization: (x, p) => {
        readAuthorization(s, x, p, c, version)
      },
      // The first v0alpha0: tools directly on the rule.
      tools: (t, p) => {
        if (version !== 'v0alpha0') s.problem('import_invalid', 'rules[].tools is a v0alpha0 field', p)
        c.tools = s.strings(t, p)
      },
    })
    if (!hasSource && version === 'v0alpha0')
      s.problem('import_invalid', 'a v0alpha0 rule needs a source', at)
    if (!hasSource && version === 'v1alpha1') s.problem('import_invalid', 'a rule needs a source', at)
    const id = ruleId(s.namespace, s.name, name)
    if (c.externalAuth !== undefined) {
      externalRules++
      if (externalRules === 2)
        s.problem('import_invalid', 'at most one ExternalAuth rule per policy', `${at}/authorization`)
      out.externalAuth.push({
        service: c.externalAuth.service,
        when: delegation(s, c, at, version),
        at: c.externalAuth.at,
        scope: s,
      })
      // v0alpha0: the delegated rule is one of the OR-ed rules; the authorizer's deny is final.
      const allow: Obj = { id, action: 'allow', mcp: { ...mcpSource(c) } }
      out.allowRules.push(allow)
      out.origins.set(allow, at)
      return
    }
    if (action === 'ExternalAuth') {
      if (specExternal !== undefined)
        out.externalAuth.push({ service: specExternal, when: delegation(s, c, at, version), at, scope: s })
      return
    }
    const rule = { id, ...allowRule(c, version) }
    out.allowRules.push(rule)
    out.origins.set(rule, at)
  })
  return out
}
