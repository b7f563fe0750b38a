/**
 * Gzipped tar archives as OPA bundles use them: read with limits (compressed size checked by the
 * caller, uncompressed size and file count here), every entry a regular file under a clean
 * relative path; anything else refused. Written deterministically (sorted, mtime 0).
 */
import { gunzipSync, gzipSync } from 'node:zlib'
import * as tar from 'tar-stream'

export interface TarLimits {
  /** Largest uncompressed archive, in bytes. */
  readonly maxUnpackedBytes: number
  /** Most files in the archive. */
  readonly maxFiles: number
}

export const DEFAULT_TAR_LIMITS: TarLimits = { maxUnpackedBytes: 64 * 1024 * 1024, maxFiles: 10_000 }

/**
 * The clean bundle path of a tar entry name (`/a/b`, `./a/b` -> `a/b`), or an error. Refused:
 * `..` segments, backslashes, NUL, an empty name.
 */
export function cleanEntryName(name: string): string | { error: string } {
  if (name.includes('\0') || name.includes('\\'))
    return { error: `entry name ${JSON.stringify(name)} is not allowed` }
  const parts = name.split('/').filter((s) => s !== '' && s !== '.')
  if (parts.some((s) => s === '..'))
    return { error: `entry ${JSON.stringify(name)} leaves the bundle (path traversal)` }
  if (parts.length === 0) return { error: 'entry with an empty name' }
  return parts.join('/')
}

/** Read a `.tar.gz`: a map of clean path -> bytes, or what is wrong with it. */
export async function readTarGz(
  bytes: Uint8Array,
  limits: TarLimits = DEFAULT_TAR_LIMITS,
): Promise<Map<string, Uint8Array> | { error: string }> {
  let raw: Buffer
  try {
    raw = gunzipSync(bytes, { maxOutputLength: limits.maxUnpackedBytes })
  } catch (e) {
    const msg = (e as Error).message
    if (/larger than|maxOutputLength|buffer/i.test(msg) && !/incorrect header|unexpected end/i.test(msg))
      return { error: `bundle is larger than ${limits.maxUnpackedBytes} bytes uncompressed` }
    return { error: `bundle is not valid gzip: ${msg.slice(0, 160)}` }
  }
  const files = new Map<string, Uint8Array>()
  let problem: string | undefined
  try {
    const extract = tar.extract()
    const done = (async () => {
      for await (const entry of extract) {
        const chunks: Buffer[] = []
        for await (const c of entry) chunks.push(c as Buffer)
        if (problem !== undefined) continue
        const t = entry.header.type
        if (t === 'directory') continue
        if (t !== 'file' && t !== 'contiguous-file') {
          problem = `entry ${JSON.stringify(entry.header.name)} is a ${t}, not a regular file`
          continue
        }
        const name = cleanEntryName(entry.header.name)
        if (typeof name !== 'string') {
          problem = name.error
          continue
        }
        if (files.has(name)) {
          problem = `bundle holds /${name} more than once`
          continue
        }
        if (files.size >= limits.maxFiles) {
          problem = `bundle holds more than ${limits.maxFiles} files`
          continue
        }
        files.set(name, new Uint8Array(Buffer.concat(chunks)))
      }
    })()
    extract.end(raw)
    await done
  } catch (e) {
    return { error: `bundle is not a valid tar archive: ${(e as Error).message.slice(0, 160)}` }
  }
  if (problem !== undefined) return { error: problem }
  return files
}

/** Write files (clean relative paths) as a `.tar.gz`, sorted by path, as `opa build` names them (`/path`). */
export async function writeTarGz(files: ReadonlyMap<string, Uint8Array>): Promise<Uint8Array> {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer)
  })()
  for (const name of [...files.keys()].sort()) {
    const body = Buffer.from(files.get(name)!)
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name: `/${name}`, size: body.length, mode: 0o600, mtime: new Date(0) }, body, (e) =>
        e ? reject(e) : resolve(),
      ),
    )
  }
  pack.finalize()
  await done
  return new Uint8Array(gzipSync(Buffer.concat(chunks)))
}
