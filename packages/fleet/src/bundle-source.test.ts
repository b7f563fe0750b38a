import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { type FleetBundle, readFleetBundle } from './bundle.js'
import { createBundleEngine } from './bundle-engine.js'
import { type BundleSource, type BundleSourceOptions, createBundleSource } from './bundle-source.js'
import { signFiles } from './signing.js'
import { readTarGz, writeTarGz } from './tar.js'
import { type BundleServer, startBundleServer, until } from './testing/servers.js'

const enc = (s: string) => new TextEncoder().encode(s)

/** A bundle whose policy allows requests carrying `x-rev: <revision>` and names itself after it. */
async function bundle(revision: string, extra: Record<string, Uint8Array> = {}): Promise<Uint8Array> {
  const policy = `name: rev-${revision}\nrules:\n  - id: r\n    action: allow\n    match: { headers: [{ name: x-rev, exact: "${revision}" }] }\n`
  return writeTarGz(
    new Map<string, Uint8Array>([
      ['.manifest', enc(JSON.stringify({ revision, roots: [''] }))],
      ['verdict/policy.yaml', enc(policy)],
      ...Object.entries(extra),
    ]),
  )
}

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

async function setup(o: Partial<BundleSourceOptions> = {}) {
  const server = await startBundleServer()
  cleanup.push(() => server.close())
  const be = await createBundleEngine()
  cleanup.push(() => be.engine.close())
  const activated: string[] = []
  const errors: string[] = []
  const source = createBundleSource({
    url: server.url,
    minDelayMs: 50,
    maxDelayMs: 80,
    requestTimeoutMs: 1000,
    activate: async (b: FleetBundle) => {
      await be.activate(b)
      activated.push(b.revision)
    },
    onEvent: (e) => {
      if (e.type === 'error') errors.push(e.message)
    },
    ...o,
  })
  cleanup.push(() => source.close())
  return { server, be, source, activated, errors }
}

const decideRev = async (
  be: { engine: { decide(i: unknown): Promise<{ allowed: boolean }> } },
  rev: string,
) => (await be.engine.decide({ method: 'GET', path: '/', headers: { 'x-rev': rev } })).allowed

describe('createBundleSource', () => {
  it('downloads, activates, then sends If-None-Match and keeps the bundle on 304', async () => {
    const { server, be, source, activated } = await setup()
    server.publish(await bundle('r1'))
    await source.start()
    expect(activated).toEqual(['r1'])
    expect(await decideRev(be, 'r1')).toBe(true)
    await until(() => server.requests.length >= 3, 3000, 'polls')
    expect(server.requests[0]!.headers['if-none-match']).toBeUndefined()
    expect(server.requests[2]!.headers['if-none-match']).toBe('"v1"')
    expect(activated).toEqual(['r1'])
    const st = source.status()
    expect(st.bundle).toMatchObject({ name: 'verdict', active_revision: 'r1', type: 'snapshot' })
    expect(st.bundle.last_successful_download).toBeDefined()
    expect(st.bundle.last_successful_activation).toBeDefined()
    expect(st.stale).toBe(false)
    server.publish(await bundle('r2'))
    await until(() => activated.includes('r2'), 3000, 'r2')
    expect(await decideRev(be, 'r2')).toBe(true)
    expect(await decideRev(be, 'r1')).toBe(false)
  })

  it('long polls with Prefer: wait=N once the service answers with the OPA bundle content type', async () => {
    // Periodic polling every 30-60 s: only long polling can deliver r2 within a second.
    const { server, source, activated } = await setup({
      minDelayMs: 30_000,
      maxDelayMs: 60_000,
      longPollingTimeoutSeconds: 5,
    })
    server.longPolling = true
    server.publish(await bundle('r1'))
    await source.start()
    await until(() => server.requests.length >= 2, 3000, 'the long poll')
    expect(server.requests[1]!.headers.prefer).toBe('modes=snapshot;wait=5')
    const published = Date.now()
    server.publish(await bundle('r2'))
    await until(() => activated.includes('r2'), 2000, 'r2 through the long poll')
    expect(Date.now() - published).toBeLessThan(1000)
  })

  it('does not long poll when the service answers application/gzip', async () => {
    const { server, source } = await setup({ longPollingTimeoutSeconds: 5 })
    server.publish(await bundle('r1'))
    await source.start()
    await until(() => server.requests.length >= 3, 3000, 'polls')
    expect(server.requests.every((r) => r.headers.prefer === undefined)).toBe(true)
  })

  it.each([
    ['500', 'HTTP 500'],
    ['truncate', 'download failed'],
    ['hang', 'no complete answer'],
    ['drip', 'no complete answer'],
  ] as const)('keeps the previous bundle on a %s fault, reports it, and recovers', async (fault, message) => {
    const { server, be, source, activated, errors } = await setup({ requestTimeoutMs: 400 })
    server.publish(await bundle('r1'))
    await source.start()
    server.fault = fault
    server.publish(await bundle('r2'))
    await until(() => errors.some((e) => e.includes(message)), 4000, `error ${message}`)
    expect(await decideRev(be, 'r1')).toBe(true)
    expect(source.status().bundle).toMatchObject({ active_revision: 'r1', code: 'bundle_error' })
    if (fault === '500') expect(source.status().bundle.http_code).toBe(500)
    server.fault = 'none'
    await until(() => activated.includes('r2'), 4000, 'recovery')
    expect(source.status().bundle.code).toBeUndefined()
  })

  it.each([
    [
      'a download over the limit',
      { maxDownloadBytes: 2000 },
      async () => bundle('r2', { 'pad.bin': new Uint8Array(randomBytes(5000)) }),
      'larger than 2000',
    ],
    [
      'an unpacked size over the limit',
      { maxUnpackedBytes: 20_000 },
      async () => bundle('r2', { 'zeros.bin': new Uint8Array(100_000) }),
      'uncompressed',
    ],
    ['path traversal', {}, async () => traversal(), 'path traversal'],
    [
      'a policy that does not compile',
      {},
      async () => bundle('r2', { 'verdict/policy.yaml': enc('rules: 7\n') }),
      'activation of revision "r2" failed',
    ],
    ['a truncated tar', {}, async () => (await bundle('r2')).subarray(0, 60), 'gzip'],
  ] as const)(
    'refuses %s, keeps the previous bundle and retries with backoff',
    async (_, limits, make, message) => {
      const { server, be, source, activated, errors } = await setup({ ...limits })
      server.publish(await bundle('r1'))
      await source.start()
      server.publish(await make())
      await until(() => errors.some((e) => e.includes(message)), 3000, message)
      const seen = server.requests.length
      // Retried (the bad bundle's ETag is not kept, so it is downloaded again).
      await until(() => server.requests.length >= seen + 2, 3000, 'retries')
      expect(server.requests.at(-1)!.headers['if-none-match']).toBe('"v1"')
      expect(activated).toEqual(['r1'])
      expect(await decideRev(be, 'r1')).toBe(true)
      expect(source.status().bundle.active_revision).toBe('r1')
    },
  )

  it('persists the last good bundle and starts from it, stale, when the service is down', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'verdict-persist-'))
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
    const first = await setup({ persistDir: dir })
    first.server.publish(await bundle('r1'))
    await first.source.start()
    first.source.close()
    await first.server.close()
    const be = await createBundleEngine()
    cleanup.push(() => be.engine.close())
    const source = createBundleSource({
      url: first.server.url,
      persistDir: dir,
      minDelayMs: 50,
      maxDelayMs: 80,
      activate: (b) => be.activate(b),
    })
    cleanup.push(() => source.close())
    await source.start()
    expect(await decideRev(be, 'r1')).toBe(true)
    const st = source.status()
    expect(st).toMatchObject({ active: true, stale: true, activeFrom: 'persisted' })
    expect(st.bundle.active_revision).toBe('r1')
  })

  it('sends the bearer token from a file and reads the file again when it changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'verdict-token-'))
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
    const tokenFile = join(dir, 'token')
    writeFileSync(tokenFile, 'first-token\n')
    const { server, source } = await setup({ tokenFile })
    server.publish(await bundle('r1'))
    await source.start()
    expect(server.requests[0]!.headers.authorization).toBe('Bearer first-token')
    writeFileSync(tokenFile, 'second-token-longer\n')
    await until(
      () => server.requests.at(-1)!.headers.authorization === 'Bearer second-token-longer',
      3000,
      'new token',
    )
  })

  it('follows a redirect within the origin and refuses one to another origin', async () => {
    const other = createServer((_, res) => res.writeHead(200).end('not a bundle'))
    other.listen(0, '127.0.0.1')
    await new Promise((r) => other.once('listening', r))
    cleanup.push(() => new Promise((r) => other.close(r)))
    const otherUrl = `http://127.0.0.1:${(other.address() as { port: number }).port}/b.tar.gz`
    const server = await startBundleServer()
    cleanup.push(() => server.close())
    server.publish(await bundle('r1'))
    server.routes.set('/same', (_, res) => res.writeHead(302, { location: '/bundles/verdict.tar.gz' }).end())
    server.routes.set('/away', (_, res) => res.writeHead(302, { location: otherUrl }).end())
    const got: string[] = []
    const errors: string[] = []
    const make = (path: string) =>
      createBundleSource({
        url: `${server.origin}${path}`,
        minDelayMs: 60_000,
        activate: async (b) => void got.push(b.revision),
        onEvent: (e) => void (e.type === 'error' && errors.push(e.message)),
      })
    const same = make('/same')
    cleanup.push(() => same.close())
    await same.start()
    expect(got).toEqual(['r1'])
    const away = make('/away')
    cleanup.push(() => away.close())
    await away.start()
    expect(errors.some((e) => e.includes('redirect to another origin'))).toBe(true)
    expect(got).toEqual(['r1'])
  })

  it('with a verification key, activates only bundles signed by it', async () => {
    const good = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const bad = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const pub = good.publicKey.export({ type: 'spki', format: 'pem' }).toString()
    const { server, source, activated, errors } = await setup({
      verification: { keys: { default: { key: pub } } },
    })
    const signedWith = async (rev: string, key: typeof good.privateKey) => {
      const files = await readTarGz(await bundle(rev))
      if ('error' in files) throw new Error(files.error)
      files.set(
        '.signatures.json',
        await signFiles(files, { key: key.export({ type: 'pkcs8', format: 'pem' }).toString() }),
      )
      return writeTarGz(files)
    }
    server.publish(await signedWith('r1', good.privateKey))
    await source.start()
    expect(activated).toEqual(['r1'])
    server.publish(await signedWith('r2', bad.privateKey))
    await until(() => errors.some((e) => e.includes('signature does not verify')), 3000, 'wrong key refused')
    server.publish(await bundle('r3'))
    await until(() => errors.some((e) => e.includes('not signed')), 3000, 'unsigned refused')
    expect(activated).toEqual(['r1'])
  })
})

/** A bundle with an entry that climbs out of the archive. */
async function traversal(): Promise<Uint8Array> {
  const tar = await import('tar-stream')
  const pack = tar.pack()
  const chunks: Buffer[] = []
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer)
  })()
  pack.entry({ name: 'verdict/policy.yaml' }, 'rules: []\n')
  pack.entry({ name: '../../etc/evil' }, 'x')
  pack.finalize()
  await done
  return new Uint8Array(gzipSync(Buffer.concat(chunks)))
}

describe('readFleetBundle', () => {
  it('finds the policy in data.verdict.policy when there is no verdict/policy.yaml', async () => {
    const b = await readFleetBundle(
      await writeTarGz(
        new Map([['verdict/policy/data.json', enc('{"rules":[{"id":"a","action":"allow","match":{}}]}')]]),
      ),
    )
    expect('error' in b ? b.error : b.policyPath).toBe('data.verdict.policy')
  })
  it('refuses a signed bundle when no key is configured, as OPA does', async () => {
    const files = new Map<string, Uint8Array>([['verdict/policy.yaml', enc('rules: []\n')]])
    files.set('.signatures.json', await signFiles(files, { key: 'secret', algorithm: 'HS256' }))
    const b = await readFleetBundle(await writeTarGz(files))
    expect('error' in b && b.error).toMatch(/no verification key/)
  })
})

export type { BundleServer, BundleSource }
