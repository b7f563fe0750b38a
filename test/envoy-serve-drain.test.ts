/**
 * Drain without loss: `verdict serve` as a child process under 1,000 checks/s on each transport
 * (gRPC on one HTTP/2 connection, the HTTP service mode on a keep-alive pool), SIGTERM in the
 * middle, 10 runs. The load generator behaves as Envoy does with an active health check on the
 * sidecar: it polls `/readyz` and, once that says 503, sends no new checks here. Every check sent
 * must be answered with an allow, and the process must exit 0. Counts are asserted, not timings.
 */

import { Agent, request as httpRequest } from 'node:http'
import { type ClientHttp2Session, connect as h2connect } from 'node:http2'
import { beforeAll, describe, expect, it } from 'vitest'
import { checkMethod } from '../packages/envoy/src/proto.js'
import { buildCli, CHECK_PATH, SEED_000, startServe } from './fixtures/serve-process.js'

const RUNS = Number(process.env.DRAIN_RUNS ?? 10)
const RATE = 1000
/**
 * The sidecar keeps serving this long after SIGTERM. The generator polls /readyz every POLL_MS;
 * the delay is long enough for it to notice on a loaded machine (and for checks it queued to go).
 */
const DRAIN_DELAY_MS = 3000
const POLL_MS = 40

beforeAll(() => buildCli(), 180_000)

const message = checkMethod().requestSerialize({
  attributes: {
    request: { http: { method: 'GET', path: '/', host: 'a', headers: { 'x-ext-authz': 'allow' } } },
  },
})
const frame = Buffer.alloc(5 + message.length)
frame.writeUInt32BE(message.length, 1)
message.copy(frame, 5)

/** Counts of one transport's checks. */
interface Tally {
  sent: number
  allowed: number
  failed: string[]
  sentAfterSignal: number
}

/** One gRPC Check on `session`: true for an allow (grpc-status 0 and CheckResponse.status.code 0). */
function grpcCheck(session: ClientHttp2Session): Promise<true | string> {
  return new Promise((resolve) => {
    let stream: ReturnType<ClientHttp2Session['request']>
    try {
      stream = session.request({
        ':method': 'POST',
        ':path': CHECK_PATH,
        'content-type': 'application/grpc',
        te: 'trailers',
      })
    } catch (e) {
      resolve(`request: ${(e as Error).message}`)
      return
    }
    const chunks: Buffer[] = []
    let status: string | undefined
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('trailers', (t) => {
      status = String(t['grpc-status'])
    })
    stream.on('error', (e) => resolve(`stream: ${e.message}`))
    stream.on('close', () => {
      if (status !== '0') return resolve(`grpc-status ${status} rst ${stream.rstCode}`)
      const body = Buffer.concat(chunks)
      const res = checkMethod().responseDeserialize(body.subarray(5)) as { status?: { code?: number } }
      resolve((res.status?.code ?? 0) === 0 ? true : `denied ${res.status?.code}`)
    })
    stream.end(frame)
  })
}

function httpCheck(target: string, agent: Agent): Promise<true | string> {
  const [host, port] = target.split(':') as [string, string]
  return new Promise((resolve) => {
    const req = httpRequest(
      { host, port: Number(port), path: '/x', agent, headers: { 'x-ext-authz': 'allow' } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode === 200 ? true : `status ${res.statusCode}`))
        res.on('error', (e) => resolve(`response: ${e.message}`))
      },
    )
    req.on('error', (e) => resolve(`request: ${e.message}`))
    req.end()
  })
}

function readyz(ops: string): Promise<number> {
  const [host, port] = ops.split(':') as [string, string]
  return new Promise((resolve) => {
    const req = httpRequest({ host, port: Number(port), path: '/readyz', agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', () => resolve(0))
    req.end()
  })
}

/** One run of one transport at RATE checks/s, SIGTERM after `signalAfterMs`. */
async function run(transport: 'gRPC' | 'HTTP', signalAfterMs: number) {
  const s = await startServe([
    '-p',
    SEED_000,
    transport === 'gRPC' ? '--grpc' : '--http',
    '127.0.0.1:0',
    '--metrics',
    '127.0.0.1:0',
    '--no-decision-log',
    '--drain-delay',
    String(DRAIN_DELAY_MS),
  ])
  const tally: Tally = { sent: 0, allowed: 0, failed: [], sentAfterSignal: 0 }
  const session = transport === 'gRPC' ? h2connect(`http://${s.listening.grpc}`) : undefined
  session?.on('error', () => {})
  const agent = new Agent({ keepAlive: true, maxSockets: 16 })
  let routing = true
  let signalled = false
  let signalAt = 0
  let stoppedAt = 0
  const pending: Promise<void>[] = []
  const count = (t: Tally, p: Promise<true | string>) =>
    pending.push(
      p.then((r) => {
        if (r === true) t.allowed++
        else t.failed.push(r)
      }),
    )
  // Envoy's health check: once /readyz says 503, no new checks go to this sidecar.
  const poller = setInterval(() => {
    void readyz(String(s.listening.ops)).then((code) => {
      if (signalled && code !== 200 && routing) {
        routing = false
        stoppedAt = performance.now()
      }
    })
  }, POLL_MS)
  const t0 = performance.now()
  let due = 0
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      if (!routing) {
        clearInterval(tick)
        resolve()
        return
      }
      const target = Math.floor(((performance.now() - t0) * RATE) / 1000)
      for (; due < target; due++) {
        tally.sent++
        if (signalled) tally.sentAfterSignal++
        count(tally, session !== undefined ? grpcCheck(session) : httpCheck(String(s.listening.http), agent))
      }
    }, 1)
    setTimeout(() => {
      signalled = true
      signalAt = performance.now()
      s.proc.kill('SIGTERM')
    }, signalAfterMs)
  })
  clearInterval(poller)
  await Promise.all(pending)
  const code = await s.exited
  session?.destroy()
  agent.destroy()
  return { tally, code, lines: s.lines, routedAfterSignalMs: Math.round(stoppedAt - signalAt) }
}

describe('verdict serve: SIGTERM under load loses no check', () => {
  it.each(['gRPC', 'HTTP'] as const)(
    `%s: ${RUNS} runs at ${RATE} checks/s, every check sent is allowed, exit 0`,
    async (transport) => {
      const results = []
      for (let i = 0; i < RUNS; i++) {
        const r = await run(transport, 200 + ((i * 37) % 200))
        const t = r.tally
        console.log(
          `[drain] ${transport} run ${i + 1}: ${t.allowed}/${t.sent} allowed, ${t.sentAfterSignal} sent after SIGTERM, routed away ${r.routedAfterSignalMs} ms after it, exit ${r.code}${t.failed.length > 0 ? `, failures: ${[...new Set(t.failed)].slice(0, 3).join('; ')}` : ''}`,
        )
        results.push(r)
      }
      for (const r of results) {
        expect(r.tally.failed).toEqual([])
        expect(r.tally.allowed).toBe(r.tally.sent)
        // Checks kept arriving (and were served) between the signal and /readyz turning 503.
        expect(r.tally.sentAfterSignal).toBeGreaterThan(0)
        expect(r.code).toBe(0)
        expect(r.lines.at(-1)?.msg).toBe('stopped')
      }
    },
    300_000,
  )
})
