/**
 * Real MCP peers for the MCP suites, all on loopback: `@modelcontextprotocol/server-everything`
 * over Streamable HTTP as a child process, a small SDK-built "remote" server offering
 * `read_wiki_structure` and `ask_question`, and the official SDK client.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { createServer, type Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js'

export const AGENT_A = 'spiffe://cluster.local/ns/agents/sa/agent-a'
export const AGENT_B = 'spiffe://cluster.local/ns/agents/sa/agent-b'

/**
 * The gateway tests' policy: agent A may call only `read_wiki_structure`, agent B anything; base
 * protocol is allowed to both; denials look like unknown tools (`hidden`).
 */
export const AGENTS_POLICY = {
  mcp: { denial: 'hidden' },
  rules: [
    {
      id: 'a',
      action: 'allow',
      mcp: { source: { spiffe: AGENT_A }, tools: ['read_wiki_structure'], baseProtocol: 'MATCH' },
    },
    { id: 'b', action: 'allow', mcp: { source: { spiffe: AGENT_B }, baseProtocol: 'MATCH' } },
  ],
}

/** Listen on an ephemeral loopback port; resolves with the base URL. */
export function listen(server: HttpServer): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))
  })
}

export function closeServer(server: HttpServer | undefined): Promise<void> {
  if (server === undefined) return Promise.resolve()
  server.closeAllConnections()
  return new Promise((resolve) => server.close(() => resolve()))
}

async function freePort(): Promise<number> {
  const s = createServer()
  const url = await listen(s)
  await closeServer(s)
  return Number(new URL(url).port)
}

/** server-everything's Streamable HTTP transport in a child process; `url` is its `/mcp` endpoint. */
export async function startEverything(): Promise<{
  url: string
  child: ChildProcess
  stop: () => Promise<void>
}> {
  const require = createRequire(import.meta.url)
  const pkg = require.resolve('@modelcontextprotocol/server-everything/package.json')
  const entry = join(dirname(pkg), 'dist', 'index.js')
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    const child = spawn(process.execPath, [entry, 'streamableHttp'], {
      env: { ...process.env, PORT: String(port) },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    const ok = await new Promise<boolean>((resolve) => {
      let err = ''
      const timer = setTimeout(() => resolve(false), 15_000)
      child.stderr!.on('data', (b: Buffer) => {
        err += b.toString()
        if (err.includes('listening on port')) {
          clearTimeout(timer)
          resolve(true)
        }
      })
      child.once('exit', () => {
        clearTimeout(timer)
        resolve(false)
      })
    })
    if (ok) {
      const stop = () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve()
          child.once('exit', () => resolve())
          child.kill('SIGTERM')
        })
      return { url: `http://127.0.0.1:${port}/mcp`, child, stop }
    }
    child.kill('SIGKILL')
    // Another process may have taken the port between probing and binding: try a new one.
    if (attempt >= 2) throw new Error('server-everything did not start')
  }
}

/** The remote server of seed 001, built with the SDK's low-level `Server` (no schema library). */
export function createWikiServer(): Server {
  const server = new Server({ name: 'wiki', version: '1.0.0' }, { capabilities: { tools: {} } })
  const repoArg = { type: 'object', properties: { repoName: { type: 'string' } }, required: ['repoName'] }
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: [
      { name: 'read_wiki_structure', description: 'Wiki topics of a repository', inputSchema: repoArg },
      {
        name: 'ask_question',
        description: 'Ask about a repository',
        inputSchema: { ...repoArg, properties: { ...repoArg.properties, question: { type: 'string' } } },
      },
    ],
  }))
  server.setRequestHandler(CallToolRequestSchema, async (req) => {
    const repo = String(req.params.arguments?.repoName ?? '')
    return { content: [{ type: 'text', text: `${req.params.name}:${repo}` }] }
  })
  return server
}

/**
 * Serve SDK servers over Streamable HTTP with sessions (one server and transport per session).
 * `wrap` lets a test put a guard around each transport.
 */
export function serveSessions(
  make: () => Server,
  opts: { json?: boolean; wrap?: (t: StreamableHTTPServerTransport) => Transport } = {},
): HttpServer {
  const transports = new Map<string, StreamableHTTPServerTransport>()
  return createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const sid = req.headers['mcp-session-id']
    let transport = typeof sid === 'string' ? transports.get(sid) : undefined
    if (transport === undefined) {
      if (sid !== undefined || req.method !== 'POST') {
        res.writeHead(404).end()
        return
      }
      const t: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: opts.json === true,
        onsessioninitialized: (id: string): void => {
          transports.set(id, t)
        },
      })
      t.onclose = () => {
        if (t.sessionId !== undefined) transports.delete(t.sessionId)
      }
      await make().connect(opts.wrap ? opts.wrap(t) : t)
      transport = t
    }
    await transport.handleRequest(req, res)
  })
}

/** An SDK client connected through `url` as `principal` (sent in the gateway's trusted header). */
export async function connectAs(url: string, principal: string | undefined): Promise<Client> {
  const client = new Client({ name: `client-${principal ?? 'anonymous'}`, version: '1.0.0' })
  const headers: Record<string, string> = principal !== undefined ? { 'x-verdict-principal': principal } : {}
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }))
  return client
}

/** Call a tool; returns the text result or `denied:<code>` when the call is refused. */
export async function callTool(client: Client, name: string, args: Record<string, unknown>): Promise<string> {
  try {
    const r = await client.callTool({ name, arguments: args })
    const content = r.content as Array<{ type: string; text?: string }>
    if (r.isError === true) return `error:${content[0]?.text ?? ''}`
    return content.map((c) => c.text ?? c.type).join('')
  } catch (e) {
    return `denied:${(e as { code?: unknown }).code ?? (e as Error).message}`
  }
}
