/**
 * One JSON-RPC message as an `McpCall`: a request or notification (method, tool, prompt or
 * resource, arguments; names checked against MCP's rule) or a response.
 */
import type { McpCall } from '../context.js'
import { caseVariantKey, isObject, type Obj } from './scan.js'

/**
 * The method name given to a JSON-RPC response sent by the client: its answer to a request the
 * server made (sampling/createMessage, elicitation/create, roots/list). JSON-RPC reserves names
 * beginning with `rpc.`, so no real request can carry it: requests using that prefix are refused.
 */
export const MCP_RESPONSE_METHOD = 'rpc.response'

function responseFrom(msg: Obj, at: string, from: McpCall['from']): McpCall | string {
  const hasResult = Object.hasOwn(msg, 'result')
  if (hasResult === Object.hasOwn(msg, 'error'))
    return `${at}: a response has exactly one of result and error`
  const id = msg.id
  if (!(id === null || typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)))) {
    return `${at}: a response needs a string, integer or null id`
  }
  return { method: MCP_RESPONSE_METHOD, id: id ?? undefined, params: {}, from }
}

/** MCP's tool name rule (spec 2025-11-25, SEP-986): 1 to 128 of A-Z, a-z, 0-9, `_`, `-`, `.`. */
const MAX_MCP_NAME_LENGTH = 128

const NAME_CHARS = /^[A-Za-z0-9_.-]*$/

/**
 * Why `name` is not a tool or prompt name by MCP's rule, or undefined. Names outside it (spaces,
 * slashes, control characters, non-ASCII look-alikes) are refused rather than compared: a rule
 * compares names exactly, a server may trim, fold or normalize them before it looks the tool up.
 */
function nameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty'
  if (name.length > MAX_MCP_NAME_LENGTH) return `is longer than ${MAX_MCP_NAME_LENGTH} characters`
  if (!NAME_CHARS.test(name)) return 'has a character other than A-Z, a-z, 0-9, "_", "-" and "."'
  return undefined
}

export function callFrom(msg: Obj, at: string, from: McpCall['from']): McpCall | string {
  if (msg.jsonrpc !== '2.0') return `${at}: jsonrpc must be "2.0"`
  const method = msg.method
  if (method === undefined && (Object.hasOwn(msg, 'result') || Object.hasOwn(msg, 'error'))) {
    return responseFrom(msg, at, from)
  }
  if (typeof method !== 'string' || method.length === 0) return `${at}: method must be a non-empty string`
  if (method.startsWith('rpc.')) return `${at}: method names beginning with "rpc." are reserved`
  const id = msg.id
  if (id !== undefined && !(typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)))) {
    return `${at}: id must be a string or an integer`
  }
  const p = msg.params
  if (p !== undefined && !isObject(p)) return `${at}: params must be an object`
  const params: Obj = p ?? {}
  const rid = id as string | number | undefined
  // Object literals rather than spreads: each kind of call gets one stable shape.
  if (method === 'tools/call' || method === 'prompts/get') {
    const name = params.name
    if (typeof name !== 'string') return `${at}: params.name must be a string`
    const bad = nameProblem(name)
    if (bad !== undefined) return `${at}: params.name ${bad}`
    const args = params.arguments
    if (args !== undefined && !isObject(args)) return `${at}: params.arguments must be an object`
    const variant = args === undefined ? undefined : caseVariantKey(args, 0)
    if (variant !== undefined) {
      return `${at}: params.arguments has keys that differ only in case (${JSON.stringify(variant.slice(0, 64))})`
    }
    const named = { name, arguments: (args ?? {}) as Obj }
    return method === 'tools/call'
      ? { method, id: rid, params, from, tool: named }
      : { method, id: rid, params, from, prompt: named }
  }
  if (method === 'resources/read' || method === 'resources/subscribe' || method === 'resources/unsubscribe') {
    const uri = params.uri
    if (typeof uri !== 'string') return `${at}: params.uri must be a string`
    if (uri.length === 0) return `${at}: params.uri is empty`
    return { method, id: rid, params, from, resource: { uri } }
  }
  return { method, id: rid, params, from }
}
