/**
 * Istio `AuthorizationPolicy` (security.istio.io v1 and v1beta1) as verdict rules. Every rule
 * becomes one CEL condition (`from` any of, `to` any of, `when` all of; within a field any value),
 * guarded so that an absent attribute is a non-match, never an error: Istio's `notX` fields match
 * when the attribute is absent, as Istio's do.
 */
import { celString, commonFields, type Scope } from '../context.js'
import { isObj, type Obj } from '../read.js'

export interface IstioContribution {
  readonly action: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM'
  readonly provider?: string
  /** One CEL condition per rule, with its pointer. */
  readonly rules: { cel: string; at: string }[]
  /** `selector.matchLabels` as `k=v,...`, or `targetRefs` names; empty for the whole namespace. */
  readonly targets: string[]
  readonly scope: Scope
}

const or = (xs: string[]): string =>
  xs.length === 0 ? 'false' : xs.length === 1 ? xs[0]! : `(${xs.join(' || ')})`
const and = (xs: string[]): string =>
  xs.length === 0 ? 'true' : xs.length === 1 ? xs[0]! : `(${xs.join(' && ')})`

/** Istio's string match (exact, `prefix*`, `*suffix`, `*` presence) of `value` against the CEL `e`. */
function strMatch(e: string, v: string, lower = false): string {
  const x = lower ? v.toLowerCase() : v
  if (x === '*') return 'true'
  if (x.endsWith('*')) return `${e}.startsWith(${celString(x.slice(0, -1))})`
  if (x.startsWith('*')) return `${e}.endsWith(${celString(x.slice(1))})`
  return `${e} == ${celString(x)}`
}

/** `/a/{*}/b/{**}` path templates as an RE2 expression, else undefined. */
function pathTemplate(v: string): string | undefined {
  if (!v.includes('{*}') && !v.includes('{**}')) return undefined
  const esc = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const re = v
    .split(/(\{\*\*\}|\{\*\})/)
    .map((p) => (p === '{**}' ? '.*' : p === '{*}' ? '[^/]+' : esc(p)))
    .join('')
  return `^${re}$`
}

const principal = (v: string): string =>
  v === '*'
    ? 'has(source.principal)'
    : v.startsWith('*')
      ? `(has(source.principal) && source.principal.endsWith(${celString(v.slice(1))}))`
      : v.endsWith('*')
        ? `(has(source.principal) && source.principal.startsWith(${celString(`spiffe://${v.slice(0, -1)}`)}))`
        : `(has(source.principal) && source.principal == ${celString(`spiffe://${v}`)})`
const requestPrincipal = (v: string): string =>
  v === '*'
    ? '(has(jwt.iss) && has(jwt.sub))'
    : `(has(jwt.iss) && has(jwt.sub) && ${strMatch('(jwt.iss + "/" + jwt.sub)', v)})`
const namespace = (v: string): string =>
  `(has(source.identity) && ${strMatch('source.identity.namespace', v)})`
const ip =
  (attr: string) =>
  (v: string): string =>
    v.includes('/')
      ? `(has(${attr}) && cidr(${celString(v)}).containsIP(${attr}))`
      : `(has(${attr}) && ${attr} == ${celString(v)})`
const port = (v: string): string => `(has(destination.port) && destination.port == ${Number(v)})`
const method = (v: string): string => strMatch('request.method', v)
const host = (v: string): string => strMatch('request.host', v, true)
const path = (v: string): string => {
  const t = pathTemplate(v)
  return t !== undefined ? `request.path.matches(${celString(t)})` : strMatch('request.path', v)
}

/** A claim path `[a][b]` as guarded CEL reading `jwt.a.b`; a list claim matches when any element does. */
function claimMatch(path: string[], v: string): string {
  let e = 'jwt'
  const guards: string[] = []
  for (const k of path) {
    guards.push(`has(${e}.${k})`)
    e = `${e}.${k}`
  }
  const m = (x: string) => strMatch(x, v)
  return `(${guards.join(' && ')} && (type(${e}) == list ? ${e}.exists(c, ${m('c')}) : ${m(e)}))`
}

function whenKey(s: Scope, key: string, at: string): ((v: string) => string) | undefined {
  const header = /^request\.headers\[([^\]]+)\]$/.exec(key)
  if (header) {
    const name = header[1]!.toLowerCase()
    return (v) =>
      v === '*'
        ? `(${celString(name)} in request.headers)`
        : `(${celString(name)} in request.headers && ${strMatch(`request.headers[${celString(name)}]`, v)})`
  }
  const claims = /^request\.auth\.claims((?:\[[^\]]+\])+)$/.exec(key)
  if (claims) {
    const path = [...claims[1]!.matchAll(/\[([^\]]+)\]/g)].map((m) => m[1]!)
    if (path.every((k) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k))) return (v) => claimMatch(path, v)
    s.problem('import_unsupported', `claim names of ${key} are not CEL identifiers`, at)
    return undefined
  }
  switch (key) {
    case 'source.ip':
      return ip('source.address')
    case 'source.namespace':
      return namespace
    case 'source.principal':
      return (v) => principal(v)
    case 'request.auth.principal':
      return requestPrincipal
    case 'request.auth.audiences':
      return (v) =>
        `(has(jwt.aud) && (type(jwt.aud) == list ? ${celString(v)} in jwt.aud : jwt.aud == ${celString(v)}))`
    case 'request.auth.presenter':
      return (v) => `(has(jwt.azp) && ${strMatch('jwt.azp', v)})`
    case 'destination.ip':
      return ip('destination.address')
    case 'destination.port':
      return port
    default:
      s.problem('import_unsupported', `condition key ${key} has no verdict equivalent`, at)
      return undefined
  }
}

/** Fields of `source` / `operation`: positive and `not` lists of one attribute. */
function attrs(
  s: Scope,
  v: unknown,
  at: string,
  table: Record<string, (x: string) => string>,
  unsupported: readonly string[],
): string {
  const parts: string[] = []
  const known: Record<string, (x: unknown, p: string) => void> = {}
  for (const [k, f] of Object.entries(table)) {
    known[k] = (x, p) => {
      parts.push(or(s.strings(x, p).map(f)))
    }
    const not = `not${k[0]!.toUpperCase()}${k.slice(1)}`
    known[not] = (x, p) => {
      parts.push(`!(${or(s.strings(x, p).map(f))})`)
    }
  }
  for (const k of unsupported)
    known[k] = (_x, p) => {
      s.problem('import_unsupported', `${k} has no verdict equivalent`, p)
    }
  s.fields(v, at, known)
  return and(parts)
}

export function importAuthorizationPolicy(s: Scope): IstioContribution | undefined {
  let action = 'ALLOW' as IstioContribution['action']
  let provider: string | undefined
  const rules: { cel: string; at: string }[] = []
  const targets: string[] = []
  let hasRules = false
  const fields = commonFields(s)
  fields.spec = (spec, at) => {
    s.fields(spec, at, {
      selector: (sel, p) => {
        s.fields(sel, p, {
          matchLabels: (m, q) => {
            if (!isObj(m)) return void s.problem('import_invalid', 'must be a map', q)
            targets.push(
              Object.entries(m)
                .map(([k, v]) => `${k}=${String(v)}`)
                .sort()
                .join(','),
            )
          },
        })
      },
      targetRef: (r, p) => {
        if (isObj(r) && typeof r.name === 'string') targets.push(r.name)
        else s.problem('import_invalid', 'targetRef needs a name', p)
      },
      targetRefs: (rs, p) => {
        s.list(rs, p).forEach((r, i) => {
          if (isObj(r) && typeof r.name === 'string') targets.push(r.name)
          else s.problem('import_invalid', 'a targetRef needs a name', `${p}/${i}`)
        })
      },
      action: (a, p) => {
        const x = s.str(a, p)
        if (x === 'ALLOW' || x === 'DENY' || x === 'AUDIT' || x === 'CUSTOM') action = x
        else s.problem('import_invalid', 'action must be ALLOW, DENY, AUDIT or CUSTOM', p)
      },
      provider: (pr, p) => {
        s.fields(pr, p, {
          name: (n, q) => {
            provider = s.str(n, q)
          },
        })
      },
      rules: (rs, p) => {
        hasRules = true
        s.list(rs, p).forEach((r, i) => {
          const q = `${p}/${i}`
          const parts: string[] = []
          s.fields(r, q, {
            from: (f, w) => {
              parts.push(
                or(
                  s.list(f, w).map((x, j) => {
                    let c = 'true'
                    s.fields(x, `${w}/${j}`, {
                      source: (src, t) => {
                        c = attrs(
                          s,
                          src,
                          t,
                          {
                            principals: principal,
                            requestPrincipals: requestPrincipal,
                            namespaces: namespace,
                            ipBlocks: ip('source.address'),
                          },
                          ['remoteIpBlocks', 'notRemoteIpBlocks', 'serviceAccounts', 'notServiceAccounts'],
                        )
                      },
                    })
                    return c
                  }),
                ),
              )
            },
            to: (tt, w) => {
              parts.push(
                or(
                  s.list(tt, w).map((x, j) => {
                    let c = 'true'
                    s.fields(x, `${w}/${j}`, {
                      operation: (op, t) => {
                        c = attrs(s, op, t, { hosts: host, ports: port, methods: method, paths: path }, [])
                      },
                    })
                    return c
                  }),
                ),
              )
            },
            when: (ws, w) => {
              s.list(ws, w).forEach((c, j) => {
                const cw = `${w}/${j}`
                let key: string | undefined
                let values: string[] | undefined
                let notValues: string[] | undefined
                s.fields(c, cw, {
                  key: (k, t) => {
                    key = s.str(k, t)
                  },
                  values: (v, t) => {
                    values = s.strings(v, t)
                  },
                  notValues: (v, t) => {
                    notValues = s.strings(v, t)
                  },
                })
                if (key === undefined) return
                const f = whenKey(s, key, `${cw}/key`)
                if (f === undefined) return
                if (values !== undefined) parts.push(or(values.map(f)))
                if (notValues !== undefined) parts.push(`!(${or(notValues.map(f))})`)
                if (values === undefined && notValues === undefined)
                  s.problem('import_invalid', 'a condition needs values or notValues', cw)
              })
            },
          })
          rules.push({ cel: and(parts), at: q })
        })
      },
    })
  }
  if (!s.fields(s.value, '', fields)) return undefined
  if (action === 'CUSTOM' && provider === undefined)
    s.problem('import_invalid', 'action CUSTOM needs provider.name', '/spec')
  if (action !== 'CUSTOM' && provider !== undefined)
    s.problem('import_invalid', 'provider goes only with action CUSTOM', '/spec/provider')
  void hasRules
  return { action, ...(provider !== undefined ? { provider } : {}), rules, targets, scope: s }
}

export type { Obj }

/**
 * `RequestAuthentication`: JWT providers. Istio rejects an invalid token (401) and lets a request
 * without one through, which is verdict's `Optional` mode; an ALLOW rule on `requestPrincipals`
 * then requires the token.
 */
export function importRequestAuthentication(s: Scope): Obj[] {
  const providers: Obj[] = []
  const fields = commonFields(s)
  fields.spec = (spec, at) => {
    s.fields(spec, at, {
      selector: () => {},
      targetRef: () => {},
      targetRefs: () => {},
      jwtRules: (rs, p) => {
        s.list(rs, p).forEach((r, i) => {
          const q = `${p}/${i}`
          const out: Obj = {}
          s.fields(r, q, {
            issuer: (x, t) => {
              const iss = s.str(x, t)
              if (iss !== undefined) out.issuer = iss
            },
            audiences: (x, t) => {
              out.audiences = s.strings(x, t)
            },
            jwksUri: (x, t) => {
              const u = s.str(x, t)
              if (u !== undefined) out.jwks = { url: u }
            },
            jwks: (x, t) => {
              const text = s.str(x, t)
              if (text === undefined) return
              try {
                out.jwks = { inline: JSON.parse(text) as unknown }
              } catch {
                s.problem('import_invalid', 'jwks is not JSON (a JSON Web Key Set)', t)
              }
            },
            fromHeaders: (x, t) => {
              const hs = s.list(x, t)
              if (hs.length !== 1)
                return void s.problem('import_unsupported', 'exactly one header location is supported', t)
              const h = hs[0]
              if (isObj(h) && typeof h.name === 'string')
                out.location = {
                  header: { name: h.name, ...(typeof h.prefix === 'string' ? { prefix: h.prefix } : {}) },
                }
            },
            fromParams: (x, t) => {
              const ps = s.strings(x, t)
              if (ps.length !== 1)
                return void s.problem('import_unsupported', 'exactly one query parameter is supported', t)
              out.location = { query: ps[0] }
            },
            forwardOriginalToken: (x) => {
              if (x === true) out.forwardToken = true
            },
            outputPayloadToHeader: (_x, t) => {
              s.problem(
                'import_unsupported',
                'outputPayloadToHeader (use claimsToHeaders in the verdict policy)',
                t,
              )
            },
            outputClaimToHeaders: (x, t) => {
              out.claimsToHeaders = s
                .list(x, t)
                .filter(isObj)
                .map((c) => ({ claim: c.claim, header: c.header }))
            },
            fromCookies: (x, t) => {
              const cs = s.strings(x, t)
              if (cs.length !== 1)
                return void s.problem('import_unsupported', 'exactly one cookie is supported', t)
              out.location = { cookie: cs[0] }
            },
            timeout: () => {},
          })
          if (out.issuer === undefined) s.problem('import_invalid', 'a jwtRule needs an issuer', q)
          else if (out.jwks === undefined) {
            // Istio would use OIDC discovery on the issuer.
            out.jwks = { discovery: true }
            providers.push(out)
          } else providers.push(out)
        })
      },
    })
  }
  s.fields(s.value, '', fields)
  return providers
}
