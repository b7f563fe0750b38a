// The reference policy of the side-by-side benchmarks, shared by reference, scale and memory:
// a valid JWT (Strict, inline JWKS), the header `x-ext-authz: allow`, a tools/call whose tool is in
// an allow-list and whose `repoName` argument is in another. Also the user-side code a person
// using a general-purpose engine would write around it (token cache, body parsing), so every
// contender answers from the same raw request.
import {
  createEngine,
  DEFAULT_INPUT_OPTIONS,
  DEFAULT_MCP_SETTINGS,
  extractMcp,
  isDecision,
  normalizeInput,
} from '@verdict/core/internal'
import { exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose'

export const ISSUER = 'https://idp.bench.example'
export const AUDIENCE = 'mcp-gateway'
export const TOOLS = ['read_wiki_structure', 'read_wiki_contents', 'ask_question']
export const REPOS = ['kubernetes-sigs/kube-agentic-networking', 'kubernetes-sigs/gateway-api']

/** A CEL list literal of strings. */
export const celList = (xs) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`

/** The header rule, as a CEL expression (absent header: false, not an error). */
export const HEADER_EXPR = '"x-ext-authz" in request.headers && request.headers["x-ext-authz"] == "allow"'

/** The tool and argument rule over `mcp.tool`, for any allow-lists. */
export const toolExpr = (tools = TOOLS, repos = REPOS) =>
  `mcp.tool.name in ${celList(tools)} && has(mcp.tool.arguments.repoName) && ` +
  `mcp.tool.arguments.repoName in ${celList(repos)}`

/** One ES256 issuer: its key pair, public JWKS and a signer. */
export async function createIssuer(issuer = ISSUER, kid = 'k1') {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] }
  /** A token for alice; `exp` (seconds) replaces the default expiry of two hours. */
  const sign = ({ exp = '2h', ...claims } = {}) =>
    new SignJWT({ sub: 'alice', email: 'alice@company.example', roles: ['dev'], ...claims })
      .setProtectedHeader({ alg: 'ES256', kid })
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(privateKey)
  return { issuer, publicKey, jwks, sign }
}

/** The `authentication` section for one or more issuers. */
export const jwtAuthentication = (issuers, cache) => ({
  jwt: {
    mode: 'Strict',
    providers: issuers.map((i) => ({ issuer: i.issuer, audiences: [AUDIENCE], jwks: { inline: i.jwks } })),
    ...(cache !== undefined ? { cache } : {}),
  },
})

/** The reference policy with CEL rules. */
export function celPolicy(issuers, { tools = TOOLS, repos = REPOS, maxBodyBytes, cache } = {}) {
  return {
    name: 'reference-cel',
    authentication: jwtAuthentication(issuers, cache),
    ...(maxBodyBytes !== undefined ? { input: { maxBodyBytes } } : {}),
    rules: [
      { id: 'ext-authz-header', action: 'require', cel: HEADER_EXPR },
      { id: 'tools', action: 'allow', cel: toolExpr(tools, repos) },
    ],
  }
}

/** The same policy without CEL: a `match` header rule and an `mcp` rule (@verdict/mcp). */
export function mcpPolicy(issuers, { tools = TOOLS, repos = REPOS, maxBodyBytes } = {}) {
  return {
    name: 'reference-mcp',
    authentication: jwtAuthentication(issuers),
    ...(maxBodyBytes !== undefined ? { input: { maxBodyBytes } } : {}),
    rules: [
      {
        id: 'ext-authz-header',
        action: 'require',
        match: { headers: [{ name: 'x-ext-authz', exact: 'allow' }] },
      },
      { id: 'tools', action: 'allow', mcp: { tools, arguments: { repoName: { in: repos } } } },
    ],
  }
}

/** The headers of a Streamable HTTP POST through a proxy, credentials and `x-ext-authz` aside. */
export const STREAMABLE_HTTP_HEADERS = Object.freeze({
  host: 'mcp.internal',
  accept: 'application/json, text/event-stream',
  'accept-encoding': 'gzip, deflate',
  'content-type': 'application/json',
  'mcp-protocol-version': '2025-06-18',
  'mcp-session-id': '3f1c2d9e-5b7a-4c1e-9d2f-8a6b4c3e2f10',
  'user-agent': 'bench-client/1.0',
  'x-request-id': '11111111-2222-3333-4444-555555555555',
  'x-forwarded-for': '203.0.113.7',
  'x-forwarded-proto': 'https',
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  'x-tenant': 'acme',
  'x-envoy-expected-rq-timeout-ms': '15000',
})

/**
 * A Streamable HTTP tools/call with 15 headers. `ext: null` leaves the header out,
 * `token: undefined` the Authorization header; `padBytes` grows the body to about that size.
 */
export function toolCall({ token, ext = 'allow', tool = TOOLS[2], args, padBytes, id = 7 }) {
  const a = args ?? { repoName: REPOS[1], question: 'How do HTTPRoutes attach to Gateways?' }
  const msg = { jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: { ...a } } }
  if (padBytes !== undefined) {
    msg.params.arguments.padding = ''
    msg.params.arguments.padding = 'x'.repeat(Math.max(0, padBytes - JSON.stringify(msg).length))
  }
  const headers = { ...STREAMABLE_HTTP_HEADERS }
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  if (ext !== null) headers['x-ext-authz'] = ext
  return {
    method: 'POST',
    path: '/mcp',
    host: 'mcp.internal',
    scheme: 'https',
    headers,
    body: JSON.stringify(msg),
  }
}

/**
 * The shared case list: the allow case first, then one of each kind of deny. Every contender
 * must answer all of them right before it is timed.
 */
export async function referenceCases(issuer) {
  const token = await issuer.sign()
  const stranger = await (await createIssuer('https://stranger.example')).sign()
  const expired = await issuer.sign({ exp: Math.floor(Date.now() / 1000) - 3600 })
  return [
    { name: 'allowed call', allowed: true, request: toolCall({ token }) },
    {
      name: 'other allowed tool and repo',
      allowed: true,
      request: toolCall({ token, tool: TOOLS[0], args: { repoName: REPOS[0] } }),
    },
    { name: 'no token', allowed: false, request: toolCall({}) },
    { name: 'token of an unknown issuer', allowed: false, request: toolCall({ token: stranger }) },
    { name: 'expired token', allowed: false, request: toolCall({ token: expired }) },
    { name: 'x-ext-authz missing', allowed: false, request: toolCall({ token, ext: null }) },
    { name: 'x-ext-authz: deny', allowed: false, request: toolCall({ token, ext: 'deny' }) },
    { name: 'tool not allowed', allowed: false, request: toolCall({ token, tool: 'echo' }) },
    {
      name: 'repoName not allowed',
      allowed: false,
      request: toolCall({ token, args: { repoName: 'kubernetes/kubernetes' } }),
    },
    { name: 'repoName missing', allowed: false, request: toolCall({ token, args: { question: '?' } }) },
  ]
}

/**
 * verdict's input checks alone, as a user of another engine can call them: normalizeInput (header,
 * path and size checks), then extractMcp (depth limit, smuggling checks). The normalized input and
 * the tools/call, or undefined when either rejects or the request is not one tools/call.
 */
export function inputChecks(req) {
  const input = normalizeInput(req)
  if (isDecision(input)) return undefined
  const m = extractMcp(input, DEFAULT_MCP_SETTINGS, DEFAULT_INPUT_OPTIONS.maxJsonDepth)
  if (m === undefined || isDecision(m) || m.messages.length !== 1) return undefined
  const call = m.messages[0].tool
  return call === undefined ? undefined : { input, call }
}

/**
 * User-side code around a general-purpose engine. Its facts: verified claims, the headers (and
 * `x-ext-authz` among them), the extracted tools/call.
 */
export function createUserSide(issuers) {
  const keys = new Map(issuers.map((i) => [i.issuer, i.publicKey]))
  const verified = new Map()
  /** Verified claims for an Authorization header, from a token cache as a careful user keeps one. */
  function claimsOf(authorization) {
    if (typeof authorization !== 'string' || !authorization.startsWith('Bearer ')) return undefined
    const token = authorization.slice(7)
    const hit = verified.get(token)
    if (hit !== undefined) return hit.exp * 1000 > Date.now() ? hit : undefined
    return verifyOnce(token)
  }
  async function verifyOnce(token) {
    try {
      const [, body] = token.split('.')
      const iss = JSON.parse(Buffer.from(body ?? '', 'base64url').toString()).iss
      const key = keys.get(iss)
      if (key === undefined) return undefined
      const { payload } = await jwtVerify(token, key, { issuer: iss, audience: AUDIENCE })
      verified.set(token, payload)
      return payload
    } catch {
      return undefined
    }
  }
  /** The tools/call in a JSON body, or undefined. */
  function callOf(req) {
    if (req.headers['content-type'] !== 'application/json' || typeof req.body !== 'string') return undefined
    let msg
    try {
      msg = JSON.parse(req.body)
    } catch {
      return undefined
    }
    if (msg?.method !== 'tools/call' || typeof msg.params?.name !== 'string') return undefined
    const args = msg.params.arguments
    return { name: msg.params.name, arguments: args !== null && typeof args === 'object' ? args : {} }
  }
  /**
   * An end-to-end authorizer from an engine-only check `(facts) => boolean`: the same request in,
   * a boolean out, asynchronous like `decide()`.
   */
  function authorizer(check) {
    return async (req) => {
      let claims = claimsOf(req.headers.authorization)
      if (claims instanceof Promise) claims = await claims
      if (claims === undefined) return false
      const call = callOf(req)
      if (call === undefined) return false
      return check({ claims, headers: req.headers, ext: req.headers['x-ext-authz'], call })
    }
  }
  /**
   * The same authorizer behind verdict's own input checks (normalizeInput's header, path and size
   * checks; extractMcp's depth limit and smuggling checks): what a user of another engine pays to
   * reject what decide() rejects.
   */
  function hardenedAuthorizer(check) {
    return async (req) => {
      const checked = inputChecks(req)
      if (checked === undefined) return false
      const { input, call } = checked
      let claims = claimsOf(input.headers.authorization)
      if (claims instanceof Promise) claims = await claims
      if (claims === undefined) return false
      return check({ claims, headers: input.headers, ext: input.headers['x-ext-authz'], call })
    }
  }
  return { claimsOf, callOf, authorizer, hardenedAuthorizer }
}

/** The same decision by hand, given the facts. */
export function handCheck(tools = TOOLS, repos = REPOS) {
  const toolSet = new Set(tools)
  const repoSet = new Set(repos)
  return ({ ext, call }) =>
    ext === 'allow' && toolSet.has(call.name) && Object.hasOwn(call.arguments, 'repoName')
      ? repoSet.has(call.arguments.repoName)
      : false
}

/** An engine for `policy` with the CEL and MCP evaluators when they are given. */
export const engineFor = (policy, evaluators) => createEngine(policy, { evaluators })

/**
 * Check a contender on every case; throws on the first wrong answer, naming it.
 * `run(request)` returns a boolean or a Decision, synchronously or not.
 */
export async function verifyCases(name, cases, run) {
  for (const c of cases) {
    let got = await run(c.request)
    if (typeof got === 'object' && got !== null) got = got.allowed
    if (got !== c.allowed)
      throw new Error(`${name} answered ${got} on "${c.name}" (expected ${c.allowed ? 'allow' : 'deny'})`)
  }
}
