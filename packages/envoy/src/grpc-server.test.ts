import { createServer, type Server } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createCheckClient } from './check-client.js'
import { createGrpcServer, type GrpcHandlers, grpcFrame } from './grpc-server.js'

// CheckResponse { status: { code: 7 } } and { status: { code: 16 } }, encoded by hand and framed.
const DENIED = grpcFrame(Uint8Array.of(0x0a, 0x02, 0x08, 0x07))
const UNAUTHENTICATED = grpcFrame(Uint8Array.of(0x0a, 0x02, 0x08, 0x10))

const LIMITS = {
  maxRequestBytes: 64 * 1024,
  receiveTimeoutMs: 2000,
  maxConcurrentStreams: 100,
  maxConnectionAgeMs: 60_000,
  maxConnectionAgeGraceMs: 1000,
  maxConnectionIdleMs: 60_000,
  keepaliveTimeMs: 60_000,
  keepaliveTimeoutMs: 5000,
}

const servers: Server[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r))
})

async function serve(handlers: GrpcHandlers): Promise<string> {
  const g = createGrpcServer(handlers, LIMITS)
  const net = createServer((socket) => g.accept(socket))
  servers.push(net)
  await new Promise<void>((r) => net.listen(0, '127.0.0.1', r))
  const a = net.address() as { port: number }
  return `127.0.0.1:${a.port}`
}

describe('createGrpcServer', () => {
  it('a Check whose handler rejects is answered with the failure denial, not a gRPC error status', async () => {
    const failures: number[] = []
    const target = await serve({
      check: () => Promise.reject(new Error('evaluator exploded')),
      checkUnreceived: () => UNAUTHENTICATED,
      checkFailed: (waited) => {
        failures.push(waited)
        return DENIED
      },
      healthCheck: () => ({ code: 12, message: 'unused' }),
      healthWatch: () => {},
    })
    const client = createCheckClient(target)
    try {
      const res = await client.check({ attributes: { request: { http: { method: 'GET', path: '/' } } } })
      expect(res.status?.code).toBe(7)
      expect(failures).toHaveLength(1)
      expect(failures[0]).toBeGreaterThanOrEqual(0)
    } finally {
      client.close()
    }
  })
})
