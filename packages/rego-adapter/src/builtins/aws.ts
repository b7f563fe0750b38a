/**
 * `providers.aws.sign_req`: AWS Signature Version 4 of an `http.send`-style request object, as OPA
 * computes it (its own SigV4, not an AWS SDK's): the canonical request from the method as given,
 * the URL's escaped path and raw query, every header but `authorization`, `user-agent` and
 * `x-amzn-trace-id` (lower-cased), plus `host`, `x-amz-date`, `x-amz-content-sha256` for s3 and
 * glacier (its value `UNSIGNED-PAYLOAD` with `disable_payload_signing`) and `x-amz-security-token` with a
 * session token. HMAC-SHA256 on `@noble/hashes`; the time is the caller's (no clock is read).
 */
import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'
import type { RegoBuiltin } from '../rego-policy.js'
import { compareUtf8, toHex, utf8 } from './bytes.js'
import { goJson, isObj, isStr, type Obj } from './scope.js'

/** The request keys `http.send` accepts (OPA checks them here too). */
const REQUEST_KEYS = new Set([
  'method',
  'url',
  'body',
  'enable_redirect',
  'force_json_decode',
  'force_yaml_decode',
  'headers',
  'raw_body',
  'tls_use_system_certs',
  'tls_ca_cert',
  'tls_ca_cert_file',
  'tls_ca_cert_env_variable',
  'tls_client_cert',
  'tls_client_cert_file',
  'tls_client_cert_env_variable',
  'tls_client_key',
  'tls_client_key_file',
  'tls_client_key_env_variable',
  'tls_insecure_skip_verify',
  'tls_server_name',
  'timeout',
  'cache',
  'force_cache',
  'force_cache_duration_seconds',
  'raise_error',
  'caching_mode',
  'max_retry_attempts',
  'cache_ignored_headers',
])
const REQUIRED_CONFIG = ['aws_service', 'aws_access_key', 'aws_secret_access_key', 'aws_region']
const IGNORED = new Set(['authorization', 'user-agent', 'x-amzn-trace-id'])

const str = (v: unknown) => (isStr(v) ? v : '')
const mac = (key: Uint8Array, msg: string) => hmac(sha256, key, utf8(msg))
const hexSha = (b: Uint8Array) => toHex(sha256(b))

/** Go's url.URL parts SigV4 uses: host, escaped path, raw query; undefined when Go would refuse. */
function urlParts(u: string): { host: string; path: string; query: string } | undefined {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:)?(\/\/([^/?#]*))?([^?#]*)(\?([^#]*))?(#.*)?$/.exec(u)
  if (m === null) return undefined
  const rawPath = m[4] ?? ''
  if (/%(?![0-9A-Fa-f]{2})/.test(rawPath)) return undefined
  // EscapedPath: the path re-escaped the way Go's url.PathEscape-for-paths does.
  const path = rawPath.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/gu, (c) =>
    [...utf8(c)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  )
  return { host: m[3] ?? '', path, query: m[6] ?? '' }
}

/** `YYYYMMDD` and `YYYYMMDDTHHMMSSZ` of a time in nanoseconds, UTC. */
function stamps(ns: number): [string, string] {
  const d = new Date(Math.floor(ns / 1e6))
  const iso = d.toISOString()
  const date = iso.slice(0, 10).replaceAll('-', '')
  return [date, `${date}T${iso.slice(11, 19).replaceAll(':', '')}Z`]
}

function signReq(req: unknown, config: unknown, timeNs: unknown): unknown {
  if (!isObj(req) || !isObj(config)) return undefined
  if (!REQUIRED_CONFIG.every((k) => isStr(config[k]))) return undefined
  if (typeof timeNs !== 'number' || !Number.isInteger(timeNs)) return undefined
  if (!Object.keys(req).every((k) => REQUEST_KEYS.has(k))) return undefined
  if (!isStr(req.url) || !isStr(req.method)) return undefined
  if (req.headers !== undefined && !isObj(req.headers)) return undefined
  const disable = config.disable_payload_signing
  if (disable !== undefined && typeof disable !== 'boolean') return undefined
  const url = urlParts(req.url)
  if (url === undefined) return undefined

  const service = config.aws_service as string
  const region = config.aws_region as string
  const token = str(config.aws_session_token)
  const body = 'raw_body' in req ? str(req.raw_body) : 'body' in req ? goJson(req.body) : ''
  const bodyHash = disable === true ? 'UNSIGNED-PAYLOAD' : hexSha(utf8(body))
  const [date, now] = stamps(timeNs)

  const aws: Record<string, string> = { host: url.host, 'x-amz-date': now }
  if (service === 's3' || service === 'glacier') aws['x-amz-content-sha256'] = bodyHash
  if (token !== '') aws['x-amz-security-token'] = token
  const headers: Record<string, string> = {}
  for (const [k, v] of Object.entries((req.headers as Obj | undefined) ?? {})) headers[k] = str(v)

  const toSign = new Map<string, string>(Object.entries(aws))
  for (const [k, v] of Object.entries(headers))
    if (!IGNORED.has(k.toLowerCase())) toSign.set(k.toLowerCase(), v)
  const names = [...toSign.keys()].sort(compareUtf8)
  const canonical =
    `${req.method}\n${url.path}\n${url.query}\n` +
    names.map((k) => `${k}:${toSign.get(k)}\n`).join('') +
    `\n${names.join(';')}\n${bodyHash}`
  const scope = `${date}/${region}/${service}/aws4_request`
  const stringToSign = `AWS4-HMAC-SHA256\n${now}\n${scope}\n${hexSha(utf8(canonical))}`
  let key = mac(utf8(`AWS4${config.aws_secret_access_key as string}`), date)
  for (const part of [region, service, 'aws4_request']) key = mac(key, part)
  const signature = toHex(mac(key, stringToSign))
  const authorization = `AWS4-HMAC-SHA256 Credential=${config.aws_access_key as string}/${scope},SignedHeaders=${names.join(';')},Signature=${signature}`
  return { ...req, headers: { ...headers, Authorization: authorization, ...aws } }
}

export const awsBuiltins: Record<string, RegoBuiltin> = {
  'providers.aws.sign_req': signReq,
}
