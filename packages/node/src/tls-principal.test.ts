/**
 * tlsPeerPrincipal on real mutual-TLS connections over loopback, with the committed test
 * certificates of @verdict/mcp (packages/mcp/src/testing/tls, see its README), and on plain TCP.
 */
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, get as httpGet, type Server } from 'node:http'
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tlsPeerPrincipal } from './tls-principal.js'

const pem = (name: string): Buffer =>
  readFileSync(new URL(`../../mcp/src/testing/tls/${name}.pem`, import.meta.url))
const AGENT_A = 'spiffe://cluster.local/ns/agents/sa/agent-a'
const AGENT_B = 'spiffe://cluster.local/ns/agents/sa/agent-b'

let tls: Server
let plain: Server
let tlsPort: number
let plainPort: number

/** Each server answers with JSON `{ principal }` as the extractor saw it. */
const answer = (principal: string | undefined): string => JSON.stringify({ principal: principal ?? null })

beforeAll(async () => {
  tls = createHttpsServer(
    {
      key: pem('server-key'),
      cert: pem('server'),
      ca: pem('ca'),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) => res.end(answer(tlsPeerPrincipal(req.socket))),
  )
  plain = createHttpServer((req, res) => res.end(answer(tlsPeerPrincipal(req.socket))))
  await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r))
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r))
  tlsPort = (tls.address() as AddressInfo).port
  plainPort = (plain.address() as AddressInfo).port
})
afterAll(async () => {
  await new Promise<void>((r) => tls.close(() => r()))
  await new Promise<void>((r) => plain.close(() => r()))
})

function principalOver(identity: string | undefined): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: tlsPort,
        path: '/',
        ca: pem('ca'),
        agent: false,
        ...(identity !== undefined ? { cert: pem(identity), key: pem(`${identity}-key`) } : {}),
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          text += c
        })
        res.on('end', () => resolve((JSON.parse(text) as { principal: string | null }).principal))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

describe('tlsPeerPrincipal', () => {
  it('is the one URI SAN of a client certificate from a trusted CA', async () => {
    expect(await principalOver('agent-a')).toBe(AGENT_A)
    expect(await principalOver('agent-b')).toBe(AGENT_B)
  })

  it('decodes a URI SAN that Node prints JSON-quoted', async () => {
    expect(await principalOver('comma-uri')).toBe(`${AGENT_B},x`)
  })

  it('fails closed: no certificate, an untrusted one, two URI SANs, a DNS SAN spelling a URI', async () => {
    expect(await principalOver(undefined)).toBeNull()
    expect(await principalOver('rogue')).toBeNull()
    expect(await principalOver('two-uris')).toBeNull()
    expect(await principalOver('smuggled')).toBeNull()
  })

  it('is undefined on a plain TCP connection', async () => {
    const principal = await new Promise<string | null>((resolve, reject) => {
      httpGet(`http://127.0.0.1:${plainPort}/`, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          text += c
        })
        res.on('end', () => resolve((JSON.parse(text) as { principal: string | null }).principal))
      }).on('error', reject)
    })
    expect(principal).toBeNull()
  })
})
