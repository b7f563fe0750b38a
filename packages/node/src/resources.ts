/**
 * A `ResourceLoader` for Node hosts: files relative to a base directory, and http(s) URLs through
 * an injected fetch. Core's decision path never calls it; it runs only while a policy loads.
 */
import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import { isAbsolute, resolve } from 'node:path'
import { type ResourceLoader, readLimited } from '@verdict/core/internal/portable'

/**
 * Read a regular file of at most `max` bytes. Anything else fails at once instead of hanging or
 * filling memory: a FIFO (opened without blocking, so a missing writer is not awaited), a device
 * such as /dev/zero, a directory, or a file over the limit (checked before reading).
 */
export async function readRegularFile(path: string, max: number): Promise<Buffer> {
  const file = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0))
  try {
    const st = await file.stat()
    if (!st.isFile()) throw new Error(`${path} is not a regular file`)
    if (st.size > max) throw new Error(`${path} is larger than ${max} bytes`)
    const buf = await file.readFile()
    if (buf.length > max) throw new Error(`${path} is larger than ${max} bytes`)
    return buf
  } finally {
    await file.close()
  }
}

export interface FileResourceOptions {
  /** Directory relative paths resolve against (usually the policy file's directory). */
  readonly baseDir: string
  /** Fetch for `http:`/`https:` locations; without it URLs are refused. */
  readonly fetch?: typeof globalThis.fetch
  /** Largest resource read, in bytes (default 64 MiB). */
  readonly maxBytes?: number
}

/** Read resources from disk (and URLs when a fetch is given). */
export function createFileResourceLoader(options: FileResourceOptions): ResourceLoader {
  const max = options.maxBytes ?? 64 * 1024 * 1024
  return {
    async read(location: string): Promise<Uint8Array> {
      if (/^https?:\/\//i.test(location)) {
        if (options.fetch === undefined) throw new Error(`fetching ${location} is not enabled`)
        const res = await options.fetch(location)
        if (!res.ok) throw new Error(`GET ${location} answered ${res.status}`)
        const buf = await readLimited(res.body, max)
        if (buf === 'too_large') throw new Error(`${location} is larger than ${max} bytes`)
        return buf
      }
      const path = isAbsolute(location) ? location : resolve(options.baseDir, location)
      const buf = await readRegularFile(path, max)
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.length)
    },
  }
}
