/**
 * kube-agentic-networking `XAccessPolicy`, v1alpha1 and the legacy v0alpha0, as verdict rules.
 *
 * Meaning kept (docs/kubernetes.md): rules of one policy and Allow policies on one target are
 * OR-ed allow rules of one layer; policies on a Gateway and on a backend are AND-ed layers; the
 * external authorizer's rules run first in the layer and its deny is final; once an Allow policy
 * targets something, what no rule allows is denied; a ServiceAccount source is the peer principal
 * `spiffe://<trustDomain>/ns/<ns>/sa/<name>`; MCP denials are the 200 JSON-RPC error.
 */
import { celString, commonFields, readTargetRefs, ruleId, type Scope, spiffeOf } from './context.js'
import { isObj, type Obj } from './read.js'

export const XACCESS_GROUPS = ['agentic.prototype.x-k8s.io', 'agentic.networking.x-k8s.io']

/** The delegation of some requests to an external authorizer. */
export interface ExternalAuthRef {
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

const MCP_METHOD_NAMES = new Set([
  'tools',
  'prompts',
  'resources',
  'prompts/list',
  'tools/list',
  'resources/list',
  'resources/templates/list',
  'prompts/get',
  'tools/call',
  'resources/subscribe',
  'resources/unsubscribe',
  'resources/read',
])
const PARAM_METHODS = new Set([
  'prompts/get',
  'tools/call',
  'resources/subscribe',
  'resources/unsubscribe',
  'resources/read',
])

interface Condition {
  principals: string[]
  methods?: string[]
  paths: Obj[]
  /** CEL conditions the `match` body cannot say (regular expressions, ports). */
  cel: string[]
  /** The same HTTP conditions, all as CEL (for rules whose body is not `match`). */
  celAll: string[]
  headers: Obj[]
  hosts: Obj[]
  mcpMethods?: Obj[]
  baseProtocol?: 'MATCH' | 'SKIP'
  celExpression?: string
  tools?: string[]
  externalAuth?: { service: string; at: string }
}

function source(s: Scope, v: unknown, at: string, c: Condition): void {
  const td = s.options.trustDomain ?? 'cluster.local'
  let type: string | undefined
  s.fields(v, at, {
    type: (t, p) => {
      type = s.str(t, p)
      if (type !== undefined && type !== 'ServiceAccount' && type !== 'SPIFFE')
        s.problem('import_invalid', 'type must be ServiceAccount or SPIFFE', p)
    },
    serviceAccount: (sa, p) => {
      let name: string | undefined
      let ns = s.namespace
      s.fields(sa, p, {
        name: (n, q) => {
          name = s.str(n, q)
        },
        namespace: (n, q) => {
          ns = s.str(n, q) ?? ns
        },
      })
      if (name !== undefined) c.principals.push(spiffeOf(td, ns, name))
      else if (isObj(sa) && sa.name === undefined)
        s.problem('import_invalid', 'serviceAccount needs a name', p)
    },
    spiffe: (id, p) => {
      const x = s.str(id, p)
      if (x === undefined) return
      if (!/^spiffe:\/\/[a-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/.test(x))
        s.problem('import_invalid', `"${x}" is not a SPIFFE id`, p)
      else c.principals.push(x)
    },
    // The GEP-3779 form of an early v1alpha1: lists, any entry matches.
    identities: (ids, p) => {
      for (const x of s.strings(ids, p)) c.principals.push(x)
    },
    serviceAccounts: (sas, p) => {
      s.strings(sas, p).forEach((x, i) => {
        const [a, b] = x.includes('/') ? x.split('/', 2) : [s.namespace, x]
        if (b === '*' || a === '*')
          s.problem(
            'import_unsupported',
            `"${x}": a whole namespace cannot be matched exactly; list its service accounts`,
            `${p}/${i}`,
          )
        else c.principals.push(spiffeOf(td, a!, b!))
      })
    },
  })
  if (type === 'ServiceAccount' && isObj(v) && v.serviceAccount === undefined)
    s.problem('import_invalid', 'type ServiceAccount needs serviceAccount', at)
  if (type === 'SPIFFE' && isObj(v) && v.spiffe === undefined)
    s.problem('import_invalid', 'type SPIFFE needs spiffe', at)
}

const re2Full = (re: string): string => `^(?:${re})$`

function httpAttributes(s: Scope, k: string, v: unknown, at: string, c: Condition): void {
  if (k === 'methods') {
    const m = s.strings(v, at).map((x) => x.toUpperCase())
    c.methods = m
    c.celAll.push(`request.method in ${JSON.stringify(m)}`)
  } else if (k === 'paths') {
    const alts: string[] = []
    const regex: string[] = []
    s.list(v, at).forEach((p, i) => {
      let type = 'PathPrefix'
      let value: string | undefined
      s.fields(p, `${at}/${i}`, {
        type: (t, q) => {
          type = s.str(t, q) ?? type
          if (!['Exact', 'PathPrefix', 'RegularExpression'].includes(type))
            s.problem('import_invalid', 'type must be Exact, PathPrefix or RegularExpression', q)
        },
        value: (x, q) => {
          value = s.str(x, q)
        },
      })
      if (value === undefined) return
      if (type === 'Exact') {
        c.paths.push({ exact: value })
        alts.push(`request.path == ${celString(value)}`)
      } else if (type === 'PathPrefix') {
        // Gateway API prefixes match whole segments: /foo matches /foo and /foo/bar, not /foobar.
        const base = value.replace(/\/+$/, '')
        if (base === '') {
          c.paths.push({ prefix: '/' })
          alts.push('true')
        } else {
          c.paths.push({ exact: base }, { prefix: `${base}/` })
          alts.push(
            `(request.path == ${celString(base)} || request.path.startsWith(${celString(`${base}/`)}))`,
          )
        }
      } else {
        regex.push(`request.path.matches(${celString(re2Full(value))})`)
        alts.push(`request.path.matches(${celString(re2Full(value))})`)
      }
    })
    if (regex.length > 0) {
      // The match body cannot say a regular expression: all path alternatives go to CEL.
      c.cel.push(alts.length === 1 ? alts[0]! : `(${alts.join(' || ')})`)
      c.paths.length = 0
    }
    if (alts.length > 0) c.celAll.push(alts.length === 1 ? alts[0]! : `(${alts.join(' || ')})`)
  } else if (k === 'headers') {
    s.list(v, at).forEach((h, i) => {
      let type = 'Exact'
      let name: string | undefined
      let value: string | undefined
      s.fields(h, `${at}/${i}`, {
        type: (t, q) => {
          type = s.str(t, q) ?? type
          if (type !== 'Exact' && type !== 'RegularExpression')
            s.problem('import_invalid', 'type must be Exact or RegularExpression', q)
        },
        name: (x, q) => {
          name = s.str(x, q)?.toLowerCase()
        },
        value: (x, q) => {
          value = typeof x === 'string' ? x : s.str(x, q)
        },
      })
      if (name === undefined || value === undefined) return
      const cel =
        type === 'Exact'
          ? `request.headers[${celString(name)}] == ${celString(value)}`
          : `request.headers[${celString(name)}].matches(${celString(re2Full(value))})`
      c.celAll.push(`(${celString(name)} in request.headers && ${cel})`)
      if (type === 'Exact') c.headers.push({ name, exact: value })
      else c.cel.push(`(${celString(name)} in request.headers && ${cel})`)
    })
  } else if (k === 'hosts') {
    const hosts = s.strings(v, at).map((x) => x.toLowerCase())
    const alts = hosts.map((hst) =>
      hst.startsWith('*.')
        ? `request.host.endsWith(${celString(hst.slice(1))})`
        : `request.host == ${celString(hst)}`,
    )
    for (const hst of hosts) c.hosts.push(hst.startsWith('*.') ? { suffix: hst.slice(1) } : { exact: hst })
    if (alts.length > 0) c.celAll.push(alts.length === 1 ? alts[0]! : `(${alts.join(' || ')})`)
  } else if (k === 'ports') {
    const ports: number[] = []
    s.list(v, at).forEach((p, i) => {
      if (typeof p === 'number' && Number.isInteger(p) && p > 0 && p < 65536) ports.push(p)
      else s.problem('import_invalid', 'a port is an integer 1..65535', `${at}/${i}`)
    })
    if (ports.length > 0) {
      const cel = `destination.port in ${JSON.stringify(ports)}`
      c.cel.push(cel)
      c.celAll.push(cel)
    }
  }
}

function mcpAttributes(s: Scope, v: unknown, at: string, c: Condition): void {
  s.fields(v, at, {
    methods: (ms, p) => {
      const out: Obj[] = []
      s.list(ms, p).forEach((m, i) => {
        let name: string | undefined
        let params: string[] | undefined
        s.fields(m, `${p}/${i}`, {
          name: (n, q) => {
            name = s.str(n, q)
            if (name !== undefined && !MCP_METHOD_NAMES.has(name))
              s.problem('import_invalid', `"${name}" is not an MCP method name XAccessPolicy allows`, q)
          },
          params: (ps, q) => {
            params = s.strings(ps, q)
          },
        })
        if (name === undefined) return
        if (params !== undefined && params.length > 0 && !PARAM_METHODS.has(name))
          s.problem(
            'import_invalid',
            `params go only with ${[...PARAM_METHODS].join(', ')}`,
            `${p}/${i}/params`,
          )
        out.push(params !== undefined && params.length > 0 ? { name, params } : { name })
      })
      c.mcpMethods = out
    },
    mcpBaseProtocolMethodsOption: (o, p) => {
      if (o === 'MATCH_BASE_PROTOCOL_METHODS') c.baseProtocol = 'MATCH'
      else if (o === 'SKIP_BASE_PROTOCOL_METHODS') c.baseProtocol = 'SKIP'
      else s.problem('import_invalid', 'must be SKIP_BASE_PROTOCOL_METHODS or MATCH_BASE_PROTOCOL_METHODS', p)
    },
  })
}

function externalAuthRef(s: Scope, v: unknown, at: string): string | undefined {
  let service: string | undefined
  s.fields(v, at, {
    backendRef: (b, p) => {
      let name: string | undefined
      let ns = s.namespace
      s.fields(b, p, {
        name: (n, q) => {
          name = s.str(n, q)
        },
        namespace: (n, q) => {
          ns = s.str(n, q) ?? ns
        },
        kind: (k, q) => {
          if (k !== 'Service')
            s.problem('import_unsupported', 'only a Service can be an external authorizer', q)
        },
        group: (g, q) => {
          if (g !== '' && g !== 'core') s.problem('import_unsupported', 'only a core Service is supported', q)
        },
        // Where the authorizer listens: verdict evaluates its rules in process.
        port: () => {},
      })
      if (name !== undefined) service = `${ns}/${name}`
    },
    // The wire to the authorizer (gRPC or HTTP ext_authz): in process here, same decisions.
    protocol: (p, q) => {
      if (p !== 'GRPC' && p !== 'HTTP') s.problem('import_invalid', 'protocol must be GRPC or HTTP', q)
    },
    grpc: (g, q) => {
      s.fields(g, q, {
        // Headers sent to the authorizer: it sees the whole request here.
        allowedHeaders: () => {},
      })
    },
    http: (h, q) => {
      s.fields(h, q, { path: () => {}, allowedHeaders: () => {}, allowedResponseHeaders: () => {} })
    },
    forwardBody: (f, q) => {
      s.fields(f, q, { maxSize: () => {} })
    },
  })
  if (service === undefined) s.problem('import_invalid', 'externalAuth needs a backendRef with a name', at)
  return service
}

function authorization(s: Scope, v: unknown, at: string, c: Condition, version: string): void {
  let type: string | undefined
  const typed = isObj(v) && typeof v.type === 'string' ? v.type : undefined
  const httpKey = (k: string) => (x: unknown, p: string) => {
    if (typed !== 'Inline') s.problem('import_invalid', `${k} goes only with type Inline`, p)
    httpAttributes(s, k, x, p, c)
  }
  s.fields(v, at, {
    type: (t, p) => {
      type = s.str(t, p)
      const allowed = version === 'v0alpha0' ? ['InlineTools', 'ExternalAuth', 'CEL'] : ['Inline', 'CEL']
      if (type !== undefined && !allowed.includes(type))
        s.problem('import_invalid', `type must be one of ${allowed.join(', ')} in ${version}`, p)
    },
    methods: httpKey('methods'),
    paths: httpKey('paths'),
    headers: httpKey('headers'),
    hosts: httpKey('hosts'),
    ports: httpKey('ports'),
    mcp: (m, p) => {
      if (typed !== 'Inline') s.problem('import_invalid', 'mcp goes only with type Inline', p)
      mcpAttributes(s, m, p, c)
    },
    cel: (x, p) => {
      s.fields(x, p, {
        expression: (e, q) => {
          const expr = s.str(e, q)
          if (expr !== undefined) c.celExpression = expr
        },
        // The message of a denial: verdict's JSON-RPC denial text is kube-agentic-networking's.
        message: () => {},
      })
    },
    // v0alpha0 CEL rules carry the expression directly.
    expression: (e, p) => {
      const expr = s.str(e, p)
      if (expr !== undefined) c.celExpression = expr
    },
    tools: (t, p) => {
      if (typed !== 'InlineTools') s.problem('import_invalid', 'tools go only with type InlineTools', p)
      c.tools = s.strings(t, p)
    },
    externalAuth: (x, p) => {
      if (typed !== 'ExternalAuth')
        s.problem('import_invalid', 'externalAuth goes only with type ExternalAuth', p)
      const service = externalAuthRef(s, x, p)
      if (service !== undefined) c.externalAuth = { service, at: p }
    },
  })
  if (type === 'CEL' && c.celExpression === undefined)
    s.problem('import_invalid', 'type CEL needs cel.expression', at)
  if (type === 'InlineTools' && c.tools === undefined) c.tools = []
  if (type === 'ExternalAuth' && c.externalAuth === undefined)
    s.problem('import_invalid', 'type ExternalAuth needs externalAuth', at)
}

const hasHttp = (c: Condition): boolean =>
  c.methods !== undefined ||
  c.paths.length > 0 ||
  c.headers.length > 0 ||
  c.hosts.length > 0 ||
  c.cel.length > 0

/** The `match` body of a condition's principals and HTTP attributes (never empty). */
function matchBody(c: Condition): Obj {
  const m: Obj = {}
  if (c.principals.length > 0) m.principals = c.principals.map((p) => ({ exact: p }))
  if (c.methods !== undefined) m.methods = c.methods
  if (c.paths.length > 0) m.paths = c.paths
  if (c.headers.length > 0) m.headers = c.headers
  if (c.hosts.length > 0) m.hosts = c.hosts
  if (Object.keys(m).length === 0) m.always = true
  return m
}

function mcpSource(c: Condition): Obj {
  const list = c.principals.map((p) => ({ spiffe: p }))
  return list.length === 1 ? { source: list[0] } : list.length > 1 ? { source: list } : {}
}

/** The verdict allow rule of one access rule (without id). */
function allowRule(c: Condition, version: string): Obj {
  if (c.celExpression !== undefined) {
    const src =
      c.principals.length > 0
        ? { when: { match: { principals: c.principals.map((p) => ({ exact: p })) } } }
        : {}
    return { action: 'allow', cel: c.celExpression, ...src }
  }
  if (c.tools !== undefined) {
    // v0alpha0 InlineTools: calls of these tools; the base protocol is open to everyone (below).
    return { action: 'allow', mcp: { ...mcpSource(c), tools: c.tools } }
  }
  if (c.mcpMethods !== undefined && c.mcpMethods.length > 0) {
    const rule: Obj = {
      action: 'allow',
      mcp: { ...mcpSource(c), methods: c.mcpMethods, baseProtocol: c.baseProtocol ?? 'SKIP' },
    }
    if (hasHttp(c)) rule.when = { cel: c.celAll.join(' && ') }
    return rule
  }
  if (c.baseProtocol === 'SKIP' && version === 'v1alpha1' && c.mcpMethods !== undefined) {
    // Explicit SKIP without methods: every MCP method but the base protocol.
    const rule: Obj = { action: 'allow', mcp: { ...mcpSource(c), baseProtocol: 'SKIP' } }
    if (hasHttp(c)) rule.when = { cel: c.celAll.join(' && ') }
    return rule
  }
  // No MCP method list: all traffic from the source through this HTTP envelope, base protocol
  // included (kube-agentic-networking: no method-level allowlisting).
  const rule: Obj = { action: 'allow', match: matchBody(c) }
  if (c.cel.length > 0) rule.when = { cel: c.cel.join(' && ') }
  return rule
}

/** The condition under which an external authorizer is asked. */
function delegation(s: Scope, c: Condition, at: string, version: string): Obj {
  if (version === 'v0alpha0') {
    // Legacy: the base protocol is open to every caller; tool calls etc. from the source are delegated.
    return {
      mcp: { ...mcpSource(c), methods: [...PARAM_METHODS].map((name) => ({ name })) },
    }
  }
  if (c.celExpression !== undefined)
    s.problem('import_unsupported', 'a CEL authorization inside an ExternalAuth policy is not supported', at)
  if (c.mcpMethods !== undefined && c.mcpMethods.length > 0) {
    if (hasHttp(c))
      s.problem('import_unsupported', 'an ExternalAuth rule with both MCP methods and HTTP attributes', at)
    return { mcp: { ...mcpSource(c), methods: c.mcpMethods, baseProtocol: c.baseProtocol ?? 'SKIP' } }
  }
  if (c.cel.length > 0) {
    const parts = [...c.celAll]
    if (c.principals.length > 0) parts.unshift(`source.principal in ${JSON.stringify(c.principals)}`)
    return { cel: parts.join(' && ') }
  }
  return { match: matchBody(c) }
}

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
        source(s, x, p, c)
      },
      authorization: (x, p) => {
        authorization(s, x, p, c, version)
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
