/**
 * The HTTP client every management-plane call uses (OPA's "service"): a base URL, a bearer token
 * from a file (read again when the file changes), client TLS, extra headers, a deadline per
 * request, a ceiling on the answer's size, and redirects followed only within the same origin.
 */
import { readFileSync, statSync } from 'node:fs'
import { request as httpRequest, type IncomingHttpHeaders, type RequestOptions } from 'node:http'
import { request as httpsRequest } from 'node:https'

export interface ServiceTls {
  /** Client certificate and key (PEM), for services that authenticate clients by TLS. */
  readonly cert?: string | Uint8Array
  readonly key?: string | Uint8Array
  /** CA certificates to trust instead of Node's defaults. */
  readonly ca?: string | Uint8Array
}

export interface ServiceOptions {
  /** Base URL; resources are resolved against it. */
  readonly url: string
  /** File holding a bearer token, sent as `Authorization: <scheme> <token>`; read again when it changes. */
  readonly tokenFile?: string
  /** Default `Bearer`. */
  readonly tokenScheme?: string
  readonly tls?: ServiceTls
  /** Further headers on every request. */
  readonly headers?: Readonly<Record<string, string>>
}

export interface ServiceResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
}

export interface CallOptions {
  readonly method?: 'GET' | 'POST'
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: Uint8Array
  /** Whole request deadline, answer included. */
  readonly timeoutMs: number
  /** Largest answer body accepted. */
  readonly maxBytes: number
  readonly signal?: AbortSignal
}

export class ServiceError extends Error {
  constructor(
    message: string,
    readonly httpCode?: number,
  ) {
    super(message)
  }
}

const MAX_REDIRECTS = 5

/** A service client; `call(resource)` resolves `resource` against the base URL. */
export interface ServiceClient {
  readonly url: string
  call(resource: string, o: CallOptions): Promise<ServiceResponse>
}

export function createServiceClient(o: ServiceOptions): ServiceClient {
  const original = new URL(o.url)
  const base = new URL(o.url.endsWith('/') ? o.url : `${o.url}/`)
  if (base.protocol !== 'http:' && base.protocol !== 'https:')
    throw new Error(`${o.url}: only http and https services`)
  let token: { value: string; mtimeMs: number; size: number } | undefined
  const readToken = (): string | undefined => {
    if (o.tokenFile === undefined) return undefined
    const st = statSync(o.tokenFile)
    if (token === undefined || token.mtimeMs !== st.mtimeMs || token.size !== st.size)
      token = { value: readFileSync(o.tokenFile, 'utf8').trim(), mtimeMs: st.mtimeMs, size: st.size }
    return token.value
  }
  const once = (url: URL, c: CallOptions): Promise<ServiceResponse> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...o.headers, ...c.headers }
      const t = readToken()
      if (t !== undefined) headers.authorization = `${o.tokenScheme ?? 'Bearer'} ${t}`
      if (c.body !== undefined) headers['content-length'] = String(c.body.length)
      let settled = false
      const finish = (e: ServiceError | undefined, r?: ServiceResponse) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        if (e !== undefined) {
          req.destroy()
          reject(e)
        } else resolve(r!)
      }
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
        method: c.method ?? 'GET',
        headers,
        ...(url.protocol === 'https:' && o.tls !== undefined
          ? ({
              ...(o.tls.cert !== undefined ? { cert: o.tls.cert } : {}),
              ...(o.tls.key !== undefined ? { key: o.tls.key } : {}),
              ...(o.tls.ca !== undefined ? { ca: o.tls.ca } : {}),
            } as RequestOptions)
          : {}),
        ...(c.signal !== undefined ? { signal: c.signal } : {}),
      })
      const timer = setTimeout(
        () => finish(new ServiceError(`no complete answer within ${c.timeoutMs} ms`)),
        c.timeoutMs,
      )
      timer.unref?.()
      req.on('error', (e) => finish(new ServiceError(`${url.origin}: ${e.message}`)))
      req.on('response', (res) => {
        res.on('error', () => finish(new ServiceError('answer was cut short', res.statusCode)))
        const declared = Number(res.headers['content-length'])
        if (Number.isFinite(declared) && declared > c.maxBytes)
          return finish(new ServiceError(`answer is larger than ${c.maxBytes} bytes`, res.statusCode))
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (d: Buffer) => {
          size += d.length
          if (size > c.maxBytes)
            finish(new ServiceError(`answer is larger than ${c.maxBytes} bytes`, res.statusCode))
          else chunks.push(d)
        })
        res.on('end', () => {
          if (!res.complete) finish(new ServiceError('answer was cut short', res.statusCode))
          else
            finish(undefined, {
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
            })
        })
        res.on('aborted', () => finish(new ServiceError('answer was cut short', res.statusCode)))
        res.on('close', () => finish(new ServiceError('answer was cut short', res.statusCode)))
      })
      req.end(c.body)
    })
  return {
    url: base.href,
    async call(resource, c) {
      let url = resource === '' ? original : new URL(resource.replace(/^\/+/, ''), base)
      for (let hop = 0; ; hop++) {
        const res = await once(url, c)
        if (![301, 302, 303, 307, 308].includes(res.status)) return res
        const location = res.headers.location
        if (location === undefined) return res
        const next = new URL(location, url)
        if (next.origin !== base.origin)
          throw new ServiceError(`redirect to another origin (${next.origin}) refused`, res.status)
        if (hop >= MAX_REDIRECTS) throw new ServiceError(`more than ${MAX_REDIRECTS} redirects`, res.status)
        url = next
      }
    },
  }
}
