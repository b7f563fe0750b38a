import type { Server as HttpServer } from 'node:http'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import { createEngine, type Engine } from '@verdict/core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { guardTransport } from './guard-transport.js'
import { createMcpEvaluator } from './mcp-evaluator.js'
import {
  AGENT_A,
  AGENT_B,
  callTool,
  closeServer,
  connectAs,
  createWikiServer,
  listen,
  serveSessions,
} from './testing/mcp-peers.js'

let engine: Engine
let server: HttpServer
let url: string
const denied: string[] = []

beforeAll(async () => {
  engine = await createEngine(
    {
      mcp: { denial: 'jsonrpc' },
      rules: [
        {
          id: 'a',
          action: 'allow',
          mcp: {
            source: { spiffe: AGENT_A },
            tools: ['ask_question'],
            baseProtocol: 'MATCH',
            arguments: { repoName: { in: ['kubernetes-sigs/gateway-api'] } },
          },
        },
        { id: 'b', action: 'allow', mcp: { source: { spiffe: AGENT_B }, tools: [] } },
      ],
    },
    { evaluators: [createMcpEvaluator()] },
  )
  // The principal comes from the transport's request headers here; a real server would take it
  // from its authentication (extra.authInfo) or the TLS peer.
  server = serveSessions(createWikiServer, {
    wrap: (t) =>
      guardTransport(t, {
        engine,
        principal: (extra) => {
          const h = extra?.requestInfo?.headers['x-verdict-principal']
          return typeof h === 'string' ? h : undefined
        },
        onDenied: (m) => denied.push('method' in m ? String(m.method) : 'response'),
      }),
  })
  url = `${await listen(server)}/mcp`
})

afterAll(async () => {
  await closeServer(server)
  engine.close()
})

describe('guardTransport (SDK server)', () => {
  it('decides every message before the server sees it and filters tools/list', async () => {
    const a = await connectAs(url, AGENT_A)
    expect((await a.listTools()).tools.map((t) => t.name)).toEqual(['ask_question'])
    expect(await callTool(a, 'ask_question', { repoName: 'kubernetes-sigs/gateway-api' })).toBe(
      'ask_question:kubernetes-sigs/gateway-api',
    )
    expect(await callTool(a, 'ask_question', { repoName: 'cncf/toc' })).toBe('denied:403')
    expect(await callTool(a, 'read_wiki_structure', { repoName: 'kubernetes-sigs/gateway-api' })).toBe(
      'denied:403',
    )
    await a.close()
  })

  it('a caller without base-protocol rights cannot even initialize', async () => {
    await expect(connectAs(url, AGENT_B)).rejects.toThrow()
    expect(denied).toContain('initialize')
  })
})

describe('guardTransport (duplicate ids)', () => {
  it('refuses a request reusing the id of a pending list request, so no list answer goes out unfiltered', async () => {
    const e = await createEngine(
      { rules: [{ id: 'a', action: 'allow', mcp: { tools: ['public'], baseProtocol: 'MATCH' } }] },
      { evaluators: [createMcpEvaluator()] },
    )
    const sent: Array<Record<string, unknown>> = []
    const inner: Transport = {
      start: async () => {},
      close: async () => {},
      send: async (m) => {
        sent.push(m as Record<string, unknown>)
      },
    }
    const guarded = guardTransport(inner, { engine: e })
    const seen: Array<Record<string, unknown>> = []
    guarded.onmessage = (m) => seen.push(m as Record<string, unknown>)
    await guarded.start()
    const list = { jsonrpc: '2.0', id: 7, method: 'tools/list' } as JSONRPCMessage
    inner.onmessage?.(list)
    inner.onmessage?.(list)
    inner.onmessage?.({
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: { name: 'public' },
    } as JSONRPCMessage)
    await vi.waitFor(() => expect(sent).toHaveLength(2))
    // The server saw the first list request only; the others got an error.
    expect(seen).toHaveLength(1)
    expect(sent.map((m) => (m.error as { message: string }).message)).toEqual([
      'Invalid request: the id of a request still pending',
      'Invalid request: the id of a request still pending',
    ])
    // The server's answer is filtered; afterwards the id is free again.
    const tools = [
      { name: 'public', inputSchema: { type: 'object' } },
      { name: 'secret', inputSchema: { type: 'object' } },
    ]
    await guarded.send({ jsonrpc: '2.0', id: 7, result: { tools } } as JSONRPCMessage)
    expect((sent[2]!.result as { tools: Array<{ name: string }> }).tools.map((t) => t.name)).toEqual([
      'public',
    ])
    inner.onmessage?.(list)
    await vi.waitFor(() => expect(seen).toHaveLength(2))
    e.close()
  })
})
