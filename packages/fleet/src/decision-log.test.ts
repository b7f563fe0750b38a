import { createEngine } from '@verdict/core'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { createBundleEngine } from './bundle-engine.js'
import { createBundleSource } from './bundle-source.js'
import { createDecisionLogger, DEFAULT_MASKS, erase, type OpaDecisionEvent } from './decision-log.js'
import { createStatusReporter } from './status.js'
import { writeTarGz } from './tar.js'
import { type Collector, startBundleServer, startCollector, until } from './testing/servers.js'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

async function collector(): Promise<Collector> {
  const c = await startCollector()
  cleanup.push(() => c.close())
  return c
}

const POLICY =
  'name: logs\nrules:\n  - id: ok\n    action: allow\n    match: { headers: [{ name: x-ok, exact: "yes" }] }\n'

const event = (id: string, input: unknown = {}): OpaDecisionEvent => ({
  labels: {},
  decision_id: id,
  path: 'verdict/test',
  input,
  result: true,
  requested_by: '',
  timestamp: new Date().toISOString(),
})

describe('createDecisionLogger', () => {
  it('POSTs gzip JSON arrays of OPA-format events with bundle revisions, labels and metrics', async () => {
    const c = await collector()
    const registry = new Registry()
    const logger = createDecisionLogger({
      url: c.url,
      labels: { app: 'test' },
      bundles: () => ({ verdict: { revision: 'r7' } }),
      minDelayMs: 20,
      registry,
    })
    cleanup.push(() => logger.close())
    const engine = await createEngine(POLICY, { onDecision: logger.onDecision })
    cleanup.push(() => engine.close())
    const d = await engine.decide({ method: 'GET', path: '/x', headers: { 'x-ok': 'yes' } }, { id: 'dec-1' })
    expect(d.allowed).toBe(true)
    await until(() => c.events.length === 1, 3000, 'the event')
    expect(c.headers[0]!['content-encoding']).toBe('gzip')
    expect(c.headers[0]!['content-type']).toBe('application/json')
    const e = c.events[0]!
    expect(e).toMatchObject({
      decision_id: 'dec-1',
      bundles: { verdict: { revision: 'r7' } },
      path: 'verdict/logs',
      input: { attributes: { request: { http: { method: 'GET', path: '/x', headers: { 'x-ok': 'yes' } } } } },
      result: { allowed: true, status: 200, rule: 'ok' },
      requested_by: '',
    })
    expect((e.labels as Record<string, string>).app).toBe('test')
    expect((e.labels as Record<string, string>).id).toMatch(/^[0-9a-f-]{36}$/)
    expect(typeof e.timestamp).toBe('string')
    expect((e.metrics as Record<string, number>).timer_server_handler_ns).toBeGreaterThan(0)
    expect(await registry.getSingleMetricAsString('verdict_decision_logs_uploaded_total')).toMatch(/ 1$/)
  })

  it('erases masked fields as OPA does and never sends an authorization header in clear', async () => {
    const c = await collector()
    const logger = createDecisionLogger({
      url: c.url,
      minDelayMs: 20,
      masks: [...DEFAULT_MASKS, '/input/body/password', '/result/secret', '/input/list/0', '/labels/app'],
    })
    cleanup.push(() => logger.close())
    const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl'
    logger.log({
      ...event('m-1', {
        attributes: { request: { http: { headers: { authorization: `Bearer ${token}`, 'x-a': '1' } } } },
        body: { password: 'hunter2', user: 'bob' },
        list: ['keep'],
      }),
      result: { allowed: true, secret: 's' },
      labels: { app: 'a' },
    })
    await until(() => c.events.length === 1, 3000, 'the event')
    const e = c.events[0]!
    expect(JSON.stringify(e)).not.toContain(token)
    expect(JSON.stringify(e)).not.toContain('hunter2')
    expect(e.erased).toEqual([
      '/input/attributes/request/http/headers/authorization',
      '/input/body/password',
      '/result/secret',
    ])
    expect(e.input).toEqual({
      attributes: { request: { http: { headers: { 'x-a': '1' } } } },
      body: { user: 'bob' },
      list: ['keep'],
    })
    expect(e.labels).toEqual({ app: 'a' })
  })

  it("logs the request in OPA-Envoy's input shape, with every credential erased wherever it arrived", async () => {
    const c = await collector()
    const logger = createDecisionLogger({ url: c.url, minDelayMs: 20 })
    cleanup.push(() => logger.close())
    const key = 'sk-query-key-never-logged'
    const jwtish = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl'
    const engine = await createEngine(
      {
        name: 'creds',
        authentication: { apiKey: { mode: 'strict', location: { query: 'key' }, keys: [{ key }] } },
        rules: [{ id: 'any', action: 'allow', match: { headers: [{ name: 'x-ok', exact: 'yes' }] } }],
      },
      { onDecision: logger.onDecision },
    )
    cleanup.push(() => engine.close())
    const d = await engine.decide(
      {
        attributes: {
          source: { principal: 'spiffe://example.org/ns/a/sa/b' },
          request: {
            http: {
              method: 'GET',
              path: `/x/y?key=${key}&page=2&jwt=${jwtish}`,
              host: 'api.example.com',
              headers: {
                Authorization: 'Basic dXNlcjpwYXNz',
                'X-Forwarded-Token': `Bearer ${jwtish}`,
                cookie: 'session=s3cr3t',
                'x-ok': 'yes',
              },
            },
          },
        },
      },
      { id: 'creds-1' },
    )
    expect(d.allowed).toBe(true)
    await until(() => c.events.length === 1, 3000, 'the event')
    const e = c.events[0]!
    const text = JSON.stringify(e)
    for (const secret of [key, jwtish, 'dXNlcjpwYXNz', 's3cr3t']) expect(text).not.toContain(secret)
    expect(e.input).toEqual({
      attributes: {
        source: { principal: 'spiffe://example.org/ns/a/sa/b' },
        destination: {},
        request: {
          http: {
            method: 'GET',
            path: '/x/y',
            host: 'api.example.com',
            headers: { 'x-ok': 'yes' },
          },
        },
      },
      parsed_path: ['x', 'y'],
      parsed_query: { page: ['2'] },
      truncated_body: false,
    })
    expect([...(e.erased as string[])].sort()).toEqual([
      '/input/attributes/request/http/headers/authorization',
      '/input/attributes/request/http/headers/cookie',
      '/input/attributes/request/http/headers/x-forwarded-token',
      '/input/parsed_query/jwt',
      '/input/parsed_query/key',
    ])
  })

  it('erase(): only /input and /result, only object keys, undefined pointers ignored', () => {
    const ev = { input: { a: { b: 1 }, arr: [{ v: 1 }] }, result: { r: 1 }, labels: { x: 1 } }
    expect(erase(ev, '/labels/x')).toBe(false)
    expect(erase(ev, '/input/a/missing')).toBe(false)
    expect(erase(ev, '/input/arr/0')).toBe(false)
    expect(erase(ev, '/input/arr/0/v')).toBe(true)
    expect(erase(ev, '/input/a/b')).toBe(true)
    expect(ev).toEqual({ input: { a: {}, arr: [{}] }, result: { r: 1 }, labels: { x: 1 } })
  })

  it('batches by size: no POST body holds more than the upload limit', async () => {
    const c = await collector()
    const logger = createDecisionLogger({ url: c.url, minDelayMs: 50, uploadSizeLimitBytes: 2000 })
    cleanup.push(() => logger.close())
    for (let i = 0; i < 60; i++) logger.log(event(`b-${i}`, { pad: 'x'.repeat(100) }))
    await until(() => c.events.length === 60, 5000, 'all events')
    expect(c.headers.length).toBeGreaterThanOrEqual(5)
    expect(new Set(c.events.map((e) => e.decision_id)).size).toBe(60)
  })

  it('survives a collector outage: every decision id arrives once it returns', async () => {
    const c = await collector()
    const logger = createDecisionLogger({ url: c.url, minDelayMs: 20, maxDelayMs: 200 })
    cleanup.push(() => logger.close())
    c.down = true
    for (let i = 0; i < 200; i++) logger.log(event(`o-${i}`))
    await until(() => c.headers.length >= 3, 3000, 'retries during the outage')
    expect(logger.state).toBe('ERROR')
    expect(c.events.length).toBe(0)
    c.down = false
    await until(() => logger.buffered === 0, 5000, 'the backlog')
    const ids = new Set(c.events.map((e) => e.decision_id))
    for (let i = 0; i < 200; i++) expect(ids.has(`o-${i}`)).toBe(true)
    expect(logger.dropped).toBe(0)
    expect(logger.state).toBe('OK')
  })

  it('bounds its memory: past the buffer limit the oldest events are dropped, and the drop counter equals the loss', async () => {
    const c = await collector()
    const registry = new Registry()
    const logger = createDecisionLogger({
      url: c.url,
      minDelayMs: 20,
      maxDelayMs: 100,
      bufferSizeLimitBytes: 5000,
      registry,
    })
    cleanup.push(() => logger.close())
    c.down = true
    for (let i = 0; i < 100; i++) logger.log(event(`d-${i}`))
    c.down = false
    await logger.flush(3000)
    const ids = new Set(c.events.map((e) => e.decision_id))
    const lost = 100 - ids.size
    expect(lost).toBeGreaterThan(0)
    expect(logger.dropped).toBe(lost)
    expect(ids.has('d-99')).toBe(true)
    expect(await registry.getSingleMetricAsString('verdict_decision_logs_dropped_total')).toMatch(
      new RegExp(` ${lost}$`),
    )
  })

  it('flush() sends what is buffered at once (as on SIGTERM)', async () => {
    const c = await collector()
    const logger = createDecisionLogger({ url: c.url, minDelayMs: 60_000 })
    cleanup.push(() => logger.close())
    logger.log(event('f-1'))
    await logger.flush(2000)
    expect(c.events.map((e) => e.decision_id)).toEqual(['f-1'])
  })
})

describe('createStatusReporter', () => {
  it('POSTs OPA-format status reports to the status service on each change', async () => {
    const c = await collector()
    const server = await startBundleServer()
    cleanup.push(() => server.close())
    const enc = (s: string) => new TextEncoder().encode(s)
    server.publish(
      await writeTarGz(
        new Map([
          ['.manifest', enc('{"revision":"s1"}')],
          ['verdict/policy.yaml', enc(POLICY)],
        ]),
      ),
    )
    const be = await createBundleEngine()
    cleanup.push(() => be.engine.close())
    const source = createBundleSource({
      url: server.url,
      minDelayMs: 60_000,
      activate: (b) => be.activate(b),
    })
    cleanup.push(() => source.close())
    const registry = new Registry()
    const reporter = createStatusReporter({
      service: { url: c.url },
      labels: { app: 'st' },
      sources: [source],
      registry,
      plugins: () => ({ decision_logs: 'OK' }),
    })
    cleanup.push(() => reporter.close())
    await source.start()
    await until(
      () =>
        c.statuses.some(
          (s) =>
            (s.bundles as Record<string, { active_revision?: string }>)?.verdict?.active_revision === 's1',
        ),
      3000,
      'the report',
    )
    const s = c.statuses.at(-1)!
    expect(s).toMatchObject({
      labels: { app: 'st' },
      bundles: { verdict: { name: 'verdict', active_revision: 's1', type: 'snapshot' } },
      plugins: { bundle: { state: 'OK' }, decision_logs: { state: 'OK' }, status: { state: 'OK' } },
    })
    expect(s.metrics).toHaveProperty('prometheus')
    expect(await reporter.report()).toMatchObject({ bundles: { verdict: { active_revision: 's1' } } })
  })
})
