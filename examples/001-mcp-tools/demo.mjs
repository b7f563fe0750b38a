// pnpm demo rows for seed 001, with real parts on loopback: server-everything (local tools) and a
// small SDK-built documentation server (remote tools), each behind verdict's MCP gateway, driven by
// the official SDK client as agent-a and agent-b; then the repository allow-list is edited on disk
// and the gateway must deny gateway-api within 2 seconds, without a restart.
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createEngineFromFile } from '@verdict/core'
import { createMcpEvaluator, createMcpGateway } from '@verdict/mcp'
import {
  AGENT_A,
  AGENT_B,
  callTool,
  closeServer,
  connectAs,
  createWikiServer,
  listen,
  serveSessions,
  startEverything,
} from '@verdict/mcp/testing'

const here = (f) => fileURLToPath(new URL(f, import.meta.url))
const outcome = (text) => (text.startsWith('denied:') ? 'deny' : 'allow')

export default async function scenarios() {
  const dir = await mkdtemp(join(tmpdir(), 'verdict-seed-001-'))
  const cleanup = []
  try {
    const everything = await startEverything()
    cleanup.push(() => everything.stop())
    const wiki = serveSessions(createWikiServer)
    cleanup.push(() => closeServer(wiki))
    const wikiUrl = `${await listen(wiki)}/mcp`

    const gateway = async (upstream, file) => {
      const engine = await createEngineFromFile(file, { evaluators: [createMcpEvaluator()] })
      const gw = createMcpGateway({
        engine,
        upstream,
        principalHeader: 'x-verdict-principal',
        policyFile: file,
      })
      const server = createServer(gw.node)
      cleanup.push(async () => {
        gw.close()
        engine.close()
        await closeServer(server)
      })
      return `${await listen(server)}/mcp`
    }
    const remoteFile = join(dir, 'remote.policy.yaml')
    await copyFile(here('./remote.policy.yaml'), remoteFile)
    const localUrl = await gateway(everything.url, here('./local.policy.yaml'))
    const remoteUrl = await gateway(wikiUrl, remoteFile)

    const a = await connectAs(localUrl, AGENT_A)
    const b = await connectAs(localUrl, AGENT_B)
    const r = await connectAs(remoteUrl, AGENT_A)
    cleanup.push(() => Promise.all([a, b, r].map((c) => c.close().catch(() => {}))))

    const rows = []
    const row = (request, expected, got) => rows.push({ request, expected, got })
    const listed = (await a.listTools()).tools.map((t) => t.name)
    row('agent-a tools/list (local, filtered)', 'get-sum', listed.join(','))
    row('agent-a get-sum', 'allow', outcome(await callTool(a, 'get-sum', { a: 2, b: 3 })))
    row('agent-a echo', 'deny', outcome(await callTool(a, 'echo', { message: 'hi' })))
    row('agent-b get-sum', 'deny', outcome(await callTool(b, 'get-sum', { a: 2, b: 3 })))
    const repos = [
      ['kubernetes-sigs/kube-agentic-networking', 'allow'],
      ['kubernetes-sigs/gateway-api', 'allow'],
      ['kubernetes/kubernetes', 'deny'],
      ['cncf/toc', 'deny'],
    ]
    for (const [repo, want] of repos) {
      row(
        `read_wiki_structure ${repo}`,
        want,
        outcome(await callTool(r, 'read_wiki_structure', { repoName: repo })),
      )
    }

    // Edit the allow-list on disk to the first repository only.
    const text = await readFile(remoteFile, 'utf8')
    await writeFile(remoteFile, text.replace(/\n\s+- kubernetes-sigs\/gateway-api/, ''))
    const t0 = Date.now()
    let got = 'allow'
    while (Date.now() - t0 < 5000) {
      got = outcome(
        await callTool(r, 'ask_question', { repoName: 'kubernetes-sigs/gateway-api', question: 'x' }),
      )
      if (got === 'deny') break
      await new Promise((res) => setTimeout(res, 50))
    }
    const ms = Date.now() - t0
    row(
      `after the edit: gateway-api (${ms} ms)`,
      'deny within 2 s',
      got === 'deny' && ms <= 2000 ? 'deny within 2 s' : `${got} after ${ms} ms`,
    )
    row(
      'after the edit: kube-agentic-networking',
      'allow',
      outcome(
        await callTool(r, 'ask_question', {
          repoName: 'kubernetes-sigs/kube-agentic-networking',
          question: 'x',
        }),
      ),
    )
    return rows
  } finally {
    for (const c of cleanup.reverse()) await c()
    await rm(dir, { recursive: true, force: true })
  }
}
