/**
 * A small client for the Authorization and Health services, built from this package's `.proto`:
 * for tests, benchmarks and probes of a running sidecar.
 */
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js'
import { checkMethod, healthCheckMethod, type Method } from './proto.js'
import { type StructMessage, structToJson } from './struct.js'

/** A CheckResponse as decoded, with `dynamicMetadata` turned into plain JSON. */
export interface CheckResponseMessage {
  status?: { code?: number; message?: string }
  okResponse?: {
    headers?: Array<{ header?: { key?: string; value?: string }; appendAction?: string }>
    headersToRemove?: string[]
    responseHeadersToAdd?: Array<{ header?: { key?: string; value?: string }; appendAction?: string }>
    queryParametersToSet?: Array<{ key?: string; value?: string }>
    queryParametersToRemove?: string[]
  }
  deniedResponse?: {
    status?: { code?: string }
    headers?: Array<{ header?: { key?: string; value?: string }; appendAction?: string }>
    body?: string
  }
  dynamicMetadata?: Record<string, unknown>
}

export interface CheckClient {
  /** Send a CheckRequest given as a message object (protobuf JSON names; Structs as `{fields}`). */
  check(request: unknown, options?: { deadlineMs?: number }): Promise<CheckResponseMessage>
  /** Send already-encoded bytes as a CheckRequest (to test what a server does with bad input). */
  checkBytes(bytes: Uint8Array, options?: { deadlineMs?: number }): Promise<CheckResponseMessage>
  /** `grpc.health.v1.Health/Check`: `SERVING`, `NOT_SERVING`, ... */
  health(service?: string): Promise<string>
  close(): void
}

function decode(m: Method, bytes: Buffer): CheckResponseMessage {
  const msg = m.responseDeserialize(bytes) as CheckResponseMessage & { dynamicMetadata?: unknown }
  if (msg.dynamicMetadata !== undefined)
    msg.dynamicMetadata = structToJson(msg.dynamicMetadata as StructMessage)
  return msg
}

/** TLS for `createCheckClient`: the CA to trust, and a client certificate for mTLS (PEM). */
export interface CheckClientTls {
  readonly ca: string | Buffer
  readonly cert?: string | Buffer
  readonly key?: string | Buffer
}

/**
 * Connect to a sidecar over gRPC: plaintext, or TLS with `options.tls`. `target` is `host:port`
 * or `unix:<path>`.
 *
 * @example
 * ```ts
 * const client = createCheckClient('127.0.0.1:9000')
 * const res = await client.check({ attributes: { request: { http: { method: 'GET', path: '/' } } } })
 * res.status?.code // 0 when allowed
 * ```
 */
export function createCheckClient(target: string, options: { tls?: CheckClientTls } = {}): CheckClient {
  const tls = options.tls
  const toBuffer = (v: string | Buffer | undefined): Buffer | null =>
    v === undefined ? null : Buffer.isBuffer(v) ? v : Buffer.from(v)
  const client = new Client(
    target,
    tls === undefined
      ? credentials.createInsecure()
      : credentials.createSsl(toBuffer(tls.ca), toBuffer(tls.key), toBuffer(tls.cert)),
  )
  const m = checkMethod()
  const h = healthCheckMethod()
  const unary = <Req, Res>(
    path: string,
    serialize: (v: Req) => Buffer,
    deserialize: (b: Buffer) => Res,
    arg: Req,
    deadlineMs: number,
  ): Promise<Res> =>
    new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        path,
        serialize,
        deserialize,
        arg,
        new Metadata(),
        { deadline: Date.now() + deadlineMs },
        (err: ServiceError | null, res?: Res) => (err ? reject(err) : resolve(res as Res)),
      )
    })
  return {
    check(request, o) {
      return unary(m.path, m.requestSerialize, (b) => decode(m, b), request, o?.deadlineMs ?? 5000)
    },
    checkBytes(bytes, o) {
      return unary(
        m.path,
        (b: Uint8Array) => Buffer.from(b),
        (b) => decode(m, b),
        bytes,
        o?.deadlineMs ?? 5000,
      )
    },
    async health(service = '') {
      const res = await unary(h.path, h.requestSerialize, h.responseDeserialize, { service }, 5000)
      return String((res as { status?: string }).status ?? 'UNKNOWN')
    },
    close() {
      client.close()
    },
  }
}
