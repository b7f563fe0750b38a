/**
 * The `mcp` rule body: kube-agentic-networking's access model (protocols.md §4) as a verdict
 * evaluator, plus a small argument matcher so argument-level allow-lists need no CEL.
 *
 * ```yaml
 * - id: agent-a-remote
 *   action: allow
 *   mcp:
 *     source: { serviceAccount: { namespace: agents, name: agent-a } }
 *     tools: [read_wiki_structure, ask_question]
 *     baseProtocol: MATCH
 *     arguments: { repoName: { in: [kubernetes-sigs/gateway-api] } }
 * ```
 */
import {
  type CompileResult,
  type EvalResult,
  type Evaluator,
  fail,
  isBaseProtocolMethod,
  MCP_RESPONSE_METHOD,
  type McpCall,
  NOT_BASE_PROTOCOL,
  ok,
  type Problem,
  parseSpiffeId,
  pointer,
  type RequestContext,
  VerdictUsageError,
} from '@verdict/core/internal'

/** Options of `createMcpEvaluator`. */
export interface McpEvaluatorOptions {
  /** Trust domain of `serviceAccount` sources that name none. Default `cluster.local`. */
  readonly trustDomain?: string
}

/** A rule source: who the peer must be. */
export type McpSource =
  | {
      readonly serviceAccount: {
        readonly namespace: string
        readonly name: string
        readonly trustDomain?: string
      }
    }
  | { readonly spiffe: string }

/** One argument test; every listed field must hold. */
export interface ArgumentMatch {
  /** The argument is present and equal to one of these scalars. */
  readonly in?: readonly (string | number | boolean | null)[]
  /** The argument is absent or equal to none of these scalars. */
  readonly notIn?: readonly (string | number | boolean | null)[]
  /** The argument is a string starting with this. */
  readonly prefix?: string
  /** The argument is present (true) or absent (false). */
  readonly present?: boolean
}

/** Config of an `mcp` rule body. */
export interface McpRuleConfig {
  /** Peer principal(s) the rule applies to; omitted means any caller. */
  readonly source?: McpSource | readonly McpSource[]
  /** Categories (`tools`: every `tools/...` method) or exact methods, optionally limited to names. */
  readonly methods?: readonly { readonly name: string; readonly params?: readonly string[] }[]
  /** v0alpha0 InlineTools: `tools/call` of these tools. An empty list allows no tool. */
  readonly tools?: readonly string[]
  /** `MATCH` also allows the base protocol (initialize, tools/list, ping, ...). Default `SKIP`. */
  readonly baseProtocol?: 'MATCH' | 'SKIP'
  /** Tests on `tools/call` and `prompts/get` arguments, all of which must hold. */
  readonly arguments?: Readonly<Record<string, ArgumentMatch>>
}

const scalar = { type: ['string', 'number', 'boolean', 'null'] }
const name = { type: 'string', minLength: 1, maxLength: 1024 }
/** One SPIFFE path segment (Kubernetes namespaces and service account names fit it). */
const segment = { type: 'string', pattern: '^[A-Za-z0-9._-]{1,253}$' }
const sourceSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  properties: {
    serviceAccount: {
      type: 'object',
      additionalProperties: false,
      required: ['namespace', 'name'],
      properties: {
        namespace: segment,
        name: segment,
        trustDomain: { type: 'string', pattern: '^[a-z0-9._-]{1,255}$' },
      },
    },
    spiffe: name,
  },
}

/** JSON Schema of the `mcp` rule body (checked when the policy loads). */
export const MCP_RULE_SCHEMA: Readonly<Record<string, unknown>> = {
  type: 'object',
  additionalProperties: false,
  properties: {
    source: {
      anyOf: [sourceSchema, { type: 'array', minItems: 1, items: sourceSchema }],
    },
    methods: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: { name, params: { type: 'array', items: name } },
      },
    },
    tools: { type: 'array', items: name },
    baseProtocol: { enum: ['MATCH', 'SKIP'] },
    arguments: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        properties: {
          in: { type: 'array', items: scalar },
          notIn: { type: 'array', items: scalar },
          prefix: { type: 'string' },
          present: { type: 'boolean' },
        },
      },
    },
  },
}

const TRUE: EvalResult = ok(true)
const FALSE: EvalResult = ok(false)
const INEXACT_ERROR: EvalResult = fail(
  'an argument compared by in/notIn is an integer beyond 2^53, which JSON.parse rounded: the comparison would not be exact',
)

/** `null` means every name; a set limits the names. */
type NameFilter = ReadonlySet<string> | null

/** Methods of the base protocol that `baseProtocol: MATCH` allows. */
// A client's answer to the server's own request (sampling, elicitation, roots) is base protocol too.
const BASE_EXACT = new Set(['initialize', 'tools/list', 'ping', MCP_RESPONSE_METHOD])
const BASE_PREFIXES = ['completion/', 'logging/', 'notifications/']

function isBaseMethod(method: string): boolean {
  if (BASE_EXACT.has(method)) return true
  for (const p of BASE_PREFIXES) if (method.startsWith(p)) return true
  return false
}

/** The name a `methods[].params` list is matched against. */
function subjectOf(call: McpCall): string | undefined {
  if (call.tool !== undefined) return call.tool.name
  if (call.prompt !== undefined) return call.prompt.name
  if (call.resource !== undefined) return call.resource.uri
  const n = call.params.name
  return typeof n === 'string' ? n : undefined
}

function allows(filter: NameFilter | undefined, subject: string | undefined): boolean {
  if (filter === undefined) return false
  if (filter === null) return true
  return subject !== undefined && filter.has(subject)
}

/**
 * One argument test: true or false, or `INEXACT` when it would compare an integer beyond 2^53
 * (JSON.parse rounded it, so the answer is not the one an upstream reading it exactly gets).
 */
type ArgTest = (args: Readonly<Record<string, unknown>>) => boolean | typeof INEXACT

const INEXACT = 'inexact'

function argumentTest(key: string, m: ArgumentMatch): ArgTest {
  const inSet = m.in === undefined ? undefined : new Set<unknown>(m.in)
  const notInSet = m.notIn === undefined ? undefined : new Set<unknown>(m.notIn)
  const { prefix, present } = m
  return (args) => {
    // Own properties only: `__proto__` or `constructor` must never resolve through the prototype.
    const has = Object.hasOwn(args, key)
    const v = has ? args[key] : undefined
    if (present !== undefined && has !== present) return false
    if (prefix !== undefined && !(typeof v === 'string' && v.startsWith(prefix))) return false
    if (inSet === undefined && notInSet === undefined) return true
    if (has && isUnsafeInteger(v)) return INEXACT
    if (inSet !== undefined && !(has && isScalar(v) && inSet.has(v))) return false
    if (notInSet !== undefined && has && (!isScalar(v) || notInSet.has(v))) return false
    return true
  }
}

/**
 * An integer beyond 2^53 (also 2^53 itself: `9007199254740993` parses to it). JSON.parse rounded
 * it, and an upstream reading it exactly (Python, Go int64, Java) sees another number than a rule
 * would compare: every comparison with it is refused as inexact.
 */
function isUnsafeInteger(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v)
}

/** A value compared by `in`/`notIn` (integers beyond 2^53 are tested before). */
function isScalar(v: unknown): boolean {
  return v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number'
}

interface Compiled {
  readonly principals: ReadonlySet<string> | undefined
  /** Undefined when neither `methods` nor `tools` is given: every MCP method matches. */
  readonly exact: ReadonlyMap<string, NameFilter> | undefined
  readonly categories: ReadonlyMap<string, NameFilter> | undefined
  readonly tools: ReadonlySet<string> | undefined
  readonly baseProtocol: boolean
  readonly args: readonly ArgTest[]
}

function addFilter(map: Map<string, NameFilter>, key: string, params: readonly string[] | undefined): void {
  const prev = map.get(key)
  if (params === undefined || prev === null) {
    map.set(key, null)
    return
  }
  const set = new Set(prev ?? [])
  for (const p of params) set.add(p)
  map.set(key, set)
}

function compileConfig(c: McpRuleConfig, path: string, trustDomain: string): Compiled | Problem[] {
  const problems: Problem[] = []
  let principals: Set<string> | undefined
  if (c.source !== undefined) {
    principals = new Set()
    const list: readonly McpSource[] = Array.isArray(c.source) ? c.source : [c.source as McpSource]
    list.forEach((s, i) => {
      const at = Array.isArray(c.source) ? `${path}/source/${i}` : `${path}/source`
      const id =
        'spiffe' in s
          ? s.spiffe
          : `spiffe://${s.serviceAccount.trustDomain ?? trustDomain}/ns/${s.serviceAccount.namespace}/sa/${s.serviceAccount.name}`
      if (parseSpiffeId(id) === undefined) {
        problems.push({
          code: 'mcp_source',
          message: `"${id.slice(0, 200)}" is not a valid SPIFFE ID`,
          path: at,
        })
      } else principals!.add(id)
    })
  }
  let exact: Map<string, NameFilter> | undefined
  let categories: Map<string, NameFilter> | undefined
  if (c.methods !== undefined || c.tools !== undefined) {
    exact = new Map()
    categories = new Map()
    for (const m of c.methods ?? []) {
      // A name with a slash is one method; without, it is a category (`tools`) and also an exact
      // method (`ping`, `initialize`).
      addFilter(exact, m.name, m.params)
      if (!m.name.includes('/')) addFilter(categories, m.name, m.params)
    }
  }
  const args: ArgTest[] = []
  for (const key of Object.keys(c.arguments ?? {})) {
    const m = c.arguments![key]!
    if (m.in !== undefined && m.in.length === 0) {
      problems.push({
        code: 'mcp_arguments',
        message: `"in" is empty, so the rule can never match`,
        path: `${path}/arguments${pointer(key)}/in`,
      })
    }
    args.push(argumentTest(key, m))
  }
  if (problems.length > 0) return problems
  return {
    principals,
    exact,
    categories,
    tools: c.tools === undefined ? undefined : new Set(c.tools),
    baseProtocol: c.baseProtocol === 'MATCH',
    args,
  }
}

function methodMatches(r: Compiled, call: McpCall): boolean {
  if (r.exact === undefined) return true
  if (r.tools !== undefined && call.tool !== undefined && r.tools.has(call.tool.name)) return true
  const subject = subjectOf(call)
  if (allows(r.exact.get(call.method), subject)) return true
  const slash = call.method.indexOf('/')
  return slash > 0 && allows(r.categories!.get(call.method.slice(0, slash)), subject)
}

function evaluate(r: Compiled, ctx: RequestContext): EvalResult {
  const input = ctx.input
  if (r.principals !== undefined) {
    const p = input.source.principal
    if (p === undefined || !r.principals.has(p)) return FALSE
  }
  const call = ctx.mcp
  if (call === undefined) {
    // Streamable HTTP's session stream (GET) and session end (DELETE) carry no JSON-RPC message.
    const session = input.headers['mcp-session-id']
    return r.baseProtocol && (input.method === 'GET' || input.method === 'DELETE') && session !== undefined
      ? TRUE
      : FALSE
  }
  if (r.baseProtocol && isBaseMethod(call.method)) return TRUE
  if (!methodMatches(r, call)) return FALSE
  const named = call.tool ?? call.prompt
  // A list-filtering probe (`decide(input, { probe: 'list' })`) asks whether the caller may use
  // the item at all: argument tests cannot be answered without arguments, so they are skipped.
  if (r.args.length === 0 || named === undefined || ctx.probe === 'list') return TRUE
  if (call.from === 'metadata' && !Object.hasOwn(call.params, 'arguments')) {
    return fail(
      'tool arguments are not in the MCP metadata and no JSON body was forwarded (with_request_body)',
    )
  }
  // As CEL's `&&`: a test that fails decides, whatever the others; otherwise an inexact comparison
  // is an error, which fails closed both ways (an allow rule does not match, a deny rule denies).
  let inexact = false
  for (const t of r.args) {
    const ok = t(named.arguments)
    if (ok === false) return FALSE
    if (ok === INEXACT) inexact = true
  }
  return inexact ? INEXACT_ERROR : TRUE
}

/** Method categories that hold base-protocol methods (`tools/list`, `notifications/...`). */
const BASE_CATEGORIES = new Set(['tools', 'prompts', 'resources', 'notifications', 'completion', 'logging'])

/**
 * True when the rule is about tool calls, prompts or resources only: `baseProtocol` is not MATCH,
 * and it lists tools or methods, none of which is a base-protocol method or category.
 */
function skipsBaseProtocol(c: McpRuleConfig): boolean {
  if (c.baseProtocol === 'MATCH') return false
  if (c.methods === undefined && c.tools === undefined) return false
  return (c.methods ?? []).every((m) => !isBaseProtocolMethod(m.name) && !BASE_CATEGORIES.has(m.name))
}

/**
 * The `mcp` rule body evaluator. Register it with the engine:
 *
 * @example
 * ```ts
 * const engine = await createEngine(policyText, { evaluators: [createMcpEvaluator()] })
 * ```
 */
export function createMcpEvaluator(options: McpEvaluatorOptions = {}): Evaluator {
  if (typeof options !== 'object' || options === null)
    throw new VerdictUsageError('options', 'createMcpEvaluator takes an options object')
  if (
    options.trustDomain !== undefined &&
    (typeof options.trustDomain !== 'string' || options.trustDomain === '')
  )
    throw new VerdictUsageError('trustDomain', 'trustDomain must be a non-empty string')
  const trustDomain = options.trustDomain ?? 'cluster.local'
  return {
    kind: 'mcp',
    configSchema: MCP_RULE_SCHEMA,
    compile(config: unknown, site): CompileResult {
      const c = compileConfig(config as McpRuleConfig, site.path, trustDomain)
      if (Array.isArray(c)) return { ok: false, problems: c }
      const evaluate_ = (ctx: RequestContext) => evaluate(c, ctx)
      // baseProtocol SKIP with tools or methods that name no base-protocol method: the rule does
      // not apply to base-protocol messages (agentgateway's scope, docs/mcp.md "Scope"). MATCH, or
      // methods naming a base method or category: it applies to every request and decides itself.
      return {
        ok: true,
        program: skipsBaseProtocol(config as McpRuleConfig)
          ? { evaluate: evaluate_, mcpScope: NOT_BASE_PROTOCOL }
          : { evaluate: evaluate_ },
      }
    },
  }
}
