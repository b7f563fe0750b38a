/**
 * Test support: the `opa` binary (OPA_BIN, else `opa` on PATH) and what it says about builtins.
 * Tests that need it skip with `why` printed when there is none.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { loadPolicy } from '@open-policy-agent/opa-wasm'

export type FoundOpa = { bin: string; why?: undefined } | { bin?: undefined; why: string }

/** The `opa` to run, or why there is none. */
export function findOpa(): FoundOpa {
  const bin = process.env.OPA_BIN || 'opa'
  const r = spawnSync(bin, ['version'], { encoding: 'utf8' })
  if (r.error === undefined && r.status === 0) return { bin }
  return {
    why: process.env.OPA_BIN
      ? `OPA_BIN=${bin} does not run (${r.error?.message ?? r.stderr.trim()})`
      : 'no `opa` binary on PATH and OPA_BIN is not set',
  }
}

/** Run opa; throws with its output when it fails. */
export function runOpa(bin: string, args: string[]): string {
  const r = spawnSync(bin, args, { encoding: 'utf8', maxBuffer: 64 << 20 })
  if (r.status !== 0) throw new Error(`opa ${args.join(' ')} failed: ${r.stdout}${r.stderr}`)
  return r.stdout
}

/** `/policy.wasm` out of an `opa build -t wasm` bundle (a tar in gzip). */
export function wasmOf(tarGz: Uint8Array): Uint8Array {
  const tar = gunzipSync(tarGz)
  for (let off = 0; off + 512 <= tar.length; ) {
    const name = tar
      .subarray(off, off + 100)
      .toString('utf8')
      .replace(/\0.*$/s, '')
    const size = Number.parseInt(
      tar
        .subarray(off + 124, off + 136)
        .toString('utf8')
        .replace(/\0.*$/s, '')
        .trim(),
      8,
    )
    if (name === '') break
    if (name.replace(/^\//, '') === 'policy.wasm') return tar.subarray(off + 512, off + 512 + size)
    off += 512 + Math.ceil(size / 512) * 512
  }
  throw new Error('bundle has no /policy.wasm')
}

/** Build Rego source with `opa build -t wasm -e <entrypoint>...`; returns the module. */
export function buildWasm(bin: string, rego: string, entrypoint: string | string[], v0 = false): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-opa-'))
  try {
    writeFileSync(join(dir, 'p.rego'), rego)
    const out = join(dir, 'b.tar.gz')
    runOpa(bin, [
      'build',
      '-t',
      'wasm',
      ...[entrypoint].flat().flatMap((e) => ['-e', e]),
      '-o',
      out,
      ...(v0 ? ['--v0-compatible'] : []),
      join(dir, 'p.rego'),
    ])
    return wasmOf(readFileSync(out))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The builtin names a module imports from the host (its `builtins()` export). */
export async function moduleBuiltins(wasm: Uint8Array): Promise<string[]> {
  const p = await loadPolicy(wasm)
  const ex = p.wasmInstance.exports as Record<string, (...a: number[]) => number>
  const addr = ex.opa_json_dump!(ex.builtins!())
  const mem = new Uint8Array(p.mem.buffer)
  const text = new TextDecoder().decode(mem.subarray(addr, mem.indexOf(0, addr)))
  return Object.keys(JSON.parse(text) as object).sort()
}

interface Capability {
  readonly name: string
  readonly infix?: string
  readonly relation?: boolean
  readonly nondeterministic?: boolean
  readonly decl: { readonly args?: readonly unknown[] }
}

/**
 * Every builtin a module built by this opa may import from the host. From `opa capabilities
 * --current`, one Rego rule calls each builtin (arguments from `input`, so any type checks);
 * `opa build -t wasm` compiles them all and the module's `builtins()` export lists the ones the
 * wasm target does not implement itself. Builtins OPA 1.x refuses as deprecated in v1 Rego are
 * built again with `--v0-compatible`. Operators (`plus`, `eq`, ...), `internal.*` and `print`
 * have no callable form and are compiled natively.
 */
export async function deriveHostBuiltins(bin: string): Promise<{
  all: string[]
  deprecated: string[]
  nondeterministic: string[]
}> {
  const caps = JSON.parse(runOpa(bin, ['capabilities', '--current'])) as { builtins: Capability[] }
  const callable = caps.builtins.filter(
    (b) => !b.infix && !b.name.startsWith('internal.') && b.name !== 'print',
  )
  const source = (list: Capability[], v0: boolean) =>
    `package probe\n\n${list
      .map((b, i) => {
        const args = (b.decl.args ?? []).map((_, k) => `input.a${k}`).join(', ')
        if (b.relation)
          return v0 ? `r${i}[x] { ${b.name}(input.a0, x) }` : `r${i} contains x if { ${b.name}(input.a0, x) }`
        return `r${i} := ${b.name}(${args})`
      })
      .join('\n')}\n`
  const deprecated: string[] = []
  let list = callable
  let v1: Uint8Array | undefined
  while (v1 === undefined) {
    try {
      v1 = buildWasm(bin, source(list, false), 'probe')
    } catch (e) {
      const dep = [...String(e).matchAll(/deprecated built-in function calls in expression: (\S+)/g)].map(
        (m) => m[1]!,
      )
      if (dep.length === 0) throw e
      deprecated.push(...dep)
      list = list.filter((b) => !dep.includes(b.name))
    }
  }
  const names = new Set(await moduleBuiltins(v1))
  if (deprecated.length > 0) {
    const v0 = buildWasm(
      bin,
      source(
        callable.filter((b) => deprecated.includes(b.name)),
        true,
      ),
      'probe',
      true,
    )
    for (const n of await moduleBuiltins(v0)) names.add(n)
  }
  return {
    all: [...names].sort(),
    deprecated: deprecated.sort(),
    nondeterministic: caps.builtins.filter((b) => b.nondeterministic).map((b) => b.name),
  }
}
