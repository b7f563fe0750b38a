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
import {
  type CheckInput,
  hasNonFinite,
  isJsonContentType,
  jsonSyntaxError,
  parseJsonLimited,
  refusal,
  withoutBom,
} from './input/index.js'

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

/**
 * Keys whose duplicates (exact or differing only in case) are a smuggling vector; each has the bit
 * `1 << index` in the per-object mask of keys seen.
 */
const GUARDED = ['jsonrpc', 'method', 'id', 'params', 'name', 'arguments', 'uri']
/** The keys that make an object JSON-RPC (see `isRpcObject`). */
const RPC_KEY_BITS = (1 << GUARDED.indexOf('jsonrpc')) | (1 << GUARDED.indexOf('method'))
/** Guarded keys by length, with their bits. */
const GUARDED_BY_LENGTH: Array<Array<readonly [string, number]> | undefined> = []
for (const [i, k] of GUARDED.entries()) {
  const same = GUARDED_BY_LENGTH[k.length] ?? []
  same.push([k, 1 << i])
  GUARDED_BY_LENGTH[k.length] = same
}
const GUARDED_MIN = Math.min(...GUARDED.map((k) => k.length))
/** The longest raw spelling of a guarded key: every character escaped as `\uXXXX`. */
const GUARDED_MAX_RAW = 6 * Math.max(...GUARDED.map((k) => k.length))

function hasBackslash(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (text.charCodeAt(i) === 92) return true
  return false
}

/**
 * The bit of the guarded key that `text[start, end)` (unescaped) is a case variant of, or 0, with
 * the folding lenient JSON decoders apply (Go's encoding/json matches field names with Unicode
 * simple folding: the long s `ſ` folds to `s`, the Kelvin sign to `k`). Only A-Z and the Kelvin
 * sign lower-case to ASCII letters (checked over all of Unicode in mcp-call.test.ts), and each is
 * one UTF-16 unit, so a variant has its key's length. Compared in place: nothing is sliced.
 */
function guardedBit(text: string, start = 0, end = text.length): number {
  const candidates = GUARDED_BY_LENGTH[end - start]
  if (candidates === undefined) return 0
  next: for (const [key, bit] of candidates) {
    for (let i = 0; i < key.length; i++) {
      let c = text.charCodeAt(start + i)
      if (c >= 65 && c <= 90) c += 32
      else if (c === 0x212a) c = 107
      else if (c === 0x17f) c = 115
      if (c !== key.charCodeAt(i)) continue next
    }
    return bit
  }
  return 0
}

/** What one pass over JSON text found. */
interface JsonScan {
  /** The first guarded key repeated in one object (exactly or as a case variant). */
  readonly duplicate: string | undefined
  /** True when objects and arrays nest deeper than the limit. */
  readonly tooDeep: boolean
}

/**
 * One linear, iterative pass over JSON text: nesting depth and repeated guarded keys in any
 * object, compared case-insensitively. String contents are skipped with `indexOf`, so long
 * argument values cost little. Never recurses, whatever the nesting; safe on invalid JSON.
 */
function scanJson(text: string, maxDepth: number): JsonScan {
  // Per open bracket: -1 for an array; for an object, the bits of the guarded keys seen in it.
  const stack: number[] = []
  let duplicate: string | undefined
  let i = 0
  const n = text.length
  // Expecting a key right after `{` or `,` inside an object.
  let expectKey = false
  // Most bodies have no escape at all: one search spares looking for one in every key.
  const escapes = text.indexOf('\\') !== -1
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      let j = i + 1
      for (;;) {
        const q = text.indexOf('"', j)
        if (q === -1) {
          j = n
          break
        }
        let b = q - 1
        while (b > i && text.charCodeAt(b) === 92) b--
        // An even number of backslashes before the quote: it closes the string.
        if ((q - 1 - b) % 2 === 0) {
          j = q
          break
        }
        j = q + 1
      }
      const depth = stack.length - 1
      const raw = j - i - 1
      // Keys too short or too long to spell a guarded key, even escaped, are not looked at.
      if (expectKey && depth >= 0 && stack[depth] !== -1 && raw >= GUARDED_MIN && raw <= GUARDED_MAX_RAW) {
        let bit = 0
        let key: string | undefined
        if (!escapes || !hasBackslash(text, i + 1, j)) bit = guardedBit(text, i + 1, j)
        else {
          // Escapes: decode, then fold as a decoder would.
          key = text.slice(i + 1, j)
          try {
            key = JSON.parse(text.slice(i, j + 1)) as string
          } catch {
            duplicate ??= key
          }
          bit = guardedBit(key)
        }
        if (bit !== 0) {
          const seen = stack[depth]!
          if ((seen & bit) !== 0) duplicate ??= key ?? text.slice(i + 1, j)
          stack[depth] = seen | bit
        }
      }
      expectKey = false
      i = j + 1
      continue
    }
    if (c === 123) {
      stack.push(0)
      if (stack.length > maxDepth) return { duplicate, tooDeep: true }
      expectKey = true
    } else if (c === 91) {
      stack.push(-1)
      if (stack.length > maxDepth) return { duplicate, tooDeep: true }
    } else if (c === 125 || c === 93) {
      stack.pop()
      expectKey = false
    } else if (c === 44) {
      expectKey = stack.length > 0 && stack[stack.length - 1] !== -1
    }
    i++
  }
  return { duplicate, tooDeep: false }
}

/** The first guarded key (`jsonrpc`, `method`, `id`, `params`, `name`, `arguments`, `uri`) repeated in one object, in any case. */
export function findDuplicateGuardedKey(text: string): string | undefined {
  return scanJson(text, Number.POSITIVE_INFINITY).duplicate
}

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

/** A key that may fold to another: an ASCII capital or any non-ASCII character. */
const FOLDABLE = /[A-Z\u0080-\uffff]/
/** How deep argument objects are searched for case variants (the body's depth is limited anyway). */
const MAX_FOLD_DEPTH = 64

/** A key as decoders that match names case-insensitively see it (Go's EqualFold, .NET's web defaults). */
const folded = (k: string): string => {
  const lower = k.toLowerCase()
  return lower.indexOf('\u017f') === -1 ? lower : lower.replaceAll('\u017f', 's')
}

/**
 * The first key of an object in `v` (`v` itself or nested) that another key of the same object
 * equals once case-folded: `{"repoName": "ok", "RepoName": "evil"}`. A policy reads the exact key;
 * a server decoding into a struct case-insensitively takes the last of them.
 */
function caseVariantKey(v: unknown, depth: number): string | undefined {
  if (typeof v !== 'object' || v === null || depth > MAX_FOLD_DEPTH) return undefined
  if (Array.isArray(v)) {
    for (const x of v) {
      if (typeof x !== 'object' || x === null) continue
      const k = caseVariantKey(x, depth + 1)
      if (k !== undefined) return k
    }
    return undefined
  }
  const o = v as Obj
  // Two keys fold alike when one of them is already folded (then the other finds it in `o`), or
  // when neither is (then the second finds the first's folded form among those seen).
  let first: string | undefined
  let more: Set<string> | undefined
  for (const k of Object.keys(o)) {
    const x = o[k]
    if (typeof x === 'object' && x !== null) {
      const nested = caseVariantKey(x, depth + 1)
      if (nested !== undefined) return nested
    }
    if (!FOLDABLE.test(k)) continue
    const f = folded(k)
    if (f === k) continue
    if (Object.hasOwn(o, f)) return k
    if (first === undefined) first = f
    else if (f === first || more?.has(f)) return k
    else {
      more ??= new Set()
      more.add(f)
    }
  }
  return undefined
}

/** MCP's tool name rule (spec 2025-11-25, SEP-986): 1 to 128 of A-Z, a-z, 0-9, `_`, `-`, `.`. */
export const MAX_MCP_NAME_LENGTH = 128
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

function callFrom(msg: Obj, at: string, from: McpCall['from']): McpCall | string {
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

/**
 * Pre-filter for auto mode: a body that matches none of these cannot be JSON-RPC under any
 * spelling a lenient decoder accepts (case variants, `\u` escapes, the long s), so it is not
 * parsed and other JSON APIs pay almost nothing.
 */
const MAYBE_HUGE_NUMBER = /[0-9.][eE]|[0-9]{309}/

const MAYBE_RPC = /jsonrpc|method|\\u|\u017f|^\s*\[\s*\]\s*$/i

function isJsonPost(input: CheckInput): boolean {
  const ct = input.headers['content-type']
  return input.method === 'POST' && input.body !== undefined && ct !== undefined && isJsonContentType(ct)
}

function looksLikeJsonRpc(input: CheckInput, settings: McpSettings, meta: Obj | undefined): boolean {
  if (!isJsonPost(input)) return false
  return settings.enabled === true || meta !== undefined || MAYBE_RPC.test(input.body!)
}

/** An object with a `jsonrpc` or `method` key in any case variant. */
function isRpcObject(v: unknown): boolean {
  if (!isObject(v)) return false
  for (const k of Object.keys(v)) if ((guardedBit(k) & RPC_KEY_BITS) !== 0) return true
  return false
}

/**
 * A JSON-RPC message or batch (an empty array counts: it is an empty batch), also nested in
 * arrays: `[[{...tools/call...}]]` is a (refused) nested batch, not some other JSON that the
 * other rules may let through to a server that flattens it.
 */
function isRpcBody(v: unknown): boolean {
  if (Array.isArray(v)) return v.length === 0 || v.some(isRpcBody)
  return isRpcObject(v)
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

/** Structural equality of two JSON values, bounded in depth (deeper counts as different). */
function jsonEqual(a: unknown, b: unknown, depth = 0): boolean {
  if (a === b) return true
  if (depth > 200 || typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  for (const k of ka) {
    if (!Object.hasOwn(b, k)) return false
    if (!jsonEqual((a as Obj)[k], (b as Obj)[k], depth + 1)) return false
  }
  return true
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
    // Only a literal with an exponent or 309 digits can overflow, so most bodies skip the walk.
    if (MAYBE_HUGE_NUMBER.test(text) && hasNonFinite(body))
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
