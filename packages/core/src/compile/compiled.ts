/**
 * What compiling a policy produces (the structure `decide()` walks) and what it takes: the policy
 * source and the compile environment.
 */
import type { Authenticator } from '../auth.js'
import type { HeaderEntry } from '../decision.js'
import type { SourceDocument } from '../document.js'
import type { Evaluator, ResourceLoader, RuleProgram } from '../evaluator.js'
import type { ResolvedInputOptions } from '../input/index.js'
import type { McpSettings } from '../mcp/index.js'
import type { McpMessageKind } from '../mcp/scope.js'
import type { PolicyDocument } from '../policy-document.js'

export type RuleAction = 'allow' | 'deny' | 'require' | 'decide'

/** A denial response with every field known. */
export interface ResponseSpec {
  readonly status: number | undefined
  readonly headers: readonly HeaderEntry[]
  readonly body: string | undefined
}

export interface CompiledRule {
  readonly id: string
  readonly action: RuleAction
  readonly program: RuleProgram
  readonly when: RuleProgram | undefined
  readonly shadow: boolean
  readonly response: ResponseSpec | undefined
  readonly headers: readonly HeaderEntry[]
  /** MCP messages the rule applies to (docs/mcp.md, "Scope"); undefined: every request. */
  readonly mcpScope?: readonly McpMessageKind[]
}

export interface CompiledLayer {
  readonly name: string
  /** Rules by action, each list in document order. Shadow rules are kept apart. */
  readonly decide: readonly CompiledRule[]
  readonly deny: readonly CompiledRule[]
  readonly require: readonly CompiledRule[]
  readonly allow: readonly CompiledRule[]
  readonly shadow: readonly CompiledRule[]
  /** Outcome when no rule decides. */
  readonly fallback: 'allow' | 'deny'
  readonly denied: ResponseSpec | undefined
}

export interface CompiledPolicy {
  readonly name: string
  readonly input: ResolvedInputOptions
  readonly layers: readonly CompiledLayer[]
  readonly authenticator: Authenticator | undefined
  readonly realm: string | undefined
  readonly responses: {
    readonly denied: ResponseSpec | undefined
    readonly unauthenticated: ResponseSpec | undefined
    readonly error: ResponseSpec | undefined
  }
  readonly allowedHeaders: readonly HeaderEntry[]
  readonly allowedResponseHeaders: readonly HeaderEntry[]
  readonly timeoutMs: number
  readonly mcp: McpSettings
  readonly dispose: () => void
}

/** A policy: YAML or JSON text, a document object (`PolicyDocument` types it), or a parsed source. */
export type PolicySource = string | PolicyDocument | Readonly<Record<string, unknown>> | SourceDocument

export interface CompileEnvironment {
  readonly evaluators: readonly Evaluator[]
  readonly resources: ResourceLoader | undefined
  readonly fetch: typeof globalThis.fetch | undefined
  readonly now: () => number
}

/** Default deadline of one decision. */
export const DEFAULT_TIMEOUT_MS = 1000
