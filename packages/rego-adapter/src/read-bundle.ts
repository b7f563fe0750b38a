/**
 * Reading OPA bundles: a gzipped tarball as `opa build -t wasm` writes it (`/.manifest`,
 * `/policy.wasm`, `data.json` files at any depth), or a raw `.wasm` with optional data.
 */
import { readLimited } from '@verdict/core/internal'
import { unpackTar } from 'modern-tar'

/** One wasm module of a bundle and the entrypoints the manifest assigns to it. */
export interface BundleModule {
  /** Path inside the bundle, without a leading `/` (`policy.wasm`). */
  readonly path: string
  readonly bytes: Uint8Array
  /** Entrypoints the manifest lists for this module (slash form); empty when unknown. */
  readonly entrypoints: readonly string[]
}

/** A bundle ready to load: its modules and its data document (all data files merged by path). */
export interface RegoBundle {
  readonly modules: readonly BundleModule[]
  /** The merged `data` document. Null-prototype objects, safe for hostile keys. */
  readonly data: Readonly<Record<string, unknown>>
  readonly revision: string | undefined
  readonly roots: readonly string[]
}

/** Bundle bytes given directly by a library user instead of through the policy document. */
export type RegoBundleBytes =
  | { readonly tarGz: Uint8Array }
  | { readonly wasm: Uint8Array; readonly data?: Readonly<Record<string, unknown>> | Uint8Array }

/** Default ceiling of a bundle's uncompressed size. */
export const DEFAULT_MAX_BUNDLE_BYTES = 64 * 1024 * 1024

const GZIP = [0x1f, 0x8b]
const WASM = [0x00, 0x61, 0x73, 0x6d]

const startsWith = (b: Uint8Array, magic: readonly number[]): boolean => magic.every((m, i) => b[i] === m)

/** `gzip` or `wasm` by magic number, else undefined. */
export function sniffBundle(bytes: Uint8Array): 'gzip' | 'wasm' | undefined {
  if (startsWith(bytes, GZIP)) return 'gzip'
  if (startsWith(bytes, WASM)) return 'wasm'
  return undefined
}

type Obj = Record<string, unknown>

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Copy parsed JSON into null-prototype objects so `__proto__` keys stay plain data. */
function harden(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(harden)
  if (!isObject(v)) return v
  const out: Obj = Object.create(null)
  for (const k of Object.keys(v)) out[k] = harden(v[k])
  return out
}

function parseJsonText(bytes: Uint8Array, what: string): { value: unknown } | string {
  try {
    return { value: harden(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))) }
  } catch (e) {
    return `${what} is not valid JSON: ${(e as Error).message.slice(0, 120)}`
  }
}

/** `./a//b/` -> `a/b`. */
function cleanPath(name: string): string {
  return name
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/')
}

const segments = (p: string): string[] => (p === '' ? [] : p.split('/'))

/** True when `path` lies under one of `roots` (an empty root covers everything). */
function underRoot(path: readonly string[], roots: ReadonlyArray<readonly string[]>): boolean {
  return roots.some((r) => r.length <= path.length && r.every((s, i) => path[i] === s))
}

/** Data at `path` is allowed under a root, or when it is an object leading only towards roots. */
function checkRoots(
  path: string[],
  value: unknown,
  roots: ReadonlyArray<readonly string[]>,
  problems: string[],
): void {
  if (underRoot(path, roots)) return
  const leadsToRoot = roots.some((r) => r.length > path.length && path.every((s, i) => r[i] === s))
  if (!leadsToRoot || !isObject(value)) {
    problems.push(
      `data at /${path.join('/')} is outside the manifest roots (${roots.map((r) => r.join('/')).join(', ')})`,
    )
    return
  }
  for (const k of Object.keys(value)) checkRoots([...path, k], value[k], roots, problems)
}

/** Merge `value` into `target` at `path`; objects merge key by key, anything else must not collide. */
function mergeAt(
  target: Obj,
  path: readonly string[],
  value: unknown,
  problems: string[],
  file: string,
): void {
  let node = target
  for (const s of path) {
    const next = node[s]
    if (next === undefined) {
      const created: Obj = Object.create(null)
      node[s] = created
      node = created
    } else if (isObject(next)) node = next
    else {
      problems.push(`${file} conflicts with a value at /${path.join('/')}`)
      return
    }
  }
  if (!isObject(value)) {
    if (path.length === 0) problems.push(`${file} must hold an object`)
    else if (Object.keys(node).length > 0) problems.push(`${file} conflicts with data at /${path.join('/')}`)
    else assignLeaf(target, path, value)
    return
  }
  mergeObjects(node, value, problems, `${file} at /${path.join('/')}`)
}

function assignLeaf(target: Obj, path: readonly string[], value: unknown): void {
  let node = target
  for (let i = 0; i < path.length - 1; i++) node = node[path[i]!] as Obj
  node[path[path.length - 1]!] = value
}

function mergeObjects(into: Obj, from: Obj, problems: string[], where: string): void {
  for (const k of Object.keys(from)) {
    const a = into[k]
    const b = from[k]
    if (a === undefined) into[k] = b
    else if (isObject(a) && isObject(b)) mergeObjects(a, b, problems, `${where}/${k}`)
    else problems.push(`${where}: key "${k.slice(0, 64)}" is defined twice`)
  }
}

/**
 * Gunzip with the web's DecompressionStream (Node, browsers, Deno, Bun and workers alike), reading
 * at most `maxBytes` of output: a gzip bomb is cancelled at the ceiling, never held in memory.
 */
async function gunzipLimited(bytes: Uint8Array, maxBytes: number): Promise<Uint8Array | string> {
  try {
    const compressed = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes)
        controller.close()
      },
    })
    const raw = await readLimited(compressed.pipeThrough(new DecompressionStream('gzip')), maxBytes)
    return raw === 'too_large' ? `bundle is larger than ${maxBytes} bytes uncompressed` : raw
  } catch (e) {
    return `bundle is not valid gzip: ${(e as Error).message.slice(0, 120)}`
  }
}

/** Gunzip with a ceiling, then collect the tar's regular files by clean path. */
async function untar(bytes: Uint8Array, maxBytes: number): Promise<Map<string, Uint8Array> | string> {
  const raw = await gunzipLimited(bytes, maxBytes)
  if (typeof raw === 'string') return raw
  // modern-tar: web-standard, no Node streams; `strict` checks every header's checksum and the
  // archive's end, so gzip of something else is refused instead of read as empty.
  let entries: Awaited<ReturnType<typeof unpackTar>>
  try {
    entries = await unpackTar(raw, { strict: true })
  } catch (e) {
    return `bundle is not a valid tar archive: ${(e as Error).message.slice(0, 120)}`
  }
  const files = new Map<string, Uint8Array>()
  const duplicates: string[] = []
  for (const entry of entries) {
    const t = entry.header.type ?? 'file'
    if (t !== 'file') continue
    const name = cleanPath(entry.header.name)
    if (files.has(name)) duplicates.push(name)
    files.set(name, entry.data ?? new Uint8Array(0))
  }
  if (duplicates.length > 0) return `bundle holds ${duplicates.map((d) => `/${d}`).join(', ')} more than once`
  return files
}

interface Manifest {
  revision: string | undefined
  roots: string[]
  wasm: Array<{ entrypoint: string; module: string }>
}

function readManifest(bytes: Uint8Array | undefined, problems: string[]): Manifest {
  const none: Manifest = { revision: undefined, roots: [''], wasm: [] }
  if (bytes === undefined) return none
  const parsed = parseJsonText(bytes, '/.manifest')
  if (typeof parsed === 'string') {
    problems.push(parsed)
    return none
  }
  const m = parsed.value
  if (!isObject(m)) {
    problems.push('/.manifest must be a JSON object')
    return none
  }
  const out: Manifest = {
    revision: typeof m.revision === 'string' ? m.revision : undefined,
    roots: [''],
    wasm: [],
  }
  if (m.roots !== undefined) {
    if (!Array.isArray(m.roots) || m.roots.some((r) => typeof r !== 'string'))
      problems.push('/.manifest roots must be a list of strings')
    else out.roots = (m.roots as string[]).map(cleanPath)
  }
  if (m.wasm !== undefined) {
    if (!Array.isArray(m.wasm)) problems.push('/.manifest wasm must be a list')
    else {
      for (const w of m.wasm) {
        if (!isObject(w) || typeof w.entrypoint !== 'string' || typeof w.module !== 'string') {
          problems.push('/.manifest wasm entries need string "entrypoint" and "module"')
          continue
        }
        out.wasm.push({ entrypoint: cleanPath(w.entrypoint), module: cleanPath(w.module) })
      }
    }
  }
  return out
}

/**
 * Read a gzipped OPA bundle. Returns the bundle, or the list of what is wrong with it.
 *
 * @example
 * ```ts
 * const b = await readBundle(await readFile('bundle.tar.gz'))
 * if (Array.isArray(b)) throw new Error(b.join('\n'))
 * b.modules[0]?.entrypoints // ['envoy/authz/allow']
 * ```
 */
export async function readBundle(
  bytes: Uint8Array,
  maxBytes: number = DEFAULT_MAX_BUNDLE_BYTES,
): Promise<RegoBundle | string[]> {
  const files = await untar(bytes, maxBytes)
  if (typeof files === 'string') return [files]
  const problems: string[] = []
  const manifest = readManifest(files.get('.manifest'), problems)
  const roots = manifest.roots.map(segments)
  const data: Obj = Object.create(null)
  const dataFiles = [...files.keys()].filter((p) => p === 'data.json' || p.endsWith('/data.json')).sort()
  for (const p of [...files.keys()]) {
    if (p === 'data.yaml' || p.endsWith('/data.yaml') || p.endsWith('/data.yml') || p === 'data.yml')
      problems.push(`/${p}: YAML data files are not supported; use data.json`)
  }
  for (const p of dataFiles) {
    const parsed = parseJsonText(files.get(p)!, `/${p}`)
    if (typeof parsed === 'string') {
      problems.push(parsed)
      continue
    }
    const path = segments(p).slice(0, -1)
    checkRoots(path, parsed.value, roots, problems)
    mergeAt(data, path, parsed.value, problems, `/${p}`)
  }
  const modules: BundleModule[] = []
  const byModule = new Map<string, string[]>()
  for (const w of manifest.wasm) {
    const list = byModule.get(w.module) ?? []
    list.push(w.entrypoint)
    byModule.set(w.module, list)
  }
  for (const [path, entrypoints] of byModule) {
    const b = files.get(path)
    if (b === undefined) problems.push(`/.manifest names module /${path}, which the bundle does not hold`)
    else modules.push({ path, bytes: b, entrypoints })
  }
  if (byModule.size === 0) {
    const b = files.get('policy.wasm')
    if (b !== undefined) modules.push({ path: 'policy.wasm', bytes: b, entrypoints: [] })
  }
  if (modules.length === 0 && problems.length === 0)
    problems.push('bundle holds no wasm module (build it with `opa build -t wasm -e <entrypoint>`)')
  if (problems.length > 0) return problems
  return { modules, data, revision: manifest.revision, roots: manifest.roots }
}

/** A bundle from a raw module and optional data (bytes of a JSON object, or the object). */
export function bundleFromWasm(
  wasm: Uint8Array,
  data?: Readonly<Record<string, unknown>> | Uint8Array,
): RegoBundle | string[] {
  let doc: unknown = Object.create(null)
  if (data instanceof Uint8Array) {
    const parsed = parseJsonText(data, 'data')
    if (typeof parsed === 'string') return [parsed]
    doc = parsed.value
  } else if (data !== undefined) doc = harden(data)
  if (!isObject(doc)) return ['data must be a JSON object']
  return {
    modules: [{ path: 'policy.wasm', bytes: wasm, entrypoints: [] }],
    data: doc,
    revision: undefined,
    roots: [''],
  }
}
