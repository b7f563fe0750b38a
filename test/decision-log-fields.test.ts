// Decision log lines carry the same fields whichever listener answered: gRPC Check and the HTTP
// ext_authz service mode, for allows, policy denials and authentication failures alike.
import { createEngine } from '@verdict/core'
import { createCheckClient, createExtAuthzServer, createTelemetry, type ExtAuthzServer } from '@verdict/envoy'
import { afterAll, expect, test } from 'vitest'

let server: ExtAuthzServer | undefined
let closeClient: (() => void) | undefined
afterAll(async () => {
  closeClient?.()
  await server?.stop()
})

test('gRPC and HTTP decision lines have the same fields, with the same values for the same request', async () => {
  const lines: string[] = []
  const telemetry = createTelemetry({ write: (l) => lines.push(l), processMetrics: false, format: 'json' })
  const engine = await createEngine(
    {
      name: 'log-fields',
      rules: [
        { id: 'pass', action: 'allow', match: { headers: [{ name: 'x-pass', exact: 'yes' }] } },
        { id: 'block', action: 'deny', match: { paths: [{ prefix: '/blocked' }] } },
      ],
    },
    { onDecision: telemetry.onDecision },
  )
  server = createExtAuthzServer({ engine, telemetry, grpc: { port: 0 }, http: { port: 0 } })
  const bound = await server.start()
  const client = createCheckClient(bound.grpc!)
  closeClient = () => client.close()
  const decisions = () =>
    lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'decision')

  const cases: Array<{ path: string; headers: Record<string, string>; allowed: boolean }> = [
    { path: '/a', headers: { 'x-pass': 'yes' }, allowed: true },
    { path: '/blocked', headers: {}, allowed: false },
    { path: '/other', headers: {}, allowed: false },
  ]
  for (const c of cases) {
    await client.check({
      attributes: { request: { http: { method: 'GET', path: c.path, host: 'svc', headers: c.headers } } },
    })
    const grpcLine = decisions().at(-1)!
    const res = await fetch(`http://${bound.http}${c.path}`, { headers: { ...c.headers, host: 'svc' } })
    expect(res.status === 200).toBe(c.allowed)
    const httpLine = decisions().at(-1)!
    expect(httpLine).not.toBe(grpcLine)
    expect(Object.keys(httpLine).sort()).toEqual(Object.keys(grpcLine).sort())
    const { id: _g, time: _gt, decision_time: _gd, duration_ms: _gm, ...grpcRest } = grpcLine
    const { id: _h, time: _ht, decision_time: _hd, duration_ms: _hm, ...httpRest } = httpLine
    expect(httpRest).toEqual(grpcRest)
    expect(grpcLine.allowed).toBe(c.allowed)
  }
})
