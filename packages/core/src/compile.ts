/**
 * Compile a policy document into the structure `decide()` walks. Every problem in the document is
 * collected and reported at once, each with its JSON path (and line/column for text).
 */
import { compileApiKeyAuthentication, compileBasicAuthentication } from './apikey/index.js'
import { type AuthCompileResult, type Authenticator, CombinedAuthenticator } from './auth.js'
import {
  type CompiledLayer,
  type CompiledPolicy,
  type CompiledRule,
  type CompileEnvironment,
  DEFAULT_TIMEOUT_MS,
  type PolicySource,
  type RuleAction,
} from './compile/compiled.js'
import {
  checkEnvironment,
  headerList,
  noResources,
  type Obj,
  responseSpec,
  sortProblems,
  toSource,
} from './compile/source.js'
import { compileSchema, pointer, schemaProblems, validatePolicyShape } from './document.js'
import { PolicyError, type Problem } from './errors.js'
import type { Evaluator, RuleProgram } from './evaluator.js'
import { resolveInputOptions } from './input/index.js'
import { compileJwtAuthentication, type JwtEnvironment } from './jwt/index.js'
import { matchEvaluator } from './match.js'
import {
  baseProtocolPass,
  mcpAuthorizationEntries,
  mcpAuthorizationRules,
  programScope,
  scopedWhen,
} from './mcp/authorization.js'
import { DEFAULT_MAX_BATCH, type McpSettings } from './mcp/index.js'
import { intersectScopes, type McpMessageKind } from './mcp/scope.js'

export {
  type CompiledLayer,
  type CompiledPolicy,
  type CompiledRule,
  type CompileEnvironment,
  DEFAULT_TIMEOUT_MS,
  type PolicySource,
  type ResponseSpec,
} from './compile/compiled.js'

const ENVELOPE = new Set(['id', 'description', 'action', 'when', 'shadow', 'response', 'headers'])

export async function compilePolicy(source: PolicySource, env: CompileEnvironment): Promise<CompiledPolicy> {
  checkEnvironment(env)
  const src = toSource(source)
  const problems: Problem[] = validatePolicyShape(src)
  const doc = src.value
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new PolicyError(problems)
  const d = doc as Obj
  const locate = src.locate
  const at = (path: string) => locate(path) ?? {}

  const evaluators = new Map<string, Evaluator>([['match', matchEvaluator]])
  for (const e of env.evaluators) evaluators.set(e.kind, e)
  const schemaCache = new Map<string, ReturnType<typeof compileSchema>>()

  const programs: RuleProgram[] = []
  const seenIds = new Map<string, string>()

  async function compileBody(
    kind: string,
    config: unknown,
    ruleId: string,
    path: string,
  ): Promise<RuleProgram | undefined> {
    const ev = evaluators.get(kind)!
    if (ev.configSchema !== undefined) {
      let validate = schemaCache.get(kind)
      if (validate === undefined) {
        validate = compileSchema(ev.configSchema)
        schemaCache.set(kind, validate)
      }
      if (!validate(config)) {
        for (const p of schemaProblems(validate.errors, path, locate)) problems.push({ ...p, ruleId })
        return undefined
      }
    }
    // The document schema already refused this body: compiling it would only add noise.
    if (problems.some((p) => p.path === path || p.path.startsWith(`${path}/`))) return undefined
    let res: Awaited<ReturnType<Evaluator['compile']>>
    try {
      res = await ev.compile(config, { ruleId, path, resources: env.resources ?? noResources, document: d })
    } catch (e) {
      problems.push({
        code: 'compile',
        message: `${kind} evaluator failed: ${(e as Error)?.message ?? String(e)}`,
        path,
        ruleId,
        ...at(path),
      })
      return undefined
    }
    if (!res.ok) {
      for (const p of res.problems) {
        const loc = p.line === undefined ? at(p.path || path) : {}
        problems.push({ ...p, path: p.path || path, ruleId: p.ruleId ?? ruleId, ...loc })
      }
      return undefined
    }
    programs.push(res.program)
    return res.program
  }

  function kindOf(
    obj: Obj,
    path: string,
    ruleId: string | undefined,
    envelope: ReadonlySet<string>,
  ): string | undefined {
    const kinds = Object.keys(obj).filter((k) => !envelope.has(k))
    const known = kinds.filter((k) => evaluators.has(k))
    const unknown = kinds.filter((k) => !evaluators.has(k))
    for (const k of unknown) {
      problems.push({
        code: 'unknown_rule_kind',
        message: `unknown rule body "${k}" (known: ${[...evaluators.keys()].join(', ')})`,
        path: `${path}/${k}`,
        ...(ruleId !== undefined ? { ruleId } : {}),
        ...at(`${path}/${k}`),
      })
    }
    if (known.length === 0 && unknown.length === 0) {
      problems.push({
        code: 'unknown_rule_kind',
        message: 'rule has no body (one of match, cel, rego, mcp, ...)',
        path,
        ...(ruleId !== undefined ? { ruleId } : {}),
        ...at(path),
      })
    }
    if (known.length > 1) {
      problems.push({
        code: 'ambiguous_rule_kind',
        message: `rule has several bodies (${known.join(', ')}); use one`,
        path,
        ...(ruleId !== undefined ? { ruleId } : {}),
        ...at(path),
      })
      return undefined
    }
    return known.length === 1 && unknown.length === 0 ? known[0] : undefined
  }

  async function compileRule(r: unknown, path: string): Promise<CompiledRule | undefined> {
    if (typeof r !== 'object' || r === null || Array.isArray(r)) return undefined
    const rule = r as Obj
    const id = typeof rule.id === 'string' ? rule.id : undefined
    if (id !== undefined) {
      const prev = seenIds.get(id)
      if (prev !== undefined) {
        problems.push({
          code: 'duplicate_rule_id',
          message: `rule id "${id}" is also used at ${prev}`,
          path: `${path}/id`,
          ruleId: id,
          ...at(`${path}/id`),
        })
      } else seenIds.set(id, path)
    }
    const kind = kindOf(rule, path, id, ENVELOPE)
    let when: RuleProgram | undefined
    let whenScope: readonly McpMessageKind[] | undefined
    if (typeof rule.when === 'object' && rule.when !== null) {
      const wk = kindOf(rule.when as Obj, `${path}/when`, id, new Set())
      if (wk !== undefined && id !== undefined) {
        when = await compileBody(wk, (rule.when as Obj)[wk], id, `${path}/when/${wk}`)
        whenScope = programScope(wk, (rule.when as Obj)[wk], when)
      }
    }
    const response = responseSpec(rule.response, `${path}/response`, problems, locate)
    if (kind === undefined || id === undefined) return undefined
    const program = await compileBody(kind, rule[kind], id, `${path}/${pointer(kind).slice(1)}`)
    if (program === undefined) return undefined
    const action = rule.action as RuleAction
    if (!['allow', 'deny', 'require', 'decide'].includes(action)) return undefined
    // A rule over mcp.tool / mcp.prompt / mcp.resource only (or an `mcp` rule that skips the base
    // protocol) does not apply to other messages: it is skipped there, as when `when` is false.
    const mcpScope = intersectScopes(programScope(kind, rule[kind], program), whenScope)
    return {
      id,
      action,
      program,
      when: mcpScope === undefined ? when : scopedWhen(when, mcpScope),
      shadow: rule.shadow === true || d.shadow === true,
      response,
      headers: headerList(rule.headers),
      ...(mcpScope === undefined ? {} : { mcpScope }),
    }
  }

  async function compileLayer(
    l: Obj,
    path: string,
    name: string,
    empty: { readonly path: string; readonly message: string } | undefined,
  ): Promise<CompiledLayer> {
    const rules = Array.isArray(l.rules) ? l.rules : []
    // No rules and no stated default would allow every request (the fallback of a layer without
    // allow rules is allow): refuse it, unless the document says allow or deny on purpose.
    if (empty !== undefined && rules.length === 0 && l.default !== 'allow' && l.default !== 'deny') {
      problems.push({ code: 'no_rules', message: empty.message, path: empty.path, ...at(empty.path) })
    }
    const compiled = await Promise.all(rules.map((r, i) => compileRule(r, `${path}/rules/${i}`)))
    const by = {
      decide: [] as CompiledRule[],
      deny: [] as CompiledRule[],
      require: [] as CompiledRule[],
      allow: [] as CompiledRule[],
      shadow: [] as CompiledRule[],
    }
    for (const c of compiled) {
      if (c === undefined) continue
      if (c.shadow) by.shadow.push(c)
      else by[c.action].push(c)
    }
    const fallback =
      l.default === 'allow' || l.default === 'deny' ? l.default : by.allow.length > 0 ? 'deny' : 'allow'
    // agentgateway's scope: when no allow rule of the layer applies to base-protocol messages, they
    // pass it instead of meeting the fallback (unless the layer states its default).
    if (fallback === 'deny' && l.default === undefined) {
      const pass = baseProtocolPass(by.allow, new Set(seenIds.keys()))
      if (pass !== undefined) by.allow.push(pass)
    }
    return { name, ...by, fallback, denied: responseSpec(l.denied, `${path}/denied`, problems, locate) }
  }

  const layers: CompiledLayer[] = []
  // agentgateway's `mcpAuthorization` section: a layer of its own, AND-ed with the others.
  if (d.mcpAuthorization !== undefined) {
    const entries = mcpAuthorizationEntries(d.mcpAuthorization)
    if (entries.length > 0 && !evaluators.has('cel')) {
      problems.push({
        code: 'unknown_rule_kind',
        message: 'mcpAuthorization rules are CEL: register the cel evaluator (@verdict/cel-adapter)',
        path: '/mcpAuthorization',
        ...at('/mcpAuthorization'),
      })
    } else if (entries.length > 0) {
      const bodies = await Promise.all(entries.map((e) => compileBody('cel', e.expression, e.id, e.path)))
      const rules = mcpAuthorizationRules(entries, bodies, d.shadow === true)
      const by = { decide: [], deny: [], require: [], allow: [], shadow: [] } as Record<
        RuleAction | 'shadow',
        CompiledRule[]
      >
      for (const r of rules) (r.shadow ? by.shadow : by[r.action]).push(r)
      layers.push({
        name: 'mcpAuthorization',
        decide: by.decide,
        deny: by.deny,
        require: by.require,
        allow: by.allow,
        shadow: by.shadow,
        fallback: by.allow.length > 0 ? 'deny' : 'allow',
        denied: undefined,
      })
    }
  }
  if (Array.isArray(d.layers)) {
    for (let i = 0; i < d.layers.length; i++) {
      const l = d.layers[i]
      if (typeof l !== 'object' || l === null) continue
      const lo = l as Obj
      const name = typeof lo.name === 'string' ? lo.name : `layer-${i}`
      layers.push(
        await compileLayer(
          lo,
          `/layers/${i}`,
          name,
          // A layer without a rules list is already a schema problem.
          Array.isArray(lo.rules)
            ? {
                path: `/layers/${i}/rules`,
                message: `layer ${name} has no rules, so it would allow every request: add rules, or give the layer "default: allow" to let every request through it on purpose ("default: deny" to refuse every request)`,
              }
            : undefined,
        ),
      )
    }
  } else if (!(d.mcpAuthorization !== undefined && d.rules === undefined && d.default === undefined)) {
    layers.push(
      await compileLayer(
        { rules: d.rules, default: d.default },
        '',
        'default',
        // rules that are not a list are already a schema problem.
        d.rules === undefined || Array.isArray(d.rules)
          ? {
              path: d.rules === undefined ? '' : '/rules',
              message:
                'policy has no rules, so it would allow every request: add rules, or write "default: allow" at the top level to allow every request on purpose ("default: deny" to refuse every request)',
            }
          : undefined,
      ),
    )
  }

  const responses = (typeof d.responses === 'object' && d.responses !== null ? d.responses : {}) as Obj
  const allowed = (responses.allowed ?? {}) as Obj

  let authenticator: Authenticator | undefined
  const auth = (d.authentication ?? {}) as Obj
  const authenticators: Authenticator[] = []
  const addAuth = (res: AuthCompileResult, path: string) => {
    // A section the schema already refused is not compiled further.
    if (problems.some((p) => p.path.startsWith(path))) return
    if (res.ok) authenticators.push(res.authenticator)
    else for (const p of res.problems) problems.push({ ...p, ...(p.line === undefined ? at(p.path) : {}) })
  }
  if (auth.jwt !== undefined) {
    // The decision deadline bounds how long a decision waits for remote keys (a 401, not a timeout).
    const authEnv: JwtEnvironment = {
      fetch: env.fetch,
      resources: env.resources,
      now: env.now,
      decisionTimeoutMs: typeof d.timeoutMs === 'number' ? d.timeoutMs : DEFAULT_TIMEOUT_MS,
    }
    const res = await compileJwtAuthentication(auth.jwt, '/authentication/jwt', authEnv)
    if (res.ok) authenticators.push(res.authenticator)
    else for (const p of res.problems) problems.push({ ...p, ...(p.line === undefined ? at(p.path) : {}) })
  }
  // API keys and basic auth (agentgateway's apiKey and basicAuth), after JWT.
  if (auth.basicAuth !== undefined)
    addAuth(
      await compileBasicAuthentication(auth.basicAuth, '/authentication/basicAuth', env.resources),
      '/authentication/basicAuth',
    )
  if (auth.apiKey !== undefined)
    addAuth(compileApiKeyAuthentication(auth.apiKey, '/authentication/apiKey'), '/authentication/apiKey')
  authenticator = authenticators.length > 1 ? new CombinedAuthenticator(authenticators) : authenticators[0]

  const mcpDoc = (typeof d.mcp === 'object' && d.mcp !== null ? d.mcp : {}) as Obj
  const mcp: McpSettings = {
    enabled: typeof mcpDoc.enabled === 'boolean' ? mcpDoc.enabled : 'auto',
    batches: mcpDoc.batches === 'reject' ? 'reject' : 'each',
    denial: mcpDoc.denial === 'jsonrpc' || mcpDoc.denial === 'hidden' ? mcpDoc.denial : 'http',
    maxBatch: typeof mcpDoc.maxBatch === 'number' ? mcpDoc.maxBatch : DEFAULT_MAX_BATCH,
  }

  const compiled: CompiledPolicy = {
    name: typeof d.name === 'string' ? d.name : 'policy',
    input: resolveInputOptions(d.input as Parameters<typeof resolveInputOptions>[0]),
    layers,
    authenticator,
    realm: typeof auth.realm === 'string' ? auth.realm : undefined,
    responses: {
      denied: responseSpec(responses.denied, '/responses/denied', problems, locate),
      unauthenticated: responseSpec(
        responses.unauthenticated,
        '/responses/unauthenticated',
        problems,
        locate,
      ),
      error: responseSpec(responses.error, '/responses/error', problems, locate),
    },
    allowedHeaders: headerList(allowed.headers),
    allowedResponseHeaders: headerList(allowed.responseHeaders),
    timeoutMs: typeof d.timeoutMs === 'number' ? d.timeoutMs : DEFAULT_TIMEOUT_MS,
    mcp,
    dispose: () => {
      for (const p of programs) {
        try {
          p.dispose?.()
        } catch {
          // Disposal is best effort; a failing evaluator must not keep the old policy alive.
        }
      }
      authenticator?.dispose?.()
    },
  }
  if (problems.length > 0) {
    compiled.dispose()
    throw new PolicyError(sortProblems(problems))
  }
  return compiled
}
