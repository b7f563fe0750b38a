/**
 * What an evaluator sees for one request: the normalized input, the verified identity, the MCP
 * call, the body parsed as JSON, and a per-decision cache for what evaluators derive from them
 * (the Rego input documents are built there by `@verdict/rego-adapter`). Web-standard code only.
 */
import type { Decision, Identity } from './decision.js'
import type { CheckInput } from './input/index.js'
import { parseJsonBody, refusal } from './input/index.js'

/** One JSON-RPC message of the Model Context Protocol, as seen by policies. */
export interface McpCall {
  /** JSON-RPC method, e.g. `tools/call`, `tools/list`, `initialize`. */
  readonly method: string
  /** Request id with its JSON type kept (string or integer); undefined for notifications. */
  readonly id: string | number | undefined
  /** The raw `params` object (empty object when absent). */
  readonly params: Readonly<Record<string, unknown>>
  /** `tools/call`: the tool name and arguments (arguments `{}` when absent). */
  readonly tool?: { readonly name: string; readonly arguments: Readonly<Record<string, unknown>> }
  /** `prompts/get`: the prompt name and arguments. */
  readonly prompt?: { readonly name: string; readonly arguments: Readonly<Record<string, unknown>> }
  /** `resources/read|subscribe|unsubscribe`: the resource URI. */
  readonly resource?: { readonly uri: string }
  /** Where the call was read from. */
  readonly from: 'metadata' | 'body' | 'metadata+body'
}

/** The per-request view handed to evaluators. Read-only for them. */
export interface RequestContext {
  readonly input: CheckInput
  /** Verified JWT claims; undefined when no token verified (so CEL `has(jwt.sub)` is false). */
  readonly jwt: Readonly<Record<string, unknown>> | undefined
  /** The JWT that verified, wherever the provider found it (CEL `jwt.rawToken`); never logged. */
  readonly jwtToken: string | undefined
  /** The identity established so far (JWT, else peer principal). */
  readonly identity: Identity | undefined
  /** The MCP message being authorized (one element at a time for a batch), if this is MCP traffic. */
  readonly mcp: McpCall | undefined
  /** The body parsed as JSON when the content type says JSON and it parses; else undefined. */
  readonly parsedBody: unknown
  /** The decision's clock, in milliseconds since the epoch. */
  readonly now: number
  /**
   * A per-decision cache for evaluators: `make` runs once per decision and `key` (any object the
   * evaluator owns), e.g. the Rego input document built and serialized once for several rules. It
   * is emptied when the identity or the MCP element changes (each element of a batch).
   */
  memo<T>(key: object, make: () => T): T
  /**
   * Refuse the request whatever the rules decide, because of how a rule had to read it (a body the
   * OPA-Envoy plugin cannot parse answers 400 `request_parse_error`). The first refusal of a
   * decision stands; a decision that allows is ignored (a refusal can only deny).
   */
  refuse(decision: Decision): void
  /**
   * `'list'` when the decision is a list-filtering probe (`decide(input, { probe: 'list' })`), not
   * a request a client sent; undefined otherwise.
   */
  readonly probe?: 'list' | undefined
}

const NOT_PARSED = Symbol('not-parsed')

/** The engine's implementation of `RequestContext`. Not exported from the package. */
export class DecisionContext implements RequestContext {
  jwt: Readonly<Record<string, unknown>> | undefined = undefined
  jwtToken: string | undefined = undefined
  identity: Identity | undefined = undefined
  mcp: McpCall | undefined = undefined
  probe: 'list' | undefined = undefined
  private body: unknown = NOT_PARSED
  /** The first `memo` entry of the decision (most decisions make one): no Map for it. */
  private firstKey: object | undefined = undefined
  private firstValue: unknown = undefined
  private cache: Map<object, unknown> | undefined = undefined

  constructor(
    readonly input: CheckInput,
    readonly now: number,
    private readonly maxJsonDepth: number,
  ) {}

  /**
   * Set when a rule read a body that must refuse the request whatever the rules decide (a number
   * JSON cannot hold): the engine answers with it instead of the rules' outcome.
   */
  refused: Decision | undefined = undefined

  get parsedBody(): unknown {
    if (this.body === NOT_PARSED) {
      const r = parseJsonBody(this.input, this.maxJsonDepth)
      this.body = r !== undefined && 'value' in r ? r.value : undefined
      if (r !== undefined && 'refusal' in r && r.refusal !== undefined)
        this.refused = refusal(r.refusal, r.error)
    }
    return this.body
  }

  memo<T>(key: object, make: () => T): T {
    if (key === this.firstKey) return this.firstValue as T
    const cache = this.cache
    if (cache?.has(key)) return cache.get(key) as T
    const v = make()
    // `make` may have memoized other keys first; the first slot goes to whichever came first.
    if (this.firstKey === undefined) {
      this.firstKey = key
      this.firstValue = v
    } else {
      this.cache ??= new Map()
      this.cache.set(key, v)
    }
    return v
  }

  refuse(decision: Decision): void {
    if (!decision.allowed) this.refused ??= decision
  }

  /** Views depend on identity and the MCP element; drop them when either changes. */
  resetViews(): void {
    this.firstKey = undefined
    this.firstValue = undefined
    this.cache = undefined
  }
}
