/**
 * Which MCP messages a rule applies to (docs/mcp.md, "Scope"). agentgateway applies MCP
 * authorization rules to tool calls, prompts and resources only; the base protocol (`initialize`,
 * the list methods, `ping`, notifications, ...) is not subject to them. verdict follows it: a rule
 * whose body only reads `mcp.tool`, `mcp.prompt` or `mcp.resource` applies only to those messages,
 * and a layer none of whose allow rules applies to a base-protocol message lets it through.
 */
import type { RequestContext } from '../context.js'
import { MCP_RESPONSE_METHOD } from './message.js'

/**
 * The class of what a rule is asked about: a tool call (`tools/call`), a prompt (`prompts/get`),
 * a resource (`resources/read|subscribe|unsubscribe`), a base-protocol message, another MCP method,
 * or a request that carries no MCP message (`http`, Streamable HTTP's GET and DELETE included).
 */
export type McpMessageKind = 'tool' | 'prompt' | 'resource' | 'base' | 'other' | 'http'

/** What agentgateway's MCP authorization applies to. */
export const MCP_RESOURCE_KINDS: readonly McpMessageKind[] = Object.freeze(['tool', 'prompt', 'resource'])

/** Every kind but the base protocol: the scope of an `mcp` rule with `baseProtocol: SKIP`. */
export const NOT_BASE_PROTOCOL: readonly McpMessageKind[] = Object.freeze([
  'tool',
  'prompt',
  'resource',
  'other',
  'http',
])

const BASE_EXACT: ReadonlySet<string> = new Set([
  'initialize',
  'ping',
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  MCP_RESPONSE_METHOD,
])
const BASE_PREFIXES = ['notifications/', 'completion/', 'logging/']

/**
 * True for the MCP base protocol as agentgateway leaves it out of authorization: the lifecycle
 * (`initialize`, `ping`, notifications), the list methods (their results are filtered instead),
 * completion and logging, and the client's answers to server requests (`rpc.response`).
 */
export function isBaseProtocolMethod(method: string): boolean {
  if (BASE_EXACT.has(method)) return true
  for (const p of BASE_PREFIXES) if (method.startsWith(p)) return true
  return false
}

/** The kind of the message `ctx` is deciding (one batch element at a time). */
export function mcpMessageKind(ctx: RequestContext): McpMessageKind {
  const m = ctx.mcp
  if (m === undefined) return 'http'
  if (m.tool !== undefined) return 'tool'
  if (m.prompt !== undefined) return 'prompt'
  if (m.resource !== undefined) return 'resource'
  return isBaseProtocolMethod(m.method) ? 'base' : 'other'
}

/** Whether a rule with scope `scope` (undefined: every request) applies to `kind`. */
export function inScope(scope: readonly McpMessageKind[] | undefined, kind: McpMessageKind): boolean {
  return scope === undefined || scope.includes(kind)
}

/** The kinds in both scopes (undefined is every kind). */
export function intersectScopes(
  a: readonly McpMessageKind[] | undefined,
  b: readonly McpMessageKind[] | undefined,
): readonly McpMessageKind[] | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return a.filter((k) => b.includes(k))
}

type Token = { readonly t: 'id' | 'str' | 'op'; readonly v: string }

/** CEL tokens without comments, string contents and whitespace: enough to find `mcp.<field>`. */
function tokens(src: string): Token[] {
  const out: Token[] = []
  let i = 0
  const n = src.length
  while (i < n) {
    const c = src[i]!
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
      i++
      continue
    }
    if (c === '/' && src[i + 1] === '/') {
      while (i < n && src[i] !== '\n') i++
      continue
    }
    // String and bytes literals, with r/b prefixes in either order and case.
    let j = i
    let raw = false
    while (j < n && j - i < 2 && /[rRbB]/.test(src[j]!)) {
      if (src[j] === 'r' || src[j] === 'R') raw = true
      j++
    }
    const q = src[j]
    if ((q === '"' || q === "'") && (j === i || /[rRbB]/.test(src[i]!))) {
      const triple = src.startsWith(q.repeat(3), j)
      const close = triple ? q.repeat(3) : q
      let k = j + close.length
      while (k < n && !src.startsWith(close, k)) {
        if (!raw && src[k] === '\\') k++
        k++
      }
      out.push({ t: 'str', v: '' })
      i = k + close.length
      continue
    }
    if (/[A-Za-z_]/.test(c)) {
      let k = i + 1
      while (k < n && /[A-Za-z0-9_]/.test(src[k]!)) k++
      out.push({ t: 'id', v: src.slice(i, k) })
      i = k
      continue
    }
    out.push({ t: 'op', v: c })
    i++
  }
  return out
}

const FIELD_KINDS: Readonly<Record<string, McpMessageKind>> = {
  tool: 'tool',
  prompt: 'prompt',
  resource: 'resource',
}

/**
 * The scope of a CEL expression: the kinds among tool, prompt and resource it reads
 * (`mcp.tool.name`, `has(mcp.prompt)`), or undefined when it reads none of them, or reads `mcp` in
 * another way too (`mcp.method`, `mcp.params`, `mcp["tool"]`, `mcp` whole): then it applies to
 * every request, as written.
 */
export function celMcpScope(source: string): readonly McpMessageKind[] | undefined {
  const ts = tokens(source)
  const kinds = new Set<McpMessageKind>()
  for (let i = 0; i < ts.length; i++) {
    const tk = ts[i]!
    if (tk.t !== 'id' || tk.v !== 'mcp') continue
    const prev = ts[i - 1]
    if (prev !== undefined && prev.t === 'op' && prev.v === '.') continue // `x.mcp` is a field of x
    const dot = ts[i + 1]
    const field = ts[i + 2]
    const kind =
      dot?.v === '.' && field?.t === 'id' && Object.hasOwn(FIELD_KINDS, field.v)
        ? FIELD_KINDS[field.v]
        : undefined
    if (kind === undefined) return undefined
    kinds.add(kind)
  }
  return kinds.size === 0 ? undefined : MCP_RESOURCE_KINDS.filter((k) => kinds.has(k))
}
