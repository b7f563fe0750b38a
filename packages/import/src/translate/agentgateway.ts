/**
 * agentgateway's Kubernetes policies (`AgentgatewayPolicy` agentgateway.dev/v1alpha1, and the
 * `TrafficPolicy` form of kgateway's docs) as verdict: `traffic.jwtAuthentication` becomes
 * `authentication.jwt`, `traffic.apiKeyAuthentication` and `traffic.basicAuthentication` the
 * authenticators of the same names, `traffic.authorization` (`action` + `policy.matchExpressions`,
 * every expression its own rule) CEL rules with agentgateway's combination, `backend.mcp.authorization`
 * verdict's `mcpAuthorization`, and `traffic.extAuth` the named external authorizer.
 */
import { commonFields, readTargetRefs, ruleId, type Scope } from '../context.js'
import { isObj, type Obj } from '../read.js'

export const AGENTGATEWAY_KINDS: Record<string, readonly string[]> = {
  AgentgatewayPolicy: ['agentgateway.dev'],
  TrafficPolicy: ['gateway.kgateway.dev', 'gateway.networking.k8s.io', 'agentgateway.dev'],
}

export interface AgentgatewayContribution {
  readonly targets: { kind: string; name: string }[]
  jwt?: { mode: string; providers: Obj[]; at: string }
  apiKey?: { secret: string; mode: string; location?: Obj; at: string }
  basicAuth?: Obj
  readonly rules: Obj[]
  readonly mcpRules: Obj[]
  extAuth?: { service: string; at: string }
  readonly origins: Map<Obj, string>
  readonly scope: Scope
}

function location(s: Scope, v: unknown, at: string): Obj | undefined {
  let out: Obj | undefined
  s.fields(v, at, {
    header: (h, p) => {
      let name: string | undefined
      let prefix: string | undefined
      s.fields(h, p, {
        name: (n, q) => {
          name = s.str(n, q)
        },
        prefix: (n, q) => {
          prefix = typeof n === 'string' ? n : s.str(n, q)
        },
      })
      if (name !== undefined) out = { header: { name, ...(prefix !== undefined ? { prefix } : {}) } }
    },
    queryParameter: (q, p) => {
      s.fields(q, p, {
        name: (n, r) => {
          const name = s.str(n, r)
          if (name !== undefined) out = { query: name }
        },
      })
    },
    cookie: (c, p) => {
      s.fields(c, p, {
        name: (n, r) => {
          const name = s.str(n, r)
          if (name !== undefined) out = { cookie: name }
        },
      })
    },
    expression: (_e, p) => {
      s.problem(
        'import_unsupported',
        'a CEL expression as the credential location has no verdict equivalent',
        p,
      )
    },
  })
  return out
}

/** `{action, policy: {matchExpressions}}`: every expression is a rule of the action. */
function authorization(
  s: Scope,
  v: unknown,
  at: string,
  emit: (action: string, expr: string, at: string) => void,
): void {
  let action = 'Allow'
  const exprs: [string, string][] = []
  s.fields(v, at, {
    action: (a, p) => {
      action = s.str(a, p) ?? action
      if (!['Allow', 'Deny', 'Require'].includes(action))
        s.problem('import_invalid', 'action must be Allow, Deny or Require', p)
    },
    policy: (pol, p) => {
      s.fields(pol, p, {
        matchExpressions: (m, q) => {
          s.list(m, q).forEach((e, i) => {
            const x = s.str(e, `${q}/${i}`, 'a CEL expression')
            if (x !== undefined) exprs.push([x, `${q}/${i}`])
          })
        },
      })
    },
  })
  if (isObj(v) && v.policy === undefined)
    s.problem('import_invalid', 'authorization needs policy.matchExpressions', at)
  for (const [x, p] of exprs) emit(action, x, p)
}

function jwtAuthentication(s: Scope, v: unknown, at: string, c: AgentgatewayContribution): void {
  let mode = 'Strict'
  const providers: Obj[] = []
  let loc: Obj | undefined
  s.fields(v, at, {
    mode: (m, p) => {
      mode = s.str(m, p) ?? mode
      if (!['Strict', 'Optional', 'Permissive'].includes(mode))
        s.problem('import_invalid', 'mode must be Strict, Optional or Permissive', p)
    },
    location: (l, p) => {
      loc = location(s, l, p)
    },
    providers: (ps, p) => {
      s.list(ps, p).forEach((pr, i) => {
        const q = `${p}/${i}`
        const out: Obj = {}
        s.fields(pr, q, {
          issuer: (x, r) => {
            const iss = s.str(x, r)
            if (iss !== undefined) out.issuer = iss
          },
          audiences: (x, r) => {
            out.audiences = s.strings(x, r)
          },
          jwks: (j, r) => {
            s.fields(j, r, {
              inline: (x, t) => {
                const text = s.str(x, t)
                if (text === undefined) return
                try {
                  out.jwks = { inline: JSON.parse(text) as unknown }
                } catch {
                  s.problem('import_invalid', 'jwks.inline is not JSON (a JSON Web Key Set)', t)
                }
              },
              remote: (x, t) => {
                // A Service or Backend reference plus a path: resolved by agentgateway in the cluster.
                let url: string | undefined
                s.fields(x, t, {
                  jwksPath: () => {},
                  backendRef: () => {},
                  cacheDuration: () => {},
                  // verdict's own extension: where the same key set is reachable from here.
                  url: (u, w) => {
                    url = s.str(u, w)
                  },
                })
                if (url !== undefined) out.jwks = { url }
                else
                  s.problem(
                    'import_unsupported',
                    'jwks.remote names a backend inside the cluster: inline the key set, or add url: <https URL of the same JWKS>',
                    t,
                  )
              },
            })
          },
        })
        if (out.issuer === undefined) s.problem('import_invalid', 'a provider needs an issuer', q)
        else if (out.jwks !== undefined) providers.push(out)
      })
    },
    mcp: (_m, p) => {
      s.problem(
        'import_unsupported',
        'the MCP OAuth metadata endpoints are served by agentgateway, not decided',
        p,
      )
    },
    // Seed 003's tutorial nests authorization here.
    authorization: (a, p) => {
      authorization(s, a, p, (action, expr, q) => addRule(s, c, action, expr, q))
    },
  })
  if (loc !== undefined) for (const p of providers) p.location = loc
  // agentgateway reads the provider's kid rule: a token's kid must name a key.
  for (const p of providers) p.requireKid = true
  c.jwt = { mode, providers, at }
}

function addRule(s: Scope, c: AgentgatewayContribution, action: string, expr: string, at: string): void {
  const rule: Obj = {
    id: ruleId(s.namespace, s.name, `${action.toLowerCase()}-${c.rules.length}`),
    action: action.toLowerCase(),
    cel: expr,
  }
  c.rules.push(rule)
  c.origins.set(rule, at)
}

export function importAgentgatewayPolicy(s: Scope): AgentgatewayContribution | undefined {
  const c: AgentgatewayContribution = { targets: [], rules: [], mcpRules: [], origins: new Map(), scope: s }
  const unsupported = (what: string) => (_x: unknown, at: string) => {
    s.problem('import_unsupported', `${what} is not an authorization verdict decides`, at)
  }
  const fields = commonFields(s)
  fields.spec = (spec, at) => {
    s.fields(spec, at, {
      targetRefs: (t, p) => readTargetRefs(s, t, p, 'Gateway', 'sectionName', c.targets),
      targetSelectors: unsupported('targetSelectors'),
      traffic: (tr, p) => {
        s.fields(tr, p, {
          jwtAuthentication: (j, q) => {
            jwtAuthentication(s, j, q, c)
          },
          authorization: (a, q) => {
            authorization(s, a, q, (action, expr, r) => addRule(s, c, action, expr, r))
          },
          apiKeyAuthentication: (a, q) => {
            let mode = 'Strict'
            let secret: string | undefined
            let loc: Obj | undefined
            s.fields(a, q, {
              mode: (m, r) => {
                mode = s.str(m, r) ?? mode
              },
              secretRef: (x, r) => {
                s.fields(x, r, {
                  name: (n, w) => {
                    secret = s.str(n, w)
                  },
                  kind: () => {},
                  group: () => {},
                })
              },
              secretSelector: unsupported('secretSelector (name the Secret with secretRef)'),
              location: (l, r) => {
                loc = location(s, l, r)
              },
            })
            if (secret !== undefined) c.apiKey = { secret, mode, ...(loc ? { location: loc } : {}), at: q }
          },
          basicAuthentication: (b, q) => {
            const out: Obj = {}
            s.fields(b, q, {
              mode: (m, r) => {
                out.mode = s.str(m, r)
              },
              realm: (m, r) => {
                out.realm = s.str(m, r)
              },
              users: (u, r) => {
                out.htpasswd = `${s.strings(u, r).join('\n')}\n`
              },
              secretRef: unsupported('basicAuthentication.secretRef (write the users inline)'),
            })
            c.basicAuth = out
          },
          extAuth: (e, q) => {
            s.fields(e, q, {
              backendRef: (b, r) => {
                let name: string | undefined
                let ns = s.namespace
                s.fields(b, r, {
                  name: (n, w) => {
                    name = s.str(n, w)
                  },
                  namespace: (n, w) => {
                    ns = s.str(n, w) ?? ns
                  },
                  port: () => {},
                  kind: () => {},
                  group: () => {},
                })
                if (name !== undefined) c.extAuth = { service: `${ns}/${name}`, at: r }
              },
              // The wire to the authorizer: its rules run in process here.
              grpc: (g, r) => {
                s.fields(g, r, {
                  contextExtensions: unsupported('grpc.contextExtensions'),
                  requestMetadata: unsupported('grpc.requestMetadata'),
                })
              },
              http: unsupported('extAuth.http (path, headers sent to an HTTP authorizer)'),
              forwardBody: () => {},
            })
          },
        })
      },
      backend: (b, p) => {
        s.fields(b, p, {
          mcp: (m, q) => {
            s.fields(m, q, {
              authorization: (a, r) => {
                authorization(s, a, r, (action, expr, w) => {
                  const rule = { [action.toLowerCase()]: expr }
                  c.mcpRules.push(rule)
                  c.origins.set(rule, w)
                })
              },
              authentication: unsupported('backend.mcp.authentication (the MCP OAuth flow)'),
            })
          },
        })
      },
    })
  }
  if (!s.fields(s.value, '', fields)) return undefined
  return c
}

/** API keys from a Secret (`stringData`, or base64 `data`): a string is the key, JSON gives key/keyHash and metadata. */
export function secretKeys(s: Scope): Obj[] {
  const out: Obj[] = []
  const fields = commonFields(s)
  const add = (k: string, raw: string, at: string): void => {
    const text = raw.trim()
    if (text.startsWith('{')) {
      try {
        const v = JSON.parse(text) as Obj
        const e: Obj = {}
        if (typeof v.key === 'string') e.key = v.key
        if (typeof v.keyHash === 'string') e.keyHash = v.keyHash
        if (isObj(v.metadata)) e.metadata = v.metadata
        for (const extra of Object.keys(v).filter((x) => !['key', 'keyHash', 'metadata'].includes(x)))
          s.problem('import_unsupported_field', `field "${extra}" of key ${k} is not supported`, at)
        out.push(e)
      } catch {
        s.problem('import_invalid', `key ${k} is neither a key nor JSON`, at)
      }
    } else out.push({ key: raw })
  }
  fields.type = () => {}
  fields.immutable = () => {}
  fields.stringData = (d, at) => {
    if (!isObj(d)) return
    for (const [k, v] of Object.entries(d)) if (typeof v === 'string') add(k, v, `${at}/${k}`)
  }
  fields.data = (d, at) => {
    if (!isObj(d)) return
    for (const [k, v] of Object.entries(d))
      if (typeof v === 'string') add(k, Buffer.from(v, 'base64').toString('utf8'), `${at}/${k}`)
  }
  s.fields(s.value, '', fields)
  return out
}
