/**
 * A bundle kept current from a bundle service, as OPA's bundle plugin does: `GET <url>` with
 * `If-None-Match`; `304` keeps what is active; polling every min..max delay (uniform jitter);
 * long polling (`Prefer: modes=snapshot;wait=N`) once the service answers with OPA's bundle
 * content type; errors retried with exponential backoff. A new bundle is read, verified and
 * compiled fully before it replaces the active one; a bad one is reported and the previous one
 * kept. The last good bundle is persisted and activated at start.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type FleetBundle, readFleetBundle } from './bundle.js'
import { type CallOptions, createServiceClient, ServiceError, type ServiceOptions } from './service-client.js'
import type { VerificationOptions } from './signing.js'

/** OPA's content type for bundle answers that support long polling. */
export const OPA_BUNDLE_CONTENT_TYPE = 'application/vnd.openpolicyagent.bundles'

export interface BundleSourceOptions extends ServiceOptions {
  /** The bundle's full URL (`url` of the service). */
  readonly url: string
  /** Bundle name in status and decision logs (default `verdict`). */
  readonly name?: string
  /** Delay between polls: uniform in [min, max) (OPA defaults 60 s, 120 s). */
  readonly minDelayMs?: number
  readonly maxDelayMs?: number
  /** Ask for long polling with this wait (OPA's `long_polling_timeout_seconds`). */
  readonly longPollingTimeoutSeconds?: number
  /** Deadline of a short-poll request (default 30 s); a long poll gets its wait plus this. */
  readonly requestTimeoutMs?: number
  /** Largest compressed download (default 64 MiB). */
  readonly maxDownloadBytes?: number
  /** Largest uncompressed bundle (default 64 MiB) and most files (default 10000). */
  readonly maxUnpackedBytes?: number
  readonly maxFiles?: number
  /** Only bundles signed by one of these keys are activated. */
  readonly verification?: VerificationOptions
  /** Directory where the last activated bundle is kept (`<dir>/<name>/bundle.tar.gz`). */
  readonly persistDir?: string
  /** The active bundle counts as stale when no request succeeded for this long (default 3 x max delay + request timeout). */
  readonly staleAfterMs?: number
  /** Compile and swap in the bundle; throw to refuse it (the previous one stays). */
  readonly activate: (bundle: FleetBundle) => Promise<void>
  /** Told about each outcome (for logs). */
  readonly onEvent?: (e: BundleSourceEvent) => void
  readonly now?: () => number
}

export type BundleSourceEvent =
  | { readonly type: 'activated'; readonly revision: string; readonly from: 'service' | 'persisted' }
  | { readonly type: 'not_modified' }
  | { readonly type: 'error'; readonly code: string; readonly message: string; readonly httpCode?: number }

/** One bundle's entry in OPA's status report. */
export interface OpaBundleStatus {
  name: string
  active_revision?: string
  last_request?: string
  last_successful_request?: string
  last_successful_download?: string
  last_successful_activation?: string
  type: 'snapshot'
  size?: number
  code?: string
  message?: string
  http_code?: number
  errors?: string[]
  metrics?: Record<string, number>
}

export interface BundleSourceStatus {
  readonly bundle: OpaBundleStatus
  /** True while some bundle is active. */
  readonly active: boolean
  /** The active bundle came from the persistence directory and no request has confirmed it since, or no request succeeded within `staleAfterMs`. */
  readonly stale: boolean
  readonly activeFrom: 'service' | 'persisted' | undefined
}

export interface BundleSource {
  /** Activate the persisted bundle if any, then start polling; resolves once a bundle is active or the first attempt failed. */
  start(): Promise<void>
  status(): BundleSourceStatus
  /** Called after every status change. */
  onChange(listener: () => void): void
  close(): void
}

const iso = (ms: number) => new Date(ms).toISOString()

/** Create a bundle source; nothing happens before `start()`. */
export function createBundleSource(o: BundleSourceOptions): BundleSource {
  const name = o.name ?? 'verdict'
  const now = o.now ?? Date.now
  const minDelay = o.minDelayMs ?? 60_000
  const maxDelay = Math.max(o.maxDelayMs ?? 120_000, minDelay)
  const requestTimeout = o.requestTimeoutMs ?? 30_000
  const staleAfter = o.staleAfterMs ?? 3 * maxDelay + requestTimeout
  const client = createServiceClient(o)
  const limits = {
    ...(o.maxUnpackedBytes !== undefined ? { maxUnpackedBytes: o.maxUnpackedBytes } : {}),
    ...(o.maxFiles !== undefined ? { maxFiles: o.maxFiles } : {}),
    ...(o.verification !== undefined ? { verification: o.verification } : {}),
  }
  const st: OpaBundleStatus = { name, type: 'snapshot' }
  let lastSuccessMs: number | undefined
  let activeFrom: 'service' | 'persisted' | undefined
  let etag: string | undefined
  let longPoll = false
  let failures = 0
  let closed = false
  let timer: NodeJS.Timeout | undefined
  const abort = new AbortController()
  const listeners: Array<() => void> = []
  const changed = () => {
    for (const l of listeners) {
      try {
        l()
      } catch {
        // a listener's failure is its own
      }
    }
  }
  const persistPath = o.persistDir !== undefined ? join(o.persistDir, name, 'bundle.tar.gz') : undefined

  const fail = (code: string, message: string, httpCode?: number) => {
    st.code = code
    st.message = message
    st.errors = [message]
    if (httpCode !== undefined) st.http_code = httpCode
    else delete st.http_code
    o.onEvent?.({ type: 'error', code, message, ...(httpCode !== undefined ? { httpCode } : {}) })
  }
  const clearError = () => {
    delete st.code
    delete st.message
    delete st.errors
    delete st.http_code
  }

  /** Read, verify, activate; true when active. */
  const activate = async (bytes: Uint8Array, from: 'service' | 'persisted'): Promise<boolean> => {
    const started = performance.now()
    const b = await readFleetBundle(bytes, limits)
    if ('error' in b) {
      fail('bundle_error', b.error)
      return false
    }
    try {
      await o.activate(b)
    } catch (e) {
      fail('bundle_error', `activation of revision "${b.revision}" failed: ${(e as Error).message}`)
      return false
    }
    st.active_revision = b.revision
    st.last_successful_activation = iso(now())
    st.size = bytes.length
    st.metrics = { timer_bundle_activation_ns: Math.round((performance.now() - started) * 1e6) }
    activeFrom = from
    clearError()
    o.onEvent?.({ type: 'activated', revision: b.revision, from })
    return true
  }

  const persist = async (bytes: Uint8Array) => {
    if (persistPath === undefined) return
    try {
      await mkdir(join(o.persistDir!, name), { recursive: true })
      const tmp = `${persistPath}.${process.pid}.tmp`
      await writeFile(tmp, bytes, { mode: 0o600 })
      await rename(tmp, persistPath)
    } catch (e) {
      o.onEvent?.({ type: 'error', code: 'persist_error', message: (e as Error).message })
    }
  }

  /** One request; returns whether to poll again at once (long polling). */
  const attempt = async (): Promise<boolean> => {
    st.last_request = iso(now())
    const waitS =
      longPoll && o.longPollingTimeoutSeconds !== undefined ? o.longPollingTimeoutSeconds : undefined
    const headers: Record<string, string> = { accept: `${OPA_BUNDLE_CONTENT_TYPE}, application/gzip;q=0.9` }
    if (etag !== undefined) headers['if-none-match'] = etag
    if (waitS !== undefined) headers.prefer = `modes=snapshot;wait=${waitS}`
    const call: CallOptions = {
      timeoutMs: requestTimeout + (waitS ?? 0) * 1000,
      maxBytes: o.maxDownloadBytes ?? 64 * 1024 * 1024,
      headers,
      signal: abort.signal,
    }
    let res: Awaited<ReturnType<typeof client.call>>
    try {
      res = await client.call('', call)
    } catch (e) {
      if (closed) return false
      fail(
        'bundle_error',
        `download failed: ${(e as Error).message}`,
        e instanceof ServiceError ? e.httpCode : undefined,
      )
      longPoll = false
      return false
    }
    longPoll = res.headers['content-type'] === OPA_BUNDLE_CONTENT_TYPE
    if (res.status === 304) {
      st.last_successful_request = iso(now())
      lastSuccessMs = now()
      if (activeFrom === 'persisted' && etag !== undefined) activeFrom = 'service'
      clearError()
      o.onEvent?.({ type: 'not_modified' })
      return true
    }
    if (res.status !== 200) {
      fail('bundle_error', `server replied with HTTP ${res.status}`, res.status)
      return false
    }
    st.last_successful_request = iso(now())
    st.last_successful_download = iso(now())
    lastSuccessMs = now()
    const bytes = new Uint8Array(res.body)
    if (!(await activate(bytes, 'service'))) return false
    const tag = res.headers.etag
    etag = typeof tag === 'string' && tag !== '' ? tag : undefined
    await persist(bytes)
    return true
  }

  const loop = async (): Promise<void> => {
    if (closed) return
    const ok = await attempt()
    changed()
    if (closed) return
    let delay: number
    if (ok) {
      failures = 0
      delay =
        longPoll && o.longPollingTimeoutSeconds !== undefined
          ? 0
          : minDelay + Math.random() * (maxDelay - minDelay)
    } else {
      failures++
      // As OPA: from 100 ms, doubling, at most the max delay, 20 % jitter.
      const base = Math.min(maxDelay, 100 * 2 ** Math.min(failures - 1, 30))
      delay = base * (0.8 + Math.random() * 0.4)
    }
    timer = setTimeout(() => void loop(), delay)
    timer.unref?.()
  }

  return {
    async start() {
      let activated = false
      if (persistPath !== undefined) {
        let bytes: Buffer | undefined
        try {
          bytes = await readFile(persistPath)
        } catch {
          bytes = undefined
        }
        if (bytes !== undefined) activated = await activate(new Uint8Array(bytes), 'persisted')
        changed()
      }
      const first = loop()
      if (!activated) await first
    },
    status() {
      const active = st.active_revision !== undefined
      const t = now()
      const stale =
        active &&
        (activeFrom === 'persisted' || lastSuccessMs === undefined || t - lastSuccessMs > staleAfter)
      return { bundle: { ...st }, active, stale, activeFrom }
    },
    onChange(l) {
      listeners.push(l)
    },
    close() {
      closed = true
      if (timer !== undefined) clearTimeout(timer)
      abort.abort()
    },
  }
}
