/**
 * Rego bundles for `verdict test`: a policy bundle `{ path: X.tar.gz }` with Rego sources in a
 * directory `X/` beside it is built from that directory with `opa build -t wasm`, one `-e` per
 * entrypoint the policy's rules name, when the `.tar.gz` is missing or older than the sources or
 * the policy. Without an `opa` binary (PATH or `OPA_BIN`) such a case file is skipped with the
 * reason; an existing but stale bundle is used with a note. Nothing else is ever built.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { loadPolicyFile, type Problem } from '@verdict/core'
import { displayPath as rel } from './problems.js'

/** How to run `opa`, or why it cannot be run. */
type Opa = { readonly bin: string } | { readonly bin?: undefined; readonly why: string }

const found = new Map<string, Opa>()

/** The `opa` binary: `OPA_BIN` when set, else `opa` on PATH; checked with `opa version` once per PATH. */
function findOpa(env: NodeJS.ProcessEnv = process.env): Opa {
  const bin = env.OPA_BIN || 'opa'
  const key = `${bin}\0${env.PATH ?? ''}`
  const known = found.get(key)
  if (known !== undefined) return known
  const r = spawnSync(bin, ['version'], { encoding: 'utf8', env })
  const opa: Opa =
    r.error === undefined && r.status === 0
      ? { bin }
      : {
          why: env.OPA_BIN
            ? `OPA_BIN=${bin} does not run (${r.error?.message ?? r.stderr.trim()})`
            : 'no `opa` binary on PATH and OPA_BIN is not set',
        }
  found.set(key, opa)
  return opa
}

/** One bundle a policy names that `verdict test` knows how to build. */
interface BuildableBundle {
  readonly name: string
  /** The `.tar.gz` the policy reads. */
  readonly out: string
  /** The directory of Rego sources beside it. */
  readonly src: string
  readonly entrypoints: readonly string[]
  /** JSON pointer of the bundle's `path` in the policy. */
  readonly pointer: string
}

/** What preparing one case file's bundles came to. */
export interface PrepareResult {
  /** `opa build` command lines run, for the report. */
  readonly built: readonly string[]
  /** Notes for the report (a stale bundle used as it is). */
  readonly notes: readonly string[]
  /** Set when the case file cannot run: why. */
  readonly skip?: string
  /** `opa build` failures, located at the bundle's path in the policy. */
  readonly problems: readonly (Problem & { readonly file: string })[]
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Rules of a policy document, top-level and in layers. */
function rulesOf(doc: Obj): Obj[] {
  const out: Obj[] = []
  if (Array.isArray(doc.rules)) out.push(...doc.rules.filter(isObj))
  if (Array.isArray(doc.layers))
    for (const l of doc.layers) if (isObj(l) && Array.isArray(l.rules)) out.push(...l.rules.filter(isObj))
  return out
}

/** Files under `dir` (not following symbolic links), with the newest modification time. */
function scan(dir: string): { rego: number; newest: number } {
  let rego = 0
  let newest = 0
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.isFile()) {
        if (e.name.endsWith('.rego')) rego++
        newest = Math.max(newest, statSync(p).mtimeMs)
      }
    }
  }
  walk(dir)
  return { rego, newest }
}

/** The bundles of the policy at `policyPath` that are built from Rego sources beside them. */
function buildableBundles(policyPath: string, doc: unknown): BuildableBundle[] {
  if (!isObj(doc) || !isObj(doc.bundles)) return []
  const dir = dirname(policyPath)
  const out: BuildableBundle[] = []
  for (const [name, spec] of Object.entries(doc.bundles)) {
    if (!isObj(spec) || typeof spec.path !== 'string' || !spec.path.endsWith('.tar.gz')) continue
    const file = resolve(dir, spec.path)
    const src = file.slice(0, -'.tar.gz'.length)
    if (!existsSync(src) || !statSync(src).isDirectory()) continue
    const entrypoints = [
      ...new Set(
        rulesOf(doc)
          .map((r) => r.rego)
          .filter((r): r is Obj => isObj(r) && r.bundle === name && typeof r.entrypoint === 'string')
          .map((r) => r.entrypoint as string),
      ),
    ]
    if (entrypoints.length === 0) continue
    out.push({
      name,
      out: file,
      src,
      entrypoints,
      pointer: `/bundles/${name.replaceAll('~', '~0').replaceAll('/', '~1')}/path`,
    })
  }
  return out
}

/** The `opa build` arguments for a bundle, writing to `out`. */
function opaBuildArgs(b: BuildableBundle, out: string): string[] {
  return ['build', '-t', 'wasm', ...b.entrypoints.flatMap((e) => ['-e', e]), '-o', out, '-b', b.src]
}

/** Build (when needed) the Rego bundles the policy of one case file reads. Never throws. */
export async function prepareRegoBundles(
  caseFile: string,
  options: { build: boolean },
): Promise<PrepareResult> {
  const built: string[] = []
  const notes: string[] = []
  const problems: (Problem & { file: string })[] = []
  let policyPath: string
  let bundles: BuildableBundle[]
  let locate: (p: string) => { line: number; column: number } | undefined
  try {
    const cases = (await loadPolicyFile(caseFile)).source.value
    if (!isObj(cases) || typeof cases.policy !== 'string') return { built, notes, problems }
    policyPath = resolve(dirname(caseFile), cases.policy)
    const policy = await loadPolicyFile(policyPath)
    // `resources.yaml#backend` (a file of Kubernetes resources) is the file without the target.
    policyPath = policy.path
    bundles = buildableBundles(policyPath, policy.source.value)
    locate = policy.source.locate
  } catch {
    // An unreadable case file or policy is reported, with its lines, when the cases run.
    return { built, notes, problems }
  }
  const policyTime = statSync(policyPath).mtimeMs
  for (const b of bundles) {
    const { rego, newest } = scan(b.src)
    if (rego === 0) continue
    const have = existsSync(b.out) ? statSync(b.out).mtimeMs : undefined
    if (have !== undefined && have >= Math.max(newest, policyTime)) continue
    const command = `opa ${opaBuildArgs({ ...b, src: rel(b.src) }, rel(b.out)).join(' ')}`
    const opa = options.build ? findOpa() : { why: 'building is off (--no-build)' }
    if (opa.bin === undefined) {
      if (have !== undefined) {
        notes.push(`${rel(b.out)} is older than ${rel(b.src)} or the policy; not rebuilt: ${opa.why}`)
        continue
      }
      return {
        built,
        notes,
        problems,
        skip: `${rel(b.out)} is not built and cannot be: ${opa.why}. Install OPA (https://www.openpolicyagent.org/docs/#running-opa) or run: ${command}`,
      }
    }
    const tmp = `${b.out}.${process.pid}.tmp`
    const r = spawnSync(opa.bin, opaBuildArgs(b, tmp), { encoding: 'utf8' })
    if (r.status !== 0) {
      rmSync(tmp, { force: true })
      const at = locate(b.pointer)
      problems.push({
        code: 'opa_build',
        message: `${command} failed: ${(r.error?.message ?? `${r.stderr}\n${r.stdout}`).trim().replaceAll(/\s*\n\s*/g, ' | ')}`,
        path: b.pointer,
        ...(at !== undefined ? { line: at.line, column: at.column } : {}),
        file: policyPath,
      })
      continue
    }
    renameSync(tmp, b.out)
    built.push(command)
  }
  return { built, notes, problems }
}
