/**
 * Decision logs to a collector in OPA's format: batches of events POSTed as a gzip-compressed
 * JSON array (`Content-Encoding: gzip`, `Content-Type: application/json`) to `<service>/logs`.
 * Events are masked before they are buffered (JSON pointers under `/input` or `/result`, erased as
 * OPA erases them and listed in `erased`); the buffer is bounded in bytes and drops the oldest
 * events past it (counted); uploads are retried with backoff; `flush()` empties the buffer.
 */
import { randomUUID } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import type { DecisionEvent } from '@verdict/core'
import { Counter, type Registry } from 'prom-client'
import { createServiceClient, type ServiceOptions } from './service-client.js'

/** Masked by default: credentials that may appear in an input. */
export const DEFAULT_MASKS: readonly string[] = [
  '/input/attributes/request/http/headers/authorization',
  '/input/attributes/request/http/headers/proxy-authorization',
  '/input/attributes/request/http/headers/cookie',
  '/input/attributes/request/http/headers/x-api-key',
  '/input/headers/authorization',
  '/input/headers/proxy-authorization',
  '/input/headers/cookie',
  '/input/headers/x-api-key',
]

/** One event as OPA's decision log service receives it. */
export interface OpaDecisionEvent {
  labels: Record<string, string>
  decision_id: string
  bundles?: Record<string, { revision: string }>
  path: string
  input?: unknown
  result?: unknown
  requested_by: string
  timestamp: string
  metrics?: Record<string, number>
  erased?: string[]
}

export interface DecisionLoggerOptions extends ServiceOptions {
  /** Path under the service (default `logs`, as OPA). */
  readonly resource?: string
  /** Labels of this instance; `id` (a UUID) and `version` are added when missing, as OPA does. */
  readonly labels?: Readonly<Record<string, string>>
  /** Active bundles and their revisions, read at each decision. */
  readonly bundles?: () => Record<string, { revision: string }>
  /** JSON pointers to erase (default `DEFAULT_MASKS`; give `[...DEFAULT_MASKS, ...]` to add). */
  readonly masks?: readonly string[]
  /** Upload at least this often while events wait (OPA `reporting.min_delay_seconds`; default 1 s here). */
  readonly minDelayMs?: number
  /** Backoff ceiling after failed uploads (default 10 s). */
  readonly maxDelayMs?: number
  /** Largest uncompressed batch per POST (default 32 KiB, OPA's `upload_size_limit_bytes`). */
  readonly uploadSizeLimitBytes?: number
  /** Most buffered bytes; past it the oldest events are dropped and counted (default 16 MiB). */
  readonly bufferSizeLimitBytes?: number
  /** Deadline of one upload (default 10 s). */
  readonly requestTimeoutMs?: number
  /** Registry for `verdict_decision_logs_dropped_total` and friends. */
  readonly registry?: Registry
  readonly version?: string
}

export interface DecisionLogger {
  /** Pass to the engine's `onDecision` (chain with other listeners). */
  readonly onDecision: (event: DecisionEvent) => void
  /** Add one event (already in OPA's shape, before masking). */
  log(event: OpaDecisionEvent): void
  /** Upload everything buffered; resolves when the buffer is empty or `timeoutMs` passed. */
  flush(timeoutMs?: number): Promise<void>
  /** Events dropped because the buffer was full. */
  readonly dropped: number
  /** Events uploaded (accepted by the collector). */
  readonly uploaded: number
  readonly buffered: number
  readonly state: 'OK' | 'ERROR'
  close(): void
}

const unescapePointer = (s: string) => s.replace(/~1/g, '/').replace(/~0/g, '~')

/**
 * Erase `pointer` from `event` as OPA does: only under `/input` or `/result`, only object keys
 * (a segment naming an array element makes the pointer undefined), undefined pointers ignored.
 * Returns true when something was erased.
 */
export function erase(event: Record<string, unknown>, pointer: string): boolean {
  if (!pointer.startsWith('/input') && !pointer.startsWith('/result')) return false
  const parts = pointer.split('/').slice(1).map(unescapePointer)
  if (parts[0] !== 'input' && parts[0] !== 'result') return false
  let node: unknown = event
  for (let i = 0; i < parts.length - 1; i++) {
    if (typeof node !== 'object' || node === null) return false
    const next: unknown = Array.isArray(node)
      ? (node as unknown[])[Number(parts[i])]
      : (node as Record<string, unknown>)[parts[i]!]
    if (
      next === undefined ||
      !Object.hasOwn(node as object, Array.isArray(node) ? Number(parts[i]) : parts[i]!)
    )
      return false
    node = next
  }
  if (typeof node !== 'object' || node === null || Array.isArray(node)) return false
  const last = parts[parts.length - 1]!
  if (!Object.hasOwn(node, last)) return false
  delete (node as Record<string, unknown>)[last]
  return true
}

interface Entry {
  readonly seq: number
  readonly json: string
}

export function createDecisionLogger(o: DecisionLoggerOptions): DecisionLogger {
  const client = createServiceClient(o)
  const resource = o.resource ?? 'logs'
  const labels: Record<string, string> = {
    id: randomUUID(),
    version: o.version ?? 'verdict-0.1.0',
    ...o.labels,
  }
  const masks = o.masks ?? DEFAULT_MASKS
  const minDelay = o.minDelayMs ?? 1000
  const maxDelay = Math.max(o.maxDelayMs ?? 10_000, minDelay)
  const uploadLimit = o.uploadSizeLimitBytes ?? 32 * 1024
  const bufferLimit = o.bufferSizeLimitBytes ?? 16 * 1024 * 1024
  const requestTimeout = o.requestTimeoutMs ?? 10_000
  const droppedCounter =
    o.registry !== undefined
      ? new Counter({
          name: 'verdict_decision_logs_dropped_total',
          help: 'Decision log events dropped because the buffer was full',
          registers: [o.registry],
        })
      : undefined
  const uploadedCounter =
    o.registry !== undefined
      ? new Counter({
          name: 'verdict_decision_logs_uploaded_total',
          help: 'Decision log events accepted by the collector',
          registers: [o.registry],
        })
      : undefined
  const buffer: Entry[] = []
  let bufferBytes = 0
  let seq = 0
  let dropped = 0
  let uploaded = 0
  let failures = 0
  let state: 'OK' | 'ERROR' = 'OK'
  let timer: NodeJS.Timeout | undefined
  /** The one upload loop running, if any (uploads never overlap, so no batch is sent twice). */
  let pumping: Promise<void> | undefined
  /** Head entries of the buffer in the POST in flight: never dropped, removed once accepted. */
  let inflight = 0
  let backoffUntil = 0
  let closed = false

  const schedule = (delay: number) => {
    if (closed || timer !== undefined) return
    timer = setTimeout(() => {
      timer = undefined
      pump()
    }, delay)
    timer.unref?.()
  }

  /** Upload one batch from the head of the buffer; true when it was accepted. */
  const uploadOnce = async (): Promise<boolean> => {
    let size = 2
    inflight = 0
    for (const e of buffer) {
      if (inflight > 0 && size + e.json.length + 1 > uploadLimit) break
      inflight++
      size += e.json.length + 1
    }
    const body = gzipSync(
      `[${buffer
        .slice(0, inflight)
        .map((e) => e.json)
        .join(',')}]`,
    )
    try {
      const res = await client.call(resource, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body,
        timeoutMs: requestTimeout,
        maxBytes: 64 * 1024,
      })
      if (res.status < 200 || res.status > 299) throw new Error(`collector replied with HTTP ${res.status}`)
    } catch {
      inflight = 0
      state = 'ERROR'
      return false
    }
    for (const e of buffer.splice(0, inflight)) bufferBytes -= e.json.length
    uploaded += inflight
    uploadedCounter?.inc(inflight)
    inflight = 0
    state = 'OK'
    return true
  }

  /** Start the upload loop unless it runs or a backoff is pending. */
  const pump = (): Promise<void> => {
    if (pumping !== undefined) return pumping
    const wait = backoffUntil - Date.now()
    if (wait > 0) {
      schedule(wait)
      return Promise.resolve()
    }
    pumping = (async () => {
      while (buffer.length > 0 && !closed) {
        if (!(await uploadOnce())) {
          failures++
          const delay =
            Math.min(maxDelay, 100 * 2 ** Math.min(failures - 1, 30)) * (0.8 + Math.random() * 0.4)
          backoffUntil = Date.now() + delay
          schedule(delay)
          return
        }
        failures = 0
      }
    })().finally(() => {
      pumping = undefined
    })
    return pumping
  }

  const log = (event: OpaDecisionEvent) => {
    if (closed) return
    const copy = JSON.parse(JSON.stringify(event)) as Record<string, unknown>
    const erased = [...((copy.erased as string[] | undefined) ?? []), ...masks.filter((m) => erase(copy, m))]
    if (erased.length > 0) copy.erased = erased
    const json = JSON.stringify(copy)
    buffer.push({ seq: ++seq, json })
    bufferBytes += json.length
    // Past the bound, the oldest events not already being sent are dropped.
    while (bufferBytes > bufferLimit && buffer.length > inflight) {
      bufferBytes -= buffer.splice(inflight, 1)[0]!.json.length
      dropped++
      droppedCounter?.inc()
    }
    if (bufferBytes >= uploadLimit) void pump()
    else schedule(minDelay)
  }

  return {
    onDecision(e) {
      const request = e.request?.()
      log({
        labels,
        decision_id: e.id,
        ...(o.bundles !== undefined ? { bundles: o.bundles() } : {}),
        path: `verdict/${e.policy}`,
        input: request?.input ?? e.input,
        ...(request !== undefined && request.erased.length > 0 ? { erased: [...request.erased] } : {}),
        result: {
          allowed: e.allowed,
          status: e.status,
          code: e.code,
          ...(e.detailCode !== undefined ? { detail_code: e.detailCode } : {}),
          ...(e.rule !== undefined ? { rule: e.rule } : {}),
          reason: e.reason,
        },
        requested_by: '',
        timestamp: e.time,
        metrics: { timer_server_handler_ns: Math.round(e.durationMs * 1e6) },
      })
    },
    log,
    async flush(timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs
      while (buffer.length > 0 && Date.now() < deadline) {
        if (pumping !== undefined) await pumping
        if (buffer.length === 0) break
        // A flush does not wait out the backoff, but pauses between failed attempts.
        backoffUntil = 0
        await pump()
        if (buffer.length > 0)
          await new Promise((r) => setTimeout(r, Math.min(200, Math.max(0, deadline - Date.now()))))
      }
    },
    get dropped() {
      return dropped
    },
    get uploaded() {
      return uploaded
    },
    get buffered() {
      return buffer.length
    },
    get state() {
      return state
    },
    close() {
      closed = true
      if (timer !== undefined) clearTimeout(timer)
    },
  }
}
