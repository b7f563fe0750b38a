/**
 * Policy files for Node hosts: load one (YAML or JSON, with line/column in problems) and keep an
 * engine in step with it. Used by the sidecar, the MCP gateway and the CLI; `decide()` never
 * touches the file system.
 */
import { createHash } from 'node:crypto'
import { existsSync, type FSWatcher, unwatchFile, watch, watchFile } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import {
  createEngine,
  type Engine,
  type EngineOptions,
  PolicyError,
  parsePolicyText,
  type ResourceLoader,
  type SourceDocument,
} from '@verdict/core/internal/portable'
import { createFileResourceLoader, readRegularFile } from './resources.js'

/** Largest policy file read (16 MiB). */
const MAX_POLICY_FILE_BYTES = 16 * 1024 * 1024

/** A parsed policy file and a loader for what it references, relative to its directory. */
export interface PolicyFile {
  readonly path: string
  readonly source: SourceDocument
  readonly resources: ResourceLoader
  /** SHA-256 of the text, to tell real changes from touches. */
  readonly digest: string
}

/**
 * Read and parse a YAML or JSON file (a policy, a case file, a fixture file). Throws `PolicyError`
 * when it cannot be read or parsed, with line and column for parse errors.
 */
export async function readSourceFile(path: string): Promise<{ text: string; source: SourceDocument }> {
  let text: string
  try {
    text = (await readRegularFile(path, MAX_POLICY_FILE_BYTES)).toString('utf8')
  } catch (e) {
    throw new PolicyError([
      { code: 'policy_parse', message: `cannot read ${path}: ${(e as Error).message}`, path: '' },
    ])
  }
  return { text, source: parsePolicyText(text, path) }
}

async function readImported(
  abs: string,
  importer: PolicyImporter,
  target: string | undefined,
): Promise<{ text: string; source: SourceDocument }> {
  let text: string
  try {
    text = (await readRegularFile(abs, MAX_POLICY_FILE_BYTES)).toString('utf8')
  } catch (e) {
    throw new PolicyError([
      { code: 'policy_parse', message: `cannot read ${abs}: ${(e as Error).message}`, path: '' },
    ])
  }
  const imported = importer(text, target === undefined ? { path: abs } : { path: abs, target })
  return { text, source: imported ?? parsePolicyText(text, abs) }
}

/**
 * A translator for policy files that are not verdict documents: `@verdict/import` turns
 * Kubernetes resources (XAccessPolicy, agentgateway, Istio, Authorino) into one. It returns
 * undefined for a text it does not take, and throws `PolicyError` (located in the text) when it
 * takes the text but cannot translate it. `target` is the part after `#` in `policy.yaml#backend`.
 * Hosts install it as `globalThis[Symbol.for('verdict.policyImporter')]` (the CLI does), so that
 * every copy of core loaded in the process sees it.
 */
export type PolicyImporter = (
  text: string,
  file: { readonly path: string; readonly target?: string },
) => SourceDocument | undefined

const IMPORTER = Symbol.for('verdict.policyImporter')

function importerOf(): PolicyImporter | undefined {
  const i = (globalThis as Record<symbol, unknown>)[IMPORTER]
  return typeof i === 'function' ? (i as PolicyImporter) : undefined
}

/**
 * Read and parse a policy file. Throws `PolicyError` for unreadable or unparsable files, with the
 * file's line and column for parse errors. With a policy importer installed, a file of Kubernetes
 * resources is translated, and `resources.yaml#target` selects the target its policies name.
 */
export async function loadPolicyFile(
  path: string,
  options: { fetch?: typeof globalThis.fetch } = {},
): Promise<PolicyFile> {
  const importer = importerOf()
  let abs = resolve(path)
  let target: string | undefined
  const hash = abs.lastIndexOf('#')
  if (importer !== undefined && hash > 0 && !existsSync(abs)) {
    target = abs.slice(hash + 1)
    abs = abs.slice(0, hash)
  }
  const { text, source } =
    importer === undefined ? await readSourceFile(abs) : await readImported(abs, importer, target)
  return {
    path: abs,
    source,
    resources: createFileResourceLoader({
      baseDir: dirname(abs),
      ...(options.fetch ? { fetch: options.fetch } : {}),
    }),
    digest: createHash('sha256').update(text).digest('hex'),
  }
}

/**
 * Create an engine from a policy file; files and bundles it names resolve next to it.
 *
 * @example
 * ```ts
 * const engine = await createEngineFromFile('policy.yaml', { evaluators: [createCelEvaluator()] })
 * ```
 */
export async function createEngineFromFile(path: string, options: EngineOptions = {}): Promise<Engine> {
  const file = await loadPolicyFile(path)
  return createEngine(file.source, { resources: file.resources, ...options })
}

export interface WatchOptions {
  /** Called after a successful swap with the engine's new generation. */
  readonly onReload?: (info: { generation: number; path: string }) => void
  /** Called when a changed file is invalid; the old policy stays in force. */
  readonly onError?: (error: unknown) => void
  /** Polling interval backing up fs.watch (which misses some editors' renames). Default 500 ms. */
  readonly intervalMs?: number
  /** Quiet time after the last change event before reloading. Default 50 ms. */
  readonly debounceMs?: number
  /**
   * Digest (`PolicyFile.digest`) of the text the engine was created from. Without it the file is
   * read when the watch starts, and an edit made before that would go unnoticed until the next one.
   */
  readonly initialDigest?: string
}

/**
 * A running watch: `reload()` recompiles now, even if the text did not change (SIGHUP: key files
 * and bundles it names may have; it works after `close()` too), `close()` stops watching.
 */
export interface PolicyWatch {
  reload(): Promise<boolean>
  close(): void
}

/**
 * Reload `engine` whenever the file at `path` changes (and on `reload()`). Each reload compiles the
 * new policy fully and swaps atomically; an invalid edit keeps the old policy and goes to `onError`.
 */
export function watchPolicyFile(path: string, engine: Engine, options: WatchOptions = {}): PolicyWatch {
  const abs = resolve(path)
  let lastDigest: string | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  let running: Promise<boolean> | undefined
  let again = false
  // A reload asked for while one runs: whether it must recompile unchanged text.
  let forceAgain = false
  let closed = false

  const check = async (force: boolean): Promise<boolean> => {
    let file: PolicyFile
    try {
      file = await loadPolicyFile(abs)
    } catch (e) {
      options.onError?.(e)
      return false
    }
    if (!force && file.digest === lastDigest) return false
    try {
      await engine.update(file.source)
      lastDigest = file.digest
      options.onReload?.({ generation: engine.info.generation, path: abs })
      return true
    } catch (e) {
      // Remember the bad digest too, so the same invalid text is reported once, not every poll.
      lastDigest = file.digest
      options.onError?.(e)
      return false
    }
  }

  const run = (force: boolean): Promise<boolean> => {
    if (running) {
      again = true
      forceAgain ||= force
      return running
    }
    running = check(force).finally(() => {
      running = undefined
      if (again && (!closed || forceAgain)) {
        const f = forceAgain
        again = false
        forceAgain = false
        void run(f)
      }
    })
    return running
  }
  const reload = (): Promise<boolean> => run(true)

  const schedule = (): void => {
    if (closed) return
    if (timer) clearTimeout(timer)
    timer = setTimeout(() => void run(false), options.debounceMs ?? 50)
  }

  // The current text is what the engine was created from; record its digest without reloading.
  lastDigest = options.initialDigest
  if (lastDigest === undefined)
    void readRegularFile(abs, MAX_POLICY_FILE_BYTES)
      .then((t) => {
        lastDigest ??= createHash('sha256').update(t).digest('hex')
      })
      .catch(() => {})

  let watcher: FSWatcher | undefined
  try {
    // Watch the directory: editors often replace the file by renaming a new one over it.
    watcher = watch(dirname(abs), (_event, name) => {
      if (name === null || name === basename(abs)) schedule()
    })
    watcher.on('error', () => {})
    watcher.unref()
  } catch {
    watcher = undefined
  }
  const poll = (): void => schedule()
  watchFile(abs, { interval: options.intervalMs ?? 500, persistent: false }, poll)

  return {
    reload,
    close() {
      closed = true
      if (timer) clearTimeout(timer)
      watcher?.close()
      unwatchFile(abs, poll)
    },
  }
}
