/**
 * The MCP message(s) a request carries: from Envoy's MCP filter metadata (`mcp_proxy` up to Envoy
 * 1.36, `envoy.filters.http.mcp` from 1.38) and/or the JSON-RPC body of a Streamable HTTP POST.
 *
 * Part of the input model so that every evaluator (CEL `mcp`, both Rego dialects) sees the same
 * call, and so Envoy users need nothing beyond core. Smuggling checks live here too: when the
 * metadata and the body disagree, or the body repeats a key, the request is rejected (400).
 */
import type { McpCall } from '../context.js'
import { type Decision, malformed } from '../decision.js'
import {
  type CheckInput,
  hasNonFinite,
  isJsonContentType,
  jsonSyntaxError,
  parseJsonLimited,
  refusal,
  withoutBom,
} from '../input/index.js'
import { callFrom, MCP_RESPONSE_METHOD } from './message.js'
import { isObject, isRpcBody, jsonEqual, type Obj, scanJson } from './scan.js'

/** The `mcp` section of a policy document, as core reads it. */
export interface McpSettings {
  /** `auto` (default): MCP when filter metadata is present or the body is JSON-RPC. */
  readonly enabled: boolean | 'auto'
  /** `each` (default): authorize every element of a batch; `reject`: batches are 400. */
  readonly batches: 'each' | 'reject'
  /** How MCP denials look to the client. Default `http`. */
  readonly denial: 'jsonrpc' | 'hidden' | 'http'
  /** Most messages in one batch (default 32); a longer batch is 400. */
  readonly maxBatch: number
}

/** Default of `mcp.maxBatch`: a client batching more than this many messages is refused. */
export const DEFAULT_MAX_BATCH = 32

export const DEFAULT_MCP_SETTINGS: McpSettings = {
  enabled: 'auto',
  batches: 'each',
  denial: 'http',
  maxBatch: DEFAULT_MAX_BATCH,
}

export const MCP_METADATA_NAMESPACES = ['mcp_proxy', 'envoy.filters.http.mcp'] as const

/** The extracted messages; `batch` when the body was a JSON array. */
export interface McpMessages {
  readonly messages: readonly McpCall[]
  readonly batch: boolean
}

function metadataCall(input: CheckInput): Obj | undefined {
  for (const ns of MCP_METADATA_NAMESPACES) {
    const v = input.filterMetadata[ns]
    if (isObject(v)) return v
  }
  return undefined
}

/**
 * Pre-filter for auto mode: a body that matches none of these cannot be JSON-RPC under any
 * spelling a lenient decoder accepts (case variants, `\u` escapes, the long s), so it is not
 * parsed and other JSON APIs pay almost nothing.
 */
const MAYBE_RPC = /jsonrpc|method|\\u|\u017f|^\s*\[\s*\]\s*$/i

function isJsonPost(input: CheckInput): boolean {
  const ct = input.headers['content-type']
  return input.method === 'POST' && input.body !== undefined && ct !== undefined && isJsonContentType(ct)
}

function looksLikeJsonRpc(input: CheckInput, settings: McpSettings, meta: Obj | undefined): boolean {
  if (!isJsonPost(input)) return false
  return settings.enabled === true || meta !== undefined || MAYBE_RPC.test(input.body!)
}

/** Headers every Streamable HTTP client sends after `initialize` (the session id when it has one). */
const MCP_TRANSPORT_HEADERS = ['mcp-session-id', 'mcp-protocol-version']

const NOT_BLANK = /\S/

/**
 * A POST that is an MCP request by what surrounds the body (filter metadata, `enabled: true`, the
 * transport's headers) but whose body is empty or only whitespace: there is no message to decide
 * on, so it is refused rather than left to the other rules. In auto mode a JSON content type
 * alone does not make a POST MCP: JSON APIs send empty POSTs (Express reads them as `{}`).
 * GET (the SSE stream) and DELETE (end of session) carry no body and are not affected.
 */
function emptyMcpPost(input: CheckInput, settings: McpSettings, meta: Obj | undefined): Decision | undefined {
  if (input.method !== 'POST') return undefined
  const body = input.body
  // \s also covers a byte order mark; the search stops at the first other character.
  if (body !== undefined && NOT_BLANK.test(body)) return undefined
  const transport = MCP_TRANSPORT_HEADERS.some((h) => input.headers[h] !== undefined)
  let mcp: boolean
  if (body !== undefined) mcp = meta !== undefined || settings.enabled === true || transport
  else if (meta !== undefined) {
    // No body at all: Envoy may not have been asked to forward it (with_request_body); the
    // metadata then describes the call, as before.
    return undefined
  } else {
    // Without metadata nothing describes a call. An MCP POST whose body is declared empty is
    // refused; with enabled: true any POST without a body is.
    mcp = settings.enabled === true || (transport && input.headers['content-length'] === '0')
  }
  if (!mcp) return undefined
  return malformed('malformed MCP request: empty body (a POST must carry a JSON-RPC message)')
}

/**
 * A POST whose body is JSON-RPC but whose content type is not JSON: servers that ignore the
 * content type would run it while a JSON-only check skipped it, so it is refused (415). So is a
 * body that looks like JSON-RPC but cannot be shown not to be: invalid for JSON.parse (a lenient
 * decoder may accept it), nested too deep, or cut short by Envoy.
 */
function mislabelledRpc(input: CheckInput, maxJsonDepth: number): Decision | undefined {
  const body = input.body
  if (input.method !== 'POST' || body === undefined) return undefined
  // trimStart also drops a byte order mark, which decoders skip.
  const first = body.trimStart().charCodeAt(0)
  if ((first !== 123 && first !== 91) || !MAYBE_RPC.test(body)) return undefined
  const ct = input.headers['content-type']
  const what = ct === undefined ? 'no content type' : JSON.stringify(ct.slice(0, 64))
  let why = 'cut short (x-envoy-auth-partial-body)'
  if (!input.bodyTruncated) {
    const parsed = parseJsonLimited(body, maxJsonDepth)
    if (!('error' in parsed)) {
      if (!isRpcBody(parsed.value)) return undefined
      return malformed(`malformed MCP request: JSON-RPC body sent with ${what}`, 'malformed_input', 415)
    }
    why = parsed.error
  }
  return malformed(
    `malformed MCP request: a body that may be JSON-RPC (${why}) sent with ${what}`,
    'malformed_input',
    415,
  )
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
  const empty = emptyMcpPost(input, settings, meta)
  if (empty !== undefined) return empty
  const bodyUsable = looksLikeJsonRpc(input, settings, meta)
  if (!bodyUsable && !isJsonPost(input)) {
    const mislabelled = mislabelledRpc(input, maxJsonDepth)
    if (mislabelled !== undefined) return mislabelled
  }
  if (meta === undefined && !bodyUsable) return undefined
  let body: unknown
  if (bodyUsable) {
    if (input.bodyTruncated) {
      // Envoy cut the body: the arguments cannot be trusted to be complete.
      return malformed('malformed MCP request: body truncated (x-envoy-auth-partial-body)')
    }
    const text = input.body!
    // One scan gives the depth (checked before parsing) and the smuggling check (after, once we
    // know it is JSON-RPC); V8's JSON.parse itself does not recurse.
    const scan = scanJson(text, maxJsonDepth)
    if (scan.tooDeep) {
      // Even in auto mode: a server without this limit would parse it, so it must not slip past.
      return malformed(`malformed MCP request: JSON nested deeper than ${maxJsonDepth}`)
    }
    try {
      body = JSON.parse(withoutBom(text))
    } catch (e) {
      // It looked like JSON-RPC (or metadata says it is MCP) but JSON.parse refuses it: lenient
      // decoders (NaN, Infinity, comments, trailing commas) may still run it, so it is refused.
      return malformed(`malformed MCP request: ${jsonSyntaxError(e)}`)
    }
    if (!isRpcBody(body) && meta === undefined) {
      if (settings.enabled !== true) return undefined
      return malformed('malformed MCP request: body is not JSON-RPC')
    }
    if (scan.duplicate !== undefined)
      return malformed(
        `malformed MCP request: duplicate or case-variant key "${scan.duplicate.slice(0, 64)}"`,
      )
    // `-1e400` parses to -Infinity: an argument rule would compare a number the sender never wrote.
    // Only a literal with an exponent or 309 digits can overflow (the scan notes one), so most
    // bodies skip the walk.
    if (scan.hugeNumber && hasNonFinite(body))
      return refusal(
        'non_finite_number',
        'MCP request: a number is too large for a double (it would read as Infinity)',
      )
  }
  if (Array.isArray(body)) {
    if (settings.batches === 'reject') return malformed('malformed MCP request: batches are not accepted')
    if (body.length === 0) return malformed('malformed MCP request: empty batch')
    if (body.length > settings.maxBatch) {
      return malformed(
        `malformed MCP request: a batch of ${body.length} messages (mcp.maxBatch is ${settings.maxBatch})`,
      )
    }
    if (meta !== undefined)
      return malformed('malformed MCP request: metadata describes one message but the body is a batch')
    const messages: McpCall[] = []
    let responses = 0
    for (let k = 0; k < body.length; k++) {
      const el = body[k]
      if (Array.isArray(el)) return malformed(`malformed MCP request: batch element ${k} is a nested batch`)
      if (!isObject(el)) return malformed(`malformed MCP request: batch element ${k} is not an object`)
      const c = callFrom(el, `batch element ${k}`, 'body')
      if (typeof c === 'string') return malformed(`malformed MCP request: ${c}`)
      if (c.method === MCP_RESPONSE_METHOD) responses++
      messages.push(c)
    }
    // A client POSTs requests and notifications, or answers to the server's requests: JSON-RPC
    // batches (MCP 2025-03-26) hold one kind or the other, never both.
    if (responses > 0 && responses < messages.length) {
      return malformed('malformed MCP request: a batch mixes requests and responses')
    }
    return { messages, batch: true }
  }
  if (body !== undefined && !isObject(body))
    return malformed('malformed MCP request: body is not a JSON-RPC object')
  const fromBody = body === undefined ? undefined : callFrom(body as Obj, 'body', 'body')
  if (typeof fromBody === 'string') return malformed(`malformed MCP request: ${fromBody}`)
  if (meta === undefined) return fromBody === undefined ? undefined : { messages: [fromBody], batch: false }
  // A filter may describe a client's response without a method: the body then says what it is.
  if (meta.method === undefined && fromBody?.method === MCP_RESPONSE_METHOD) {
    if (meta.id !== undefined && meta.id !== fromBody.id) {
      return malformed('malformed MCP request: metadata and body disagree on the id')
    }
    return { messages: [{ ...fromBody, from: 'metadata+body' }], batch: false }
  }
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
  // Older filters copy all of `params`: arguments there must be the ones the server will run.
  const metaArgs = fromMeta.params.arguments
  if (metaArgs !== undefined && !jsonEqual(metaArgs, fromBody.params.arguments)) {
    return malformed('malformed MCP request: metadata and body disagree on the arguments')
  }
  return { messages: [{ ...fromBody, from: 'metadata+body' }], batch: false }
}
