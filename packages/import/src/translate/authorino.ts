/**
 * Authorino `AuthConfig` (authorino.kuadrant.io v1beta2 and v1beta3) as verdict rules: JWT
 * identities become `authentication.jwt` providers, `hosts` a require rule, every authorization
 * entry a require rule (Authorino grants access only when all of them pass): `patternMatching` as
 * CEL, `opa` inline Rego compiled with the real `opa` (`opa build -t wasm`) and run in Authorino's
 * input dialect.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { celString, commonFields, ruleId, type Scope } from '../context.js'
import { isObj, type Obj } from '../read.js'

/** What one AuthConfig contributes. */
export interface AuthConfigContribution {
  readonly name: string
  readonly hosts: string[]
  /** Require rules (without `when`). */
  readonly rules: Obj[]
  readonly bundles: Record<string, Obj>
  readonly providers: Obj[]
  /** True when an `anonymous` identity lets requests without credentials in. */
  anonymous: boolean
  readonly origins: Map<Obj, string>
  readonly scope: Scope
}

/** Authorino well-known attribute selectors verdict's CEL can read. */
function selectorToCel(sel: string): string | undefined {
  const simple: Record<string, string> = {
    'request.method': 'request.method',
    'request.http.method': 'request.method',
    'context.request.http.method': 'request.method',
    'request.url_path': 'request.path',
    'request.path': 'request.path',
    'request.http.path': 'request.path',
    'context.request.http.path': 'request.path',
    'request.host': 'request.host',
    'request.http.host': 'request.host',
    'context.request.http.host': 'request.host',
    'source.principal': 'source.principal',
    'context.source.principal': 'source.principal',
  }
  if (Object.hasOwn(simple, sel)) return simple[sel]
  const header = /^(?:context\.)?request\.(?:http\.)?headers\.([A-Za-z0-9!#$%&'*+.^_`|~-]+)$/.exec(sel)
  if (header) return `request.headers[${celString(header[1]!.toLowerCase())}]`
  const claim = /^auth\.identity\.([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)$/.exec(sel)
  if (claim) return `jwt.${claim[1]}`
  return undefined
}

function pattern(s: Scope, p: unknown, at: string, named: Map<string, string>): string | undefined {
  let selector: string | undefined
  let operator: string | undefined
  let value: unknown
  let ref: string | undefined
  let any: string[] | undefined
  let all: string[] | undefined
  s.fields(p, at, {
    selector: (x, q) => {
      selector = s.str(x, q)
    },
    operator: (x, q) => {
      operator = s.str(x, q)
      if (operator !== undefined && !['eq', 'neq', 'incl', 'excl', 'matches'].includes(operator))
        s.problem('import_invalid', 'operator must be eq, neq, incl, excl or matches', q)
    },
    value: (x) => {
      value = x
    },
    patternRef: (x, q) => {
      ref = s.str(x, q)
    },
    any: (x, q) => {
      any = s.list(x, q).map((y, i) => pattern(s, y, `${q}/${i}`, named) ?? 'false')
    },
    all: (x, q) => {
      all = s.list(x, q).map((y, i) => pattern(s, y, `${q}/${i}`, named) ?? 'false')
    },
  })
  if (ref !== undefined) {
    const r = named.get(ref)
    if (r === undefined) s.problem('import_invalid', `no pattern named "${ref}" in spec.patterns`, at)
    return r
  }
  if (any !== undefined) return any.length === 0 ? 'false' : `(${any.join(' || ')})`
  if (all !== undefined) return all.length === 0 ? 'true' : `(${all.join(' && ')})`
  if (selector === undefined || operator === undefined) {
    s.problem('import_invalid', 'a pattern needs selector and operator', at)
    return undefined
  }
  const cel = selectorToCel(selector)
  if (cel === undefined) {
    s.problem('import_unsupported', `selector "${selector}" has no verdict equivalent`, `${at}/selector`)
    return undefined
  }
  const v = typeof value === 'string' ? value : JSON.stringify(value ?? '')
  switch (operator) {
    case 'eq':
      return `${cel} == ${celString(v)}`
    case 'neq':
      return `${cel} != ${celString(v)}`
    case 'incl':
      return `${celString(v)} in ${cel}`
    case 'excl':
      return `!(${celString(v)} in ${cel})`
    default:
      return `${cel}.matches(${celString(v)})`
  }
}

/** Compile inline Rego to a wasm bundle with the real `opa`; the bundle's path, or a problem. */
function buildRego(s: Scope, rego: string, pkg: string, at: string): string | undefined {
  const bin = s.options.opa ?? (process.env.OPA_BIN || 'opa')
  const text = `package ${pkg}\n\n${rego}`
  const digest = createHash('sha256').update(`${pkg}\0${text}`).digest('hex').slice(0, 24)
  const dir = join(s.options.cacheDir ?? join(tmpdir(), 'verdict-import'), digest)
  const out = join(dir, 'bundle.tar.gz')
  if (existsSync(out)) return out
  const version = spawnSync(bin, ['version'], { encoding: 'utf8' })
  if (version.error !== undefined || version.status !== 0) {
    s.problem(
      'import_opa_unavailable',
      `inline Rego needs the \`opa\` binary to compile it (${bin} does not run: set OPA_BIN or put opa on PATH)`,
      at,
    )
    return undefined
  }
  mkdirSync(join(dir, 'src'), { recursive: true })
  writeFileSync(join(dir, 'src', 'policy.rego'), text)
  const tmp = join(dir, `bundle.${process.pid}.tar.gz`)
  const entry = `${pkg.replace(/\./g, '/')}/allow`
  // Authorino evaluates inline Rego with OPA's v0 syntax (`allow { ... }`); v1 modules still parse.
  const r = spawnSync(
    bin,
    ['build', '-t', 'wasm', '--v0-compatible', '-e', entry, '-o', tmp, join(dir, 'src')],
    {
      encoding: 'utf8',
    },
  )
  if (r.status !== 0) {
    s.problem('import_rego', `opa build failed: ${(r.stderr || r.stdout || '').trim().split('\n')[0]}`, at)
    return undefined
  }
  renameSync(tmp, out)
  return out
}

export function importAuthConfig(s: Scope): AuthConfigContribution | undefined {
  const out: AuthConfigContribution = {
    name: `${s.namespace}/${s.name}`,
    hosts: [],
    rules: [],
    bundles: {},
    providers: [],
    anonymous: false,
    origins: new Map(),
    scope: s,
  }
  const v1beta2 = s.resource.apiVersion.endsWith('/v1beta2')
  const named = new Map<string, string>()
  const spec = s.value.spec
  if (isObj(spec) && isObj(spec.patterns))
    for (const [k, p] of Object.entries(spec.patterns)) {
      // A named pattern set is a list of patterns, all of which must hold.
      const list = Array.isArray(p) ? p : isObj(p) && Array.isArray(p.allOf) ? p.allOf : undefined
      if (list === undefined) continue
      const parts = list.map((x, i) => pattern(s, x, `/spec/patterns/${k}/${i}`, named) ?? 'false')
      named.set(k, parts.length === 0 ? 'true' : `(${parts.join(' && ')})`)
    }
  const unsupported = (what: string) => (_x: unknown, at: string) => {
    s.problem('import_unsupported', `${what} has no verdict equivalent`, at)
  }
  const fields = commonFields(s)
  fields.spec = (sp, at) => {
    s.fields(sp, at, {
      hosts: (h, p) => {
        out.hosts.push(...s.strings(h, p).map((x) => x.toLowerCase()))
      },
      patterns: () => {},
      when: unsupported('spec.when (conditions on the whole AuthConfig)'),
      metadata: unsupported('external metadata fetching'),
      response: unsupported('dynamic response (wristbands, injected headers)'),
      callbacks: unsupported('callbacks'),
      // v1beta1 name of `authentication`.
      identity: unsupported('v1beta1 identity (convert to v1beta2 first)'),
      authentication: (a, p) => {
        if (!isObj(a)) return void s.problem('import_invalid', 'must be a map of named identities', p)
        for (const [k, id] of Object.entries(a)) {
          const q = `${p}/${k}`
          s.fields(id, q, {
            jwt: (j, r) => {
              const provider: Obj = { name: `${s.namespace}/${s.name}/${k}` }
              s.fields(j, r, {
                issuerUrl: (x, t) => {
                  const iss = s.str(x, t)
                  if (iss === undefined) return
                  provider.issuer = iss
                  provider.jwks ??= { discovery: true }
                },
                jwksUrl: (x, t) => {
                  const u = s.str(x, t)
                  if (u !== undefined) provider.jwks = { url: u }
                },
                // Refresh period of the discovery document: verdict's remote cache decides it.
                ttl: () => {},
              })
              if (provider.issuer === undefined)
                s.problem(
                  'import_unsupported',
                  'a JWT identity without issuerUrl (jwksUrl alone) cannot check the issuer',
                  r,
                )
              else out.providers.push(provider)
            },
            anonymous: () => {
              out.anonymous = true
            },
            credentials: (c, r) => {
              s.fields(c, r, {
                authorizationHeader: (x, t) => {
                  s.fields(x, t, { prefix: () => {} })
                },
                customHeader: unsupported(
                  'credentials.customHeader (put it in the provider location by hand)',
                ),
                queryString: unsupported('credentials.queryString (put it in the provider location by hand)'),
                cookie: unsupported('credentials.cookie (put it in the provider location by hand)'),
              })
            },
            // Evaluation order among identities: verdict tries providers by issuer.
            priority: () => {},
            metrics: () => {},
            cache: unsupported('identity caching'),
            when: unsupported('conditions on an identity'),
            overrides: unsupported('identity overrides'),
            defaults: unsupported('identity defaults'),
            extendedProperties: unsupported('identity extendedProperties'),
            apiKey: unsupported('API key identities (selected by label from Secrets)'),
            plain: unsupported('plain identities'),
            kubernetesTokenReview: unsupported('Kubernetes TokenReview identities'),
            oauth2Introspection: unsupported('OAuth2 token introspection'),
            x509: unsupported('X.509 client certificate identities'),
          })
        }
      },
      authorization: (a, p) => {
        if (!isObj(a)) return void s.problem('import_invalid', 'must be a map of named authorizations', p)
        for (const [k, az] of Object.entries(a)) {
          const q = `${p}/${k}`
          const id = ruleId(s.namespace, s.name, k)
          s.fields(az, q, {
            patternMatching: (pm, r) => {
              let cel: string | undefined
              s.fields(pm, r, {
                patterns: (ps, t) => {
                  const parts = s.list(ps, t).map((x, i) => pattern(s, x, `${t}/${i}`, named) ?? 'false')
                  cel = parts.length === 0 ? 'true' : parts.join(' && ')
                },
              })
              if (cel !== undefined) {
                const rule = { id, action: 'require', cel }
                out.rules.push(rule)
                out.origins.set(rule, q)
              }
            },
            opa: (o, r) => {
              let rego: string | undefined
              s.fields(o, r, {
                rego: (x, t) => {
                  rego = s.str(x, t)
                },
                externalPolicy: unsupported('opa.externalPolicy (fetching Rego from a URL)'),
                allValues: unsupported('opa.allValues'),
              })
              if (rego === undefined) return
              const pkg = `authorino.${ruleId(s.namespace, s.name, k).replace(/[^A-Za-z0-9_]/g, '_')}`
              const bundle = buildRego(s, rego, pkg, `${r}/rego`)
              if (bundle === undefined) return
              const bname = ruleId(s.namespace, s.name, k).replace(/[^A-Za-z0-9_-]/g, '_')
              out.bundles[bname] = { path: bundle }
              const rule = {
                id,
                action: 'require',
                rego: { bundle: bname, entrypoint: `${pkg.replace(/\./g, '/')}/allow`, dialect: 'authorino' },
              }
              out.rules.push(rule)
              out.origins.set(rule, q)
            },
            priority: () => {},
            metrics: () => {},
            when: unsupported('conditions on an authorization'),
            cache: unsupported('authorization caching'),
            kubernetesSubjectAccessReview: unsupported('Kubernetes SubjectAccessReview'),
            spicedb: unsupported('SpiceDB'),
            // v1beta2 spells them the same; v1beta1 names are refused above.
          })
        }
      },
    })
  }
  void v1beta2
  if (!s.fields(s.value, '', fields)) return undefined
  if (out.hosts.length === 0) s.problem('import_invalid', 'spec.hosts is required', '/spec')
  return out
}

/** The require rule of an AuthConfig's hosts, unless it is `*`. */
export function hostsRule(a: AuthConfigContribution): Obj | undefined {
  if (a.hosts.includes('*')) return undefined
  return {
    id: ruleId(a.scope.namespace, a.scope.name, 'hosts'),
    action: 'require',
    match: { hosts: a.hosts.map((h) => (h.startsWith('*.') ? { suffix: h.slice(1) } : { exact: h })) },
  }
}
