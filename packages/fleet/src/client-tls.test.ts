/**
 * Client TLS: a bundle service that requires a client certificate (openssl makes a CA, a server
 * and a client certificate; skipped with the reason when there is no openssl).
 */
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createBundleSource } from './bundle-source.js'
import { writeTarGz } from './tar.js'

const hasOpenssl = spawnSync('openssl', ['version']).status === 0
if (!hasOpenssl) console.log('skipping client TLS test: no openssl on PATH')

function ssl(dir: string, ...args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`)
}

describe.skipIf(!hasOpenssl)('client TLS', () => {
  it('presents the client certificate the service requires, and fails without it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'verdict-tls-'))
    try {
      ssl(
        dir,
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
        '-days',
        '1',
        '-subj',
        '/CN=test-ca',
      )
      writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n')
      for (const who of ['server', 'client']) {
        ssl(
          dir,
          'req',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-keyout',
          `${who}.key`,
          '-out',
          `${who}.csr`,
          '-subj',
          `/CN=${who}`,
        )
        ssl(
          dir,
          'x509',
          '-req',
          '-in',
          `${who}.csr`,
          '-CA',
          'ca.pem',
          '-CAkey',
          'ca.key',
          '-CAcreateserial',
          '-out',
          `${who}.pem`,
          '-days',
          '1',
          '-extfile',
          'san.ext',
        )
      }
      const f = (n: string) => readFileSync(join(dir, n), 'utf8')
      const enc = (s: string) => new TextEncoder().encode(s)
      const bundle = await writeTarGz(
        new Map([
          ['.manifest', enc('{"revision":"tls-1"}')],
          [
            'verdict/policy.yaml',
            enc('rules:\n  - { id: a, action: allow, match: { headers: [{ name: x, exact: "y" }] } }\n'),
          ],
        ]),
      )
      const seen: string[] = []
      const server = createServer(
        {
          key: f('server.key'),
          cert: f('server.pem'),
          ca: f('ca.pem'),
          requestCert: true,
          rejectUnauthorized: true,
        },
        (req, res) => {
          seen.push(
            String((req.socket as import('node:tls').TLSSocket).getPeerCertificate().subject?.CN ?? ''),
          )
          res.writeHead(200, { 'content-type': 'application/gzip' }).end(bundle)
        },
      )
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/b.tar.gz`
      try {
        const got: string[] = []
        const errors: string[] = []
        const make = (tls: { cert?: string; key?: string; ca: string }) =>
          createBundleSource({
            url,
            tls,
            minDelayMs: 60_000,
            activate: async (b) => void got.push(b.revision),
            onEvent: (e) => void (e.type === 'error' && errors.push(e.message)),
          })
        const withCert = make({ cert: f('client.pem'), key: f('client.key'), ca: f('ca.pem') })
        await withCert.start()
        withCert.close()
        expect(got).toEqual(['tls-1'])
        expect(seen).toEqual(['client'])
        const without = make({ ca: f('ca.pem') })
        await without.start()
        without.close()
        expect(got).toEqual(['tls-1'])
        expect(errors.length).toBe(1)
      } finally {
        server.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
