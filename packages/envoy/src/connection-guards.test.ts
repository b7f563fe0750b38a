import { once } from 'node:events'
import http2 from 'node:http2'
import net from 'node:net'
import { createEngine, type Evaluator, VerdictUsageError } from '@verdict/core'
import { afterEach, describe, expect, it } from 'vitest'
import { createCheckClient } from './check-client.js'
import { createExtAuthzServer, type ExtAuthzServer, type ExtAuthzServerOptions } from './ext-authz-server.js'
import { checkMethod } from './proto.js'
import { createTelemetry } from './telemetry.js'

/** A rule body that answers true after `ms`, to hold checks in flight. */
const slow: Evaluator = {
  kind: 'slow',
  compile(config) {
    const ms = config as number
    return {
      ok: true,
      program: {
        evaluate: () => new Promise((r) => setTimeout(() => r({ ok: true, value: true }), ms)),
      },
    }
  },
}

const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check'
const allowRequest = { attributes: { request: { http: { method: 'GET', path: '/', headers: {} } } } }
/** Generous bound for "this happens": the configured timeouts in these tests are a few hundred ms. */
const SOON = 5000

let server: ExtAuthzServer | undefined
const cleanup: Array<() => void> = []
afterEach(async () => {
  for (const f of cleanup.splice(0)) f()
  await server?.stop()
  server = undefined
})

async function start(options: Partial<ExtAuthzServerOptions> = {}, decideMs = 0) {
  const engine = await createEngine(
    { rules: [{ id: 'all', action: 'allow', slow: decideMs }] },
    { evaluators: [slow] },
  )
  server = createExtAuthzServer({
    engine,
    grpc: { port: 0 },
    http: { port: 0 },
    telemetry: createTelemetry({ write: () => {}, processMetrics: false }),
    ...options,
  })
  const bound = await server.start()
  const client = createCheckClient(bound.grpc!)
  cleanup.push(() => client.close())
  return { grpc: bound.grpc!, http: bound.http!, client }
}

/** Resolves when `emitter` emits `event`, rejects past `ms`. */
function within<T = unknown>(emitter: NodeJS.EventEmitter, event: string, ms = SOON): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms)
    emitter.once(event, (...args: T[]) => {
      clearTimeout(timer)
      resolve(args)
    })
  })
}

function h2Session(target: string): http2.ClientHttp2Session {
  const session = http2.connect(`http://${target}`)
  session.on('error', () => {})
  cleanup.push(() => session.destroy())
  return session
}

/**
 * A Check stream that never ends: it sends a length prefix declaring `declared` bytes, then only
 * `sent` of them, or (with `body`) one whole message.
 */
function partialCheck(session: http2.ClientHttp2Session, declared: number, sent: number, body?: Buffer) {
  const stream = session.request({
    ':method': 'POST',
    ':path': CHECK_PATH,
    'content-type': 'application/grpc',
    te: 'trailers',
  })
  stream.on('error', () => {})
  const chunks: Buffer[] = []
  const trailers: http2.IncomingHttpHeaders[] = []
  stream.on('data', (c: Buffer) => chunks.push(c))
  stream.on('trailers', (t) => trailers.push(t))
  const prefix = Buffer.alloc(5)
  prefix.writeUInt32BE(body?.length ?? declared, 1)
  stream.write(prefix)
  stream.write(body ?? Buffer.alloc(sent, 0x41))
  return { stream, chunks, trailers }
}

/** A raw HTTP/1.1 connection that sends headers announcing a body and then only part of it. */
function slowHttpClient(target: string) {
  const [host, port] = target.split(':') as [string, string]
  const socket = net.connect(Number(port), host, () =>
    socket.write('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n0123456789'),
  )
  let received = ''
  socket.on('data', (d: Buffer) => {
    received += d.toString('latin1')
  })
  socket.on('error', () => {})
  const trickle = setInterval(() => socket.writable && socket.write('a'), 50)
  const closed = once(socket, 'close').then(() => clearInterval(trickle))
  cleanup.push(() => {
    clearInterval(trickle)
    socket.destroy()
  })
  return { closed, received: () => received }
}

describe('gRPC listener limits', () => {
  it('denies with 408 and resets a stream whose CheckRequest does not arrive in time, then serves checks', async () => {
    const { grpc, client } = await start({ receiveTimeoutMs: 300 })
    const session = h2Session(grpc)
    const stalled = [
      partialCheck(session, 1_000_000, 100_000),
      // A whole message without the end of the stream: grpc-js would never call the handler.
      partialCheck(session, 0, 0, checkMethod().requestSerialize(allowRequest)),
    ]
    for (const { stream, chunks, trailers } of stalled) {
      await within(stream, 'close')
      // The stream was answered with a denial before it was reset.
      expect(trailers[0]?.['grpc-status']).toBe('0')
      const res = checkMethod().responseDeserialize(Buffer.concat(chunks).subarray(5)) as {
        status?: { code?: number }
        deniedResponse?: { status?: { code?: string } }
      }
      expect(res.status?.code).toBe(7)
      expect(res.deniedResponse?.status?.code).toBe('RequestTimeout')
      expect(stream.rstCode).toBe(http2.constants.NGHTTP2_CANCEL)
    }
    // The connection and the server still work.
    expect(session.destroyed).toBe(false)
    const ok = await client.check(allowRequest)
    expect(ok.status?.code ?? 0).toBe(0)
  })

  it('closes a connection past its maximum age and grace even with a stalled stream', async () => {
    const { grpc, client } = await start({
      receiveTimeoutMs: 60_000,
      grpcMaxConnectionAgeMs: 300,
      grpcMaxConnectionAgeGraceMs: 300,
    })
    const session = h2Session(grpc)
    const { stream } = partialCheck(session, 1_000_000, 100_000)
    const events = Promise.all([within(session, 'goaway'), within(stream, 'close'), within(session, 'close')])
    await events
    expect(stream.rstCode).not.toBe(http2.constants.NGHTTP2_NO_ERROR)
    expect((await client.check(allowRequest)).status?.code ?? 0).toBe(0)
  })

  it('announces its stream limit and closes connections without calls when idle', async () => {
    const { grpc } = await start({ grpcMaxConcurrentStreams: 3, grpcMaxConnectionIdleMs: 300 })
    const session = h2Session(grpc)
    const [settings] = await within<http2.Settings>(session, 'remoteSettings')
    expect(settings!.maxConcurrentStreams).toBe(3)
    await Promise.all([within(session, 'goaway'), within(session, 'close')])
  })

  it('destroys connections that send nothing, and those that never close after the server did', async () => {
    const { grpc, client } = await start({ firstByteTimeoutMs: 300, grpcMaxConnectionIdleMs: 300 })
    const [host, port] = grpc.split(':') as [string, string]
    const silent = net.connect(Number(port), host)
    silent.on('error', () => {})
    silent.resume()
    cleanup.push(() => silent.destroy())
    await within(silent, 'close')

    // An HTTP/2 preface and SETTINGS, then nothing: the idle session is closed gracefully, and the
    // peer (which keeps its side open) must not keep the socket past the wait.
    const stubborn = net.connect({ port: Number(port), host, allowHalfOpen: true })
    stubborn.on('error', () => {})
    cleanup.push(() => stubborn.destroy())
    stubborn.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'))
    stubborn.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]))
    stubborn.resume()
    await within(stubborn, 'end')
    // While the server still holds its socket it reads and drops these; once it has destroyed it,
    // the kernel answers them with a reset.
    const poke = setInterval(() => stubborn.writable && stubborn.write(Buffer.from([0])), 50)
    cleanup.push(() => clearInterval(poke))
    await within(stubborn, 'close')
    clearInterval(poke)
    expect((await client.check(allowRequest)).status?.code ?? 0).toBe(0)
  })
})

describe('HTTP listener limits', () => {
  it('slow bodies hold no check slot: gRPC and HTTP checks are decided, the slow clients get 408 and are closed', async () => {
    const { http, client } = await start({ maxConcurrent: 2, receiveTimeoutMs: 400 })
    const slowClients = Array.from({ length: 8 }, () => slowHttpClient(http))
    await new Promise((r) => setTimeout(r, 100))
    const [grpcRes, httpRes] = await Promise.all([
      client.check(allowRequest),
      fetch(`http://${http}/x`, { method: 'POST', body: 'ok' }),
    ])
    expect(grpcRes.status?.message ?? '').not.toMatch(/too many checks/)
    expect(grpcRes.status?.code ?? 0).toBe(0)
    expect(httpRes.status).toBe(200)
    await Promise.all(slowClients.map((c) => c.closed))
    for (const c of slowClients) {
      expect(c.received()).toMatch(/^HTTP\/1\.1 408 /)
      expect(c.received().toLowerCase()).toContain('connection: close')
    }
  })

  it('closes connections that send nothing, but not one whose first request is being decided', async () => {
    const { http } = await start({ firstByteTimeoutMs: 300 }, 800)
    const [host, port] = http.split(':') as [string, string]
    const silent = net.connect(Number(port), host)
    silent.on('error', () => {})
    silent.resume()
    cleanup.push(() => silent.destroy())
    await within(silent, 'close')

    // The decision takes longer than the first-byte timeout; the answer still arrives.
    const res = await fetch(`http://${http}/x`)
    expect(res.status).toBe(200)
  })

  it('rejects limits that are not positive integers', async () => {
    const engine = await createEngine({ rules: [{ id: 'a', action: 'allow', match: { always: true } }] })
    expect(() => createExtAuthzServer({ engine, receiveTimeoutMs: 0 })).toThrow(VerdictUsageError)
    expect(() => createExtAuthzServer({ engine, grpcMaxConcurrentStreams: 1.5 })).toThrow(VerdictUsageError)
  })
})

/** What a raw HTTP/1.1 exchange produced. */
interface Exchange {
  /** Every byte received before the connection closed. */
  readonly received: Buffer
  /** The socket error, if any (EPIPE, ECONNRESET: the server reset the connection). */
  readonly error: string | undefined
  /** The whole request was handed to the kernel without an error. */
  readonly sent: boolean
  /** The server closed its side with a FIN (not only a reset). */
  readonly ended: boolean
  /** Milliseconds from connecting to the close. */
  readonly ms: number
}

/**
 * Send `head` and `body` in one write on a fresh connection, as a client that does not use
 * `Expect: 100-continue` does, and collect everything until the connection closes. With `halfOpen`
 * the client keeps its side open after the server's FIN (a stubborn client).
 */
function rawExchange(target: string, head: string, body: Buffer, halfOpen = false): Promise<Exchange> {
  const [host, port] = target.split(':') as [string, string]
  const t0 = performance.now()
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let error: string | undefined
    let sent = false
    let ended = false
    const socket = net.connect({ port: Number(port), host, allowHalfOpen: halfOpen }, () =>
      socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]), (e) => {
        sent = e == null
      }),
    )
    cleanup.push(() => socket.destroy())
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', () => {
      ended = true
    })
    socket.on('error', (e: NodeJS.ErrnoException) => {
      error ??= e.code
    })
    socket.on('close', () =>
      resolve({ received: Buffer.concat(chunks), error, sent, ended, ms: performance.now() - t0 }),
    )
  })
}

/** The first HTTP/1.1 answer in `raw` when it is complete (headers and its whole body), else undefined. */
function completeAnswer(
  raw: Buffer,
): { status: number; headers: Map<string, string>; body: string } | undefined {
  const text = raw.toString('latin1')
  const end = text.indexOf('\r\n\r\n')
  if (end === -1) return undefined
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n')
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine ?? '')
  if (m === null) return undefined
  const headers = new Map<string, string>()
  for (const l of lines) {
    const colon = l.indexOf(':')
    headers.set(l.slice(0, colon).toLowerCase(), l.slice(colon + 1).trim())
  }
  let rest = text.slice(end + 4)
  if (headers.get('transfer-encoding') === 'chunked') {
    let body = ''
    for (;;) {
      const eol = rest.indexOf('\r\n')
      const size = Number.parseInt(rest.slice(0, eol), 16)
      if (eol === -1 || !Number.isSafeInteger(size) || rest.length < eol + 2 + size + 2) return undefined
      if (size === 0) return { status: Number(m[1]), headers, body }
      body += rest.slice(eol + 2, eol + 2 + size)
      rest = rest.slice(eol + 2 + size + 2)
    }
  }
  const length = Number(headers.get('content-length'))
  if (!Number.isSafeInteger(length) || rest.length < length) return undefined
  return { status: Number(m[1]), headers, body: rest.slice(0, length) }
}

async function startLogged(policy: Record<string, unknown>, options: Partial<ExtAuthzServerOptions> = {}) {
  const lines: string[] = []
  const telemetry = createTelemetry({ write: (l) => lines.push(l), processMetrics: false })
  const engine = await createEngine(
    { rules: [{ id: 'all', action: 'allow', match: { always: true } }], ...policy },
    { onDecision: telemetry.onDecision },
  )
  server = createExtAuthzServer({ engine, telemetry, grpc: { port: 0 }, http: { port: 0 }, ...options })
  const bound = await server.start()
  const client = createCheckClient(bound.grpc!)
  cleanup.push(() => client.close())
  const decisions = () =>
    lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'decision')
  return { engine, http: bound.http!, client, decisions }
}

const MiB = 1024 * 1024

describe('HTTP listener: answers sent before the request is read', () => {
  it('a 413 reaches the client on 20 fresh connections in a row, with 2-5 MB bodies sent in one go', async () => {
    const { http, decisions } = await startLogged({}, { maxRequestBytes: MiB })
    const results: Exchange[] = []
    for (let i = 0; i < 20; i++) {
      const body = Buffer.alloc((2 + (i % 4)) * MiB, 0x61)
      // Half declare their length (refused before a byte of the body is read), half are chunked
      // (refused when the limit is crossed mid-body).
      const head =
        i % 2 === 0
          ? `POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n`
          : `POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n`
      const tail = i % 2 === 0 ? Buffer.alloc(0) : Buffer.from('\r\n0\r\n\r\n')
      results.push(await rawExchange(http, head, Buffer.concat([body, tail])))
    }
    const answers = results.map((r) => completeAnswer(r.received))
    expect(answers.filter((a) => a?.status === 413 && a.body === 'access denied')).toHaveLength(20)
    for (const a of answers) expect(a?.headers.get('connection')).toBe('close')
    // The server read the body it refused instead of resetting the connection under the client.
    expect(results.map((r) => r.error)).toEqual(Array(20).fill(undefined))
    expect(results.every((r) => r.sent && r.ended)).toBe(true)
    const logged = decisions()
    expect(logged).toHaveLength(20)
    for (const l of logged) expect(l).toMatchObject({ allowed: false, status: 413, code: 'body_too_large' })
  })

  it('stops reading a refused connection at the byte budget or the time budget', async () => {
    const { http } = await startLogged(
      {},
      { maxRequestBytes: 1000, lingerMaxBytes: 256 * 1024, lingerTimeoutMs: 400 },
    )
    // A body far over the byte budget: the connection is destroyed once it is read, long before
    // the whole body could be sent, and the answer was still received first.
    const big = await rawExchange(
      http,
      'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 67108864\r\n\r\n',
      Buffer.alloc(64 * MiB, 0x61),
      true,
    )
    expect(completeAnswer(big.received)?.status).toBe(413)
    expect(big.sent).toBe(false)
    expect(big.error).toMatch(/ECONNRESET|EPIPE/)

    // A client that keeps its side open and trickles bytes: closed once the time budget is over.
    const [host, port] = http.split(':') as [string, string]
    const slow = net.connect({ port: Number(port), host, allowHalfOpen: true })
    slow.on('error', () => {})
    cleanup.push(() => slow.destroy())
    let received = ''
    let answeredAt = 0
    slow.on('data', (d: Buffer) => {
      received += d.toString('latin1')
      answeredAt ||= performance.now()
    })
    slow.write('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n')
    const trickle = setInterval(() => slow.writable && slow.write('a'), 20)
    cleanup.push(() => clearInterval(trickle))
    await within(slow, 'close')
    clearInterval(trickle)
    const lingered = performance.now() - answeredAt
    expect(completeAnswer(Buffer.from(received, 'latin1'))?.status).toBe(413)
    expect(lingered).toBeGreaterThan(300)
    expect(lingered).toBeLessThan(2000)
  })
})

/** `count` headers of `size` bytes each (name and value), for a header set of count x size bytes. */
function headerLines(count: number, size: number): string {
  let out = ''
  for (let i = 0; i < count; i++) {
    const name = `x-h${String(i).padStart(4, '0')}`
    out += `${name}: ${'v'.repeat(size - name.length)}\r\n`
  }
  return out
}

const get = (headers: string) => `GET /h HTTP/1.1\r\nHost: a\r\nConnection: close\r\n${headers}\r\n`

describe('HTTP listener: header limit follows the policy', () => {
  it('a policy allowing 128 KiB of headers gets a 100 KiB header set through the listener', async () => {
    const { http, decisions } = await startLogged({ input: { maxHeaderBytes: 128 * 1024 } })
    const r = await rawExchange(http, get(headerLines(50, 2048)), Buffer.alloc(0))
    expect(completeAnswer(r.received)?.status).toBe(200)
    expect(decisions().at(-1)).toMatchObject({ allowed: true, rule: 'all' })
  })

  it('a policy allowing 8 KiB refuses 10 KiB with its own 431; past the listener limit Node refuses, logged the same way', async () => {
    const { http, engine, decisions } = await startLogged({ input: { maxHeaderBytes: 8 * 1024 } })
    const byPolicy = completeAnswer(
      (await rawExchange(http, get(headerLines(5, 2048)), Buffer.alloc(0))).received,
    )
    expect(byPolicy?.status).toBe(431)
    const policyLine = decisions().at(-1)!
    expect(policyLine).toMatchObject({ allowed: false, status: 431, code: 'headers_too_large' })

    // 40 KiB is over the listener's limit (8 KiB + room): Node's parser refuses it before verdict
    // sees a request, and the sidecar answers and logs that refusal as a denial.
    const byListener = completeAnswer(
      (await rawExchange(http, get(headerLines(20, 2048)), Buffer.alloc(0))).received,
    )
    expect(byListener?.status).toBe(431)
    expect(byListener?.body).toBe('access denied')
    expect(byListener?.headers.get('connection')).toBe('close')
    const listenerLine = decisions().at(-1)!
    expect(listenerLine).toMatchObject({ allowed: false, status: 431, code: 'headers_too_large' })
    expect(listenerLine.id).not.toBe(policyLine.id)
    expect(Object.keys(listenerLine).sort()).toEqual(Object.keys(policyLine).sort())

    // After a reload to 128 KiB, new connections take 100 KiB of headers.
    await engine.update({
      input: { maxHeaderBytes: 128 * 1024 },
      rules: [{ id: 'all', action: 'allow', match: { always: true } }],
    })
    const reloaded = await rawExchange(http, get(headerLines(50, 2048)), Buffer.alloc(0))
    expect(completeAnswer(reloaded.received)?.status).toBe(200)
  })

  it('413 denials log the same fields on the gRPC and HTTP listeners', async () => {
    const { http, client, decisions } = await startLogged({}, { maxRequestBytes: 1000 })
    const grpcRes = await client.check({
      attributes: { request: { http: { method: 'POST', path: '/', headers: {}, body: 'x'.repeat(5000) } } },
    })
    expect(grpcRes.deniedResponse?.status?.code).toBe('PayloadTooLarge')
    const grpcLine = decisions().at(-1)!
    const r = await rawExchange(
      http,
      'POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n',
      Buffer.alloc(5000, 0x61),
    )
    expect(completeAnswer(r.received)?.status).toBe(413)
    const httpLine = decisions().at(-1)!
    for (const line of [grpcLine, httpLine])
      expect(line).toMatchObject({ allowed: false, status: 413, code: 'body_too_large', rule: null })
    expect(Object.keys(httpLine).sort()).toEqual(Object.keys(grpcLine).sort())
    expect(grpcLine.id).toBe(grpcRes.dynamicMetadata?.decision_id)
  })
})
