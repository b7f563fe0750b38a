// `pnpm demo`: the seeds' scenarios end to end. Runs core's sample CheckRequests and every
// `examples/<seed>/demo.mjs` (each exports `default async function scenarios()` returning rows
// `{ scenario, request, expected, got }`, starting whatever servers it needs on loopback and
// stopping them), prints one table and exits non-zero if any row differs.
import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { createEngine } from '@verdict/core'

const root = new URL('../', import.meta.url)

/** Describe a decision the way the table shows it: allow/deny and status. */
export function outcome(d) {
  return `${d.allowed ? 'allow' : 'deny'} ${d.status}`
}

/** Core on a handful of CheckRequests in each input dialect, with one match-based policy. */
async function coreScenarios() {
  const engine = await createEngine(`
name: core-samples
responses:
  denied: { body: "denied by policy" }
rules:
  - id: ext-authz-header
    action: allow
    match: { headers: [{ name: x-ext-authz, exact: allow }] }
  - id: agent-a
    action: allow
    match: { principals: [{ suffix: /sa/agent-a }] }
`)
  const http = (path, headers = {}, extra = {}) => ({
    attributes: { request: { http: { method: 'GET', path, headers } }, ...extra },
  })
  const samples = [
    [
      'header x-ext-authz: allow (protobuf JSON)',
      http('/productpage', { 'x-ext-authz': 'allow' }),
      'allow 200',
    ],
    ['no header (protobuf JSON)', http('/productpage'), 'deny 403'],
    [
      'SPIFFE principal sa/agent-a (proto names)',
      {
        attributes: {
          source: { principal: 'spiffe://cluster.local/ns/agents/sa/agent-a' },
          request: { http: { method: 'GET', path: '/' } },
        },
      },
      'allow 200',
    ],
    [
      'plain HTTP object with the header',
      { method: 'GET', path: '/x', headers: { 'X-Ext-Authz': 'allow' } },
      'allow 200',
    ],
    ['path with a dot segment', http('/public/../admin', { 'x-ext-authz': 'allow' }), 'deny 400'],
    [
      'header value with CRLF',
      { method: 'GET', path: '/', headers: { 'x-ext-authz': 'allow\r\nx: y' } },
      'deny 400',
    ],
    [
      '10 MB body',
      { method: 'POST', path: '/', headers: { 'x-ext-authz': 'allow' }, body: 'x'.repeat(10 << 20) },
      'deny 413',
    ],
    ['not an object', 'GET / HTTP/1.1', 'deny 400'],
  ]
  const rows = []
  for (const [name, request, expected] of samples) {
    const d = await engine.decide(request)
    rows.push({ scenario: 'core', request: name, expected, got: outcome(d) })
  }
  return rows
}

const rows = await coreScenarios()
const examplesDir = new URL('examples/', root)
const seeds = existsSync(examplesDir) ? (await readdir(examplesDir)).sort() : []
for (const seed of seeds) {
  const mod = new URL(`examples/${seed}/demo.mjs`, root)
  if (!existsSync(mod)) continue
  try {
    const { default: scenarios } = await import(mod.href)
    for (const r of await scenarios()) rows.push({ scenario: seed, ...r })
  } catch (e) {
    rows.push({
      scenario: seed,
      request: 'run the example',
      expected: 'runs',
      got: `crashed: ${e?.message ?? e}`,
    })
  }
}

const head = ['scenario', 'request', 'expected', 'got', '']
const table = [
  head,
  ...rows.map((r) => [r.scenario, r.request, r.expected, r.got, r.expected === r.got ? 'ok' : 'MISMATCH']),
]
const widths = head.map((_, i) => Math.max(...table.map((row) => String(row[i]).length)))
const line = (row) =>
  row
    .map((c, i) => String(c).padEnd(widths[i]))
    .join('  ')
    .trimEnd()
console.log(line(head))
console.log(widths.map((w) => '-'.repeat(w)).join('  '))
for (const row of table.slice(1)) console.log(line(row))
const bad = rows.filter((r) => r.expected !== r.got).length
console.log(`\n${rows.length - bad} passed, ${bad} failed`)
process.exit(bad === 0 ? 0 : 1)
