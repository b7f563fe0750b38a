/**
 * Fault injection and conformance for the hand-written gRPC listener (packages/envoy/src/
 * grpc-server.ts and wire.ts), over real HTTP/2 on loopback: node:http2 streams carrying bytes
 * built by hand, and raw HTTP/2 frames where a client library would refuse to misbehave.
 *
 * Fail closed means: never an allow for a request that is not a well-formed Check, never a crash or
 * a hang, the status docs/envoy.md ("What the gRPC listener refuses") names, and the server serves
 * the next client afterwards. Every fault is applied to a request that would be allowed without
 * it, so a fault the server misses shows up as an allow.
 *
 * The differential part encodes requests with protobuf.js (through @grpc/proto-loader, from the
 * package's own .proto files — not the server's encoder) and compares the answer with `decide()` on
 * the same request as protobuf JSON.
 */
import http2 from 'node:http2'
import { fileURLToPath } from 'node:url'
import { loadSync } from '@grpc/proto-loader'
import { createEngine, type Decision, type Engine, type Evaluator, toCheckResponse } from '@verdict/core'
import {
  createExtAuthzServer,
  createTelemetry,
  type ExtAuthzServer,
  type ExtAuthzServerOptions,
} from '@verdict/envoy'
import { opaEnvoyInput } from '@verdict/rego-adapter'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  anyOfType,
  CHECK_PATH,
  checkHeaders,
  FLAG,
  FT,
  frame,
  grpcFrame,
  hpack,
  ld,
  PREFACE,
  RawH2,
  rstStream,
  settings,
  tag,
  varint,
  vf,
  WT,
  windowUpdate,
} from './grpc-wire/h2-raw.js'
import { EDGE_CASES, generatedCorpus } from './opa-parity/corpus.js'

type Obj = Record<string, unknown>

/** Generous bound for "this happens" (a hang fails the test instead of timing it). */
const SOON = 10_000
const RECEIVE_TIMEOUT_MS = 400
const MAX_REQUEST_BYTES = 64 * 1024

// ---- the independent encoder: protobuf.js from packages/envoy/proto ----

const PROTO_DIR = fileURLToPath(new URL('../packages/envoy/proto/', import.meta.url))
const defs = loadSync(['envoy/service/auth/v3/external_auth.proto'], {
  includeDirs: [PROTO_DIR],
  keepCase: false,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: false,
})
const checkDef = (defs['envoy.service.auth.v3.Authorization'] as Record<string, any>).Check
const encodeRequest = (m: unknown): Buffer => checkDef.requestSerialize(m)
const decodeResponse = (b: Buffer): Obj => checkDef.responseDeserialize(b)

// ---- the server ----

const ALLOW_RULE = {
  id: 'header-allow',
  action: 'allow',
  match: { headers: [{ name: 'x-ext-authz', exact: 'allow' }] },
}

const quiet = () => createTelemetry({ write: () => {}, processMetrics: false })

const servers: ExtAuthzServer[] = []
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()))
})

async function startServer(engine: Engine, extra: Partial<ExtAuthzServerOptions> = {}): Promise<string> {
  const server = createExtAuthzServer({
    engine,
    telemetry: quiet(),
    grpc: { host: '127.0.0.1', port: 0 },
    receiveTimeoutMs: RECEIVE_TIMEOUT_MS,
    maxRequestBytes: MAX_REQUEST_BYTES,
    ...extra,
  })
  servers.push(server)
  return (await server.start()).grpc!
}

// ---- calls over node:http2 ----

interface Answer {
  /** HTTP :status of the response headers. */
  readonly http: number | undefined
  /** grpc-status (trailers, or the headers of a trailers-only answer). */
  readonly grpcStatus: number | undefined
  readonly grpcMessage: string | undefined
  /** The response messages (gRPC prefix removed). */
  readonly messages: Buffer[]
  /** RST_STREAM code when the server reset the stream. */
  readonly reset: number | undefined
}

interface Verdict {
  readonly allowed: boolean
  /** HTTP status of the denial (`denied_response.status`), 200 for an allow. */
  readonly status: number | undefined
  readonly message: string
  readonly response: Obj
}

const HTTP_STATUS: Record<string, number> = {
  OK: 200,
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  RequestTimeout: 408,
  PayloadTooLarge: 413,
  RequestHeaderFieldsTooLarge: 431,
  TooManyRequests: 429,
  ServiceUnavailable: 503,
}

/** What an Envoy with `failure_mode_allow: false` makes of an answer. */
function verdictOf(a: Answer): Verdict {
  if (a.grpcStatus !== 0 || a.messages.length !== 1)
    return { allowed: false, status: undefined, message: a.grpcMessage ?? '', response: {} }
  const r = decodeResponse(a.messages[0]!)
  const code = ((r.status as Obj | undefined)?.code as number | undefined) ?? 0
  const denied = r.deniedResponse as { status?: { code?: string } } | undefined
  return {
    allowed: code === 0,
    status: code === 0 ? 200 : (HTTP_STATUS[denied?.status?.code ?? 'Forbidden'] ?? -1),
    message: ((r.status as Obj | undefined)?.message as string | undefined) ?? '',
    response: r,
  }
}

function session(target: string, options: http2.SessionOptions = {}): http2.ClientHttp2Session {
  const s = http2.connect(`http://${target}`, options)
  s.on('error', () => {})
  return s
}

interface CallOptions {
  readonly path?: string
  readonly headers?: http2.OutgoingHttpHeaders
  /** Written one after another; with `gapMs`, with a pause between them. */
  readonly chunks?: readonly Buffer[]
  readonly gapMs?: number
  /** Leave the stream open after the chunks (no END_STREAM). */
  readonly keepOpen?: boolean
  /** Give up (a hang) after this long. */
  readonly ms?: number
}

/** One call on `s`; resolves with everything the server sent once the stream closed. */
function call(s: http2.ClientHttp2Session, body: Buffer | undefined, o: CallOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = s.request({
      ':method': 'POST',
      ':path': o.path ?? CHECK_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...o.headers,
    })
    let http: number | undefined
    let grpcStatus: number | undefined
    let grpcMessage: string | undefined
    const data: Buffer[] = []
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h['grpc-status'] !== undefined) grpcStatus = Number(h['grpc-status'])
      if (typeof h['grpc-message'] === 'string') grpcMessage = decodeURIComponent(h['grpc-message'])
    }
    stream.on('response', (h) => {
      http = Number(h[':status'])
      take(h)
    })
    stream.on('trailers', take)
    stream.on('data', (c: Buffer) => data.push(c))
    stream.on('error', () => {})
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL)
      reject(new Error(`call did not end within ${o.ms ?? SOON} ms (a hang)`))
    }, o.ms ?? SOON)
    stream.on('close', () => {
      clearTimeout(timer)
      const all = Buffer.concat(data)
      const messages: Buffer[] = []
      let at = 0
      while (at + 5 <= all.length) {
        const n = all.readUInt32BE(at + 1)
        messages.push(all.subarray(at + 5, at + 5 + n))
        at += 5 + n
      }
      const code = stream.rstCode
      resolve({
        http,
        grpcStatus,
        grpcMessage,
        messages,
        reset: code !== undefined && code !== 0 && grpcStatus === undefined ? code : undefined,
      })
    })
    const chunks = o.chunks ?? (body === undefined ? [] : [grpcFrame(body)])
    void (async () => {
      for (const c of chunks) {
        if (stream.destroyed) return
        stream.write(c)
        if (o.gapMs !== undefined) await new Promise((r) => setTimeout(r, o.gapMs))
      }
      if (!o.keepOpen && !stream.destroyed) stream.end()
    })()
  })
}

async function check(s: http2.ClientHttp2Session, body: Buffer | undefined, o: CallOptions = {}) {
  return verdictOf(await call(s, body, o))
}

/** Runs `fn` over `items` with at most `n` at once. */
async function pool<T, R>(items: readonly T[], n: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++
        out[i] = await fn(items[i]!, i)
      }
    }),
  )
  return out
}

// ---- an allowed CheckRequest, built by hand, with room for a fault at every level ----

/** Message levels of the hand-built request; a fault can be appended to any of them. */
type Level =
  | 'top'
  | 'attributes'
  | 'peer'
  | 'address'
  | 'socketAddress'
  | 'pipe'
  | 'internal'
  | 'labelsEntry'
  | 'request'
  | 'time'
  | 'http'
  | 'headersEntry'
  | 'headerMap'
  | 'headerValue'
  | 'contextEntry'
  | 'metadata'
  | 'filterEntry'
  | 'struct'
  | 'structEntry'
  | 'value'
  | 'listValue'
  | 'tls'

/** Known fields per level and the wire type each must have. */
const KNOWN: Record<Level, Record<number, number>> = {
  top: { 1: WT.LEN },
  attributes: { 1: WT.LEN, 2: WT.LEN, 4: WT.LEN, 10: WT.LEN, 11: WT.LEN, 12: WT.LEN, 13: WT.LEN },
  peer: { 1: WT.LEN, 2: WT.LEN, 3: WT.LEN, 4: WT.LEN, 5: WT.LEN },
  address: { 1: WT.LEN, 2: WT.LEN, 3: WT.LEN },
  socketAddress: { 1: WT.VARINT, 2: WT.LEN, 3: WT.VARINT, 4: WT.LEN, 5: WT.LEN, 6: WT.VARINT },
  pipe: { 1: WT.LEN, 2: WT.VARINT },
  internal: { 1: WT.LEN, 2: WT.LEN },
  labelsEntry: { 1: WT.LEN, 2: WT.LEN },
  request: { 1: WT.LEN, 2: WT.LEN },
  time: { 1: WT.VARINT, 2: WT.VARINT },
  http: {
    1: WT.LEN,
    2: WT.LEN,
    3: WT.LEN,
    4: WT.LEN,
    5: WT.LEN,
    6: WT.LEN,
    7: WT.LEN,
    8: WT.LEN,
    9: WT.VARINT,
    10: WT.LEN,
    11: WT.LEN,
    12: WT.LEN,
    13: WT.LEN,
  },
  headersEntry: { 1: WT.LEN, 2: WT.LEN },
  headerMap: { 1: WT.LEN },
  headerValue: { 1: WT.LEN, 2: WT.LEN, 3: WT.LEN },
  contextEntry: { 1: WT.LEN, 2: WT.LEN },
  metadata: { 1: WT.LEN },
  filterEntry: { 1: WT.LEN, 2: WT.LEN },
  struct: { 1: WT.LEN },
  structEntry: { 1: WT.LEN, 2: WT.LEN },
  value: { 1: WT.VARINT, 2: WT.I64, 3: WT.LEN, 4: WT.VARINT, 5: WT.LEN, 6: WT.LEN },
  listValue: { 1: WT.LEN },
  tls: { 1: WT.LEN },
}

type Extra = Partial<Record<Level, Buffer>>

/**
 * CheckRequest { attributes { source { address { socket_address } labels } destination { pipe }
 * ... request { time, http { headers: x-ext-authz: allow, header_map { x-other } } }
 * context_extensions, metadata_context { "ns": { "k": [ "a" ] } }, tls_session } } with `extra`
 * appended at each level. Without extras the seed policy allows it.
 */
function allowRequest(x: Extra = {}, headerValue = 'allow'): Buffer {
  const e = (l: Level) => x[l] ?? Buffer.alloc(0)
  const socketAddress = ld(1, vf(1, 0), ld(2, '10.0.0.1'), vf(3, 8443), e('socketAddress'))
  const source = ld(
    1,
    ld(1, socketAddress, e('address')),
    ld(2, 'svc'),
    ld(3, ld(1, 'app'), ld(2, 'web'), e('labelsEntry')),
    ld(4, 'spiffe://cluster.local/ns/a/sa/b'),
    e('peer'),
  )
  const destination = ld(
    2,
    ld(1, ld(2, ld(1, '/run/x.sock'), vf(2, 438), e('pipe'))),
    ld(1, ld(3, ld(1, 'listener'), ld(2, 'ep'), e('internal'))),
  )
  const time = ld(1, vf(1, 1_700_000_000), vf(2, 5), e('time'))
  const headerMap = ld(13, ld(1, ld(1, 'x-other'), ld(2, '1'), e('headerValue')), e('headerMap'))
  const http = ld(
    2,
    ld(1, 'req-1'),
    ld(2, 'GET'),
    ld(3, ld(1, 'x-ext-authz'), ld(2, headerValue), e('headersEntry')),
    ld(4, '/productpage'),
    ld(5, 'example.com'),
    ld(6, 'https'),
    vf(9, 0),
    ld(10, 'HTTP/1.1'),
    headerMap,
    e('http'),
  )
  const request = ld(4, time, http, e('request'))
  const list = ld(6, ld(1, ld(3, 'a')), e('listValue'))
  const struct = ld(1, ld(1, 'k'), ld(2, list, e('value')), e('structEntry'))
  const metadata = ld(11, ld(1, ld(1, 'ns'), ld(2, struct, e('struct')), e('filterEntry')), e('metadata'))
  const attributes = ld(
    1,
    source,
    destination,
    request,
    ld(10, ld(1, 'tenant'), ld(2, 'blue'), e('contextEntry')),
    metadata,
    ld(12, ld(1, 'example.com'), e('tls')),
    e('attributes'),
  )
  return Buffer.concat([attributes, e('top')])
}

// ---- the suite ----

let target: string
let main: http2.ClientHttp2Session

beforeAll(async () => {
  target = await startServer(await createEngine({ rules: [ALLOW_RULE] }))
  main = session(target)
})
afterAll(() => main?.destroy())

/** A check on a new connection is still allowed: the server survived and serves others. */
async function stillServing(): Promise<void> {
  const s = session(target)
  try {
    const v = await check(s, allowRequest())
    expect(v.allowed).toBe(true)
  } finally {
    s.destroy()
  }
}

const isMalformed = (v: Verdict) => !v.allowed && v.status === 400

describe('the base request', () => {
  it('is allowed as built by hand and as protobuf.js encodes it; changing the header denies it', async () => {
    expect((await check(main, allowRequest())).allowed).toBe(true)
    const viaProtobufJs = encodeRequest({
      attributes: {
        request: { http: { method: 'GET', path: '/p', host: 'a', headers: { 'x-ext-authz': 'allow' } } },
      },
    })
    expect((await check(main, viaProtobufJs)).allowed).toBe(true)
    const denied = await check(main, allowRequest({}, 'deny'))
    expect(denied).toMatchObject({ allowed: false, status: 403 })
  })
})

describe('gRPC framing', () => {
  const body = allowRequest()

  it('a length prefix larger than the data, then END_STREAM: 400 denial', async () => {
    const v = await check(main, undefined, { chunks: [grpcFrame(body, 0, body.length + 10)] })
    expect(isMalformed(v)).toBe(true)
    expect(v.message).toMatch(/not one uncompressed CheckRequest/)
  })

  it('more bytes than the prefix says: 400 denial', async () => {
    const v = await check(main, undefined, {
      chunks: [grpcFrame(Buffer.concat([body, Buffer.from([1, 2, 3])]), 0, body.length)],
    })
    expect(isMalformed(v)).toBe(true)
  })

  it('two messages in a unary call: 400 denial', async () => {
    expect(isMalformed(await check(main, undefined, { chunks: [grpcFrame(body), grpcFrame(body)] }))).toBe(
      true,
    )
    // Even when they arrive in one DATA frame.
    expect(
      isMalformed(
        await check(main, undefined, { chunks: [Buffer.concat([grpcFrame(body), grpcFrame(body)])] }),
      ),
    ).toBe(true)
  })

  it('HEADERS with END_STREAM and no message at all, or 1-4 bytes of the prefix: 400 denial', async () => {
    expect(isMalformed(await check(main, undefined, { chunks: [] }))).toBe(true)
    for (let n = 1; n < 5; n++)
      expect(isMalformed(await check(main, undefined, { chunks: [grpcFrame(body).subarray(0, n)] }))).toBe(
        true,
      )
  })

  it('a zero-length message is an empty CheckRequest: decided (no attributes), denied 400', async () => {
    const a = await call(main, Buffer.alloc(0))
    expect(a.grpcStatus).toBe(0)
    const v = verdictOf(a)
    expect(isMalformed(v)).toBe(true)
    expect(v.message).toMatch(/no attributes/)
  })

  it('compressed flag without grpc-encoding, with gzip, with an unknown encoding, other flag values: 400 denial', async () => {
    const cases: Array<[number, http2.OutgoingHttpHeaders]> = [
      [1, {}],
      [1, { 'grpc-encoding': 'gzip' }],
      [1, { 'grpc-encoding': 'x-unknown' }],
      [0, { 'grpc-encoding': 'x-unknown' }],
      [2, {}],
      [0x80, {}],
      [0xff, {}],
    ]
    for (const [flag, headers] of cases) {
      const v = await check(main, undefined, { chunks: [grpcFrame(body, flag)], headers })
      if (flag === 0) {
        // An uncompressed message is read whatever grpc-encoding says (nothing is compressed).
        expect(v.allowed).toBe(true)
        continue
      }
      expect(isMalformed(v), `flag ${flag} ${JSON.stringify(headers)}`).toBe(true)
      expect(v.message).toMatch(/grpc-encoding is not supported/)
    }
  })

  it('a declared length over the limit is answered 413 at once, without reading (or waiting for) the rest', async () => {
    // The prefix declares 1 GiB; nothing more is sent and the stream stays open.
    const prefix = Buffer.from([0, 0x40, 0, 0, 0])
    const a = await call(main, undefined, { chunks: [prefix], keepOpen: true })
    const v = verdictOf(a)
    expect(v).toMatchObject({ allowed: false, status: 413 })
    // The stream is closed by the server (reset after the answer), which `call` waited for.
  })

  it('a message over the limit sent in full (1 MiB) is answered 413 by its prefix', async () => {
    const big = Buffer.alloc(MAX_REQUEST_BYTES * 16, 0x41)
    const a = await call(main, undefined, { chunks: [grpcFrame(big)] })
    expect(verdictOf(a)).toMatchObject({ allowed: false, status: 413 })
  })

  it('a message just at the limit is read; one byte over is 413 by the prefix alone', async () => {
    // Pad the allowed request with an unknown bytes field up to the limit.
    const pad = (total: number) => {
      const base = allowRequest()
      // field 99, wire type 2: tag (2 bytes) + length varint (3 bytes for these sizes) + data
      const data = Buffer.alloc(total - base.length - 2 - 3, 0x20)
      return Buffer.concat([base, ld(99, data)])
    }
    const atLimit = pad(MAX_REQUEST_BYTES)
    expect(atLimit.length).toBe(MAX_REQUEST_BYTES)
    expect((await check(main, atLimit)).allowed).toBe(true)
    const over = pad(MAX_REQUEST_BYTES + 1)
    expect(await check(main, over)).toMatchObject({ allowed: false, status: 413 })
  })

  it('the 5-byte prefix split over five DATA frames and the message over many: read as one message', async () => {
    const framed = grpcFrame(body)
    const chunks: Buffer[] = [...framed.subarray(0, 5)].map((b) => Buffer.from([b]))
    for (let at = 5; at < framed.length; at += 7) chunks.push(framed.subarray(at, at + 7))
    expect((await check(main, undefined, { chunks, gapMs: 2 })).allowed).toBe(true)
  })

  it('a body sent too slowly: 408 denial once receiveTimeoutMs passed, then the stream is reset', async () => {
    const framed = grpcFrame(body)
    const chunks = [...framed].map((b) => Buffer.from([b]))
    // One byte every 50 ms: the whole message would take several seconds.
    const a = await call(main, undefined, { chunks, gapMs: 50 })
    expect(verdictOf(a)).toMatchObject({ allowed: false, status: 408 })
    expect(verdictOf(a).message).toMatch(/not received within/)
  })

  it('a stream that sends headers and then nothing: 408 denial, not a hang', async () => {
    const v = await check(main, undefined, { chunks: [], keepOpen: true })
    expect(v).toMatchObject({ allowed: false, status: 408 })
  })

  it('Health/Check with a message over the limit: RESOURCE_EXHAUSTED at once', async () => {
    const a = await call(main, undefined, {
      path: '/grpc.health.v1.Health/Check',
      chunks: [Buffer.from([0, 0x40, 0, 0, 0])],
      keepOpen: true,
    })
    expect(a.grpcStatus).toBe(8)
  })

  it('Health/Check with a truncated message: INTERNAL, not an answer', async () => {
    const a = await call(main, undefined, {
      path: '/grpc.health.v1.Health/Check',
      chunks: [grpcFrame(ld(1, 'x'), 0, 10)],
    })
    expect(a.grpcStatus).toBe(13)
    const bad = await call(main, Buffer.from([0x0a, 0x05, 0x41]), { path: '/grpc.health.v1.Health/Check' })
    expect(bad.grpcStatus).toBe(13)
    await stillServing()
  })
})

describe('request headers', () => {
  const body = allowRequest()

  it('a content-type other than application/grpc[+codec][;params]: HTTP 415, no gRPC answer', async () => {
    for (const ct of [
      'application/json',
      'text/plain',
      'application/grpc-web',
      'application/grpc-web+proto',
      'application/grpcx',
      'application/GRPC',
    ]) {
      const a = await call(main, body, { headers: { 'content-type': ct } })
      expect(a.http, ct).toBe(415)
      expect(a.grpcStatus, ct).toBeUndefined()
      expect(a.messages, ct).toEqual([])
    }
    const none = await call(main, body, { headers: { 'content-type': undefined } })
    expect(none.http).toBe(415)
  })

  it('application/grpc+proto and ;charset parameters are protobuf; +json bytes are read as protobuf and refused', async () => {
    for (const ct of ['application/grpc+proto', 'application/grpc;charset=utf-8'])
      expect((await check(main, body, { headers: { 'content-type': ct } })).allowed, ct).toBe(true)
    const json = Buffer.from(
      JSON.stringify({
        attributes: { request: { http: { path: '/', headers: { 'x-ext-authz': 'allow' } } } },
      }),
    )
    const v = await check(main, json, { headers: { 'content-type': 'application/grpc+json' } })
    expect(isMalformed(v)).toBe(true)
  })

  it('te: trailers missing or different: served as usual (as gRPC servers do)', async () => {
    expect((await check(main, body, { headers: { te: undefined } })).allowed).toBe(true)
  })

  it('a method other than POST: HTTP 415 and no decision', async () => {
    for (const method of ['GET', 'PUT', 'HEAD']) {
      const a = await call(main, method === 'GET' || method === 'HEAD' ? undefined : body, {
        headers: { ':method': method },
      })
      expect(a.http, method).toBe(415)
      expect(a.messages).toEqual([])
    }
  })

  it('an unknown service or method path: UNIMPLEMENTED, trailers-only', async () => {
    for (const path of [
      '/envoy.service.auth.v2.Authorization/Check',
      '/envoy.service.auth.v3.authorization/check',
      '/envoy.service.auth.v3.Authorization/Check/',
      '/envoy.service.auth.v3.Authorization/Check?x=1',
      '/envoy.service.auth.v3.Authorization',
      '/',
      '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo',
    ]) {
      const a = await call(main, body, { path })
      expect(a.grpcStatus, path).toBe(12)
      expect(a.messages).toEqual([])
    }
  })

  it('grpc-timeout is not read: valid and invalid forms give the decision given without it', async () => {
    for (const t of [
      '1S',
      '100m',
      '5000u',
      '1000000n',
      '1H',
      '1M',
      '99999999S',
      '1n',
      '1',
      '-5S',
      '99999999999H',
      '1x',
      '',
      'S',
    ]) {
      expect((await check(main, body, { headers: { 'grpc-timeout': t } })).allowed, t).toBe(true)
      expect((await check(main, allowRequest({}, 'no'), { headers: { 'grpc-timeout': t } })).allowed, t).toBe(
        false,
      )
    }
  })

  it('huge metadata: more than 128 header fields reset the stream (ENHANCE_YOUR_CALM); large values are call metadata, not decided on', async () => {
    // gRPC metadata is not the checked request's headers (those are in the message).
    const large: http2.OutgoingHttpHeaders[] = [
      { 'x-big': 'a'.repeat(60_000) },
      Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`x-h${i}`, 'v'.repeat(600)])),
    ]
    for (const headers of large) {
      const s = session(target)
      expect((await check(s, allowRequest(), { headers })).allowed).toBe(true)
      expect((await check(s, allowRequest({}, 'deny'), { headers })).allowed).toBe(false)
      s.destroy()
    }
    const s = session(target)
    const many = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`x-n${i}`, 'v']))
    const a = await call(s, allowRequest(), { headers: many })
    expect(a.reset).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM)
    expect(a.messages).toEqual([])
    s.destroy()
    // A header field of 1 MB in HEADERS + CONTINUATION frames, sent raw.
    const c = new RawH2(target)
    await c.ready
    c.write(PREFACE, settings())
    const block = Buffer.concat([checkHeaders(target), hpack([['x-huge', 'b'.repeat(1 << 20)]])])
    const parts: Buffer[] = []
    for (let at = 0; at < block.length; at += 16_384) parts.push(block.subarray(at, at + 16_384))
    c.write(
      ...parts.map((p, i) =>
        frame(i === 0 ? FT.HEADERS : FT.CONTINUATION, i === parts.length - 1 ? FLAG.END_HEADERS : 0, 1, p),
      ),
      frame(FT.DATA, FLAG.END_STREAM, 1, grpcFrame(allowRequest())),
    )
    // nghttp2 refuses a header field over 64 KiB: GOAWAY with COMPRESSION_ERROR, no answer.
    await c.until(() => c.goaway !== undefined, SOON, 'GOAWAY')
    expect(c.goaway?.code).toBe(http2.constants.NGHTTP2_COMPRESSION_ERROR)
    expect(c.stream(1).data).toEqual([])
    c.destroy()
    await stillServing()
  })
})

describe('protobuf', () => {
  it('every known field with a wire type it cannot have: 400 denial, at every level', async () => {
    const cases: Array<[string, Buffer]> = []
    for (const [level, fields] of Object.entries(KNOWN) as Array<[Level, Record<number, number>]>)
      for (const [no, want] of Object.entries(fields))
        for (const wt of [WT.VARINT, WT.I64, WT.LEN, WT.SGROUP, WT.I32])
          if (wt !== want)
            cases.push([
              `${level}.${no} as wire type ${wt}`,
              allowRequest({ [level]: anyOfType(Number(no), wt) }),
            ])
    expect(cases.length).toBeGreaterThan(250)
    const results = await pool(cases, 16, ([, b]) => check(main, b))
    const wrong = cases.flatMap(([n], i) =>
      isMalformed(results[i]!) ? [] : [`${n}: ${JSON.stringify(results[i])}`],
    )
    expect(wrong).toEqual([])
  })

  it('an unknown field of each wire type, at every level, is skipped (still allowed)', async () => {
    const cases: Array<[string, Buffer]> = []
    for (const level of Object.keys(KNOWN) as Level[])
      for (const wt of [WT.VARINT, WT.I64, WT.LEN, WT.SGROUP, WT.I32])
        for (const no of [99, 536_870_911])
          cases.push([`${level}.${no} wire type ${wt}`, allowRequest({ [level]: anyOfType(no, wt) })])
    const results = await pool(cases, 16, ([, b]) => check(main, b))
    const wrong = cases.flatMap(([n], i) => (results[i]!.allowed ? [] : [n]))
    expect(wrong).toEqual([])
  })

  it('every strict prefix of the request (cut short anywhere): never an allow', async () => {
    const full = allowRequest()
    const cuts = Array.from({ length: full.length }, (_, i) => full.subarray(0, i))
    const results = await pool(cuts, 16, (b) => check(main, b))
    expect(results.filter((v) => v.allowed).length).toBe(0)
    expect(results.every((v) => v.status === 400)).toBe(true)
  })

  it('malformed varints, lengths, tags and groups: 400 denial', async () => {
    const eleven = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
    const cases: Array<[string, Buffer]> = [
      ['an 11-byte varint in http.size', allowRequest({ http: Buffer.concat([tag(9, WT.VARINT), eleven]) })],
      [
        'an 11-byte varint in time.seconds',
        allowRequest({ time: Buffer.concat([tag(1, WT.VARINT), eleven]) }),
      ],
      ['an 11-byte varint as a tag', Buffer.concat([allowRequest(), eleven])],
      ['a 6-byte tag', Buffer.concat([allowRequest(), Buffer.from([0x8a, 0x80, 0x80, 0x80, 0x80, 0x01])])],
      ['a varint cut at the end', Buffer.concat([allowRequest(), tag(99, WT.VARINT), Buffer.from([0xff])])],
      [
        'a length beyond the buffer',
        Buffer.concat([allowRequest(), tag(2, WT.LEN), varint(1000), Buffer.from('abc')]),
      ],
      [
        'a length beyond the buffer (attributes)',
        Buffer.concat([tag(1, WT.LEN), varint(100_000), allowRequest().subarray(3)]),
      ],
      [
        'a negative length (10-byte -1)',
        Buffer.concat([allowRequest(), tag(2, WT.LEN), varint(-1), Buffer.from('abc')]),
      ],
      [
        'a negative length (5-byte 0xffffffff)',
        Buffer.concat([
          allowRequest(),
          tag(2, WT.LEN),
          Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]),
          Buffer.from('abc'),
        ]),
      ],
      [
        'a negative string length in http.path',
        allowRequest({ http: Buffer.concat([tag(4, WT.LEN), varint(-2), Buffer.from('/x')]) }),
      ],
      ['field number 0 (varint)', Buffer.concat([allowRequest(), Buffer.from([0x00, 0x01])])],
      ['field number 0 (length-delimited)', allowRequest({ http: Buffer.from([0x02, 0x01, 0x41]) })],
      ['wire type 6', Buffer.concat([allowRequest(), Buffer.from([0x0e, 0x00])])],
      ['wire type 7', allowRequest({ attributes: Buffer.from([0x7f, 0x00]) })],
      ['a stray end-group tag', Buffer.concat([allowRequest(), tag(99, WT.EGROUP)])],
      ['a stray end-group tag inside http', allowRequest({ http: tag(7, WT.EGROUP) })],
      ['a group that is never closed', Buffer.concat([allowRequest(), tag(99, WT.SGROUP), vf(1, 1)])],
      [
        'a group closed by another field number',
        Buffer.concat([allowRequest(), tag(99, WT.SGROUP), tag(98, WT.EGROUP)]),
      ],
      [
        'groups nested 1,000 deep (unknown field)',
        Buffer.concat([
          allowRequest(),
          Buffer.concat(Array.from({ length: 1000 }, () => tag(99, WT.SGROUP))),
          Buffer.concat(Array.from({ length: 1000 }, () => tag(99, WT.EGROUP))),
        ]),
      ],
      ['fixed64 cut short', Buffer.concat([allowRequest(), tag(99, WT.I64), Buffer.alloc(3)])],
      ['fixed32 cut short', Buffer.concat([allowRequest(), tag(99, WT.I32), Buffer.alloc(2)])],
    ]
    const results = await pool(cases, 8, ([, b]) => check(main, b))
    const wrong = cases.flatMap(([n], i) =>
      isMalformed(results[i]!) ? [] : [`${n}: ${JSON.stringify(results[i])}`],
    )
    expect(wrong).toEqual([])
    await stillServing()
  })

  it('a field whose length runs past the end of the message holding it: 400 denial', async () => {
    // request { http { method, headers, path: length 12, but http ends after "/pro" } "ductpage" }:
    // a reader that lets the path run on reads "/productpage" and allows.
    const http = Buffer.concat([
      ld(2, 'GET'),
      ld(3, ld(1, 'x-ext-authz'), ld(2, 'allow')),
      ld(5, 'a'),
      tag(4, WT.LEN),
      varint(12),
      Buffer.from('/pro'),
    ])
    const request = Buffer.concat([tag(2, WT.LEN), varint(http.length), http, Buffer.from('ductpage')])
    const v = await check(main, ld(1, ld(4, request)))
    expect(isMalformed(v), JSON.stringify(v)).toBe(true)
    // The same bytes with the lengths right are allowed.
    const good = Buffer.concat([
      ld(2, 'GET'),
      ld(3, ld(1, 'x-ext-authz'), ld(2, 'allow')),
      ld(5, 'a'),
      ld(4, '/productpage'),
    ])
    expect((await check(main, ld(1, ld(4, ld(2, good))))).allowed).toBe(true)
  })

  it('Struct and ListValue nested past the depth limit in metadata_context / route_metadata_context: 400, no stack overflow', async () => {
    const nestStruct = (depth: number): Buffer => {
      let inner = ld(2, vf(4, 1))
      for (let i = 0; i < depth; i++) inner = ld(2, ld(5, ld(1, ld(1, 'a'), inner)))
      // Struct { fields { "a": inner } }
      return ld(1, ld(1, 'a'), inner)
    }
    const nestList = (depth: number): Buffer => {
      let value = vf(4, 1)
      for (let i = 0; i < depth; i++) value = ld(6, ld(1, value))
      return ld(1, ld(1, 'a'), ld(2, value))
    }
    const md = (field: number, struct: Buffer) => ld(field, ld(1, ld(1, 'ns'), ld(2, struct)))
    const cases = [
      md(11, nestStruct(70)),
      md(13, nestStruct(70)),
      md(11, nestList(70)),
      md(13, nestList(70)),
      md(11, nestStruct(3000)),
      md(11, nestList(8000)),
    ]
    for (const m of cases) {
      expect(m.length).toBeLessThan(MAX_REQUEST_BYTES)
      const v = await check(main, allowRequest({ attributes: m }))
      expect(isMalformed(v)).toBe(true)
      expect(v.message).toMatch(/nested deeper|does not decode/)
    }
    // 60 levels are within the limit.
    expect((await check(main, allowRequest({ attributes: md(11, nestStruct(60)) }))).allowed).toBe(true)
  })

  it('repeated header_map entries and case-variant header keys reach the canonical-request checks: 400 ambiguous_header', async () => {
    const entry = (k: string, v: string) => ld(1, ld(1, k), ld(2, v))
    const withHeaders = (httpExtra: Buffer) =>
      ld(1, ld(4, ld(2, Buffer.concat([ld(2, 'GET'), ld(4, '/'), ld(5, 'a'), httpExtra]))))
    const cases = [
      // header_map: the same name twice, and in another letter case.
      ld(13, entry('x-ext-authz', 'allow'), entry('x-ext-authz', 'allow')),
      ld(13, entry('x-ext-authz', 'allow'), entry('X-Ext-Authz', 'deny')),
      ld(13, entry('X-EXT-AUTHZ', 'allow'), entry('x-ext-authz', 'allow')),
      // headers (a map): keys that differ in case only are two lines of one header.
      Buffer.concat([
        ld(3, ld(1, 'x-ext-authz'), ld(2, 'allow')),
        ld(3, ld(1, 'X-Ext-Authz'), ld(2, 'deny')),
      ]),
      // headers and header_map both carrying it.
      Buffer.concat([ld(3, ld(1, 'x-ext-authz'), ld(2, 'allow')), ld(13, entry('x-ext-authz', 'deny'))]),
      // one value that is a comma list
      ld(3, ld(1, 'x-ext-authz'), ld(2, 'allow,deny')),
    ]
    for (const c of cases) {
      const v = await check(main, withHeaders(c))
      expect(v.allowed).toBe(false)
      expect(v.status).toBe(400)
      expect(v.message).toMatch(/x-ext-authz/)
    }
    // One header_map entry (raw_value) is an ordinary header.
    const raw = ld(13, ld(1, ld(1, 'x-ext-authz'), ld(3, Buffer.from('allow'))))
    expect((await check(main, withHeaders(raw))).allowed).toBe(true)
  })

  it('a map key sent twice in the headers map: the last entry wins, as in every protobuf decoder', async () => {
    const h = (v: string) => ld(3, ld(1, 'x-ext-authz'), ld(2, v))
    const req = (a: string, b: string) =>
      ld(1, ld(4, ld(2, Buffer.concat([ld(2, 'GET'), ld(4, '/'), ld(5, 'a'), h(a), h(b)]))))
    expect((await check(main, req('allow', 'deny'))).allowed).toBe(false)
    expect((await check(main, req('deny', 'allow'))).allowed).toBe(true)
    // protobuf.js reads the same bytes the same way.
    const decoded = checkDef.requestDeserialize(req('deny', 'allow'))
    expect(decoded.attributes.request.http.headers).toEqual({ 'x-ext-authz': 'allow' })
  })

  it('map entries with the key or the value missing: never an allow', async () => {
    const withEntry = (entry: Buffer) =>
      ld(1, ld(4, ld(2, Buffer.concat([ld(2, 'GET'), ld(4, '/'), ld(5, 'a'), ld(3, entry)]))))
    const cases = [withEntry(ld(2, 'allow')), withEntry(ld(1, 'x-ext-authz')), withEntry(Buffer.alloc(0))]
    for (const c of cases) {
      const v = await check(main, c)
      expect(v.allowed).toBe(false)
      expect([400, 403]).toContain(v.status)
    }
    // The key alone is the header with an empty value: present, not "allow".
    expect((await check(main, cases[1]!)).status).toBe(403)
  })

  it('invalid UTF-8 in a string field: 400 denial (proto3 strings are UTF-8), wherever it is', async () => {
    const bad = Buffer.from([0x61, 0xff, 0x62])
    const overlong = Buffer.from([0x2f, 0xc0, 0xaf]) // "/" written in two bytes
    const surrogate = Buffer.from([0xed, 0xa0, 0x80])
    const cases: Array<[string, Buffer]> = [
      [
        'header value',
        ld(
          1,
          ld(
            4,
            ld(
              2,
              Buffer.concat([
                ld(2, 'GET'),
                ld(4, '/'),
                ld(5, 'a'),
                ld(3, ld(1, 'x-ext-authz'), ld(2, Buffer.concat([Buffer.from('allow'), bad]))),
              ]),
            ),
          ),
        ),
      ],
      ['path', allowRequest({ http: ld(4, Buffer.concat([Buffer.from('/productpage'), overlong])) })],
      ['path (surrogate)', allowRequest({ http: ld(4, Buffer.concat([Buffer.from('/p'), surrogate])) })],
      ['header name', allowRequest({ http: ld(3, ld(1, bad), ld(2, 'v')) })],
      ['body', allowRequest({ http: ld(11, bad) })],
      ['principal', allowRequest({ peer: ld(4, bad) })],
      ['context extension', allowRequest({ contextEntry: ld(2, bad) })],
      ['metadata string', allowRequest({ value: ld(3, bad) })],
      ['metadata key', allowRequest({ struct: ld(1, ld(1, bad), ld(2, vf(4, 1))) })],
      ['header_map value', allowRequest({ headerValue: ld(2, bad) })],
      ['sni', allowRequest({ tls: ld(1, bad) })],
    ]
    const results = await pool(cases, 8, ([, b]) => check(main, b))
    const wrong = cases.flatMap(([n], i) =>
      isMalformed(results[i]!) ? [] : [`${n}: ${JSON.stringify(results[i])}`],
    )
    expect(wrong).toEqual([])
    // A U+FFFD that was sent as such is valid UTF-8.
    expect((await check(main, allowRequest({ contextEntry: ld(2, '\ufffd') }))).allowed).toBe(true)
    // raw_body is bytes, not a string: any bytes are read (and then judged by core).
    const raw = await check(main, allowRequest({ http: ld(12, Buffer.from([0x00, 0xff])) }))
    expect(raw.allowed).toBe(false)
  })

  it('two copies of attributes: the last one is read (what protobuf.js does); never an allow without the header', async () => {
    const one = allowRequest()
    const denied = allowRequest({}, 'deny')
    expect((await check(main, Buffer.concat([one, denied]))).allowed).toBe(false)
    expect((await check(main, Buffer.concat([denied, one]))).allowed).toBe(true)
  })
})

// ---- equivalence: the gRPC path against decide() on protobuf JSON ----

/** RFC 3339 as protobuf JSON writes a Timestamp: Z, 0, 3, 6 or 9 fractional digits. */
function rfc3339(seconds: number, nanos: number): string | undefined {
  // Years 1 to 9999 only: protobuf JSON cannot write other times (the request then has none).
  if (!(seconds >= -62_135_596_800 && seconds <= 253_402_300_799) || !(nanos >= 0 && nanos <= 999_999_999))
    return undefined
  const base = new Date(seconds * 1000).toISOString().slice(0, 19)
  if (nanos === 0) return `${base}Z`
  let frac = String(nanos).padStart(9, '0')
  while (frac.length > 3 && frac.endsWith('000')) frac = frac.slice(0, -3)
  return `${base}.${frac}Z`
}

/** Plain JSON -> google.protobuf.Struct as protobuf.js takes it (written here, not taken from src). */
function toStruct(o: Obj): Obj {
  const value = (v: unknown): Obj => {
    if (v === null) return { nullValue: 'NULL_VALUE' }
    if (typeof v === 'string') return { stringValue: v }
    if (typeof v === 'number') return { numberValue: v }
    if (typeof v === 'boolean') return { boolValue: v }
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } }
    return { structValue: toStruct(v as Obj) }
  }
  return { fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, value(v)])) }
}

function fromStruct(s: Obj | undefined): Obj {
  const value = (v: Obj): unknown => {
    if (v.stringValue !== undefined) return v.stringValue
    if (v.numberValue !== undefined) return v.numberValue
    if (v.boolValue !== undefined) return v.boolValue
    if (v.structValue !== undefined) return fromStruct(v.structValue as Obj)
    if (v.listValue !== undefined)
      return (((v.listValue as Obj).values as Obj[] | undefined) ?? []).map(value)
    return null
  }
  return Object.fromEntries(
    Object.entries((s?.fields as Record<string, Obj> | undefined) ?? {}).map(([k, v]) => [k, value(v)]),
  )
}

const MAP_FIELDS = new Set(['headers', 'labels', 'contextExtensions'])

function withoutEmptyMaps(o: Obj): Obj {
  const out: Obj = {}
  for (const [k, v] of Object.entries(o)) {
    const plain = typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v)
    if (plain && MAP_FIELDS.has(k) && Object.keys(v).length === 0) continue
    out[k] = plain && k !== 'filterMetadata' ? withoutEmptyMaps(v as Obj) : v
  }
  return out
}

/** A corpus request (time as {seconds, nanos}, metadata as JSON) as protobuf JSON and as a protobuf.js message. */
function twoForms(request: Obj): { json: Obj; message: Obj } {
  const a = request.attributes as Obj
  // An empty map is not on the wire at all: protobuf JSON of the same message leaves it out.
  const json = withoutEmptyMaps(a)
  const message: Obj = { ...a }
  const req = a.request as Obj | undefined
  const time = req?.time as { seconds?: string | number; nanos?: number } | undefined
  if (req !== undefined && time !== undefined) {
    const { time: _, ...rest } = req
    const text = rfc3339(Number(time.seconds ?? 0), time.nanos ?? 0)
    json.request = text === undefined ? rest : { ...rest, time: text }
  }
  for (const k of ['metadataContext', 'routeMetadataContext']) {
    // Known difference, not a decoding bug: a metadata message read from the wire always has its
    // (possibly empty) filterMetadata, where protobuf JSON leaves an empty map out.
    if (a[k] !== undefined) json[k] = { filterMetadata: {}, ...(a[k] as Obj) }
    const fm = (a[k] as Obj | undefined)?.filterMetadata as Record<string, Obj> | undefined
    if (fm !== undefined)
      message[k] = {
        filterMetadata: Object.fromEntries(Object.entries(fm).map(([ns, v]) => [ns, toStruct(v)])),
      }
  }
  return { json: { attributes: json }, message: { attributes: message } }
}

/** Where `a` and `b` (JSON values; strings holding JSON are compared parsed) first differ. */
function firstDiff(a: unknown, b: unknown, at: string): string | undefined {
  const parsed = (x: unknown) => {
    if (typeof x !== 'string' || !/^[[{]/.test(x)) return x
    try {
      return JSON.parse(x) as unknown
    } catch {
      return x
    }
  }
  const x = parsed(a)
  const y = parsed(b)
  if (typeof x === 'object' && x !== null && typeof y === 'object' && y !== null) {
    const keys = new Set([...Object.keys(x), ...Object.keys(y)])
    for (const k of keys) {
      const d = firstDiff((x as Obj)[k], (y as Obj)[k], `${at}.${k}`)
      if (d !== undefined) return d
    }
    return undefined
  }
  return JSON.stringify(x) === JSON.stringify(y)
    ? undefined
    : `${at}: gRPC ${JSON.stringify(x)} / decide ${JSON.stringify(y)}`
}

/** A CheckResponse reduced to what Envoy acts on, from protobuf.js's reading of the bytes. */
function fromWire(r: Obj): Obj {
  const status = r.status as Obj | undefined
  const options = (list: unknown) =>
    ((list as Obj[] | undefined) ?? []).map((o) => {
      const h = o.header as Obj
      return `${h.key}: ${h.value ?? ''} (${o.appendAction ?? 'APPEND_IF_EXISTS_OR_ADD'})`
    })
  const out: Obj = { code: status?.code ?? 0, message: status?.message ?? '' }
  const d = r.deniedResponse as Obj | undefined
  if (d !== undefined)
    out.denied = {
      status: (d.status as Obj | undefined)?.code ?? 'Empty',
      headers: options(d.headers),
      body: d.body ?? '',
    }
  const ok = r.okResponse as Obj | undefined
  if (ok !== undefined)
    out.ok = {
      headers: options(ok.headers),
      headersToRemove: ok.headersToRemove ?? [],
      responseHeadersToAdd: options(ok.responseHeadersToAdd),
      queryParametersToSet: ((ok.queryParametersToSet as Obj[] | undefined) ?? []).map(
        (q) => `${q.key}=${q.value ?? ''}`,
      ),
      queryParametersToRemove: ok.queryParametersToRemove ?? [],
    }
  const md = fromStruct(r.dynamicMetadata as Obj | undefined)
  delete md.decision_id
  out.dynamicMetadata = md
  return out
}

/** The same reduction of core's CheckResponse JSON for a decision. */
function fromDecision(d: Decision): Obj {
  const r = toCheckResponse(d) as unknown as Obj
  const asMessage: Obj = { ...r }
  if (r.dynamicMetadata !== undefined)
    asMessage.dynamicMetadata = toStruct(JSON.parse(JSON.stringify(r.dynamicMetadata)) as Obj)
  return fromWire(asMessage)
}

/** Request times at the edges of what protobuf JSON can write (years 1 to 9999) and past them. */
const TIME_CASES = (
  [
    [0, 0],
    [1, 1],
    [1, 1000],
    [1, 1_000_000],
    [1_700_000_000, 120_000_000],
    [-1, 5],
    [-62_135_596_800, 0],
    [253_402_300_799, 999_999_999],
    [253_402_300_800, 0],
    [-62_135_596_801, 0],
    [8_640_000_000_000, 0],
  ] as const
).map(([seconds, nanos]) => ({
  name: `request time ${seconds}s ${nanos}ns`,
  request: {
    attributes: {
      request: {
        time: { seconds: String(seconds), nanos },
        http: { method: 'GET', path: '/', host: 'a', headers: { 'x-case': 'echo' } },
      },
    },
  },
}))

describe('the gRPC path decides as decide() does on the same request as protobuf JSON', () => {
  /** A decide rule answering a denial whose body is everything the rules could read. */
  const echo: Evaluator = {
    kind: 'echo',
    compile: () => ({
      ok: true,
      program: {
        evaluate: (ctx) => ({
          ok: true,
          value: {
            allowed: ctx.input.headers['x-case'] === 'true',
            headers: { 'x-path': ctx.input.path },
            body: JSON.stringify({ input: ctx.input, opa: opaEnvoyInput(ctx) }),
            dynamic_metadata: { method: ctx.input.method, host: ctx.input.host, n: ctx.input.headerCount },
          },
        }),
      },
      readsHeaders: [],
    }),
  }

  it('over the generated corpus and the edge cases', async () => {
    const engine = await createEngine(
      { rules: [{ id: 'echo', action: 'decide', echo: {} }] },
      { evaluators: [echo] },
    )
    const seed = await createEngine({ rules: [ALLOW_RULE] })
    const t = await startServer(engine)
    const t2 = await startServer(seed)
    const s = session(t)
    const s2 = session(t2)
    const corpus = [...generatedCorpus(7, 120), ...EDGE_CASES, ...TIME_CASES].map((c) => ({
      name: c.name,
      ...twoForms(c.request),
    }))
    expect(corpus.length).toBeGreaterThan(140)
    const mismatches: string[] = []
    let allowed = 0
    await pool(corpus, 8, async (c) => {
      const bytes = encodeRequest(c.message)
      for (const [e, sess] of [
        [engine, s],
        [seed, s2],
      ] as const) {
        const a = await call(sess, bytes)
        expect(a.grpcStatus).toBe(0)
        const wire = fromWire(decodeResponse(a.messages[0]!))
        const local = fromDecision(await e.decide(c.json))
        if (wire.code === 0) allowed++
        const diff = firstDiff(wire, local, '')
        if (diff !== undefined) mismatches.push(`${c.name}: ${diff}`)
      }
    })
    s.destroy()
    s2.destroy()
    expect(mismatches).toEqual([])
    // Both outcomes occur.
    expect(allowed).toBeGreaterThan(5)
  })
})

// ---- HTTP/2 abuse ----

describe('HTTP/2 abuse', () => {
  const open = async (t: string): Promise<RawH2> => {
    const c = new RawH2(t)
    await c.ready
    c.write(PREFACE, settings(), windowUpdate(0, 1 << 30))
    return c
  }
  const messageOf = (data: Buffer[]): Buffer | undefined => {
    const all = Buffer.concat(data)
    if (all.length < 5) return undefined
    return all.subarray(5, 5 + all.readUInt32BE(1))
  }

  it('1,000 calls at once through node:http2 on one connection: all answered, all right', async () => {
    const s = session(target)
    const bodies = Array.from({ length: 1000 }, (_, i) => allowRequest({}, i % 2 === 0 ? 'allow' : 'deny'))
    const results = await Promise.all(bodies.map((b) => check(s, b, { ms: 30_000 })))
    s.destroy()
    expect(results.filter((v, i) => v.allowed !== (i % 2 === 0)).length).toBe(0)
  })

  it('1,000 streams opened at once on one raw connection, past the stream limit: excess refused, none wrongly allowed, others served', async () => {
    const c = await open(target)
    const headers = checkHeaders(target)
    const frames: Buffer[] = []
    const ids: number[] = []
    for (let i = 0; i < 1000; i++) {
      const id = 1 + 2 * i
      ids.push(id)
      frames.push(frame(FT.HEADERS, FLAG.END_HEADERS, id, headers))
      frames.push(
        frame(FT.DATA, FLAG.END_STREAM, id, grpcFrame(allowRequest({}, i % 2 === 0 ? 'allow' : 'deny'))),
      )
    }
    c.write(...frames)
    // Every stream ends one way or another: answered, reset, or the connection closed.
    await c.until(
      () =>
        c.closed ||
        ids.every(
          (id) =>
            c.streams.get(id)?.ended ||
            c.streams.get(id)?.rst !== undefined ||
            (c.goaway !== undefined && id > c.goaway.lastStream),
        ),
      SOON * 2,
      'end of every stream',
    )
    let answered = 0
    let refused = 0
    for (const [i, id] of ids.entries()) {
      const st = c.stream(id)
      const m = messageOf(st.data)
      if (m === undefined) {
        // Not taken: refused with REFUSED_STREAM (a client may retry it), never half-answered.
        expect(st.rst).toBe(http2.constants.NGHTTP2_REFUSED_STREAM)
        refused++
        continue
      }
      answered++
      const r = decodeResponse(m)
      const ok = ((r.status as Obj | undefined)?.code ?? 0) === 0
      expect(ok).toBe(i % 2 === 0)
    }
    // At least the stream limit (100) was served; streams past what was open at once were refused.
    expect(answered).toBeGreaterThanOrEqual(100)
    expect(refused).toBeGreaterThan(0)
    expect(answered + refused).toBe(1000)
    c.destroy()
    await stillServing()
  })

  it('RST_STREAM right after HEADERS (rapid reset), 10,000 times: GOAWAY (the limit in Node), nothing answered, others served', async () => {
    const c = await open(target)
    const headers = checkHeaders(target)
    for (let batch = 0; batch < 10 && c.goaway === undefined; batch++) {
      const frames: Buffer[] = []
      for (let i = 0; i < 1000; i++) {
        const id = 1 + 2 * (batch * 1000 + i)
        frames.push(frame(FT.HEADERS, FLAG.END_HEADERS, id, headers), rstStream(id, 8))
      }
      c.write(...frames)
      await new Promise((r) => setTimeout(r, 20))
    }
    await c.until(() => c.goaway !== undefined, SOON, 'GOAWAY')
    // No stream was answered with a decision.
    for (const st of c.streams.values()) expect(messageOf(st.data)).toBeUndefined()
    c.destroy()
    await stillServing()
  })

  it('a reset in the middle of a message, and after the message before the answer: no answer, others served', async () => {
    const c = await open(target)
    const headers = checkHeaders(target)
    const framed = grpcFrame(allowRequest())
    c.write(
      frame(FT.HEADERS, FLAG.END_HEADERS, 1, headers),
      frame(FT.DATA, 0, 1, framed.subarray(0, 20)),
      rstStream(1, 8),
      frame(FT.HEADERS, FLAG.END_HEADERS, 3, headers),
      frame(FT.DATA, FLAG.END_STREAM, 3, framed),
      rstStream(3, 8),
    )
    await new Promise((r) => setTimeout(r, 200))
    expect(messageOf(c.stream(1).data)).toBeUndefined()
    c.destroy()
    await stillServing()
  })

  it('floods: 5,000 empty DATA frames, 100,000 PINGs or SETTINGS whose ACKs are not read: GOAWAY and close, others served', async () => {
    const floods: Array<(t: string) => Buffer[]> = [
      (t) => [
        settings(),
        frame(FT.HEADERS, FLAG.END_HEADERS, 1, checkHeaders(t)),
        ...Array.from({ length: 5000 }, () => frame(FT.DATA, 0, 1)),
      ],
      () => [settings(), ...Array.from({ length: 100_000 }, () => frame(FT.PING, 0, 0, Buffer.alloc(8)))],
      () => Array.from({ length: 100_000 }, () => settings()),
    ]
    for (const flood of floods) {
      const c = new RawH2(target)
      await c.ready
      c.socket.pause()
      c.write(PREFACE, ...flood(target))
      await new Promise((r) => setTimeout(r, 300))
      c.socket.resume()
      await c.until(() => c.closed, SOON, 'close')
      expect(c.goaway).toBeDefined()
      expect(c.stream(1).data).toEqual([])
    }
    await stillServing()
  })

  it('malformed HTTP/2 requests (te other than trailers, connection headers, upper case, pseudo-headers missing, repeated, unknown or late, content-length not the body): RST_STREAM PROTOCOL_ERROR', async () => {
    const base = (extra: Array<[string, string]>, drop?: string): Array<[string, string]> => [
      ...(
        [
          [':method', 'POST'],
          [':scheme', 'http'],
          [':path', CHECK_PATH],
          [':authority', target],
          ['content-type', 'application/grpc'],
        ] as Array<[string, string]>
      ).filter(([n]) => n !== drop),
      ...extra,
    ]
    const cases: Array<Array<[string, string]>> = [
      base([['te', 'gzip']]),
      base([['connection', 'close']]),
      base([['X-Up', '1']]),
      base([], ':path'),
      base([], ':method'),
      base([], ':scheme'),
      base([[':path', CHECK_PATH]]),
      base([[':foo', 'x']]),
      [...base([]), [':status', '200']],
      base([['content-length', '3']]),
    ]
    const c = await open(target)
    cases.forEach((h, i) => {
      c.write(
        frame(FT.HEADERS, FLAG.END_HEADERS, 1 + 2 * i, hpack(h)),
        frame(FT.DATA, FLAG.END_STREAM, 1 + 2 * i, grpcFrame(allowRequest())),
      )
    })
    const ids = cases.map((_, i) => 1 + 2 * i)
    await c.until(() => ids.every((id) => c.stream(id).rst !== undefined), SOON, 'reset of every stream')
    for (const id of ids) {
      expect(c.stream(id).rst).toBe(http2.constants.NGHTTP2_PROTOCOL_ERROR)
      expect(c.stream(id).data).toEqual([])
    }
    c.destroy()
  })

  it('bytes that are not HTTP/2 (HTTP/1.1, a TLS hello, a bad preface, random bytes): connection closed, others served', async () => {
    const garbage = [
      Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'),
      Buffer.from(
        'POST /envoy.service.auth.v3.Authorization/Check HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n\0\0\0\0\0',
      ),
      Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]),
      Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n'),
      Buffer.concat([PREFACE, Buffer.from([0, 0, 4, 0xff, 0, 0, 0, 0, 1, 1, 2, 3, 4])]),
      Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)),
    ]
    for (const bytes of garbage) {
      const c = new RawH2(target)
      await c.ready
      c.socket.write(bytes)
      await c.until(() => c.closed, SOON, 'close')
      for (const st of c.streams.values()) expect(st.data).toEqual([])
    }
    await stillServing()
  })

  it('a connection that sends the preface and nothing else is closed', async () => {
    const t = await startServer(await createEngine({ rules: [ALLOW_RULE] }), {
      grpcMaxConnectionIdleMs: 300,
      firstByteTimeoutMs: 300,
    })
    const c = new RawH2(t)
    await c.ready
    c.write(PREFACE)
    await c.until(() => c.closed, SOON, 'close')
    // Nothing at all after connecting: closed too.
    const d = new RawH2(t)
    await d.ready
    await d.until(() => d.closed, SOON, 'close')
  })

  it('a client that never reads (stream windows of 0): answers it does not take are reset, streams past the limit refused, others served', async () => {
    const t = await startServer(await createEngine({ rules: [ALLOW_RULE] }), { grpcMaxConcurrentStreams: 20 })
    const c = new RawH2(t)
    await c.ready
    // INITIAL_WINDOW_SIZE 0: the server may send no DATA on any stream.
    c.write(PREFACE, settings([[4, 0]]))
    const headers = checkHeaders(t)
    const ids = Array.from({ length: 60 }, (_, i) => 1 + 2 * i)
    c.write(
      ...ids.flatMap((id) => [
        frame(FT.HEADERS, FLAG.END_HEADERS, id, headers),
        frame(FT.DATA, FLAG.END_STREAM, id, grpcFrame(allowRequest())),
      ]),
    )
    // Past the 20 held streams, the others are refused (REFUSED_STREAM) rather than queued.
    await c.until(
      () => ids.filter((id) => c.stream(id).rst === 7).length >= 40,
      SOON,
      'refusal of the streams past the limit',
    )
    // Another client of the same server is served meanwhile.
    const s = session(t)
    expect((await check(s, allowRequest())).allowed).toBe(true)
    s.destroy()
    // The held answers are dropped (CANCEL) once receiveTimeoutMs passed, not kept for the
    // connection's lifetime: the connection's streams and memory are free again.
    await c.until(() => ids.every((id) => c.stream(id).rst !== undefined), SOON, 'reset of every held stream')
    expect(ids.filter((id) => c.stream(id).rst === http2.constants.NGHTTP2_CANCEL).length).toBe(20)
    for (const id of ids) expect(c.stream(id).data).toEqual([])
    expect(c.closed).toBe(false)
    c.destroy()
  })
})
