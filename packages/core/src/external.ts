/**
 * Results of `decide` rules, mapped as the OPA-Envoy plugin maps them: a boolean, or an object
 * with a boolean `allowed` and optional `headers`, `response_headers_to_add`,
 * `request_headers_to_remove`, `query_parameters_to_set`, `query_parameters_to_remove`, `body`,
 * `http_status`, `dynamic_metadata`. Other fields are ignored, as the plugin ignores them; `body`
 * and `http_status` are read on a deny only. Headers: one entry per value, in order (a list value,
 * or a list of header objects, gives several). Anything the plugin refuses is an
 * error, which the engine turns into a deny; so is a header name or value Envoy would not accept
 * (a control character), which the plugin passes on.
 */

import type { HeaderEntry, QueryParameter } from './decision.js'
import { HEADER_NAME, hasControlChar } from './input/header-syntax.js'
import { isValidHttpStatus } from './status.js'

/** A validated external decision. */
export interface ExternalDecision {
  readonly allowed: boolean
  readonly status: number | undefined
  readonly headers: readonly HeaderEntry[]
  readonly responseHeadersToAdd: readonly HeaderEntry[]
  readonly headersToRemove: readonly string[]
  readonly queryParametersToSet: readonly QueryParameter[]
  readonly queryParametersToRemove: readonly string[]
  readonly body: string | undefined
  readonly dynamicMetadata: Readonly<Record<string, unknown>> | undefined
}

const NONE: readonly never[] = []

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * `{name: value | [values]}`, or a list of such objects -> entries, in order. The first value of a
 * name replaces what the request has (Envoy's documented default for ext_authz headers, where the
 * plugin leaves the append action unset); further values of the same name are appended.
 */
function headerEntries(v: unknown, field: string): HeaderEntry[] | string {
  if (v === undefined) return []
  const maps = Array.isArray(v) ? v : [v]
  const out: HeaderEntry[] = []
  const seen = new Set<string>()
  for (const m of maps) {
    if (!isObject(m)) return `${field} must be an object or a list of objects`
    for (const key of Object.keys(m)) {
      if (!HEADER_NAME.test(key)) return `${field} has an invalid header name`
      const val = m[key]
      const list = Array.isArray(val) ? val : [val]
      for (const s of list) {
        if (typeof s !== 'string') return `${field}.${key} must be a string or a list of strings`
        if (hasControlChar(s)) return `${field}.${key} has a control character`
        const name = key.toLowerCase()
        out.push(seen.has(name) ? { key, value: s, append: 'append' } : { key, value: s })
        seen.add(name)
      }
    }
  }
  return out
}

function stringList(v: unknown, field: string): string[] | string {
  if (v === undefined) return []
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) return `${field} must be a list of strings`
  return v as string[]
}

/** Map a `decide` rule's value; a string result is the error message. */
export function toExternalDecision(value: unknown): ExternalDecision | string {
  if (typeof value === 'boolean') {
    return {
      allowed: value,
      status: undefined,
      headers: NONE,
      responseHeadersToAdd: NONE,
      headersToRemove: NONE,
      queryParametersToSet: NONE,
      queryParametersToRemove: NONE,
      body: undefined,
      dynamicMetadata: undefined,
    }
  }
  if (!isObject(value)) return `result must be a boolean or a decision object, got ${describe(value)}`
  const allowed = value.allowed
  if (typeof allowed !== 'boolean') {
    return allowed === undefined ? 'result has no "allowed" field' : '"allowed" must be a boolean'
  }
  let status: number | undefined
  // The plugin reads `http_status` and `body` for a denial only.
  if (!allowed && value.http_status !== undefined) {
    if (!isValidHttpStatus(value.http_status))
      return `http_status ${describe(value.http_status)} is not a valid HTTP status`
    status = value.http_status
  }
  const headers = headerEntries(value.headers, 'headers')
  if (typeof headers === 'string') return headers
  const responseHeadersToAdd = headerEntries(value.response_headers_to_add, 'response_headers_to_add')
  if (typeof responseHeadersToAdd === 'string') return responseHeadersToAdd
  const headersToRemove = stringList(value.request_headers_to_remove, 'request_headers_to_remove')
  if (typeof headersToRemove === 'string') return headersToRemove
  const queryParametersToRemove = stringList(value.query_parameters_to_remove, 'query_parameters_to_remove')
  if (typeof queryParametersToRemove === 'string') return queryParametersToRemove
  const qs = value.query_parameters_to_set
  const queryParametersToSet: QueryParameter[] = []
  if (qs !== undefined) {
    if (!isObject(qs)) return 'query_parameters_to_set must be an object'
    for (const key of Object.keys(qs)) {
      const v = qs[key]
      for (const s of Array.isArray(v) ? v : [v]) {
        if (typeof s !== 'string')
          return `query_parameters_to_set.${key} must be a string or a list of strings`
        queryParametersToSet.push({ key, value: s })
      }
    }
  }
  const body = allowed ? undefined : value.body
  if (body !== undefined && typeof body !== 'string') return 'body must be a string'
  const dm = value.dynamic_metadata
  if (dm !== undefined && !isObject(dm)) return 'dynamic_metadata must be an object'
  return {
    allowed,
    status,
    headers,
    responseHeadersToAdd,
    headersToRemove,
    queryParametersToSet,
    queryParametersToRemove,
    body,
    dynamicMetadata: dm,
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'string') return `a string`
  if (typeof v === 'number') return String(v)
  return typeof v
}
