/**
 * Test support: a real bundle service and a real collector on loopback.
 */
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'

type Fault = 'none' | '500' | 'hang' | 'truncate' | 'drip'

export interface BundleServer {
  readonly url: string
  readonly origin: string
  /** Serve these bytes from now on (a new ETag); waiting long polls are answered. */
  publish(bytes: Uint8Array): void
  fault: Fault
  /** Answer with OPA's long-polling content type and honour `Prefer: wait=N`. */
  longPolling: boolean
  /** Requests seen, with their headers. */
  readonly requests: Array<{ url: string; headers: IncomingMessage['headers'] }>
  /** Extra routes (path -> handler). */
  readonly routes: Map<string, (req: IncomingMessage, res: ServerResponse) => void>
  close(): Promise<void>
}

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const OPA_TYPE = 'application/vnd.openpolicyagent.bundles'

export async function startBundleServer(path = '/bundles/verdict.tar.gz'): Promise<BundleServer> {
  let current: Uint8Array | undefined
  let version = 0
  const waiting = new Set<() => void>()
  const sockets = new Set<import('node:net').Socket>()
  const state = {
    fault: 'none' as Fault,
    longPolling: false,
    requests: [] as BundleServer['requests'],
    routes: new Map<string, (req: IncomingMessage, res: ServerResponse) => void>(),
  }
  const etag = () => `"v${version}"`
  const server = createServer((req, res) => {
    const route = state.routes.get((req.url ?? '').split('?')[0]!)
    if (route !== undefined) return void route(req, res)
    state.requests.push({ url: req.url ?? '', headers: req.headers })
    if (req.url !== path) {
      res.writeHead(404).end()
      return
    }
    const type = state.longPolling ? OPA_TYPE : 'application/gzip'
    const answer = () => {
      if (state.fault === '500') return void res.writeHead(500).end('boom')
      if (state.fault === 'hang') return
      if (current === undefined) return void res.writeHead(404).end()
      if (req.headers['if-none-match'] === etag())
        return void res.writeHead(304, { etag: etag(), 'content-type': type }).end()
      if (state.fault === 'truncate') {
        res.writeHead(200, { etag: etag(), 'content-type': type, 'content-length': current.length })
        res.write(current.subarray(0, Math.floor(current.length / 2)))
        res.destroy()
        return
      }
      if (state.fault === 'drip') {
        res.writeHead(200, { etag: etag(), 'content-type': type })
        let i = 0
        const t = setInterval(() => {
          if (i >= current!.length || res.destroyed) {
            clearInterval(t)
            res.end()
            return
          }
          res.write(current!.subarray(i, i + 16))
          i += 16
        }, 200)
        res.on('close', () => clearInterval(t))
        return
      }
      res.writeHead(200, { etag: etag(), 'content-type': type }).end(current)
    }
    const wait = /wait=(\d+)/.exec(String(req.headers.prefer ?? ''))
    if (state.longPolling && wait && req.headers['if-none-match'] === etag() && state.fault === 'none') {
      const timer = setTimeout(() => {
        waiting.delete(wake)
        answer()
      }, Number(wait[1]) * 1000)
      const wake = () => {
        clearTimeout(timer)
        answer()
      }
      waiting.add(wake)
      res.on('close', () => {
        clearTimeout(timer)
        waiting.delete(wake)
      })
      return
    }
    answer()
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  const origin = await listen(server)
  return Object.assign(state, {
    url: `${origin}${path}`,
    origin,
    publish(bytes: Uint8Array) {
      current = bytes
      version++
      for (const w of [...waiting]) {
        waiting.delete(w)
        w()
      }
    },
    async close() {
      for (const s of sockets) s.destroy()
      server.close()
      await once(server, 'close')
    },
  }) as BundleServer
}

export interface Collector {
  readonly url: string
  /** Every decision event received, in order (duplicates kept). */
  readonly events: Array<Record<string, unknown>>
  /** Every status report received. */
  readonly statuses: Array<Record<string, unknown>>
  /** Every request's headers. */
  readonly headers: Array<IncomingMessage['headers']>
  /** While true, answer 503 to everything. */
  down: boolean
  close(): Promise<void>
}

export async function startCollector(): Promise<Collector> {
  const state = {
    events: [] as Array<Record<string, unknown>>,
    statuses: [] as Array<Record<string, unknown>>,
    headers: [] as Array<IncomingMessage['headers']>,
    down: false,
  }
  const sockets = new Set<import('node:net').Socket>()
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      state.headers.push(req.headers)
      if (state.down) return void res.writeHead(503).end()
      let body = Buffer.concat(chunks)
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body)
      const parsed = JSON.parse(body.toString('utf8')) as unknown
      if ((req.url ?? '').startsWith('/logs'))
        state.events.push(...(parsed as Array<Record<string, unknown>>))
      else state.statuses.push(parsed as Record<string, unknown>)
      res.writeHead(200).end()
    })
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  const url = await listen(server)
  return Object.assign(state, {
    url,
    async close() {
      for (const s of sockets) s.destroy()
      server.close()
      await once(server, 'close')
    },
  }) as Collector
}

/** Wait until `check()` is true, polling every 20 ms; throws after `timeoutMs`. */
export async function until(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
