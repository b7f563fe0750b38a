/**
 * Rollout under load: 20 `verdict serve --bundle` processes poll one bundle service on loopback
 * while a generator sends checks to all of them; a new revision is published; every process
 * reports it within max delay + 1 s, no check fails, and no answer mixes the two policies.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildBundle } from '@verdict/fleet'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startBundleServer, until } from '../packages/fleet/src/testing/servers.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(ROOT, 'packages/cli/bin/verdict.js')
const PROCESSES = Number(process.env.ROLLOUT_N ?? 20)
const MAX_DELAY_S = 1

let dir: string
const procs: ChildProcess[] = []
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'verdict-rollout-'))
  spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', 'packages/cli'], {
    cwd: ROOT,
  })
  if (!existsSync(join(ROOT, 'packages/cli/dist/bundle-command.js'))) throw new Error('build failed')
}, 180_000)
afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

/** Revision `rev` allows only `x-rev: <rev>` and stamps its answer with `x-policy: <rev>`. */
async function revision(rev: string): Promise<Uint8Array> {
  const d = join(dir, rev)
  mkdirSync(join(d, 'verdict'), { recursive: true })
  writeFileSync(
    join(d, 'verdict', 'policy.yaml'),
    `name: rollout-${rev}\nrules:\n  - id: only-${rev}\n    action: allow\n    match: { headers: [{ name: x-rev, exact: "${rev}" }] }\n    headers: { x-policy: "${rev}" }\n`,
  )
  return buildBundle(d, { revision: rev })
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 })

function check(http: string, rev: string): Promise<{ status: number; policy: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(`http://${http}/`, { headers: { 'x-rev': rev }, agent }, (res) => {
      res.resume()
      res.on('end', () => {
        const p = res.headers['x-policy']
        resolve({ status: res.statusCode ?? 0, policy: typeof p === 'string' ? p : undefined })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

async function readyz(ops: string): Promise<{ bundle?: { active_revision?: string } }> {
  return (await (await fetch(`http://${ops}/readyz`)).json()) as { bundle?: { active_revision?: string } }
}

it(`${PROCESSES} sidecars pick up a new revision within max delay + 1 s under load, no check failing or mixed`, async () => {
  const server = await startBundleServer()
  server.publish(await revision('1'))
  const sidecars: Array<{ http: string; ops: string }> = []
  for (let i = 0; i < PROCESSES; i++) {
    const proc = spawn(
      process.execPath,
      [
        BIN,
        'serve',
        '--bundle',
        server.url,
        '--http',
        '127.0.0.1:0',
        '--metrics',
        '127.0.0.1:0',
        '--grpc',
        '127.0.0.1:0',
        '--json',
        '--no-decision-log',
        '--bundle-min-delay',
        '0.5',
        '--bundle-max-delay',
        String(MAX_DELAY_S),
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    )
    procs.push(proc)
    let buf = ''
    const s = { http: '', ops: '' }
    sidecars.push(s)
    proc.stdout!.on('data', (c: Buffer) => {
      buf += c.toString()
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
        const line = JSON.parse(buf.slice(0, nl)) as Record<string, string>
        buf = buf.slice(nl + 1)
        if (line.msg === 'listening') {
          s.http = line.http!
          s.ops = line.ops!
        }
      }
    })
  }
  try {
    await until(
      () => sidecars.every((s) => s.http !== ''),
      // Twenty Node processes starting at once on a 2-core machine that may be busy with other work.
      120_000,
      'every sidecar listening',
    )
    for (const s of sidecars) expect((await readyz(s.ops)).bundle?.active_revision).toBe('1')

    // The generator: every sidecar, alternately asking as revision 1 and 2.
    let stop = false
    const failures: string[] = []
    const mixed: string[] = []
    let sent = 0
    const generator = Promise.all(
      sidecars.map(async (s, i) => {
        for (let n = 0; !stop; n++) {
          const rev = (n + i) % 2 === 0 ? '1' : '2'
          try {
            const r = await check(s.http, rev)
            sent++
            if (r.status === 200 && r.policy !== rev)
              mixed.push(`${s.http}: asked ${rev}, allowed by ${r.policy}`)
            if (r.status !== 200 && r.status !== 403) failures.push(`${s.http}: ${r.status}`)
          } catch (e) {
            failures.push(`${s.http}: ${(e as Error).message}`)
          }
        }
      }),
    )
    await new Promise((r) => setTimeout(r, 500))
    const published = Date.now()
    server.publish(await revision('2'))
    const seen = new Map<string, number>()
    await until(
      () => {
        for (const s of sidecars)
          if (!seen.has(s.ops))
            void readyz(s.ops).then((r) => {
              if (r.bundle?.active_revision === '2' && !seen.has(s.ops))
                seen.set(s.ops, Date.now() - published)
            })
        return seen.size === sidecars.length
      },
      10_000,
      'every sidecar on revision 2',
    )
    // Checks keep flowing on the new revision for a moment.
    await new Promise((r) => setTimeout(r, 300))
    stop = true
    await generator
    const slowest = Math.max(...seen.values())
    expect(slowest).toBeLessThanOrEqual(MAX_DELAY_S * 1000 + 1000)
    expect(failures).toEqual([])
    expect(mixed).toEqual([])
    expect(sent).toBeGreaterThan(PROCESSES * 4)
    for (const s of sidecars) {
      expect((await check(s.http, '2')).policy).toBe('2')
      expect((await check(s.http, '1')).status).toBe(403)
    }
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM')
    await Promise.all(
      procs.map((p) => (p.exitCode === null ? new Promise((r) => p.once('exit', r)) : undefined)),
    )
    agent.destroy()
    await server.close()
  }
}, 180_000)
