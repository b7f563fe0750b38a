/**
 * Results of `decide` rules: a boolean, or an OPA-Envoy decision object
 * (`allowed`, `headers`, `response_headers_to_add`, `request_headers_to_remove`,
 * `query_parameters_to_set`, `query_parameters_to_remove`, `body`, `http_status`,
 * `dynamic_metadata`). Anything else is an error, which the engine turns into a deny.
 */

import type { HeaderEntry, QueryParameter } from './decision.js'
import { HEADER_NAME, hasControlChar } from './header-syntax.js'
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

const KNOWN = new Set([
  'allowed',
  'headers',
  'response_headers_to_add',
  'request_headers_to_remove',
  'query_parameters_to_set',
  'query_parameters_to_remove',
  'body',
  'http_status',
  'dynamic_metadata',
])

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** `{name: value | [values]}` -> entries; repeated values append, as OPA-Envoy does. */
function headerEntries(v: unknown, field: string): HeaderEntry[] | string {
  if (v === undefined) return []
  if (!isObject(v)) return `${field} must be an object`
  const out: HeaderEntry[] = []
  for (const key of Object.keys(v)) {
    if (!HEADER_NAME.test(key)) return `${field} has an invalid header name`
    const val = v[key]
    const list = Array.isArray(val) ? val : [val]
    for (let i = 0; i < list.length; i++) {
      const s = list[i]
      if (typeof s !== 'string') return `${field}.${key} must be a string or a list of strings`
      if (hasControlChar(s)) return `${field}.${key} has a control character`
      out.push(i === 0 ? { key, value: s } : { key, value: s, append: 'append' })
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
  for (const k of Object.keys(value))
    if (!KNOWN.has(k)) return `result has an unknown field "${k.slice(0, 64)}"`
  const allowed = value.allowed
  if (typeof allowed !== 'boolean') {
    return allowed === undefined ? 'result has no "allowed" field' : '"allowed" must be a boolean'
  }
  let status: number | undefined
  if (value.http_status !== undefined) {
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
  const body = value.body
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
