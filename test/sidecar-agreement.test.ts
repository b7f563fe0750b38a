/**
 * The sidecar benchmark's agreement check (bench/lib/sidecar-setup.mjs), run as a test: `verdict
 * serve` and OPA-Envoy (`opa run` with envoy_ext_authz_grpc) on the two policies written both ways
 * (seed 000, JWT ES256 + header), the same CheckRequests to both over gRPC, the same answers
 * (allowed, HTTP status, the compared headers and body) and the ones each case expects. Nothing is
 * timed here; `node bench/run.mjs sidecar` times the servers after this same check.
 *
 * Needs `opa` (OPA_BIN, else PATH); without it the suite is skipped with the reason printed.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { findOpa } from '../packages/rego-adapter/src/testing/find-opa.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
// A plain JavaScript module without declarations: imported through a path the type checker leaves alone.
const SETUP = '../bench/lib/sidecar-setup.mjs'

interface Server {
  readonly name: string
  readonly grpc: string
  stop(): Promise<void>
}
interface Case {
  readonly name: string
  readonly allowed: boolean
  readonly status: number
}
interface Policy {
  readonly id: string
  readonly name: string
  readonly cases: readonly Case[]
}
interface Answer {
  readonly allowed: boolean
  readonly status: number
}

const opa = findOpa()
if (opa.why !== undefined)
  console.warn(
    `[sidecar-agreement] SKIPPED verdict serve against OPA-Envoy: ${opa.why}. ` +
      'Install OPA with the Envoy plugin or set OPA_BIN to run it.',
  )
const suite = opa.bin === undefined ? describe.skip : describe

suite('verdict serve and OPA-Envoy give the same answers on the sidecar benchmark policies', () => {
  let dir: string
  // The bench module is untyped JavaScript.
  let setup: any
  const running: Server[] = []

  beforeAll(async () => {
    // The command runs from the build; in CI `pnpm build` ran already and this is a quick check.
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', 'packages/cli'],
      { cwd: ROOT, encoding: 'utf8' },
    )
    if (!existsSync(join(ROOT, 'packages/cli/dist/main.js'))) throw new Error(`build failed:\n${r.stdout}`)
    setup = await import(SETUP)
    dir = await mkdtemp(join(tmpdir(), 'verdict-sidecar-agreement-'))
  }, 180_000)

  afterAll(async () => {
    for (const s of running) await s.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  async function servers(policy: Policy): Promise<Server[]> {
    const v: Server = await setup.startVerdict(policy)
    running.push(v)
    const o: Server = await setup.startOpaEnvoy(policy, opa.bin, dir)
    running.push(o)
    return [v, o]
  }

  test.each([
    ['seed 000', () => setup.seed000()],
    ['JWT (ES256) + header', () => setup.jwtHeader(dir)],
  ])(
    '%s: every case, allowed and denied, the same on both',
    async (_name, make: () => Policy | Promise<Policy>) => {
      const policy = await make()
      const both = await servers(policy)
      const rows: Array<{ name: string; answers: Answer[] }> = await setup.checkAgreement(policy, both)
      expect(rows.map((r) => r.name)).toEqual(policy.cases.map((c) => c.name))
      for (const [i, row] of rows.entries()) {
        const want = policy.cases[i]!
        for (const a of row.answers)
          expect(a, row.name).toMatchObject({ allowed: want.allowed, status: want.status })
      }
      // Both kinds of answer are exercised (for the JWT policy, 401 and 403 both).
      const statuses = new Set(policy.cases.map((c) => c.status))
      expect(statuses.has(200)).toBe(true)
      expect([...statuses].some((s) => s >= 400)).toBe(true)
      if (policy.id === 'jwt-header') expect([...statuses].sort()).toEqual([200, 401, 403])

      // A case whose expectation neither server meets is refused, naming both servers and the case.
      const wrong = { ...policy, cases: [{ ...policy.cases[0]!, allowed: false, status: 403 }] }
      await expect(setup.checkAgreement(wrong, both)).rejects.toThrow(
        new RegExp(
          `verdict on "${policy.cases[0]!.name}"[^\\n]*\\n- OPA-Envoy on "${policy.cases[0]!.name}"`,
        ),
      )
      for (const s of both) await s.stop()
    },
    120_000,
  )

  test('servers on different policies disagree, and the check says where', async () => {
    const seed = setup.seed000() as Policy
    const jwt = (await setup.jwtHeader(dir)) as Policy & { timed: unknown }
    // verdict on seed 000, OPA-Envoy on the JWT policy: judged on seed 000's cases.
    const v: Server = await setup.startVerdict(seed)
    running.push(v)
    const o: Server = await setup.startOpaEnvoy(jwt, opa.bin, dir)
    running.push(o)
    const err: Error = await setup.checkAgreement(seed, [v, o]).then(
      () => new Error('no disagreement found'),
      (e: Error) => e,
    )
    expect(err.message).toMatch(/the servers do not give the same answers, so nothing is timed/)
    expect(err.message).toMatch(/OPA-Envoy on "x-ext-authz: allow": denied 401, expected allowed 200/)
    expect(err.message).toMatch(
      /verdict and OPA-Envoy on "x-ext-authz: deny": header x-ext-authz-check-result/,
    )
    expect(err.message).not.toMatch(/- verdict on /)
    await v.stop()
    await o.stop()
  }, 120_000)
})
