/**
 * The policy document as a TypeScript type, GENERATED from policy.schema.json by
 * scripts/gen-policy-types.mjs. Do not edit: change the schema and run `pnpm gen:types`.
 */

/**
 * One of Envoy's StatusCode values (checked against the closed list).
 */
type Status = number
/**
 * One layer of rules (shorthand for layers: [{name: default, rules, default}]). An empty list needs an explicit default.
 *
 * @maxItems 10000
 */
type RuleList = Rule[]
/**
 * @maxItems 10000
 */
type RuleList1 = Rule[]

/**
 * A verdict policy: input limits, authentication, MCP handling, responses and rules. Every field is described in docs/policy.md.
 */
export interface PolicyDocument {
  /**
   * Document format version.
   */
  version?: 'verdict/v1'
  /**
   * Name used in logs and metrics.
   */
  name?: string
  /**
   * Free text.
   */
  description?: string
  input?: Input
  authentication?: Authentication
  mcp?: Mcp
  mcpAuthorization?: McpAuthorization
  responses?: Responses
  /**
   * Deadline for one decision in milliseconds; past it the answer is a deny with code timeout.
   */
  timeoutMs?: number
  /**
   * Dry run for the whole policy: every rule is evaluated and recorded, nothing is enforced.
   */
  shadow?: boolean
  /**
   * Outcome when no rule decides, for the top-level rules (as a layer's default). Required when the policy has no rules: allow lets every request through, deny refuses every request. Not allowed with layers: each layer states its own.
   */
  default?: 'allow' | 'deny'
  rules?: RuleList
  /**
   * Layers are AND-ed: every layer must allow. Within a layer rules combine as documented.
   *
   * @minItems 1
   * @maxItems 32
   */
  layers?: [Layer, ...Layer[]]
  /**
   * Named compiled Rego bundles, referenced by rego rules (see @verdict/rego-adapter).
   */
  bundles?: {
    [k: string]:
      | {
          [k: string]: unknown | undefined
        }
      | undefined
  }
}
/**
 * Limits and path handling applied when the request is normalized.
 */
interface Input {
  /**
   * Largest body accepted (413 above). Default 4194304.
   */
  maxBodyBytes?: number
  /**
   * Most header entries (431 above). Default 200.
   */
  maxHeaders?: number
  /**
   * Largest total header size (431 above). Default 65536.
   */
  maxHeaderBytes?: number
  /**
   * Deepest JSON body parsed. Default 64.
   */
  maxJsonDepth?: number
  /**
   * Reject //, dot segments, encoded / or \, and paths still percent-encoded after one decoding with 400. Default true.
   */
  rejectAmbiguousPaths?: boolean
  /**
   * Header names with '_': reject (400, default), drop (rules do not see them; removed upstream on allow) or allow. As Envoy's headers_with_underscores_action.
   */
  headersWithUnderscores?: 'reject' | 'drop' | 'allow'
}
/**
 * How callers are authenticated before rules run.
 */
interface Authentication {
  /**
   * JWT authentication (jose). Fields in docs/jwt.md.
   */
  jwt?: {
    [k: string]: unknown | undefined
  }
  /**
   * API keys, as agentgateway's apiKey policy: hashed key store, modes Strict / Optional (default) / Permissive.
   */
  apiKey?: {
    /**
     * Strict: a valid key is required; Optional (default): checked when present; Permissive: never denies.
     */
    mode?: 'Strict' | 'Optional' | 'Permissive' | 'strict' | 'optional' | 'permissive'
    /**
     * Where the key is read: {header: {name, prefix}}, {query: name} or {cookie: name}. Default Authorization: Bearer.
     */
    location?: {
      header?: {
        name: string
        /**
         * Text before the key, compared ignoring case (e.g. 'Bearer ').
         */
        prefix?: string
      }
      query?: string
      cookie?: string
    }
    /**
     * Accepted keys: {keyHash: 'sha256:<hex>' or a bcrypt hash} (preferred) or {key: '<plain>'} (hashed at load), each with optional metadata.
     *
     * @minItems 1
     * @maxItems 100000
     */
    keys: [
      (
        | {
            [k: string]: unknown | undefined
          }
        | {
            [k: string]: unknown | undefined
          }
      ) & {
        /**
         * The key in clear (hashed when the policy loads; prefer keyHash).
         */
        key?: string
        /**
         * sha256:<64 hex digits> of the key, or a bcrypt hash ($2a$, $2b$, $2y$).
         */
        keyHash?: string
        /**
         * What rules see as CEL apiKey.<field> and the decision as identity.apiKey.metadata.
         */
        metadata?: {
          [k: string]: unknown | undefined
        }
      } & (
          | {
              [k: string]: unknown | undefined
            }
          | {
              [k: string]: unknown | undefined
            }
        ) & {
          /**
           * The key in clear (hashed when the policy loads; prefer keyHash).
           */
          key?: string
          /**
           * sha256:<64 hex digits> of the key, or a bcrypt hash ($2a$, $2b$, $2y$).
           */
          keyHash?: string
          /**
           * What rules see as CEL apiKey.<field> and the decision as identity.apiKey.metadata.
           */
          metadata?: {
            [k: string]: unknown | undefined
          }
        },
      ...((
        | {
            [k: string]: unknown | undefined
          }
        | {
            [k: string]: unknown | undefined
          }
      ) & {
        /**
         * The key in clear (hashed when the policy loads; prefer keyHash).
         */
        key?: string
        /**
         * sha256:<64 hex digits> of the key, or a bcrypt hash ($2a$, $2b$, $2y$).
         */
        keyHash?: string
        /**
         * What rules see as CEL apiKey.<field> and the decision as identity.apiKey.metadata.
         */
        metadata?: {
          [k: string]: unknown | undefined
        }
      } & (
          | {
              [k: string]: unknown | undefined
            }
          | {
              [k: string]: unknown | undefined
            }
        ) & {
          /**
           * The key in clear (hashed when the policy loads; prefer keyHash).
           */
          key?: string
          /**
           * sha256:<64 hex digits> of the key, or a bcrypt hash ($2a$, $2b$, $2y$).
           */
          keyHash?: string
          /**
           * What rules see as CEL apiKey.<field> and the decision as identity.apiKey.metadata.
           */
          metadata?: {
            [k: string]: unknown | undefined
          }
        })[],
    ]
  }
  /**
   * Basic authentication against htpasswd users (bcrypt), as agentgateway's basicAuth policy.
   */
  basicAuth?: {
    /**
     * Strict: valid credentials are required; Optional (default): checked when present.
     */
    mode?: 'Strict' | 'Optional' | 'strict' | 'optional'
    /**
     * Realm of the Basic challenge (default Restricted).
     */
    realm?: string
    /**
     * htpasswd text (user:bcrypt-hash lines) or {file: path}.
     */
    htpasswd:
      | string
      | {
          file: string
        }
  }
  /**
   * realm of the WWW-Authenticate challenge. Default: the request URL.
   */
  realm?: string
}
/**
 * Model Context Protocol handling (docs/mcp.md).
 */
interface Mcp {
  /**
   * auto (default): MCP when the filter metadata or a JSON-RPC body says so; true: every request must be MCP; false: never.
   */
  enabled?: boolean | 'auto'
  /**
   * each (default): authorize every element; reject: 400.
   */
  batches?: 'each' | 'reject'
  /**
   * Most messages in one JSON-RPC batch (default 32); a longer batch is 400.
   */
  maxBatch?: number
  /**
   * http (default) 403, jsonrpc (HTTP 200 + JSON-RPC error 403) or hidden (400, -32602 Unknown tool).
   */
  denial?: 'http' | 'jsonrpc' | 'hidden'
}
/**
 * agentgateway's MCP authorization, unchanged: CEL rules applied to tool calls, prompts and resources only (docs/mcp.md). A layer of its own, AND-ed with the others.
 */
interface McpAuthorization {
  /**
   * A list of CEL expressions (each an allow rule) or {allow|deny|require: expression} objects; or {allow, deny, require} lists of expressions.
   */
  rules:
    | [
        (
          | string
          | {
              /**
               * Allow the call when this expression is true.
               */
              allow?: string
              /**
               * Deny the call when this expression is true.
               */
              deny?: string
              /**
               * Deny the call unless this expression is true.
               */
              require?: string
            }
        ),
        ...(
          | string
          | {
              /**
               * Allow the call when this expression is true.
               */
              allow?: string
              /**
               * Deny the call when this expression is true.
               */
              deny?: string
              /**
               * Deny the call unless this expression is true.
               */
              require?: string
            }
        )[],
      ]
    | {
        allow?: string[]
        deny?: string[]
        require?: string[]
      }
}
/**
 * Policy-wide responses.
 */
interface Responses {
  denied?: Response
  unauthenticated?: Response1
  error?: Response2
  /**
   * Headers added on every allow.
   */
  allowed?: {
    headers?: HeaderMap
    responseHeaders?: HeaderMap
  }
}
/**
 * Authorization denials (default 403, body 'denied').
 */
interface Response {
  status?: Status
  headers?: HeaderMap
  body?: string
}
/**
 * Header name -> value.
 */
interface HeaderMap {
  [k: string]: string | undefined
}
/**
 * Authentication failures (default 401 with a challenge).
 */
interface Response1 {
  status?: Status
  headers?: HeaderMap
  body?: string
}
/**
 * Evaluator errors and timeouts (default 403).
 */
interface Response2 {
  status?: Status
  headers?: HeaderMap
  body?: string
}
/**
 * A rule: an id, an action and exactly one rule body (match, cel, rego, mcp, ...).
 */
interface Rule {
  id: string
  description?: string
  /**
   * allow: allows when true; deny: denies when true; require: denies unless true; decide: the body returns the decision.
   */
  action: 'allow' | 'deny' | 'require' | 'decide'
  /**
   * Condition: the rule applies only when this is true (an object with one rule body).
   */
  when?: {
    [k: string]: unknown | undefined
  }
  /**
   * Record what the rule would decide without enforcing it.
   */
  shadow?: boolean
  response?: Response3
  headers?: HeaderMap1
  match?: Match
  [k: string]: unknown | undefined
}
/**
 * Response when this rule denies.
 */
interface Response3 {
  status?: Status
  headers?: HeaderMap
  body?: string
}
/**
 * Header name -> value.
 */
interface HeaderMap1 {
  [k: string]: string | undefined
}
/**
 * Built-in matcher: every listed field must match; within a list any entry may match. An empty matcher is refused: `always: true` says match-everything explicitly.
 */
interface Match {
  /**
   * @minItems 1
   */
  methods?: [string, ...string[]]
  /**
   * @minItems 1
   */
  paths?: [StringMatch, ...StringMatch[]]
  /**
   * @minItems 1
   */
  hosts?: [StringMatch, ...StringMatch[]]
  /**
   * @minItems 1
   */
  principals?: [StringMatch, ...StringMatch[]]
  /**
   * @minItems 1
   *
   * Items: A header name and exactly one condition: a name alone would match every request.
   */
  headers?: [
    {
      name: string
      exact?: string
      prefix?: string
      suffix?: string
      contains?: string
      present?: boolean
    },
    ...{
      name: string
      exact?: string
      prefix?: string
      suffix?: string
      contains?: string
      present?: boolean
    }[],
  ]
  /**
   * true matches every request.
   */
  always?: boolean
}
interface StringMatch {
  exact?: string
  prefix?: string
  suffix?: string
  contains?: string
}
interface Layer {
  name?: string
  /**
   * Outcome when no rule decided. Default: deny if the layer has allow rules, else allow. Required when the layer has no rules.
   */
  default?: 'allow' | 'deny'
  denied?: Response4
  rules: RuleList1
}
/**
 * Response for denials in this layer.
 */
interface Response4 {
  status?: Status
  headers?: HeaderMap
  body?: string
}
