/**
 * The OPA-Envoy input document written straight as JSON text, for the Rego rule, which hands the
 * module text anyway: the same document as `JSON.stringify(opaEnvoyInput(ctx))`, field for field
 * and in the same key order, without building the objects first. Three things make it cheaper
 * than serializing the built document:
 *
 * - header names and values go out without an escaping pass when they need none: core's
 *   normalizer leaves names as lower-case tokens (or `:` pseudo-headers) and values free of control
 *   characters other than tab, so two `indexOf` searches (`"`, `\`) and one for tab decide it;
 * - `parsed_body` is the body's own text when the body is plain, complete JSON that the plugin
 *   parses (the module parses the same value from it; numbers keep the digits the client sent, as
 *   the plugin's decoder keeps them), so the parsed body is never serialized again;
 * - the sections built from the CheckRequest's rarer fields (peers, metadata) are serialized from
 *   the same builders as the object form, so the two cannot drift apart.
 *
 * dialects.test.ts checks that this text and the object form parse to the same value.
 */
import type { McpCall, RequestContext } from '@verdict/core'
import {
  attributesFromCheckRequest,
  b64,
  hasAny,
  hasKeys,
  headerMapEntries,
  isObj,
  num,
  type Obj,
  peerFromInfo,
  pick,
  str,
  timestamp,
} from './attributes.js'
import { requestParseError } from './opa-envoy.js'
import { type PluginBody, pluginBody } from './plugin-body.js'

/** A JSON string that needs no escaping: no quote, backslash or control character, well-formed. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what JSON escapes
const PLAIN = /^[^"\\\u0000-\u001f]*$/

/**
 * A string JSON writes between quotes as it is. Short strings take one regular-expression test;
 * long ones two `indexOf` searches first, which run much faster than a character-class scan.
 */
function plainString(s: string): boolean {
  if (s.length > 32 && (s.indexOf('"') !== -1 || s.indexOf('\\') !== -1)) return false
  return PLAIN.test(s) && (s as unknown as { isWellFormed(): boolean }).isWellFormed()
}

/** A string as JSON. */
function quote(s: string): string {
  return plainString(s) ? `"${s}"` : JSON.stringify(s)
}

/**
 * Names as the normalizer leaves them (lower-case tokens, `:` pseudo-headers) need no escaping;
 * anything else takes the general path.
 */
const TOKEN_NAME = /^:?[a-z0-9!#$%&'*+\-.^_`|~]+$/

/**
 * What goes before a plain header value (one written between quotes as it is), by what came
 * before the name: the object's `{` (0), a value written whole (1), or a plain value whose closing
 * quote is still to be written (2): `"k":"`, `,"k":"`, `","k":"`.
 */
type NamePrefixes = readonly [string, string, string]

/**
 * Prefixes of header names already seen to need no escaping. Property keys are interned strings
 * with their hash kept, so a lookup costs less than testing the characters again. Bounded: past
 * the bound, and for names longer than 64 characters, names are tested every time.
 */
const NAME_PREFIXES = new Map<string, NamePrefixes | null>()
const MAX_NAME_PREFIXES = 2048

function namePrefixes(k: string): NamePrefixes | undefined {
  const known = NAME_PREFIXES.get(k)
  if (known !== undefined) return known ?? undefined
  const p: NamePrefixes | null = TOKEN_NAME.test(k) ? [`"${k}":"`, `,"${k}":"`, `","${k}":"`] : null
  if (NAME_PREFIXES.size < MAX_NAME_PREFIXES && k.length <= 64) NAME_PREFIXES.set(k, p)
  return p ?? undefined
}

/**
 * A header value that goes between quotes as it is: core's normalizer refused control characters
 * other than horizontal tab in values, so one without `"`, `\` and tab (and well-formed, for one
 * given as a JavaScript string) needs no escaping.
 */
function plainValue(v: string): boolean {
  return (
    v.indexOf('"') === -1 &&
    v.indexOf('\\') === -1 &&
    v.indexOf('\t') === -1 &&
    (v as unknown as { isWellFormed(): boolean }).isWellFormed()
  )
}

/**
 * The canonical headers (`i.headers`) as a JSON object. Pieces are only appended (never sliced),
 * so the text stays a rope until the whole document is written into the module's memory, and a
 * plain header adds two pieces to it (its cached prefix, then its value, whose closing quote goes
 * out with the next prefix): writing the rope out costs per piece.
 */
function headersText(h: Readonly<Record<string, string>>): string {
  let out = '{'
  // 0: nothing yet; 1: after a value written whole; 2: after a plain value left open.
  let state: 0 | 1 | 2 = 0 as 0 | 1 | 2
  // Core's map has no prototype, so `for in` lists exactly its own keys, without an array of them.
  const own = Object.getPrototypeOf(h) !== null
  for (const k in h) {
    if (own && !Object.hasOwn(h, k)) continue
    const v = h[k]!
    const p = namePrefixes(k)
    if (p !== undefined && plainValue(v)) {
      out += p[state]
      out += v
      state = 2
    } else {
      out += `${state === 2 ? '",' : state === 1 ? ',' : ''}${JSON.stringify(k)}:${JSON.stringify(v)}`
      state = 1
    }
  }
  return out + (state === 2 ? '"}' : '}')
}

/**
 * For this file's literal member names, made once each: `"key":` and `,"key":` (before JSON
 * text), `"key":"` and `,"key":"` (before a string that needs no escaping).
 */
const KEY_PREFIXES = new Map<string, readonly [string, string, string, string]>()

function keyPrefixes(key: string): readonly [string, string, string, string] {
  let p = KEY_PREFIXES.get(key)
  if (p === undefined) {
    p = [`"${key}":`, `,"${key}":`, `"${key}":"`, `,"${key}":"`]
    KEY_PREFIXES.set(key, p)
  }
  return p
}

/** Appends `"key":value` pieces; `text()` closes the object. */
class ObjectText {
  private out = '{'
  private first = true

  /** A member whose key is one of this file's literals (no escaping needed) and JSON text. */
  raw(key: string, json: string): void {
    this.out += keyPrefixes(key)[this.first ? 0 : 1]
    this.out += json
    this.first = false
  }

  /** A member whose key is already JSON. */
  member(quotedKey: string, json: string): void {
    this.out += this.first ? `${quotedKey}:${json}` : `,${quotedKey}:${json}`
    this.first = false
  }

  string(key: string, v: string): void {
    if (!plainString(v)) {
      this.raw(key, JSON.stringify(v))
      return
    }
    this.out += keyPrefixes(key)[this.first ? 2 : 3]
    this.out += v
    this.out += '"'
    this.first = false
  }

  text(): string {
    return `${this.out}}`
  }
}

/** `attributes.request.http` of a CheckRequest, as `httpRequest` in attributes.ts builds it. */
function httpRequestText(i: RequestContext['input'], h: Obj): string {
  const o = new ObjectText()
  const id = str(h.id)
  if (id !== undefined) o.string('id', id)
  if (str(h.method) !== undefined) o.string('method', i.method)
  if (hasKeys(h.headers)) o.raw('headers', headersText(i.headers))
  const path = str(h.path)
  if (path !== undefined) o.string('path', path)
  if (str(h.host) !== undefined && i.host !== '') o.string('host', i.host)
  for (const k of ['scheme', 'query', 'fragment']) {
    const s = str(h[k])
    if (s !== undefined) o.string(k, s)
  }
  const size = num(h.size)
  if (size !== undefined) o.raw('size', JSON.stringify(size))
  const protocol = str(h.protocol)
  if (protocol !== undefined) o.string('protocol', protocol)
  const body = str(h.body)
  if (body !== undefined) o.raw('body', JSON.stringify(body))
  const rawBody = b64(pick(h, 'rawBody', 'raw_body'))
  if (rawBody !== undefined) o.string('rawBody', rawBody)
  const hm = pick(h, 'headerMap', 'header_map')
  if (isObj(hm)) o.raw('headerMap', JSON.stringify(headerMapEntries(i, hm)))
  return o.text()
}

/** `attributes` of a CheckRequest given to `decide()`, as `attributesFromCheckRequest` builds it. */
function checkRequestAttributesText(i: RequestContext['input'], a: Obj): string {
  const request = isObj(a.request) ? a.request : undefined
  const http = request !== undefined && isObj(request.http) ? request.http : undefined
  // Everything but `request` comes from the object builder: the peers, extensions, metadata.
  const rest = attributesFromCheckRequest(i, a, false)
  const o = new ObjectText()
  if (rest.source !== undefined) o.raw('source', JSON.stringify(rest.source))
  if (rest.destination !== undefined) o.raw('destination', JSON.stringify(rest.destination))
  if (request !== undefined) {
    const r = new ObjectText()
    const time = timestamp(request.time)
    if (time !== undefined) r.raw('time', JSON.stringify(time))
    if (http !== undefined) r.raw('http', httpRequestText(i, http))
    o.raw('request', r.text())
  }
  for (const k of ['contextExtensions', 'metadataContext', 'routeMetadataContext', 'tlsSession'])
    if (rest[k] !== undefined) o.raw(k, JSON.stringify(rest[k]))
  return o.text()
}

/** `attributes` of a plain HTTP-shaped request, as `attributesFromHttp` builds it. */
function httpAttributesText(i: RequestContext['input']): string {
  const http = new ObjectText()
  if (i.id !== undefined && i.id !== '') http.string('id', i.id)
  if (i.method !== '') http.string('method', i.method)
  if (hasAny(i.headers)) http.raw('headers', headersText(i.headers))
  if (i.rawPath !== '') http.string('path', i.rawPath)
  if (i.host !== '') http.string('host', i.host)
  if (i.scheme !== '') http.string('scheme', i.scheme)
  const cl = i.headers['content-length']
  if (cl !== undefined && /^\d+$/.test(cl) && Number(cl) > 0) http.raw('size', JSON.stringify(Number(cl)))
  if (i.protocol !== '') http.string('protocol', i.protocol)
  if (i.body !== undefined && i.body !== '') http.raw('body', JSON.stringify(i.body))
  const o = new ObjectText()
  o.raw('request', `{"http":${http.text()}}`)
  const source = peerFromInfo(i.source)
  if (source !== undefined) o.raw('source', JSON.stringify(source))
  const destination = peerFromInfo(i.destination)
  if (destination !== undefined) o.raw('destination', JSON.stringify(destination))
  if (hasAny(i.contextExtensions)) o.raw('contextExtensions', JSON.stringify(i.contextExtensions))
  if (hasAny(i.filterMetadata)) o.raw('metadataContext', JSON.stringify({ filterMetadata: i.filterMetadata }))
  if (hasAny(i.routeMetadata))
    o.raw('routeMetadataContext', JSON.stringify({ filterMetadata: i.routeMetadata }))
  if (i.tlsSni !== undefined) o.raw('tlsSession', JSON.stringify({ sni: i.tlsSni }))
  return o.text()
}

/** Path segments after the leading slashes, as JSON. */
function parsedPathText(path: string): string {
  let start = 0
  while (path.charCodeAt(start) === 0x2f) start++
  const trimmed = start === 0 ? path : path.slice(start)
  if (trimmed.indexOf('/') === -1) return `[${quote(trimmed)}]`
  return JSON.stringify(trimmed.split('/'))
}

/**
 * verdict's `mcp` addition as `mcpView` builds it. For a call core read from the body, `params`
 * and the tool's `arguments` are the body's own text of them (`body.params`, `body.args`: the same
 * values, which the body's text already holds); else a tool call's `arguments`, the object in
 * `params`, is serialized once and written in both places.
 */
function mcpText(m: McpCall, body: PluginBody): string {
  const o = new ObjectText()
  o.string('method', m.method)
  const tool = m.tool
  const args = tool?.arguments
  const params = m.params
  const text = body.text
  let argsText: string | undefined
  if (m.from === 'body' && text !== undefined && body.params !== undefined) {
    o.raw('params', text.slice(body.params[0], body.params[1]))
    if (body.args !== undefined) argsText = text.slice(body.args[0], body.args[1])
  } else if (
    args !== undefined &&
    Object.getPrototypeOf(params) === Object.prototype &&
    !('toJSON' in params)
  ) {
    // Plain parsed JSON: its own keys in order, `arguments` from the shared text.
    const p = new ObjectText()
    for (const k of Object.keys(params)) {
      const v = params[k]
      let t: string | undefined
      if (v === args) {
        argsText ??= JSON.stringify(args)
        t = argsText
      } else t = JSON.stringify(v)
      if (t !== undefined) p.member(quote(k), t)
    }
    o.raw('params', p.text())
  } else o.raw('params', JSON.stringify(params))
  if (m.id !== undefined) o.raw('id', JSON.stringify(m.id))
  if (tool !== undefined) {
    const keys = Object.keys(tool)
    o.raw(
      'tool',
      keys.length === 2 && keys[0] === 'name' && keys[1] === 'arguments'
        ? `{"name":${quote(tool.name)},"arguments":${argsText ?? JSON.stringify(args)}}`
        : JSON.stringify(tool),
    )
  }
  if (m.prompt !== undefined) o.raw('prompt', JSON.stringify(m.prompt))
  if (m.resource !== undefined) o.raw('resource', JSON.stringify(m.resource))
  return o.text()
}

/**
 * The OPA-Envoy input document for the request of `ctx` as JSON text (see the module comment).
 * Reading the body refuses the request as `opaEnvoyInput` does.
 */
export function opaEnvoyInputText(ctx: RequestContext, maxJsonDepth: number): string {
  const i = ctx.input
  const a = i.dialect === 'http' ? undefined : i.raw.attributes
  const attributes = isObj(a) ? checkRequestAttributesText(i, a) : httpAttributesText(i)
  // A body core's MCP extraction read (`mcp.from` names the body) was parsed and accepted there.
  const body = pluginBody(i, maxJsonDepth, ctx.mcp !== undefined && ctx.mcp.from !== 'metadata')
  if (body.error !== undefined) ctx.refuse(requestParseError(body.error))
  else if (body.refusal !== undefined) ctx.refuse(body.refusal)
  let out = `{"attributes":${attributes},"parsed_path":${parsedPathText(i.path)},"parsed_query":${hasAny(i.query) ? JSON.stringify(i.query) : '{}'},"parsed_body":${body.text ?? JSON.stringify(body.parsed) ?? 'null'},"truncated_body":${body.truncated},"version":{"encoding":"protojson","ext_authz":"v3"}`
  if (i.source.principal !== undefined && i.source.principal !== '')
    out += `,"source_principal":${quote(i.source.principal)}`
  if (ctx.jwt !== undefined) out += `,"jwt":${JSON.stringify(ctx.jwt)}`
  if (ctx.mcp !== undefined) out += `,"mcp":${mcpText(ctx.mcp, body)}`
  return `${out}}`
}
