/**
 * The MCP message(s) a request carries: from Envoy's MCP filter metadata (`mcp_proxy` up to Envoy
 * 1.36, `envoy.filters.http.mcp` from 1.38) and/or the JSON-RPC body of a Streamable HTTP POST.
 *
 * Part of the input model so that every evaluator (CEL `mcp`, both Rego dialects) sees the same
 * call, and so Envoy users need nothing beyond core. Smuggling checks live here too: when the
 * metadata and the body disagree, or the body repeats a key, the request is rejected (400).
 */
import type { McpCall } from './context.js'
import { type Decision, malformed } from './decision.js'
import { type CheckInput, isJsonContentType, parseJsonLimited } from './input.js'

/** The `mcp` section of a policy document, as core reads it. */
export interface McpSettings {
  /** `auto` (default): MCP when filter metadata is present or the body is JSON-RPC. */
  readonly enabled: boolean | 'auto'
  /** `each` (default): authorize every element of a batch; `reject`: batches are 400. */
  readonly batches: 'each' | 'reject'
  /** How MCP denials look to the client. Default `http`. */
  readonly denial: 'jsonrpc' | 'hidden' | 'http'
}

export const DEFAULT_MCP_SETTINGS: McpSettings = { enabled: 'auto', batches: 'each', denial: 'http' }

export const MCP_METADATA_NAMESPACES = ['mcp_proxy', 'envoy.filters.http.mcp'] as const

/** The extracted messages; `batch` when the body was a JSON array. */
export interface McpMessages {
  readonly messages: readonly McpCall[]
  readonly batch: boolean
}

type Obj = Record<string, unknown>

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function metadataCall(input: CheckInput): Obj | undefined {
  for (const ns of MCP_METADATA_NAMESPACES) {
    const v = input.filterMetadata[ns]
    if (isObject(v)) return v
  }
  return undefined
}

/** Keys whose duplicates (exact or differing only in case) are a smuggling vector. */
const GUARDED = new Set(['jsonrpc', 'method', 'id', 'params', 'name', 'arguments', 'uri'])

/**
 * Scan JSON text for repeated guarded keys in any object, comparing case-insensitively.
 * Linear and iterative: it never recurses, whatever the nesting.
 */
export function findDuplicateGuardedKey(text: string): string | undefined {
  const stack: Array<Set<string> | null> = []
  let i = 0
  const n = text.length
  // Expecting a key right after `{` or `,` inside an object.
  let expectKey = false
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      let j = i + 1
      let escaped = false
      while (j < n) {
        const d = text.charCodeAt(j)
        if (d === 92) {
          escaped = true
          j += 2
          continue
        }
        if (d === 34) break
        j++
      }
      if (expectKey) {
        const top = stack[stack.length - 1]
        if (top) {
          let key = text.slice(i + 1, j)
          if (escaped) {
            try {
              key = JSON.parse(text.slice(i, j + 1)) as string
            } catch {
              return key
            }
          }
          const lower = key.toLowerCase()
          if (GUARDED.has(lower)) {
            if (top.has(lower)) return key
            top.add(lower)
          }
        }
        expectKey = false
      }
      i = j + 1
      continue
    }
    if (c === 123) {
      stack.push(new Set())
      expectKey = true
    } else if (c === 91) {
      stack.push(null)
    } else if (c === 125 || c === 93) {
      stack.pop()
      expectKey = false
    } else if (c === 44) {
      expectKey = stack[stack.length - 1] != null
    }
    i++
  }
  return undefined
}

function callFrom(msg: Obj, at: string, from: McpCall['from']): McpCall | string {
  if (msg.jsonrpc !== '2.0') return `${at}: jsonrpc must be "2.0"`
  const method = msg.method
  if (typeof method !== 'string' || method.length === 0) return `${at}: method must be a non-empty string`
  const id = msg.id
  if (id !== undefined && !(typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)))) {
    return `${at}: id must be a string or an integer`
  }
  const p = msg.params
  if (p !== undefined && !isObject(p)) return `${at}: params must be an object`
  const params: Obj = p ?? {}
  const base = { method, id: id as string | number | undefined, params, from }
  if (method === 'tools/call' || method === 'prompts/get') {
    const name = params.name
    if (typeof name !== 'string') return `${at}: params.name must be a string`
    const args = params.arguments
    if (args !== undefined && !isObject(args)) return `${at}: params.arguments must be an object`
    const named = { name, arguments: (args ?? {}) as Obj }
    return method === 'tools/call' ? { ...base, tool: named } : { ...base, prompt: named }
  }
  if (method === 'resources/read' || method === 'resources/subscribe' || method === 'resources/unsubscribe') {
    const uri = params.uri
    if (typeof uri !== 'string') return `${at}: params.uri must be a string`
    return { ...base, resource: { uri } }
  }
  return base
}

function looksLikeJsonRpc(input: CheckInput, settings: McpSettings): boolean {
  const ct = input.headers['content-type']
  if (input.method !== 'POST' || input.body === undefined || ct === undefined || !isJsonContentType(ct))
    return false
  // In auto mode only bodies that mention "jsonrpc" are parsed, so other JSON APIs pay nothing.
  return settings.enabled === true || input.body.includes('"jsonrpc"')
}

/**
 * Extract the MCP message(s). Returns undefined for non-MCP traffic, a 400 Decision for malformed
 * or smuggled MCP requests.
 */
export function extractMcp(
  input: CheckInput,
  settings: McpSettings,
  maxJsonDepth: number,
): McpMessages | Decision | undefined {
  if (settings.enabled === false) return undefined
  const meta = metadataCall(input)
  const bodyUsable = looksLikeJsonRpc(input, settings)
  if (meta === undefined && !bodyUsable) return undefined
  let body: unknown
  if (bodyUsable) {
    if (input.bodyTruncated) {
      // Envoy cut the body: the arguments cannot be trusted to be complete.
      return malformed('malformed MCP request: body truncated (x-envoy-auth-partial-body)')
    }
    const text = input.body!
    const parsed = parseJsonLimited(text, maxJsonDepth)
    if ('error' in parsed) {
      if (meta === undefined) {
        // Not JSON-RPC after all? Only when it is not even JSON do we leave it to other rules.
        return settings.enabled === true ? malformed(`malformed MCP request: ${parsed.error}`) : undefined
      }
      return malformed(`malformed MCP request: ${parsed.error}`)
    }
    body = parsed.value
    const isRpc = Array.isArray(body) || (isObject(body) && Object.hasOwn(body, 'jsonrpc'))
    if (!isRpc && meta === undefined) {
      if (settings.enabled !== true) return undefined
      return malformed('malformed MCP request: body is not JSON-RPC')
    }
    const dup = findDuplicateGuardedKey(text)
    if (dup !== undefined)
      return malformed(`malformed MCP request: duplicate or case-variant key "${dup.slice(0, 64)}"`)
  }
  if (Array.isArray(body)) {
    if (settings.batches === 'reject') return malformed('malformed MCP request: batches are not accepted')
    if (body.length === 0) return malformed('malformed MCP request: empty batch')
    if (meta !== undefined)
      return malformed('malformed MCP request: metadata describes one message but the body is a batch')
    const messages: McpCall[] = []
    for (let k = 0; k < body.length; k++) {
      const el = body[k]
      if (!isObject(el)) return malformed(`malformed MCP request: batch element ${k} is not an object`)
      const c = callFrom(el, `batch element ${k}`, 'body')
      if (typeof c === 'string') return malformed(`malformed MCP request: ${c}`)
      messages.push(c)
    }
    return { messages, batch: true }
  }
  if (body !== undefined && !isObject(body))
    return malformed('malformed MCP request: body is not a JSON-RPC object')
  const fromBody = body === undefined ? undefined : callFrom(body as Obj, 'body', 'body')
  if (typeof fromBody === 'string') return malformed(`malformed MCP request: ${fromBody}`)
  if (meta === undefined) return fromBody === undefined ? undefined : { messages: [fromBody], batch: false }
  const fromMeta = callFrom({ jsonrpc: '2.0', ...meta }, 'metadata', 'metadata')
  if (typeof fromMeta === 'string') return malformed(`malformed MCP request: ${fromMeta}`)
  if (fromBody === undefined) return { messages: [fromMeta], batch: false }
  // Both: they must agree on what is being called; the body supplies what metadata lacks.
  if (fromMeta.method !== fromBody.method)
    return malformed('malformed MCP request: metadata and body disagree on method')
  if (fromMeta.tool?.name !== fromBody.tool?.name || fromMeta.prompt?.name !== fromBody.prompt?.name) {
    return malformed('malformed MCP request: metadata and body disagree on the name')
  }
  if (fromMeta.resource?.uri !== fromBody.resource?.uri) {
    return malformed('malformed MCP request: metadata and body disagree on the uri')
  }
  if (meta.id !== undefined && fromMeta.id !== fromBody.id) {
    return malformed('malformed MCP request: metadata and body disagree on the id')
  }
  return { messages: [{ ...fromBody, from: 'metadata+body' }], batch: false }
}

/** A JSON-RPC error response body for a denied message, in the policy's chosen format. */
export function mcpDenialBody(call: McpCall, format: 'jsonrpc' | 'hidden'): string {
  if (format === 'jsonrpc') {
    return JSON.stringify({
      jsonrpc: '2.0',
      id: call.id ?? null,
      error: { code: 403, message: 'Access to this tool is forbidden.' },
    })
  }
  let message = `Method not found: ${call.method}`
  let code = -32601
  if (call.tool !== undefined) {
    message = `Unknown tool: ${call.tool.name}`
    code = -32602
  } else if (call.prompt !== undefined) {
    message = `Unknown prompt: ${call.prompt.name}`
    code = -32602
  } else if (call.resource !== undefined) {
    message = `Unknown resource: ${call.resource.uri}`
    code = -32602
  }
  return JSON.stringify({ jsonrpc: '2.0', id: call.id ?? null, error: { code, message } })
}
