/**
 * verdict's policy inside an OPA bundle: reading one (limits, signature, manifest, where the
 * policy document is), building one from a directory, and signing one.
 */
import { lstat, readdir, readFile } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import type { ResourceLoader } from '@verdict/core'
import {
  SIGNATURES_FILE,
  type SigningOptions,
  signFiles,
  type VerificationOptions,
  verifyFiles,
} from './signing.js'
import { DEFAULT_TAR_LIMITS, readTarGz, type TarLimits, writeTarGz } from './tar.js'

/** Where the policy document may sit in a bundle, in the order they are looked for. */
export const POLICY_PATHS = ['verdict/policy.yaml', 'verdict/policy.yml', 'verdict/policy.json'] as const

/** A bundle read and verified, not yet activated. */
export interface FleetBundle {
  /** The archive as downloaded. */
  readonly bytes: Uint8Array
  readonly files: ReadonlyMap<string, Uint8Array>
  /** `.manifest` revision ('' when none, as OPA reports it). */
  readonly revision: string
  readonly roots: readonly string[]
  readonly metadata: Readonly<Record<string, unknown>> | undefined
  /** Path of the policy document inside the bundle, or `data.verdict.policy`. */
  readonly policyPath: string
  /** The policy document: YAML or JSON text, or the object from the bundle's data. */
  readonly policy: string | Readonly<Record<string, unknown>>
  /** Resources named by the policy, read from the bundle (see `bundleResources`). */
  readonly resources: ResourceLoader
}

export interface ReadBundleOptions extends Partial<TarLimits> {
  /** With keys, only bundles signed by one of them are accepted (OPA's `signing`). */
  readonly verification?: VerificationOptions
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

function parseJson(bytes: Uint8Array, what: string): { value: unknown } | { error: string } {
  try {
    return { value: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) }
  } catch (e) {
    return { error: `${what} is not valid JSON: ${(e as Error).message.slice(0, 120)}` }
  }
}

/** The policy object at `data.verdict.policy`, from whichever data file holds it. */
function policyFromData(
  files: ReadonlyMap<string, Uint8Array>,
): Record<string, unknown> | { error: string } | undefined {
  const candidates: Array<[string, string[]]> = [
    ['verdict/policy/data.json', []],
    ['verdict/data.json', ['policy']],
    ['data.json', ['verdict', 'policy']],
  ]
  for (const [file, path] of candidates) {
    const bytes = files.get(file)
    if (bytes === undefined) continue
    const parsed = parseJson(bytes, `/${file}`)
    if ('error' in parsed) return parsed
    let v: unknown = parsed.value
    for (const k of path) v = isObject(v) && Object.hasOwn(v, k) ? v[k] : undefined
    if (isObject(v)) return v
  }
  return undefined
}

/**
 * Resources of a bundle: a location is a path relative to the policy document's directory
 * (`verdict/`), or from the bundle root when it starts with `/`; `/` alone is the whole bundle
 * archive (so `bundles: { authz: { path: / } }` loads the bundle's own `policy.wasm` and data).
 */
export function bundleResources(files: ReadonlyMap<string, Uint8Array>, archive: Uint8Array): ResourceLoader {
  return {
    async read(location: string): Promise<Uint8Array> {
      if (location === '/') return archive
      if (/^[a-z][a-z0-9+.-]*:/i.test(location))
        throw new Error(`${location}: only files inside the bundle can be read`)
      const base = location.startsWith('/') ? [] : ['verdict']
      const parts = [...base]
      for (const s of location.split('/')) {
        if (s === '' || s === '.') continue
        if (s === '..') {
          if (parts.length === 0) throw new Error(`${location} leaves the bundle`)
          parts.pop()
        } else parts.push(s)
      }
      const bytes = files.get(parts.join('/'))
      if (bytes === undefined) throw new Error(`the bundle holds no /${parts.join('/')}`)
      return bytes
    },
  }
}

/** Read, check and (when configured) verify a bundle archive. */
export async function readFleetBundle(
  bytes: Uint8Array,
  o: ReadBundleOptions = {},
): Promise<FleetBundle | { error: string }> {
  const files = await readTarGz(bytes, {
    maxUnpackedBytes: o.maxUnpackedBytes ?? DEFAULT_TAR_LIMITS.maxUnpackedBytes,
    maxFiles: o.maxFiles ?? DEFAULT_TAR_LIMITS.maxFiles,
  })
  if ('error' in files) return files
  if (o.verification !== undefined) {
    const why = await verifyFiles(files, o.verification)
    if (why !== undefined) return { error: why }
  } else if (files.has(SIGNATURES_FILE)) {
    // As OPA: a signed bundle without a configured key fails verification.
    return { error: 'bundle is signed (/.signatures.json) but no verification key is configured' }
  }
  let revision = ''
  let roots: string[] = ['']
  let metadata: Record<string, unknown> | undefined
  const m = files.get('.manifest')
  if (m !== undefined) {
    const parsed = parseJson(m, '/.manifest')
    if ('error' in parsed) return parsed
    const v = parsed.value
    if (!isObject(v)) return { error: '/.manifest must be a JSON object' }
    if (v.revision !== undefined && typeof v.revision !== 'string')
      return { error: '/.manifest revision must be a string' }
    revision = (v.revision as string | undefined) ?? ''
    if (v.roots !== undefined) {
      if (!Array.isArray(v.roots) || v.roots.some((r) => typeof r !== 'string'))
        return { error: '/.manifest roots must be a list of strings' }
      roots = v.roots as string[]
    }
    if (v.metadata !== undefined) {
      if (!isObject(v.metadata)) return { error: '/.manifest metadata must be an object' }
      metadata = v.metadata
    }
  }
  const resources = bundleResources(files, bytes)
  for (const p of POLICY_PATHS) {
    const b = files.get(p)
    if (b === undefined) continue
    let text: string
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(b)
    } catch {
      return { error: `/${p} is not UTF-8` }
    }
    return { bytes, files, revision, roots, metadata, policyPath: p, policy: text, resources }
  }
  const fromData = policyFromData(files)
  if (fromData !== undefined && 'error' in fromData && typeof fromData.error === 'string')
    return { error: fromData.error }
  if (fromData !== undefined)
    return {
      bytes,
      files,
      revision,
      roots,
      metadata,
      policyPath: 'data.verdict.policy',
      policy: fromData,
      resources,
    }
  return {
    error: `bundle holds no verdict policy (/${POLICY_PATHS.join(', /')}, or data.verdict.policy)`,
  }
}

export interface BuildOptions {
  /** `.manifest` revision. */
  readonly revision?: string
  /** `.manifest` roots (default: an existing `.manifest`'s, else none, meaning `[""]`). */
  readonly roots?: readonly string[]
  readonly metadata?: Readonly<Record<string, unknown>>
  /** Sign the bundle too. */
  readonly signing?: SigningOptions
}

async function collect(dir: string, root: string, out: Map<string, Uint8Array>): Promise<void> {
  for (const entry of (await readdir(dir)).sort()) {
    const path = join(dir, entry)
    const st = await lstat(path)
    if (st.isSymbolicLink()) throw new Error(`${path}: symbolic links are not bundled`)
    if (st.isDirectory()) await collect(path, root, out)
    else if (st.isFile())
      out.set(relative(root, path).split(sep).join('/'), new Uint8Array(await readFile(path)))
  }
}

/**
 * Bundle directory `dir` (every regular file, by its relative path) with a `.manifest`. The
 * directory must hold a policy document at one of `POLICY_PATHS`. Any `.signatures.json` in it is
 * dropped; with `signing`, a new one is written.
 */
export async function buildBundle(dir: string, o: BuildOptions = {}): Promise<Uint8Array> {
  const files = new Map<string, Uint8Array>()
  await collect(dir, dir, files)
  files.delete(SIGNATURES_FILE)
  if (!POLICY_PATHS.some((p) => files.has(p)))
    throw new Error(`${dir} holds no policy document (${POLICY_PATHS.join(', ')})`)
  let manifest: Record<string, unknown> = {}
  const existing = files.get('.manifest')
  if (existing !== undefined) {
    const parsed = parseJson(existing, `${dir}/.manifest`)
    if ('error' in parsed) throw new Error(parsed.error)
    if (!isObject(parsed.value)) throw new Error(`${dir}/.manifest must be a JSON object`)
    manifest = parsed.value
  }
  if (o.revision !== undefined) manifest.revision = o.revision
  if (o.roots !== undefined) manifest.roots = [...o.roots]
  if (o.metadata !== undefined) manifest.metadata = o.metadata
  files.set('.manifest', new TextEncoder().encode(JSON.stringify(manifest)))
  if (o.signing !== undefined) files.set(SIGNATURES_FILE, await signFiles(files, o.signing))
  return writeTarGz(files)
}

/** Sign an existing bundle archive: its `.signatures.json` replaced by one over its files. */
export async function signBundle(
  archive: Uint8Array,
  signing: SigningOptions,
  limits?: Partial<TarLimits>,
): Promise<Uint8Array> {
  const files = await readTarGz(archive, { ...DEFAULT_TAR_LIMITS, ...limits })
  if ('error' in files) throw new Error(files.error)
  const copy = new Map(files)
  copy.delete(SIGNATURES_FILE)
  copy.set(SIGNATURES_FILE, await signFiles(copy, signing))
  return writeTarGz(copy)
}
