/**
 * `verdict serve --workers 2` as a real process tree: two workers behind the same listeners, a
 * reload that reaches both (each answer wholly the old or the new policy), `/metrics` for the
 * whole server, a worker that dies replaced, and SIGTERM draining every worker before exit 0.
 */
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type CheckClient, createCheckClient } from '@verdict/envoy'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildCli, type ServeProcess, startServe } from './fixtures/serve-process.js'

let dir: string
let s: ServeProcess | undefined
beforeAll(async () => {
  buildCli()
  dir = await mkdtemp(join(tmpdir(), 'verdict-workers-'))
}, 180_000)
afterAll(async () => {
  await s?.stop()
  await rm(dir, { recursive: true, force: true })
})

const version = (v: string) =>
  [
    `name: workers-${v}`,
    'responses:',
    `  allowed: { headers: { x-policy: ${v} } }`,
    'rules:',
    '  - id: pass',
    '    action: allow',
    '    match: { always: true }',
    `    headers: { x-rule-version: ${v} }`,
    '',
  ].join('\n')

const request = { attributes: { request: { http: { method: 'GET', path: '/', host: 'a', headers: {} } } } }

function headerOf(list: Array<{ header?: { key?: string; value?: string } }> | undefined, name: string) {
  return list?.find((h) => h.header?.key === name)?.header?.value
}

async function metrics(ops: string): Promise<string> {
  return (await fetch(`http://${ops}/metrics`)).text()
}

/** The value of one sample line of the Prometheus text (`name{labels}` as written). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

async function until(what: string, pred: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** `n` checks, each on a fresh gRPC connection (the listener hands connections to workers in turn). */
async function freshChecks(grpc: string, n: number): Promise<string[]> {
  const versions: string[] = []
  for (let i = 0; i < n; i++) {
    const c = createCheckClient(grpc)
    try {
      const r = await c.check(request)
      versions.push(
        `${headerOf(r.okResponse?.headers, 'x-policy')}/${headerOf(r.okResponse?.headers, 'x-rule-version')}`,
      )
    } finally {
      c.close()
    }
  }
  return versions
}

describe('verdict serve --workers 2', () => {
  it('serves from two processes, reloads both, reports the whole server, replaces a dead worker, drains on SIGTERM', async () => {
    const policy = join(dir, 'policy.yaml')
    const put = async (text: string) => {
      await writeFile(`${policy}.tmp`, text)
      await rename(`${policy}.tmp`, policy)
    }
    await put(version('v1'))
    s = await startServe([
      '-p',
      policy,
      '--workers',
      '2',
      '--grpc',
      '127.0.0.1:0',
      '--http',
      '127.0.0.1:0',
      '--metrics',
      '127.0.0.1:0',
      '--no-decision-log',
      '--drain-delay',
      '500',
    ])
    const { grpc, http, ops } = s.listening as { grpc: string; http: string; ops: string }
    const workerPids = s.listening.worker_pids as number[]
    expect(s.listening.workers).toBe(2)
    expect(new Set(workerPids).size).toBe(2)
    expect(workerPids).not.toContain(s.proc.pid)
    // Both workers are bound to the very addresses the primary announced.
    const workerLines = s.lines.filter((l) => l.msg === 'worker listening')
    expect(workerLines.map((l) => l.pid).sort()).toEqual([...workerPids].sort())
    for (const l of workerLines) expect(l).toMatchObject({ grpc, http })
    expect((await fetch(`http://${ops}/readyz`)).status).toBe(200)

    // Checks on many connections; /metrics counts every one of them, whichever worker decided.
    expect(await freshChecks(grpc, 6)).toEqual(Array(6).fill('v1/v1'))
    for (let i = 0; i < 4; i++) expect((await fetch(`http://${http}/x`)).status).toBe(200)
    await until('10 decisions in /metrics', async () => {
      return (
        sample(await metrics(ops), 'verdict_decisions_total{result="allow",code="allowed",rule="pass"}') ===
        10
      )
    })

    // A reload under load reaches both workers; no answer mixes two policies.
    let stop = false
    const problems: string[] = []
    const seen = new Set<string>()
    const clients: CheckClient[] = Array.from({ length: 4 }, () => createCheckClient(grpc))
    const load = clients.map(async (c) => {
      while (!stop) {
        try {
          const r = await c.check(request)
          const a = headerOf(r.okResponse?.headers, 'x-policy')
          const b = headerOf(r.okResponse?.headers, 'x-rule-version')
          if (a === undefined || a !== b) problems.push(JSON.stringify(r))
          else seen.add(a)
        } catch (e) {
          problems.push((e as Error).message)
        }
      }
    })
    try {
      await put(version('v2'))
      await until('both workers reloaded from the file', async () => {
        const m = await metrics(ops)
        return (
          sample(m, 'verdict_policy_reloads_total{result="success"}') === 2 &&
          sample(m, 'verdict_policy_generation') === 1
        )
      })
      // SIGHUP to the primary reaches every worker.
      await put(version('v3'))
      s.proc.kill('SIGHUP')
      await until('both workers at v3', async () => {
        const m = await metrics(ops)
        return (sample(m, 'verdict_policy_generation') ?? 0) >= 2
      })
      await new Promise((r) => setTimeout(r, 200))
    } finally {
      stop = true
      await Promise.all(load)
      for (const c of clients) c.close()
    }
    expect(problems).toEqual([])
    expect(seen.has('v1') || seen.has('v2')).toBe(true)
    expect(seen.has('v3')).toBe(true)
    expect(await freshChecks(grpc, 6)).toEqual(Array(6).fill('v3/v3'))

    // A worker that dies is replaced; checks go on.
    process.kill(workerPids[0]!, 'SIGKILL')
    await s.waitFor((l) => l.msg === 'worker exited; starting another' && l.pid === workerPids[0])
    await s.waitFor((l) => l.msg === 'worker listening' && !workerPids.includes(l.pid as number), 30_000)
    await until('ready again', async () => (await fetch(`http://${ops}/readyz`)).status === 200)
    expect(await freshChecks(grpc, 4)).toEqual(Array(4).fill('v3/v3'))

    // SIGTERM: not ready at once, checks in flight and during the drain delay are answered, every
    // worker drains and exits, then the primary exits 0.
    const during = createCheckClient(grpc)
    const alive = [
      ...workerPids.slice(1),
      ...s.lines.filter((l) => l.msg === 'worker listening').map((l) => l.pid as number),
    ]
    const current = [...new Set(alive)].filter((pid) => {
      try {
        process.kill(pid, 0)
        return true
      } catch {
        return false
      }
    })
    expect(current).toHaveLength(2)
    s.proc.kill('SIGTERM')
    await until(
      'readyz 503 while draining',
      async () => (await fetch(`http://${ops}/readyz`)).status === 503,
      5000,
    )
    expect((await during.check(request)).okResponse).toBeDefined()
    during.close()
    expect(await s.exited).toBe(0)
    expect(s.lines.filter((l) => l.msg === 'worker stopped')).toHaveLength(2)
    expect(s.lines.at(-1)?.msg).toBe('stopped')
    for (const pid of current) expect(() => process.kill(pid, 0)).toThrow()
  }, 180_000)
})
