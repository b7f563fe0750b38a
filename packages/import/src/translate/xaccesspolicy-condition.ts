/**
 * One XAccessPolicy access rule read into a `Condition`: its source (ServiceAccounts, SPIFFE IDs),
 * its HTTP attributes (methods, paths, headers, hosts, ports), its MCP methods and base-protocol
 * option, a CEL expression, inline tools, or the external authorizer it delegates to. Every field
 * that cannot be kept is a problem at its pointer.
 */
import { celString, type Scope, spiffeOf } from '../context.js'
import { isObj, type Obj } from '../read.js'

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
export const PARAM_METHODS = new Set([
  'prompts/get',
  'tools/call',
  'resources/subscribe',
  'resources/unsubscribe',
  'resources/read',
])

export interface Condition {
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

export function readSource(s: Scope, v: unknown, at: string, c: Condition): void {
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

export function externalAuthRef(s: Scope, v: unknown, at: string): string | undefined {
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

export function readAuthorization(s: Scope, v: unknown, at: string, c: Condition, version: string): void {
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
