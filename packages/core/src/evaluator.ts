/**
 * The evaluator interface: how rule engines (CEL, Rego, MCP rules, ...) plug into core.
 *
 * Two steps, as in OPA and cel-go: `compile` once when a policy loads (all problems reported
 * together), then `evaluate` per request. Neither may throw across this boundary: problems and
 * evaluation errors are values. Core still guards every call, so a throwing evaluator fails closed.
 */

import type { RequestContext } from './context.js'
import type { Problem } from './errors.js'
import type { McpMessageKind } from './mcp/scope.js'

/** Result of one evaluation: a value, or an error that core turns into a fail-closed outcome. */
export type EvalResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: string }

/** A compiled rule body, evaluated per request. */
export interface RuleProgram {
  /**
   * Evaluate against one request. For `allow`/`deny`/`require` rules only the boolean `true`
   * matches; for `decide` rules the value is a boolean or an OPA-Envoy style decision object.
   */
  evaluate(ctx: RequestContext): EvalResult | Promise<EvalResult>
  /**
   * Header names (lower case) the rule reads as one value, or `'all'` when it may read any. A
   * request where one of them has several values (`x-role: user,admin`, or two lines) is refused
   * with 400 `ambiguous_header` before any rule runs (docs/semantics.md). Rules that read every value
   * (CEL `request.headerValues`) or only presence leave them out.
   */
  readonly readsHeaders?: readonly string[] | 'all'
  /**
   * The MCP messages the rule applies to (docs/mcp.md, "Scope"): elsewhere it is skipped, as a rule
   * whose `when` is false. Undefined: every request. `createMcpEvaluator` sets it for
   * `baseProtocol: SKIP` rules; core works it out for CEL rules from the fields they read.
   */
  readonly mcpScope?: readonly McpMessageKind[]
  /** Optional: release resources when the policy is replaced. */
  dispose?(): void
}

export type CompileResult =
  | { readonly ok: true; readonly program: RuleProgram }
  | { readonly ok: false; readonly problems: readonly Problem[] }

/** Where a rule body sits in the policy document, and what it may load. */
export interface CompileSite {
  /** The rule's id. */
  readonly ruleId: string
  /** JSON pointer of the evaluator's config inside the document (`/rules/3/cel`). */
  readonly path: string
  /** Loads a named resource (bundle file, key file) through the host; core never does I/O itself. */
  readonly resources: ResourceLoader
  /** The whole policy document, for evaluators that read shared sections (e.g. `bundles`). */
  readonly document: Readonly<Record<string, unknown>>
}

/** Host-provided I/O for load time: files, URLs. Injected so core stays free of I/O. */
export interface ResourceLoader {
  /** Read bytes from a file path (relative to the policy file) or a URL. */
  read(location: string): Promise<Uint8Array>
}

/** A rule engine. `kind` is the key a rule uses in the policy document (`cel: "..."`). */
export interface Evaluator {
  readonly kind: string
  /** JSON Schema of this kind's config, checked with the rest of the document when present. */
  readonly configSchema?: Readonly<Record<string, unknown>>
  compile(config: unknown, site: CompileSite): CompileResult | Promise<CompileResult>
}

/** Convenience constructors for evaluator authors. */
export const ok = (value: unknown): EvalResult => ({ ok: true, value })
export const fail = (error: string): EvalResult => ({ ok: false, error })
