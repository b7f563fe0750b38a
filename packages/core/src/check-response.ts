/**
 * Decision -> Envoy v3 `CheckResponse` in protobuf JSON (lowerCamelCase field names, enum names).
 */
import { type Decision, type HeaderEntry, loggableReason } from './decision.js'
import { httpStatusName } from './status.js'

const APPEND_ACTION = {
  append: 'APPEND_IF_EXISTS_OR_ADD',
  add_if_absent: 'ADD_IF_ABSENT',
  overwrite: 'OVERWRITE_IF_EXISTS_OR_ADD',
} as const

/** google.rpc.Code values used in `CheckResponse.status`. */
export const GRPC_OK = 0
export const GRPC_PERMISSION_DENIED = 7
export const GRPC_UNAUTHENTICATED = 16

interface HeaderValueOptionJson {
  header: { key: string; value: string }
  appendAction: (typeof APPEND_ACTION)[keyof typeof APPEND_ACTION]
}

export interface CheckResponseJson {
  status: { code: number; message?: string }
  okResponse?: {
    headers?: HeaderValueOptionJson[]
    headersToRemove?: string[]
    responseHeadersToAdd?: HeaderValueOptionJson[]
    queryParametersToSet?: Array<{ key: string; value: string }>
    queryParametersToRemove?: string[]
  }
  deniedResponse?: {
    status: { code: string }
    headers?: HeaderValueOptionJson[]
    body?: string
  }
  dynamicMetadata?: Record<string, unknown>
}

function options(list: readonly HeaderEntry[]): HeaderValueOptionJson[] {
  return list.map((h) => ({
    header: { key: h.key, value: h.value },
    appendAction: APPEND_ACTION[h.append ?? 'overwrite'],
  }))
}

/**
 * The Envoy v3 CheckResponse for a decision, in protobuf JSON.
 *
 * @example
 * ```ts
 * const res = toCheckResponse(await engine.decide(checkRequest))
 * res.status.code // 0 on allow, 7 (PERMISSION_DENIED) or 16 (UNAUTHENTICATED) on deny
 * ```
 */
export function toCheckResponse(d: Decision): CheckResponseJson {
  const out: CheckResponseJson = { status: { code: GRPC_OK } }
  if (d.allowed) {
    const ok: NonNullable<CheckResponseJson['okResponse']> = {}
    if (d.headers.length > 0) ok.headers = options(d.headers)
    if (d.headersToRemove.length > 0) ok.headersToRemove = [...d.headersToRemove]
    if (d.responseHeadersToAdd.length > 0) ok.responseHeadersToAdd = options(d.responseHeadersToAdd)
    if (d.queryParametersToSet.length > 0)
      ok.queryParametersToSet = d.queryParametersToSet.map((q) => ({ ...q }))
    if (d.queryParametersToRemove.length > 0) ok.queryParametersToRemove = [...d.queryParametersToRemove]
    out.okResponse = ok
  } else {
    out.status = {
      code: d.status === 401 ? GRPC_UNAUTHENTICATED : GRPC_PERMISSION_DENIED,
      message: loggableReason(d),
    }
    const denied: NonNullable<CheckResponseJson['deniedResponse']> = {
      status: { code: httpStatusName(d.status) ?? 'Forbidden' },
    }
    if (d.headers.length > 0) denied.headers = options(d.headers)
    if (d.body !== undefined) denied.body = d.body
    out.deniedResponse = denied
  }
  if (Object.keys(d.dynamicMetadata).length > 0) out.dynamicMetadata = { ...d.dynamicMetadata }
  return out
}
