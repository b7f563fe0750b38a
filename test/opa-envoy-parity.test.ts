/**
 * Parity with real OPA (issue 16, part 5): verdict against `opa` on the same Rego and requests.
 *
 * 1. decide() on a bundle compiled here with `opa build -t wasm` against `opa eval` of the same
 *    Rego on the input document verdict built, both dialects, over a generated corpus: the same
 *    decisions (allowed, status, headers, body, removals, query changes, dynamic metadata).
 * 2. The gRPC wire: verdict's ext_authz server (createExtAuthzServer, in-process) against
 *    `opa run` with the envoy_ext_authz_grpc plugin on loopback, same Rego, same CheckRequests:
 *    CheckResponses equal field by field. Where verdict answers differently on purpose, the case
 *    says so and pins both answers (corpus.ts), and the normalization below lists what differs for
 *    every request.
 *
 * Needs `opa` (OPA_BIN, else PATH); without it every test here is skipped with the reason printed.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createEngine, type Decision, type Engine, type Evaluator } from '@verdict/core'
import {
  type CheckClient,
  createCheckClient,
  createExtAuthzServer,
  type ExtAuthzServer,
} from '@verdict/envoy'
import { authorinoInput, createRegoEvaluator, opaEnvoyInput } from '@verdict/rego-adapter'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { findOpa, runOpa } from '../packages/rego-adapter/src/testing/find-opa.js'
import {
  EDGE_CASES,
  generatedCorpus,
  type ParityCase,
  parseErrorResponse,
  toMessage,
} from './opa-parity/corpus.js'

type Obj = Record<string, unknown>

const here = fileURLToPath(new URL('./opa-parity/', import.meta.url))
const ENVOY_REGO = readFileSync(join(here, 'envoy.rego'), 'utf8')
const AUTHORINO_REGO = readFileSync(join(here, 'authorino.rego'), 'utf8')

const opa = findOpa()
if (opa.why !== undefined)
  console.warn(
    `[opa-envoy-parity] SKIPPED the parity suites against real OPA: ${opa.why}. ` +
      'Install OPA with the Envoy plugin (opa-envoy-plugin releases) or set OPA_BIN to run them.',
  )
const suite = opa.bin === undefined ? describe.skip : describe

const CORPUS: ParityCase[] = [...generatedCorpus(16, 96), ...generatedCorpus(1601, 64)]

let dir: string

function build(rego: string, entrypoint: string): Uint8Array {
  writeFileSync(join(dir, 'p.rego'), rego)
  const out = join(dir, `${entrypoint.replace(/\//g, '_')}.tar.gz`)
  runOpa(opa.bin!, ['build', '-t', 'wasm', '-e', entrypoint, '-o', out, join(dir, 'p.rego')])
  return readFileSync(out)
}

/** A policy with one Rego decide rule on a bundle `opa build` made in this test. */
async function regoEngine(tarGz: Uint8Array, entrypoint: string, dialect: string): Promise<Engine> {
  return createEngine(
    { rules: [{ id: 'rego', action: 'decide', rego: { bundle: 'b', entrypoint, dialect } }] },
    { evaluators: [createRegoEvaluator({ bundles: { b: { tarGz } } })] },
  )
}

/** The input document verdict hands to a Rego rule of `dialect`, for the same request. */
async function inputEngine(dialect: 'opa-envoy' | 'authorino'): Promise<Engine> {
  const capture: Evaluator = {
    kind: 'capture',
    compile: () => ({
      ok: true,
      program: {
        evaluate: (ctx) => ({
          ok: true,
          value: {
            allowed: false,
            body: JSON.stringify(dialect === 'authorino' ? authorinoInput(ctx) : opaEnvoyInput(ctx)),
          },
        }),
      },
    }),
  }
  return createEngine({ rules: [{ id: 'c', action: 'decide', capture: {} }] }, { evaluators: [capture] })
}

/** `opa eval` of `query` for every input at once (one process): name -> result value (or undefined). */
function opaEvalAll(rego: string, query: string, inputs: Record<string, unknown>): Record<string, unknown> {
  writeFileSync(join(dir, 'p.rego'), rego)
  writeFileSync(join(dir, 'inputs.json'), JSON.stringify({ parity_inputs: inputs }))
  const wrapper = `package parity\nimport rego.v1\nresults[k] := v if {\n  some k, x in data.parity_inputs\n  v := ${query} with input as x\n}\n`
  writeFileSync(join(dir, 'wrapper.rego'), wrapper)
  const out = runOpa(opa.bin!, [
    'eval',
    '--format',
    'json',
    '-d',
    join(dir, 'p.rego'),
    '-d',
    join(dir, 'wrapper.rego'),
    '-d',
    join(dir, 'inputs.json'),
    'data.parity.results',
  ])
  const parsed = JSON.parse(out) as {
    result?: Array<{ expressions: Array<{ value: Record<string, unknown> }> }>
  }
  return parsed.result?.[0]?.expressions[0]?.value ?? {}
}

/**
 * A denial body: parsed when it is JSON, since json.marshal in a module built by `opa build -t
 * wasm` keeps an object's keys in the input's order where Go's sorts them (the echo case).
 */
function bodyOf(b: unknown): unknown {
  if (typeof b !== 'string') return b ?? ''
  try {
    return JSON.parse(b)
  } catch {
    return b
  }
}

/** What the plugin does with a policy result (its response mapping), as decision fields. */
function pluginDecision(value: unknown): Obj | 'error' {
  if (value === true) return pluginDecision({ allowed: true })
  if (value === false) return pluginDecision({ allowed: false })
  if (typeof value !== 'object' || value === null || typeof (value as Obj).allowed !== 'boolean')
    return 'error'
  const v = value as Obj
  const headers = (h: unknown) =>
    Object.entries((h ?? {}) as Record<string, string | string[]>)
      .flatMap(([k, x]) => (Array.isArray(x) ? x : [x]).map((value) => `${k}: ${value}`))
      .sort()
  const query = (q: unknown) =>
    Object.entries((q ?? {}) as Record<string, string | string[]>)
      .flatMap(([k, x]) => (Array.isArray(x) ? x : [x]).map((value) => `${k}=${value}`))
      .sort()
  if (v.allowed === false)
    return {
      allowed: false,
      status: v.http_status ?? 403,
      body: bodyOf(v.body),
      headers: headers(v.headers),
      dynamicMetadata: v.dynamic_metadata ?? {},
    }
  return {
    allowed: true,
    headers: headers(v.headers),
    responseHeadersToAdd: headers(v.response_headers_to_add),
    headersToRemove: v.request_headers_to_remove ?? [],
    queryParametersToSet: query(v.query_parameters_to_set),
    queryParametersToRemove: v.query_parameters_to_remove ?? [],
    dynamicMetadata: v.dynamic_metadata ?? {},
  }
}

/** A verdict Decision in the same terms. */
function verdictDecision(d: Decision): Obj | 'error' {
  if (d.code === 'evaluator_error') return 'error'
  const headers = (list: Decision['headers']) => list.map((h) => `${h.key}: ${h.value}`).sort()
  if (!d.allowed)
    return {
      allowed: false,
      status: d.status,
      body: bodyOf(d.body),
      headers: headers(d.headers),
      dynamicMetadata: { ...d.dynamicMetadata },
    }
  return {
    allowed: true,
    headers: headers(d.headers),
    responseHeadersToAdd: headers(d.responseHeadersToAdd),
    headersToRemove: [...d.headersToRemove],
    queryParametersToSet: d.queryParametersToSet.map((q) => `${q.key}=${q.value}`).sort(),
    queryParametersToRemove: [...d.queryParametersToRemove],
    dynamicMetadata: { ...d.dynamicMetadata },
  }
}

suite('decide() on opa-built bundles equals opa eval on the same input', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'verdict-opa-parity-'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  test('opa-envoy dialect: every result shape over the generated corpus', async () => {
    const engine = await regoEngine(
      build(ENVOY_REGO, 'envoy/authz/result'),
      'envoy/authz/result',
      'opa-envoy',
    )
    const capture = await inputEngine('opa-envoy')
    const inputs: Record<string, unknown> = {}
    const decisions: Record<string, Decision> = {}
    let parseErrors = 0
    for (const c of CORPUS) {
      const d = await engine.decide(c.request)
      decisions[c.name] = d
      if (d.detailCode === 'request_parse_error') {
        // Refused before the policy's answer counts, as the plugin refuses it (wire suite below).
        expect(d).toMatchObject({ allowed: false, status: 400, code: 'malformed_input' })
        expect(d.body).toMatch(/^request_parse_error: /)
        parseErrors++
        continue
      }
      const captured = await capture.decide(c.request)
      expect(captured.code, `${c.name}: ${captured.reason}`).toBe('denied')
      inputs[c.name] = JSON.parse(captured.body!)
    }
    const results = opaEvalAll(ENVOY_REGO, 'data.envoy.authz.result', inputs)
    let compared = 0
    const kinds = new Set<string>()
    for (const name of Object.keys(inputs)) {
      const want = pluginDecision(results[name])
      const got = verdictDecision(decisions[name]!)
      expect(got, name).toEqual(want)
      kinds.add(want === 'error' ? 'error' : want.allowed ? 'allow' : 'deny')
      compared++
    }
    expect(compared + parseErrors).toBe(CORPUS.length)
    expect(parseErrors).toBeGreaterThan(0)
    expect([...kinds].sort()).toEqual(['allow', 'deny'])
    engine.close()
    capture.close()
  })

  test('authorino dialect: allow over the generated corpus', async () => {
    const engine = await regoEngine(
      build(AUTHORINO_REGO, 'authorino/authz/allow'),
      'authorino/authz/allow',
      'authorino',
    )
    const capture = await inputEngine('authorino')
    const inputs: Record<string, unknown> = {}
    const decisions: Record<string, Decision> = {}
    const requests = CORPUS.map((c) => {
      // Vary what the Authorino policy reads: roles, tenants, the query, the port.
      const r = structuredClone(c.request) as { attributes: Obj }
      return { name: c.name, request: r }
    })
    for (const { name, request } of requests) {
      decisions[name] = await engine.decide(request)
      const captured = await capture.decide(request)
      if (captured.code !== 'denied') continue // refused before rules: no input document
      inputs[name] = JSON.parse(captured.body!)
    }
    const results = opaEvalAll(AUTHORINO_REGO, 'data.authorino.authz.allow', inputs)
    const seen = new Set<boolean>()
    for (const name of Object.keys(inputs)) {
      expect(decisions[name]!.allowed, name).toBe(results[name])
      seen.add(results[name] as boolean)
    }
    expect([...seen].sort()).toEqual([false, true])
    engine.close()
    capture.close()
  })
})

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/**
 * A CheckResponse in terms both sides can be compared in. What differs for every request, by design:
 * - `dynamic_metadata.decision_id`: a fresh id on both sides; dropped;
 * - `status.message`: verdict puts its (loggable) reason there, the plugin nothing; dropped;
 * - a `false` result: the plugin sends no `denied_response`, verdict one with status Forbidden and
 *   no body; Envoy answers both with its default 403 and an empty body; compared as the latter;
 *   likewise a `true` result: no `ok_response` from the plugin, an empty one from verdict;
 * - header append actions: the plugin leaves them unset; verdict sets OVERWRITE_IF_EXISTS_OR_ADD
 *   on a name's first value and APPEND_IF_EXISTS_OR_ADD on later ones (Envoy's documented
 *   ext_authz default, so a policy's identity header replaces a client's); checked separately;
 * - order of headers and query parameters from a Rego object: Go's map order is random; sorted;
 * - proto3 defaults: an empty string or list is the same as an absent field.
 * Denial bodies that are JSON (the echo case) are parsed, so differences show field by field (and
 * json.marshal's key order, which differs between wasm and Go, does not count).
 */
function normalize(res: Obj): Obj {
  const out: Obj = { status: { code: (res.status as Obj | undefined)?.code ?? 0 } }
  const headers = (list: unknown) => {
    const l = (list ?? []) as Array<{ header?: { key?: string; value?: string } }>
    return l.map((h) => `${h.header?.key}: ${h.header?.value ?? ''}`).sort()
  }
  const dm = { ...((res.dynamicMetadata ?? {}) as Obj) }
  delete dm.decision_id
  if (Object.keys(dm).length > 0) out.dynamicMetadata = dm
  const ok = res.okResponse as Obj | undefined
  if (ok !== undefined) {
    const o: Obj = {}
    if (headers(ok.headers).length > 0) o.headers = headers(ok.headers)
    if (headers(ok.responseHeadersToAdd).length > 0) o.responseHeadersToAdd = headers(ok.responseHeadersToAdd)
    if (((ok.headersToRemove ?? []) as string[]).length > 0) o.headersToRemove = ok.headersToRemove
    const qs = ((ok.queryParametersToSet ?? []) as Array<{ key?: string; value?: string }>).map(
      (q) => `${q.key}=${q.value ?? ''}`,
    )
    if (qs.length > 0) o.queryParametersToSet = qs.sort()
    if (((ok.queryParametersToRemove ?? []) as string[]).length > 0)
      o.queryParametersToRemove = ok.queryParametersToRemove
    if (Object.keys(o).length > 0) out.okResponse = o
  }
  const code = (out.status as Obj).code
  if (code !== 0) {
    const denied = (res.deniedResponse ?? {}) as Obj
    const d: Obj = { status: { code: (denied.status as Obj | undefined)?.code ?? 'Forbidden' } }
    if (headers(denied.headers).length > 0) d.headers = headers(denied.headers)
    const body = denied.body as string | undefined
    if (body !== undefined && body !== '') {
      try {
        d.body = JSON.parse(body)
      } catch {
        d.body = body
      }
    }
    out.deniedResponse = d
  }
  return out
}

/** verdict's append actions: the first value of a name replaces, later ones append. */
function checkAppendActions(res: Obj, name: string): void {
  const lists = [
    (res.okResponse as Obj | undefined)?.headers,
    (res.okResponse as Obj | undefined)?.responseHeadersToAdd,
    (res.deniedResponse as Obj | undefined)?.headers,
  ]
  for (const list of lists) {
    const seen = new Set<string>()
    for (const h of (list ?? []) as Array<{ header: { key: string }; appendAction?: string }>) {
      const k = h.header.key.toLowerCase()
      const want = seen.has(k) ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD'
      expect(h.appendAction ?? 'APPEND_IF_EXISTS_OR_ADD', `${name}: ${k}`).toBe(want)
      seen.add(k)
    }
  }
}

suite('verdict ext_authz against opa run with envoy_ext_authz_grpc, over gRPC', () => {
  let child: ChildProcess | undefined
  let server: ExtAuthzServer | undefined
  let engine: Engine | undefined
  let v: CheckClient
  let o: CheckClient
  let log = ''

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'verdict-opa-wire-'))
    const tarGz = build(ENVOY_REGO, 'envoy/authz/result')
    engine = await regoEngine(tarGz, 'envoy/authz/result', 'opa-envoy')
    server = createExtAuthzServer({ engine, grpc: { port: 0 } })
    const bound = await server.start()
    const [grpcPort, httpPort] = [await freePort(), await freePort()]
    writeFileSync(join(dir, 'policy.rego'), ENVOY_REGO)
    writeFileSync(
      join(dir, 'config.yaml'),
      `plugins:\n  envoy_ext_authz_grpc:\n    addr: 127.0.0.1:${grpcPort}\n    path: envoy/authz/result\ndecision_logs:\n  console: false\n`,
    )
    child = spawn(
      opa.bin!,
      [
        'run',
        '--server',
        '--addr',
        `127.0.0.1:${httpPort}`,
        '--config-file',
        join(dir, 'config.yaml'),
        join(dir, 'policy.rego'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    child.stdout?.on('data', (b: Buffer) => (log += b.toString()))
    child.stderr?.on('data', (b: Buffer) => (log += b.toString()))
    v = createCheckClient(bound.grpc!)
    o = createCheckClient(`127.0.0.1:${grpcPort}`)
    const probe = toMessage(EDGE_CASES[2]!.request)
    for (let i = 0; ; i++) {
      try {
        await o.check(probe, { deadlineMs: 1000 })
        break
      } catch (e) {
        if (i > 50 || child.exitCode !== null) throw new Error(`opa run did not answer: ${String(e)}\n${log}`)
        await new Promise((r) => setTimeout(r, 200))
      }
    }
  }, 30_000)

  afterAll(async () => {
    v?.close()
    o?.close()
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r))
      child.kill('SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))])
      if (child.exitCode === null) child.kill('SIGKILL')
    }
    await server?.stop()
    engine?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  async function both(c: ParityCase): Promise<{ verdict: Obj; plugin: Obj | 'grpc-error'; raw: Obj }> {
    const msg = toMessage(c.request)
    const raw = (await v.check(structuredClone(msg))) as Obj
    const plugin = await o.check(structuredClone(msg)).then(
      (r) => normalize(r as Obj),
      () => 'grpc-error' as const,
    )
    return { verdict: normalize(raw), plugin, raw }
  }

  test('the generated corpus: CheckResponses equal field by field', async () => {
    const counts = { allowed: 0, denied: 0, parseError: 0 }
    for (const c of CORPUS) {
      const { verdict, plugin, raw } = await both(c)
      expect(verdict, c.name).toEqual(plugin)
      checkAppendActions(raw, c.name)
      const code = (verdict.status as Obj).code
      if (code === 0) counts.allowed++
      else if (
        (verdict.deniedResponse as Obj).status &&
        String((verdict.deniedResponse as Obj).body).startsWith('request_parse_error')
      )
        counts.parseError++
      else counts.denied++
    }
    expect(counts.allowed).toBeGreaterThan(10)
    expect(counts.denied).toBeGreaterThan(10)
    expect(counts.parseError).toBeGreaterThan(3)
  }, 60_000)

  test.each(EDGE_CASES.filter((c) => c.differs === undefined).map((c) => [c.name, c] as const))(
    'edge case: %s',
    async (_name, c) => {
      const { verdict, plugin, raw } = await both(c)
      expect(verdict).toEqual(plugin)
      checkAppendActions(raw, c.name)
    },
  )

  test.each(EDGE_CASES.filter((c) => c.differs !== undefined).map((c) => [c.name, c] as const))(
    'deliberate difference: %s',
    async (_name, c) => {
      const { verdict, plugin } = await both(c)
      const d = c.differs!
      expect(verdict).toMatchObject(d.verdict)
      if (d.plugin === 'grpc-error') expect(plugin).toBe('grpc-error')
      else expect(plugin).toMatchObject(d.plugin)
      expect(verdict).not.toEqual(plugin)
    },
  )

  test('a parse error is the plugin 400 exactly', async () => {
    const c = EDGE_CASES.find((x) => x.name === 'bad escape')!
    const { verdict } = await both(c)
    expect(verdict).toEqual(parseErrorResponse(`invalid character 'q' in string escape code`))
  })
})
