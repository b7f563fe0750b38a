/**
 * agentgateway's MCP authorization in verdict: the scope of rules over MCP messages, the
 * base-protocol pass of a layer, and the `mcpAuthorization` section (agentgateway's form) compiled
 * into a layer of verdict's own rules (docs/mcp.md, "Scope" and "agentgateway's mcpAuthorization").
 */
import type { CompiledRule } from '../compile.js'
import type { EvalResult, RuleProgram } from '../evaluator.js'
import {
  celMcpScope,
  inScope,
  intersectScopes,
  MCP_RESOURCE_KINDS,
  type McpMessageKind,
  mcpMessageKind,
} from './scope.js'

const TRUE: EvalResult = Object.freeze({ ok: true, value: true })
const FALSE: EvalResult = Object.freeze({ ok: true, value: false })

/** The scope of a compiled rule body: declared by its evaluator, else read from a CEL expression. */
export function programScope(
  kind: string,
  config: unknown,
  program: RuleProgram | undefined,
): readonly McpMessageKind[] | undefined {
  if (program?.mcpScope !== undefined) return program.mcpScope
  if (kind !== 'cel') return undefined
  const source =
    typeof config === 'string'
      ? config
      : typeof config === 'object' && config !== null
        ? (config as { expression?: unknown }).expression
        : undefined
  return typeof source === 'string' ? celMcpScope(source) : undefined
}

/**
 * The rule's condition with its scope: false (the rule is skipped) for messages outside `scope`,
 * else the rule's own `when` (true when it has none).
 */
export function scopedWhen(when: RuleProgram | undefined, scope: readonly McpMessageKind[]): RuleProgram {
  const program: RuleProgram = {
    evaluate: (ctx) => (!inScope(scope, mcpMessageKind(ctx)) ? FALSE : when ? when.evaluate(ctx) : TRUE),
  }
  return when?.readsHeaders !== undefined ? { ...program, readsHeaders: when.readsHeaders } : program
}

/** A synthetic allow rule: matches the kinds in `kinds`, nothing else. */
function passRule(id: string, kinds: readonly McpMessageKind[], shadow: boolean): CompiledRule {
  return {
    id,
    action: 'allow',
    program: { evaluate: (ctx) => (kinds.includes(mcpMessageKind(ctx)) ? TRUE : FALSE) },
    when: undefined,
    shadow,
    response: undefined,
    headers: [],
  }
}

/** Id of the base-protocol pass of a layer made of verdict's own rules. */
const BASE_PROTOCOL_RULE_ID = 'mcp-base-protocol'

/**
 * The allow rule a layer gets when it has allow rules and none of them applies to base-protocol
 * messages (all read only `mcp.tool` / `mcp.prompt` / `mcp.resource`, or are `mcp` rules with
 * `baseProtocol: SKIP`): without it the layer's fallback would deny `initialize` and `tools/list`,
 * which agentgateway's MCP authorization never sees. Undefined when the layer needs none.
 */
export function baseProtocolPass(
  allow: readonly CompiledRule[],
  usedIds: ReadonlySet<string>,
): CompiledRule | undefined {
  if (allow.length === 0 || allow.some((r) => inScope(r.mcpScope, 'base'))) return undefined
  let id = BASE_PROTOCOL_RULE_ID
  for (let i = 2; usedIds.has(id); i++) id = `${BASE_PROTOCOL_RULE_ID}-${i}`
  return passRule(id, ['base'], false)
}

type Action = 'allow' | 'deny' | 'require'

/** One rule of the section: its action, CEL text and JSON pointer. */
export interface McpAuthorizationEntry {
  readonly action: Action
  readonly expression: string
  readonly path: string
  readonly id: string
}

/**
 * The section's rules in agentgateway's two spellings: `rules` as a list (a string is an allow
 * rule; `{allow|deny|require: <expr>}` one of that action), or as `{allow: [..], deny: [..],
 * require: [..]}` (how agentgateway prints a rule set). Shapes are checked by the policy schema.
 */
export function mcpAuthorizationEntries(section: unknown): McpAuthorizationEntry[] {
  const out: McpAuthorizationEntry[] = []
  if (typeof section !== 'object' || section === null) return out
  const rules = (section as { rules?: unknown }).rules
  const base = '/mcpAuthorization/rules'
  if (Array.isArray(rules)) {
    rules.forEach((r, i) => {
      if (typeof r === 'string') {
        out.push({ action: 'allow', expression: r, path: `${base}/${i}`, id: `mcpAuthorization/${i}` })
        return
      }
      if (typeof r !== 'object' || r === null) return
      for (const action of ['allow', 'deny', 'require'] as const) {
        const e = (r as Record<string, unknown>)[action]
        if (typeof e === 'string')
          out.push({ action, expression: e, path: `${base}/${i}/${action}`, id: `mcpAuthorization/${i}` })
      }
    })
  } else if (typeof rules === 'object' && rules !== null) {
    for (const action of ['allow', 'deny', 'require'] as const) {
      const list = (rules as Record<string, unknown>)[action]
      if (!Array.isArray(list)) continue
      list.forEach((e, i) => {
        if (typeof e === 'string')
          out.push({
            action,
            expression: e,
            path: `${base}/${action}/${i}`,
            id: `mcpAuthorization/${action}/${i}`,
          })
      })
    }
  }
  return out
}

/** Id of the section's pass for what it does not govern. */
const OUT_OF_SCOPE_RULE_ID = 'mcpAuthorization/not-subject'

/**
 * The section's rules as verdict rules: each applies only to tool calls, prompts and resources
 * (allow and deny rules only to the kinds they read, `mcp.tool` → tool calls); every other request
 * passes the layer, as agentgateway never asks its MCP authorization about it. `programs` are the
 * compiled CEL bodies, in the order of `entries` (undefined where compiling failed).
 */
export function mcpAuthorizationRules(
  entries: readonly McpAuthorizationEntry[],
  programs: readonly (RuleProgram | undefined)[],
  shadow: boolean,
): CompiledRule[] {
  const rules: CompiledRule[] = []
  entries.forEach((e, i) => {
    const program = programs[i]
    if (program === undefined) return
    // A require rule that cannot read its field is false in agentgateway (a deny): keep it in force
    // for every resource kind, so that it fails closed the same way here.
    const scope =
      e.action === 'require'
        ? MCP_RESOURCE_KINDS
        : (intersectScopes(MCP_RESOURCE_KINDS, programScope('cel', e.expression, program)) ??
          MCP_RESOURCE_KINDS)
    rules.push({
      id: e.id,
      action: e.action,
      program,
      when: scopedWhen(undefined, scope),
      shadow,
      response: undefined,
      headers: [],
      mcpScope: scope,
    })
  })
  if (rules.some((r) => r.action === 'allow'))
    rules.push(passRule(OUT_OF_SCOPE_RULE_ID, ['base', 'other', 'http'], shadow))
  return rules
}
