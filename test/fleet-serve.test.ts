/**
 * `verdict bundle build` / `sign` in-process, and `verdict serve --bundle` as a child process
 * polling a real bundle service on loopback, logging decisions to a real collector, reporting
 * status, answering `/readyz` and `/status`.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Io, main } from '@verdict/cli'
import { readFleetBundle } from '@verdict/fleet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBundleServer, startCollector, until } from '../packages/fleet/src/testing/servers.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(ROOT, 'packages/cli/bin/verdict.js')

let dir: string
let priv: string
let pub: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'verdict-fleet-cli-'))
  const k = generateKeyPairSync('rsa', { modulusLength: 2048 })
  priv = k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  pub = k.publicKey.export({ type: 'spki', format: 'pem' }).toString()
  writeFileSync(join(dir, 'private.pem'), priv)
  writeFileSync(join(dir, 'public.pem'), pub)
  const r = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', 'packages/cli'],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  )
  if (!existsSync(join(ROOT, 'packages/cli/dist/bundle-command.js')))
    throw new Error(`build failed:\n${r.stdout}`)
}, 180_000)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const io: Io = {
    stdout: (t) => {
      out += t
    },
    stderr: (t) => {
      err += t
    },
    isTTY: false,
    readStdin: async () => '',
  }
  const code = await main(['node', 'verdict', ...args], io)
  return { code, out, err }
}

function policyDir(name: string, header: string): string {
  const d = join(dir, name)
  mkdirSync(join(d, 'verdict'), { recursive: true })
  writeFileSync(
    join(d, 'verdict', 'policy.yaml'),
    `name: ${name}\nrules:\n  - id: ok\n    action: allow\n    match: { headers: [{ name: ${header}, exact: "yes" }] }\n`,
  )
  return d
}

describe('verdict bundle', () => {
  it('build writes a signed OPA bundle verdict verifies; sign signs an unsigned one', async () => {
    const src = policyDir('built', 'x-a')
    const out = join(dir, 'built.tar.gz')
    const b = await run(
      'bundle',
      'build',
      src,
      '-o',
      out,
      '-r',
      'cli-1',
      '--signing-key',
      join(dir, 'private.pem'),
      '--scope',
      's',
    )
    expect(b.code, b.err).toBe(0)
    const read = await readFleetBundle(new Uint8Array(readFileSync(out)), {
      verification: { keys: { default: { key: pub } }, scope: 's' },
    })
    expect('error' in read ? read.error : read.revision).toBe('cli-1')

    const plain = join(dir, 'plain.tar.gz')
    expect((await run('bundle', 'build', src, '-o', plain, '-r', 'cli-2')).code).toBe(0)
    const unsigned = await readFleetBundle(new Uint8Array(readFileSync(plain)), {
      verification: { keys: { default: { key: pub } } },
    })
    expect('error' in unsigned && unsigned.error).toMatch(/not signed/)
    const s = await run('bundle', 'sign', plain, '--signing-key', join(dir, 'private.pem'))
    expect(s.code, s.err).toBe(0)
    const signed = await readFleetBundle(new Uint8Array(readFileSync(plain)), {
      verification: { keys: { default: { key: pub } } },
    })
    expect('error' in signed ? signed.error : signed.revision).toBe('cli-2')
  })

  it('build refuses a directory without a policy document', async () => {
    const empty = join(dir, 'empty')
    mkdirSync(empty, { recursive: true })
    const r = await run('bundle', 'build', empty, '-o', join(dir, 'x.tar.gz'))
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/no policy document/)
  })

  it('serve refuses both --policy and --bundle, and neither', async () => {
    expect((await run('serve', '--bundle', 'http://127.0.0.1:1/b', '--policy', 'p.yaml')).code).toBe(2)
    expect((await run('serve')).code).toBe(2)
  })
})

describe('verdict serve --bundle', () => {
  let proc: ChildProcess | undefined
  afterAll(() => {
    if (proc?.exitCode === null) proc.kill('SIGKILL')
  })

  it('serves the service’s revision, picks up a new one, logs decisions to the collector, reports status, flushes on SIGTERM', async () => {
    const server = await startBundleServer()
    const collector = await startCollector()
    const bundle1 = join(dir, 'serve-1.tar.gz')
    expect(
      (
        await run(
          'bundle',
          'build',
          policyDir('serve1', 'x-one'),
          '-o',
          bundle1,
          '-r',
          's-1',
          '--signing-key',
          join(dir, 'private.pem'),
        )
      ).code,
    ).toBe(0)
    server.publish(new Uint8Array(readFileSync(bundle1)))
    const persist = join(dir, 'persist')
    const lines: Array<Record<string, unknown>> = []
    let stderr = ''
    proc = spawn(
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
        '--json',
        '--no-decision-log',
        '--bundle-min-delay',
        '0.1',
        '--bundle-max-delay',
        '0.2',
        '--bundle-verification-key',
        join(dir, 'public.pem'),
        '--bundle-persist-dir',
        persist,
        '--decision-log-url',
        collector.url,
        '--status-url',
        collector.url,
        '--label',
        'app=fleet-test',
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let buf = ''
    proc.stdout!.on('data', (c: Buffer) => {
      buf += c.toString()
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
        lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>)
        buf = buf.slice(nl + 1)
      }
    })
    proc.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString()
    })
    const exited = new Promise<number | null>((r) => proc!.on('exit', (code) => r(code)))
    try {
      await until(() => lines.some((l) => l.msg === 'listening'), 10_000, `listening (${stderr})`)
      const listening = lines.find((l) => l.msg === 'listening')!
      const http = `http://${listening.http as string}`
      const ops = `http://${listening.ops as string}`
      const ready = await fetch(`${ops}/readyz`)
      expect(ready.status).toBe(200)
      expect(await ready.json()).toEqual({
        bundle: { name: 'verdict', active_revision: 's-1', stale: false },
        ready: true,
      })
      const check = async (h: string) => (await fetch(`${http}/`, { headers: { [h]: 'yes' } })).status
      expect(await check('x-one')).toBe(200)

      const bundle2 = join(dir, 'serve-2.tar.gz')
      await run(
        'bundle',
        'build',
        policyDir('serve2', 'x-two'),
        '-o',
        bundle2,
        '-r',
        's-2',
        '--signing-key',
        join(dir, 'private.pem'),
      )
      server.publish(new Uint8Array(readFileSync(bundle2)))
      await until(() => lines.some((l) => l.msg === 'bundle activated' && l.revision === 's-2'), 5000, 's-2')
      expect(await check('x-two')).toBe(200)
      expect(await check('x-one')).toBe(403)

      // A bundle signed by another key is refused; s-2 stays.
      const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
        type: 'pkcs8',
        format: 'pem',
      })
      writeFileSync(join(dir, 'other.pem'), other)
      const bundle3 = join(dir, 'serve-3.tar.gz')
      await run(
        'bundle',
        'build',
        policyDir('serve3', 'x-three'),
        '-o',
        bundle3,
        '-r',
        's-3',
        '--signing-key',
        join(dir, 'other.pem'),
      )
      server.publish(new Uint8Array(readFileSync(bundle3)))
      await until(() => lines.some((l) => l.msg === 'bundle not activated'), 5000, 'the refusal')
      expect(await check('x-two')).toBe(200)

      const status = (await (await fetch(`${ops}/status`)).json()) as Record<string, any>
      expect(status.labels.app).toBe('fleet-test')
      expect(status.bundles.verdict.active_revision).toBe('s-2')
      expect(status.bundles.verdict.code).toBe('bundle_error')
      await until(
        () => collector.statuses.some((s) => (s as any).bundles?.verdict?.active_revision === 's-2'),
        5000,
        'status report',
      )
      expect(existsSync(join(persist, 'verdict', 'bundle.tar.gz'))).toBe(true)

      proc.kill('SIGTERM')
      expect(await exited).toBe(0)
      // Decisions made are in the collector by the time the process is gone.
      const events = collector.events as Array<Record<string, any>>
      expect(events.length).toBeGreaterThanOrEqual(4)
      const allowedTwo = events.find((e) => e.result?.rule === 'ok' && e.bundles?.verdict?.revision === 's-2')
      expect(allowedTwo).toMatchObject({
        path: 'verdict/serve2',
        labels: { app: 'fleet-test' },
        input: { attributes: { request: { http: { method: 'GET', path: '/' } } } },
      })
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL')
      await server.close()
      await collector.close()
    }
  })
})
