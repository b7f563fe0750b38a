// `pnpm demo`: the seeds' scenarios end to end. Runs core's sample CheckRequests and every
// `examples/<seed>/demo.mjs` (each exports `default async function scenarios()` returning rows
// `{ scenario, request, expected, got }`, starting whatever servers it needs on loopback and
// stopping them), prints one table and exits non-zero if any row differs. The Rego examples
// (examples/rego/*) run when an `opa` binary is on PATH (or in OPA_BIN): compiled with
// `opa build -t wasm` into a temporary directory, then their case files; without opa the demo
// says how to get it and leaves them out.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createEngine } from '@verdict/core'
import { decisionSummary, runCaseFile } from '@verdict/core/testing'
import { createRegoEvaluator } from '@verdict/rego-adapter'

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

/** The `opa` binary, or why there is none. */
function findOpa() {
  const bin = process.env.OPA_BIN || 'opa'
  const r = spawnSync(bin, ['version'], { encoding: 'utf8' })
  if (r.error === undefined && r.status === 0) return { bin }
  return {
    why: process.env.OPA_BIN
      ? `OPA_BIN=${bin} does not run`
      : 'no `opa` binary on PATH (and OPA_BIN is not set)',
  }
}

/** examples/rego/*: each compiled by real `opa build -t wasm`, then its case file decided by verdict. */
async function regoScenarios(opa) {
  const rows = []
  const examples = [
    ['envoy-authz', 'envoy/authz/allow'],
    ['repo-allowlist', 'mcp/repos/allow'],
  ]
  for (const [name, entrypoint] of examples) {
    const src = fileURLToPath(new URL(`examples/rego/${name}/`, root))
    const dir = mkdtempSync(join(tmpdir(), `verdict-demo-rego-${name}-`))
    try {
      for (const f of ['policy.yaml', 'cases.yaml', 'bundle'])
        cpSync(join(src, f), join(dir, f), { recursive: true })
      const b = spawnSync(
        opa,
        [
          'build',
          '-t',
          'wasm',
          '-e',
          entrypoint,
          '-o',
          join(dir, 'bundle.tar.gz'),
          '-b',
          join(dir, 'bundle'),
        ],
        { encoding: 'utf8' },
      )
      if (b.status !== 0) {
        rows.push({
          scenario: `rego/${name}`,
          request: 'opa build -t wasm',
          expected: 'builds',
          got: `failed: ${(b.stderr || b.stdout).trim().split('\n')[0]}`,
        })
        continue
      }
      const r = await runCaseFile(join(dir, 'cases.yaml'), { evaluators: [createRegoEvaluator()] })
      for (const c of r.results)
        rows.push({
          scenario: `rego/${name}`,
          request: c.name,
          expected: c.expected,
          got: c.passed
            ? decisionSummary(c.decision, c.expectation)
            : `${decisionSummary(c.decision)} (${c.diffs.map((d) => d.field).join(', ')} differ)`,
        })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return rows
}

const rows = await coreScenarios()
const notes = []
const examplesDir = new URL('examples/', root)
const seeds = existsSync(examplesDir) ? (await readdir(examplesDir)).sort() : []
for (const seed of seeds) {
  if (seed === 'rego') {
    const opa = findOpa()
    if (opa.bin === undefined) {
      notes.push(
        `rego: the Rego examples (examples/rego) did not run: ${opa.why}. Get OPA from ` +
          'https://www.openpolicyagent.org/docs/#running-opa (a single binary: put it on PATH as `opa`, ' +
          'or set OPA_BIN), then run `pnpm demo` again.',
      )
      continue
    }
    try {
      rows.push(...(await regoScenarios(opa.bin)))
    } catch (e) {
      rows.push({
        scenario: 'rego',
        request: 'run the example',
        expected: 'runs',
        got: `crashed: ${e?.message ?? e}`,
      })
    }
    continue
  }
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
for (const n of notes) console.log(`\nnote: ${n}`)
console.log(`\n${rows.length - bad} passed, ${bad} failed`)
process.exit(bad === 0 ? 0 : 1)
