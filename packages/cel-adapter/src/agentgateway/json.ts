/** agentgateway's JSON functions: `json`, `jsonField`, `toJson`, `unvalidatedJwtPayload`, and the request body as bytes. */
import type { CelValue } from '@bufbuild/cel'
import {
  base64Decode,
  isJsonContentType,
  parseJsonLimited,
  type RequestContext,
  utf8Decode,
  utf8Encode,
} from '@verdict/core/internal'
import { toPlainValue } from '../plain.js'
import { celView } from '../value-view.js'

/** Deepest JSON `json()` accepts (as core's `input.maxJsonDepth` default). */
const JSON_DEPTH = 64

// JSON

/**
 * The request body as bytes (`request.body`), remembering its request: `json(request.body)` of a
 * JSON request reads core's parsed body, so its refusals (a key twice, a number no double holds)
 * are the same as for `request.json`.
 */
export class RequestBodyBytes extends Uint8Array {
  #ctx: RequestContext | undefined
  static forRequest(ctx: RequestContext, text: string): RequestBodyBytes {
    const buf = utf8Encode(text)
    const b = new RequestBodyBytes(buf.buffer, buf.byteOffset, buf.byteLength)
    b.#ctx = ctx
    return b
  }
  /** The parsed body when the request's content type is JSON; undefined to parse the bytes. */
  parsed(): { value: unknown } | undefined {
    const ctx = this.#ctx
    if (ctx === undefined) return undefined
    const ct = ctx.input.headers['content-type']
    if (ct === undefined || !isJsonContentType(ct) || ctx.input.bodyTruncated) return undefined
    const v = ctx.parsedBody
    if (v === undefined) throw new Error('the request body is not valid JSON')
    return { value: v }
  }
}

export function text(v: string | Uint8Array): string {
  return typeof v === 'string' ? v : utf8Decode(v)
}

function parseJson(v: string | Uint8Array): unknown {
  if (v instanceof RequestBodyBytes) {
    const p = v.parsed()
    if (p !== undefined) return p.value
  }
  const r = parseJsonLimited(text(v), JSON_DEPTH)
  if (!('value' in r)) throw new Error(r.error)
  return r.value
}

export function json(v: string | Uint8Array): CelValue {
  return celView(parseJson(v)) ?? null
}

export function jsonField(v: string | Uint8Array, key: string): CelValue {
  const parsed = parseJson(v)
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('jsonField: the JSON value is not an object')
  }
  if (!Object.hasOwn(parsed, key)) throw new Error(`no such key: ${key}`)
  return celView((parsed as Record<string, unknown>)[key]) ?? null
}

export function toJson(v: CelValue): string {
  return JSON.stringify(toPlainValue(v))
}

function base64UrlDecode(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(s) || s.replace(/=+$/, '').length % 4 === 1) {
    throw new Error('invalid base64url')
  }
  return base64Decode(s)
}

export function unvalidatedJwtPayload(token: string): CelValue {
  const parts = token.split('.')
  if (parts.length !== 3) throw new Error(`invalid JWT: expected 3 segments, got ${parts.length}`)
  return json(new Uint8Array(base64UrlDecode(parts[1]!)))
}
