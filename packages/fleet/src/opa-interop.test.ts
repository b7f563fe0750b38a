/**
 * Interop with real OPA (OPA_BIN, else `opa` on PATH; skipped with the reason when absent):
 * bundles signed by `opa build --signing-key` verify in verdict, bundles written and signed by
 * verdict verify in `opa run`, and OPA and verdict activate the same revision from one service.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { findOpa, runOpa } from '../../rego-adapter/src/testing/find-opa.js'
import { buildBundle, readFleetBundle } from './bundle.js'
import { createBundleEngine } from './bundle-engine.js'
import { createBundleSource } from './bundle-source.js'
import { fileDigest, signFiles } from './signing.js'
import { readTarGz, writeTarGz } from './tar.js'
import { startBundleServer, startCollector, until } from './testing/servers.js'

const opa = findOpa()
if (opa.bin === undefined)
  console.warn(`[fleet opa-interop] SKIPPED the interop tests with real OPA: ${opa.why}`)
const enc = (s: string) => new TextEncoder().encode(s)

let dir: string
let priv: string
let pub: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'verdict-opa-interop-'))
  const k = generateKeyPairSync('rsa', { modulusLength: 2048 })
  priv = k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  pub = k.publicKey.export({ type: 'spki', format: 'pem' }).toString()
  writeFileSync(join(dir, 'private.pem'), priv)
  writeFileSync(join(dir, 'public.pem'), pub)
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const POLICY = {
  rules: [{ id: 'ok', action: 'allow', match: { headers: [{ name: 'x-ok', exact: 'yes' }] } }],
}
const REGO = 'package envoy.authz\n\ndefault allow := false\n\nallow if input.ok == true\n'

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as { port: number }).port
  await new Promise((r) => s.close(r))
  return port
}

function startOpa(bin: string, args: string[]): { proc: ChildProcess; output: () => string } {
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout!.on('data', (d) => (out += d))
  proc.stderr!.on('data', (d) => (out += d))
  return { proc, output: () => out }
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return
  const done = new Promise((r) => proc.once('exit', r))
  proc.kill('SIGTERM')
  await done
}

describe.skipIf(opa.bin === undefined)('with real OPA', () => {
  it('a bundle built and signed by `opa build --signing-key` is accepted by verdict; tampered or wrong-keyed, refused', async () => {
    const src = join(dir, 'opa-src')
    mkdirSync(join(src, 'verdict', 'policy'), { recursive: true })
    mkdirSync(join(src, 'envoy'), { recursive: true })
    writeFileSync(join(src, 'envoy', 'authz.rego'), REGO)
    // `opa build` carries only Rego and data files: the policy travels as data.verdict.policy.
    writeFileSync(join(src, 'verdict', 'policy', 'data.json'), JSON.stringify(POLICY))
    writeFileSync(
      join(src, 'data.json'),
      '{"limits": {"max": 1.0e3, "tiny": 0.10}, "z": 1, "a": [true, null]}',
    )
    const out = join(dir, 'opa-signed.tar.gz')
    runOpa(opa.bin!, [
      'build',
      '-b',
      src,
      '-o',
      out,
      '-r',
      'opa-rev-1',
      '--signing-key',
      join(dir, 'private.pem'),
    ])
    const bytes = new Uint8Array(readFileSync(out))
    const keys = { keys: { default: { key: pub } } }
    const b = await readFleetBundle(bytes, { verification: keys })
    if ('error' in b) throw new Error(b.error)
    expect(b.revision).toBe('opa-rev-1')
    expect(b.policyPath).toBe('data.verdict.policy')
    const be = await createBundleEngine()
    await be.activate(b)
    expect((await be.engine.decide({ method: 'GET', path: '/', headers: { 'x-ok': 'yes' } })).allowed).toBe(
      true,
    )
    be.engine.close()

    const files = await readTarGz(bytes)
    if ('error' in files) throw new Error(files.error)
    const tampered = new Map(files)
    tampered.set('data.json', enc('{"limits": {"max": 2}}'))
    const t = await readFleetBundle(await writeTarGz(tampered), { verification: keys })
    expect('error' in t && t.error).toBe('data.json: digest mismatch')
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({
      type: 'spki',
      format: 'pem',
    })
    const w = await readFleetBundle(bytes, { verification: { keys: { default: { key: other.toString() } } } })
    expect('error' in w && w.error).toMatch(/signature does not verify/)
    const extra = new Map(files)
    extra.set('verdict/policy.yaml', enc('rules: []\n'))
    const x = await readFleetBundle(await writeTarGz(extra), { verification: keys })
    expect('error' in x && x.error).toBe('file verdict/policy.yaml not included in bundle signature')
  })

  it('digests of structured files equal OPA’s (whitespace, key order, number spelling, escapes)', async () => {
    const src = join(dir, 'digest-src')
    mkdirSync(src, { recursive: true })
    const data =
      '{ "b": "\\u2028<&>\\t é", "a": {"y": 1.50, "x": -0e0, "big": 123456789012345678901234567890}, "c": [1e2, "\\ud83d\\ude00"] }'
    writeFileSync(join(src, 'data.json'), data)
    const out = join(dir, 'digest.tar.gz')
    runOpa(opa.bin!, ['build', '-b', src, '-o', out, '--signing-key', join(dir, 'private.pem')])
    const files = await readTarGz(new Uint8Array(readFileSync(out)))
    if ('error' in files) throw new Error(files.error)
    const sig = JSON.parse(new TextDecoder().decode(files.get('.signatures.json'))) as {
      signatures: string[]
    }
    const payload = JSON.parse(Buffer.from(sig.signatures[0]!.split('.')[1]!, 'base64url').toString()) as {
      files: Array<{ name: string; hash: string }>
    }
    const opaHash = payload.files.find((f) => f.name === 'data.json')!.hash
    expect(fileDigest('data.json', files.get('data.json')!)).toBe(opaHash)
    expect(fileDigest('data.json', enc(data))).toBe(opaHash)
    const manifestHash = payload.files.find((f) => f.name === '.manifest')!.hash
    expect(fileDigest('.manifest', files.get('.manifest')!)).toBe(manifestHash)
  })

  it('a bundle written and signed by verdict is accepted by `opa run`; tampered, refused', async () => {
    const src = join(dir, 'verdict-src')
    mkdirSync(join(src, 'verdict'), { recursive: true })
    mkdirSync(join(src, 'envoy'), { recursive: true })
    writeFileSync(
      join(src, 'verdict', 'policy.yaml'),
      'rules:\n  - { id: ok, action: allow, match: { headers: [{ name: x-ok, exact: "yes" }] } }\n',
    )
    writeFileSync(join(src, 'envoy', 'authz.rego'), REGO)
    writeFileSync(join(src, 'data.json'), '{"limits": {"max": 1.0e3}}')
    const bytes = await buildBundle(src, { revision: 'v-rev-1', signing: { key: priv, scope: 'write' } })
    const path = join(dir, 'verdict-signed.tar.gz')
    writeFileSync(path, bytes)
    const run = async (bundlePath: string) => {
      const port = await freePort()
      const o = startOpa(opa.bin!, [
        'run',
        '--server',
        '--addr',
        `127.0.0.1:${port}`,
        '--bundle',
        bundlePath,
        '--verification-key',
        join(dir, 'public.pem'),
        '--scope',
        'write',
      ])
      try {
        const deadline = Date.now() + 10_000
        while (Date.now() < deadline && o.proc.exitCode === null) {
          try {
            const r = await fetch(`http://127.0.0.1:${port}/v1/data/limits/max`)
            if (r.ok) return { ok: true as const, body: (await r.json()) as { result?: unknown } }
          } catch {
            // not listening yet
          }
          await new Promise((r) => setTimeout(r, 100))
        }
        return { ok: false as const, output: o.output() }
      } finally {
        await stop(o.proc)
      }
    }
    const good = await run(path)
    expect(good.ok && good.body.result).toBe(1000)
    const files = await readTarGz(bytes)
    if ('error' in files) throw new Error(files.error)
    files.set('verdict/policy.yaml', enc('rules:\n  - { id: any, action: allow, match: {} }\n'))
    const bad = join(dir, 'verdict-tampered.tar.gz')
    writeFileSync(bad, await writeTarGz(files))
    const refused = await run(bad)
    expect(refused.ok).toBe(false)
    expect(refused.ok === false && refused.output).toMatch(/digest mismatch/)
    // And verdict reads what it wrote.
    const mine = await readFleetBundle(bytes, {
      verification: { keys: { default: { key: pub } }, scope: 'write' },
    })
    expect('error' in mine ? mine.error : mine.revision).toBe('v-rev-1')
  })

  it('OPA and verdict poll the same bundle service and both activate the same revision', async () => {
    const server = await startBundleServer('/bundles/authz.tar.gz')
    const collector = await startCollector()
    const src = join(dir, 'plane-src')
    mkdirSync(join(src, 'verdict'), { recursive: true })
    mkdirSync(join(src, 'envoy'), { recursive: true })
    writeFileSync(
      join(src, 'verdict', 'policy.yaml'),
      'rules:\n  - { id: ok, action: allow, match: { headers: [{ name: x-ok, exact: "yes" }] } }\n',
    )
    writeFileSync(join(src, 'envoy', 'authz.rego'), REGO)
    const signing = { key: priv }
    server.publish(await buildBundle(src, { revision: 'plane-1', signing }))
    const config = join(dir, 'opa-config.yaml')
    writeFileSync(
      config,
      [
        'services:',
        `  plane: { url: "${server.origin}" }`,
        '  collector:',
        `    url: "${collector.url}"`,
        'keys:',
        '  default:',
        '    algorithm: RS256',
        `    key: ${JSON.stringify(pub)}`,
        'bundles:',
        '  authz:',
        '    service: plane',
        '    resource: bundles/authz.tar.gz',
        '    polling: { min_delay_seconds: 1, max_delay_seconds: 2 }',
        '    signing: { keyid: default }',
        'status: { service: collector }',
        '',
      ].join('\n'),
    )
    const port = await freePort()
    const o = startOpa(opa.bin!, ['run', '--server', '--addr', `127.0.0.1:${port}`, '--config-file', config])
    const be = await createBundleEngine()
    const source = createBundleSource({
      url: server.url,
      name: 'authz',
      minDelayMs: 200,
      maxDelayMs: 400,
      verification: { keys: { default: { key: pub } } },
      activate: (b) => be.activate(b),
    })
    try {
      await source.start()
      const opaRevision = () => {
        const last = collector.statuses.at(-1) as
          | { bundles?: { authz?: { active_revision?: string } } }
          | undefined
        return last?.bundles?.authz?.active_revision
      }
      await until(
        () => opaRevision() === 'plane-1',
        15_000,
        `OPA to report plane-1 (${o.output().slice(-400)})`,
      )
      expect(source.status().bundle.active_revision).toBe('plane-1')
      server.publish(await buildBundle(src, { revision: 'plane-2', signing }))
      await until(
        () => opaRevision() === 'plane-2' && source.status().bundle.active_revision === 'plane-2',
        15_000,
        'plane-2 in both',
      )
      // OPA's status report and verdict's have the same shape for the bundle.
      const opaBundle = (collector.statuses.at(-1) as { bundles: { authz: Record<string, unknown> } }).bundles
        .authz
      for (const k of ['name', 'active_revision', 'last_successful_download', 'last_successful_activation']) {
        expect(Object.keys(source.status().bundle)).toContain(k)
        expect(Object.keys(opaBundle)).toContain(k)
      }
      expect((await be.engine.decide({ method: 'GET', path: '/', headers: { 'x-ok': 'yes' } })).allowed).toBe(
        true,
      )
    } finally {
      source.close()
      be.engine.close()
      await stop(o.proc)
      await server.close()
      await collector.close()
    }
  })
})

export { signFiles }
