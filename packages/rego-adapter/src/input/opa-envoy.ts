/**
 * The OPA-Envoy dialect: the input document the opa-envoy plugin builds from a CheckRequest
 * (docs/rego.md, "Input dialects"), built once per decision through the context's memo.
 */
import type { Decision, RequestContext } from '@verdict/core'
import { deny } from '@verdict/core/internal'
import { attributesFromCheckRequest, attributesFromHttp, isObj, mcpView } from './attributes.js'
import { pluginBody } from './plugin-body.js'

/** The plugin's 400 for a body it cannot read: gRPC 7, status BadRequest, `request_parse_error: ...`. */
export function requestParseError(error: string): Decision {
  const body = `request_parse_error: ${error}`
  return deny(400, `malformed input: ${body}`, {
    code: 'malformed_input',
    detailCode: 'request_parse_error',
    body,
  })
}

/**
 * OPA-Envoy input, field for field as the plugin builds it (docs/rego.md lists each field and the
 * deliberate differences). verdict adds `jwt` (verified claims) and `mcp` (the MCP message being
 * authorized). A body the plugin cannot read sets the decision's refusal: 400
 * `request_parse_error`, whatever the rules answer.
 */
function buildOpaEnvoyInput(ctx: RequestContext, maxJsonDepth: number): Record<string, unknown> {
  const i = ctx.input
  const a = i.dialect === 'http' ? undefined : i.raw.attributes
  const attributes = isObj(a) ? attributesFromCheckRequest(i, a) : attributesFromHttp(i)
  let start = 0
  while (i.path.charCodeAt(start) === 0x2f) start++
  const trimmed = start === 0 ? i.path : i.path.slice(start)
  const body = pluginBody(i, maxJsonDepth)
  if (body.error !== undefined) ctx.refuse(requestParseError(body.error))
  else if (body.refusal !== undefined) ctx.refuse(body.refusal)
  const out: Record<string, unknown> = {
    attributes,
    parsed_path: trimmed.split('/'),
    parsed_query: i.query,
    parsed_body: body.parsed,
    truncated_body: body.truncated,
    version: { encoding: 'protojson', ext_authz: 'v3' },
  }
  if (i.source.principal !== undefined && i.source.principal !== '') out.source_principal = i.source.principal
  if (ctx.jwt !== undefined) out.jwt = ctx.jwt
  const mcp = mcpView(ctx.mcp)
  if (mcp !== undefined) out.mcp = mcp
  return out
}

/** Memo keys, one per nesting limit (a policy's `input.maxJsonDepth`). */
const KEYS = new Map<number, object>()

/** Deepest JSON body read, when the policy sets no `input.maxJsonDepth`. */
export const DEFAULT_MAX_JSON_DEPTH = 64

/**
 * The OPA-Envoy plugin's input document for the request of `ctx`, field for field as the plugin
 * builds it: `{attributes, parsed_path, parsed_query, parsed_body, truncated_body, version,
 * source_principal?}`, plus verdict's `jwt` and `mcp` (docs/rego.md). Built once per decision (the
 * context's memo). Reading the body as the plugin does may refuse the request (`ctx.refuse`): 400
 * `request_parse_error` for a body the plugin cannot parse, whatever the rules answer.
 */
export function opaEnvoyInput(
  ctx: RequestContext,
  maxJsonDepth = DEFAULT_MAX_JSON_DEPTH,
): Readonly<Record<string, unknown>> {
  let key = KEYS.get(maxJsonDepth)
  if (key === undefined) {
    key = {}
    KEYS.set(maxJsonDepth, key)
  }
  return ctx.memo(key, () => buildOpaEnvoyInput(ctx, maxJsonDepth))
}
