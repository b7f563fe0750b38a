/**
 * `verdict serve --workers`: the cluster primary that starts the workers and serves the operations
 * listener for all of them (`serve-command.ts`).
 */
import cluster, { type Worker } from 'node:cluster'
import { createServer } from 'node:http'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { type BoundAddresses, clusterMetricsSource, createOpsHandler, createTelemetry } from '@verdict/envoy'
import { EXIT_INVALID } from './eval-command.js'
import type { Io } from './io.js'
import { loadEngine } from './load-engine.js'
import { formatLocated } from './problems.js'
import { readTls, type ServeOptions } from './serve-options.js'

/** The `verdict` executable a primary starts its workers from. */
const BIN = fileURLToPath(new URL('../bin/verdict.js', import.meta.url))

/** Messages a worker sends its primary. */
export type WorkerMessage =
  | { readonly verdict: 'listening'; readonly bound: BoundAddresses }
  | { readonly verdict: 'failed'; readonly error: string }

const isWorkerMessage = (m: unknown): m is WorkerMessage =>
  typeof m === 'object' && m !== null && typeof (m as { verdict?: unknown }).verdict === 'string'

export function workerCount(o: ServeOptions): number {
  if (o.workers === 'auto') return availableParallelism()
  return o.workers ?? 1
}

/**
 * `--workers N`: this process starts N workers (node:cluster), each running the whole sidecar with
 * its own engine, on the same listeners (the primary holds the listening sockets and hands each
 * new connection to the next worker). The primary serves the operations listener for all of them:
 * `/metrics` sums the workers' metrics, `/readyz` is ready while every worker listens and nobody
 * is draining. SIGHUP reaches every worker; each also watches the policy file. SIGTERM drains every
 * worker (each with its own drain delay); the primary exits 0 once they all exited 0.
 */
export async function runPrimary(o: ServeOptions, io: Io): Promise<number> {
  const n = workerCount(o)
  const telemetry = createTelemetry({
    write: (line) => io.stdout(`${line}\n`),
    format: o.json || !io.isTTY ? 'json' : 'text',
    logDecisions: false,
    processMetrics: false,
  })
  if (o.bundle !== undefined || o.policy === undefined) {
    io.stderr('verdict serve: --workers needs --policy <file> (not --bundle)\n')
    return EXIT_INVALID
  }
  // What would stop every worker is reported once, before any starts.
  const tls = readTls(o)
  if (typeof tls === 'string') {
    io.stderr(`verdict serve: ${tls}\n`)
    return EXIT_INVALID
  }
  const checked = await loadEngine(o.policy, {})
  if (!checked.ok) {
    io.stderr(formatLocated(checked.problems) + checked.notes.map((x) => `${x}\n`).join(''))
    return EXIT_INVALID
  }
  const policyName = checked.engine.info.name
  checked.engine.close()

  cluster.setupPrimary({ exec: BIN, args: [...(o.argv ?? process.argv).slice(2)] })
  const listening = new Map<Worker, BoundAddresses>()
  let draining = false
  let bound: BoundAddresses | undefined
  const restarts: number[] = []
  let fatal: ((error: string) => void) | undefined
  let allListening: (() => void) | undefined

  const fork = (): Worker => {
    const w = cluster.fork()
    w.on('message', (m: unknown) => {
      if (!isWorkerMessage(m)) return
      if (m.verdict === 'listening') {
        listening.set(w, m.bound)
        bound ??= m.bound
        if (listening.size === n) allListening?.()
      } else fatal?.(m.error)
    })
    return w
  }
  const exits: Array<number | null> = []
  let exited: (() => void) | undefined
  cluster.on('exit', (w, code, signal) => {
    listening.delete(w)
    if (draining) {
      exits.push(code)
      if (Object.keys(cluster.workers ?? {}).length === 0) exited?.()
      return
    }
    if (bound === undefined) {
      fatal?.(`worker ${w.process.pid} exited with ${code ?? signal} before listening`)
      return
    }
    // A worker that dies is replaced; one that keeps dying stops the server.
    const now = Date.now()
    restarts.push(now)
    while (restarts.length > 0 && restarts[0]! < now - 10_000) restarts.shift()
    telemetry.log('error', 'worker exited; starting another', {
      pid: w.process.pid,
      code,
      signal,
    })
    if (restarts.length > 5) fatal?.('workers keep exiting')
    else fork()
  })

  const stopWorkers = async (): Promise<number> => {
    draining = true
    const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined)
    const done = new Promise<void>((resolve) => {
      exited = resolve
      if (alive.length === 0) resolve()
    })
    for (const w of alive) w.process.kill('SIGTERM')
    await done
    return exits.every((c) => c === 0) ? 0 : 1
  }

  const started = await new Promise<string | undefined>((resolve) => {
    fatal = (error) => resolve(error)
    allListening = () => resolve(undefined)
    for (let i = 0; i < n; i++) fork()
  })
  if (started !== undefined) {
    await stopWorkers()
    io.stderr(`verdict serve: ${started}\n`)
    return 1
  }
  let ops: ReturnType<typeof createServer> | undefined
  let opsAt: string | undefined
  if (o.metrics !== false) {
    const at = o.metrics
    ops = createServer(
      createOpsHandler({
        registry: clusterMetricsSource(),
        ready: () => !draining && listening.size === n,
      }),
    )
    try {
      opsAt = await new Promise<string>((resolve, reject) => {
        ops!.once('error', reject)
        ops!.listen(at.port, at.host ?? '127.0.0.1', () => {
          const a = ops!.address() as { address: string; port: number }
          resolve(a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`)
        })
      })
    } catch (e) {
      await stopWorkers()
      io.stderr(`cannot listen: ${(e as Error).message}\n`)
      return 1
    }
  }
  telemetry.log('info', 'listening', {
    ...bound,
    ...(opsAt !== undefined ? { ops: opsAt } : {}),
    policy: policyName,
    pid: process.pid,
    workers: n,
    worker_pids: [...listening.keys()].map((w) => w.process.pid),
  })
  const onHup = (): void => {
    telemetry.log('info', 'SIGHUP: reloading policy in every worker')
    for (const w of listening.keys()) w.process.kill('SIGHUP')
  }
  process.on('SIGHUP', onHup)
  const reason = await new Promise<string>((resolve) => {
    const stop = (why: string): void => {
      process.off('SIGTERM', onTerm)
      process.off('SIGINT', onInt)
      resolve(why)
    }
    const onTerm = (): void => stop('SIGTERM')
    const onInt = (): void => stop('SIGINT')
    process.once('SIGTERM', onTerm)
    process.once('SIGINT', onInt)
    fatal = (error) => stop(error)
  })
  process.off('SIGHUP', onHup)
  telemetry.log('info', `${reason}: draining`)
  // /readyz answers 503 from here on, while the workers drain.
  const code = await stopWorkers()
  await new Promise<void>((resolve) => (ops === undefined ? resolve() : ops.close(() => resolve())))
  telemetry.log('info', 'stopped')
  return reason === 'SIGTERM' || reason === 'SIGINT' ? code : 1
}
