/**
 * A `ResourceLoader` for Node hosts: files relative to a base directory, and http(s) URLs through
 * an injected fetch. Core's decision path never calls it; it runs only while a policy loads.
 */
import { readFile } from 'node:fs/promises'
import { isAbsolute, resolve } from 'node:path'
import type { ResourceLoader } from './evaluator.js'

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
        const buf = new Uint8Array(await res.arrayBuffer())
        if (buf.length > max) throw new Error(`${location} is larger than ${max} bytes`)
        return buf
      }
      const path = isAbsolute(location) ? location : resolve(options.baseDir, location)
      const buf = await readFile(path)
      if (buf.length > max) throw new Error(`${location} is larger than ${max} bytes`)
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.length)
    },
  }
}
