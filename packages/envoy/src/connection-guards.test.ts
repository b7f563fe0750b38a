import { once } from 'node:events'
import http2 from 'node:http2'
import net from 'node:net'
import { createEngine, type Evaluator } from '@verdict/core'
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
    expect(() => createExtAuthzServer({ engine, receiveTimeoutMs: 0 })).toThrow(RangeError)
    expect(() => createExtAuthzServer({ engine, grpcMaxConcurrentStreams: 1.5 })).toThrow(RangeError)
  })
})
