/**
 * Test support: assembles `fixtures/opa-abi-fixture.wat` with wabt (variants by option) and packs
 * OPA bundles (`.tar.gz`) with tar-stream, both at test time. Not part of the published package.
 */
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import * as tar from 'tar-stream'
import wabt from 'wabt'

const SOURCE = readFileSync(new URL('../../fixtures/opa-abi-fixture.wat', import.meta.url), 'utf8')

/** Entrypoints of the fixture module. */
export const FIXTURE_ENTRYPOINTS = [
  'fixture/data',
  'fixture/input',
  'fixture/undefined',
  'fixture/several',
  'fixture/abort',
  'fixture/builtin',
  'fixture/trap',
  'fixture/binding',
  'fixture/garbage',
] as const

export interface FixtureOptions {
  readonly abiVersion?: number
  readonly abiMinorVersion?: number
  /** Builtin names the module declares it needs (ids in order); builtin #0 is what `fixture/builtin` calls. */
  readonly builtins?: readonly string[]
  /** Exports to leave out. */
  readonly omitExports?: readonly string[]
}

let wabtModule: Awaited<ReturnType<typeof wabt>> | undefined
const cache = new Map<string, Uint8Array>()

function watString(s: string): string {
  let out = ''
  for (const b of new TextEncoder().encode(s)) {
    out +=
      b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c
        ? String.fromCharCode(b)
        : `\\${b.toString(16).padStart(2, '0')}`
  }
  return out
}

function replaceMarked(text: string, marker: string, line: string): string {
  const re = new RegExp(`^.*;; @${marker}$`, 'm')
  if (!re.test(text)) throw new Error(`fixture has no line marked @${marker}`)
  return text.replace(re, line)
}

/** The fixture's WAT text for the given variant. */
export function fixtureWat(o: FixtureOptions = {}): string {
  let text = SOURCE
  text = replaceMarked(
    text,
    'abi-version',
    `  (global (export "opa_wasm_abi_version") i32 (i32.const ${o.abiVersion ?? 1}))`,
  )
  text = replaceMarked(
    text,
    'abi-minor',
    `  (global (export "opa_wasm_abi_minor_version") i32 (i32.const ${o.abiMinorVersion ?? 2}))`,
  )
  const map = Object.fromEntries((o.builtins ?? []).map((name, i) => [name, i]))
  text = replaceMarked(text, 'builtins', `  (data (i32.const 1024) "${watString(JSON.stringify(map))}\\00")`)
  for (const name of o.omitExports ?? []) text = text.replaceAll(`(export "${name}")`, '')
  return text
}

/** Assemble the fixture (cached per variant). */
export async function fixtureWasm(o: FixtureOptions = {}): Promise<Uint8Array> {
  const text = fixtureWat(o)
  const hit = cache.get(text)
  if (hit !== undefined) return hit
  wabtModule ??= await wabt()
  const mod = wabtModule.parseWat('opa-abi-fixture.wat', text)
  try {
    mod.validate()
    const bytes = mod.toBinary({}).buffer
    cache.set(text, bytes)
    return bytes
  } finally {
    mod.destroy()
  }
}

/** One file of a bundle: bytes, text, or a value written as JSON. */
export type BundleFile = Uint8Array | string | { readonly json: unknown }

/** Pack files into a gzipped tarball the way `opa build` lays a bundle out. */
export async function packBundle(files: Readonly<Record<string, BundleFile>>): Promise<Uint8Array> {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer)
  })()
  for (const [name, f] of Object.entries(files)) {
    const body =
      f instanceof Uint8Array
        ? Buffer.from(f)
        : typeof f === 'string'
          ? Buffer.from(f)
          : Buffer.from(JSON.stringify(f.json))
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name, size: body.length }, body, (e) => (e ? reject(e) : resolve())),
    )
  }
  pack.finalize()
  await done
  return new Uint8Array(gzipSync(Buffer.concat(chunks)))
}

/** A bundle as `opa build -t wasm -e <entrypoints>` writes it: manifest, `/policy.wasm`, data. */
export async function fixtureBundle(
  data: Readonly<Record<string, unknown>> = {},
  o: FixtureOptions & {
    readonly roots?: readonly string[]
    readonly extra?: Record<string, BundleFile>
  } = {},
): Promise<Uint8Array> {
  const wasm = await fixtureWasm(o)
  return packBundle({
    '/.manifest': {
      json: {
        revision: 'test',
        roots: o.roots ?? [''],
        wasm: FIXTURE_ENTRYPOINTS.map((entrypoint) => ({ entrypoint, module: '/policy.wasm' })),
      },
    },
    '/policy.wasm': wasm,
    '/data.json': { json: data },
    ...o.extra,
  })
}
