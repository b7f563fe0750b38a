/**
 * `verdict serve`: run the ext_authz sidecar (gRPC, HTTP service mode, operations) for a policy
 * file, reloading it when it changes or on SIGHUP and draining on SIGTERM.
 */
import cluster, { type Worker } from 'node:cluster'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { isValidHttpStatus, watchPolicyFile } from '@verdict/core/internal'
import {
  type BoundAddresses,
  clusterMetricsSource,
  createExtAuthzServer,
  createOpsHandler,
  createTelemetry,
  type ListenAddress,
  type ListenerTls,
  type SocketPathAddress,
  shareMetricsWithPrimary,
} from '@verdict/envoy'
import { type Command, InvalidArgumentError, Option } from 'commander'
import { addFleetOptions, type FleetFlags, startFleet } from './bundle-command.js'
import { EXIT_INVALID } from './eval-command.js'
import type { Io } from './io.js'
import { parseListenAddress } from './listen-address.js'
import { type LoadResult, loadEngine } from './load-engine.js'
import { formatLocated, problemsOf } from './problems.js'

/** A check listener: `host:port` or `unix:<path>`. */
export type CheckListen = ListenAddress | SocketPathAddress

export interface ServeOptions extends FleetFlags {
  /** Policy file; or `bundle` (a bundle service URL, docs/fleet.md). */
  readonly policy?: string
  readonly grpc?: CheckListen
  readonly http?: CheckListen
  /** File mode of Unix socket listeners (e.g. 0o660). */
  readonly socketMode?: number
  readonly tlsCert?: string
  readonly tlsKey?: string
  readonly clientCa?: string
  /** Processes serving checks: a number, or 'auto' (one per core). 1 = this process alone. */
  readonly workers?: number | 'auto'
  readonly drainDelay?: number
  /** The command line the primary starts each worker with (set by `registerServe`). */
  readonly argv?: readonly string[]
  /** Operations listener; `false` for none. */
  readonly metrics: ListenAddress | false
  readonly json?: boolean
  readonly statusOnError: number
  readonly maxRequestBytes?: number
  readonly maxConcurrent?: number
  readonly decisionTimeout?: number
  readonly drainTimeout?: number
  readonly httpPathPrefix?: string
  readonly receiveTimeout?: number
  readonly firstByteTimeout?: number
  readonly maxConnections?: number
  readonly grpcMaxStreams?: number
  readonly grpcMaxConnectionAge?: number
  readonly grpcMaxConnectionAgeGrace?: number
  readonly grpcMaxConnectionIdle?: number
  readonly lingerTimeout?: number
  readonly lingerMaxBytes?: number
  readonly watch: boolean
  readonly decisionLog: boolean
}

/** Default gRPC address when neither --grpc nor --http is given. */
export const DEFAULT_GRPC = '127.0.0.1:9000'
/** Default operations address. */
export const DEFAULT_METRICS = '127.0.0.1:9464'

/** Default delay between "not ready" and closing the listeners on SIGTERM. */
export const DEFAULT_DRAIN_DELAY_MS = 2000

/** The `verdict` executable a primary starts its workers from. */
const BIN = fileURLToPath(new URL('../bin/verdict.js', import.meta.url))

/** Messages a worker sends its primary. */
type WorkerMessage =
  | { readonly verdict: 'listening'; readonly bound: BoundAddresses }
  | { readonly verdict: 'failed'; readonly error: string }

const isWorkerMessage = (m: unknown): m is WorkerMessage =>
  typeof m === 'object' && m !== null && typeof (m as { verdict?: unknown }).verdict === 'string'

function workerCount(o: ServeOptions): number {
  if (o.workers === 'auto') return availableParallelism()
  return o.workers ?? 1
}

/** The TLS material of --tls-cert, --tls-key, --client-ca; a message when it cannot be read. */
function readTls(o: ServeOptions): ListenerTls | string | undefined {
  if (o.tlsCert === undefined && o.tlsKey === undefined && o.clientCa === undefined) return undefined
  if (o.tlsCert === undefined || o.tlsKey === undefined)
    return '--tls-cert and --tls-key go together (and --client-ca needs both)'
  try {
    return {
      cert: readFileSync(o.tlsCert),
      key: readFileSync(o.tlsKey),
      ...(o.clientCa !== undefined ? { clientCa: readFileSync(o.clientCa) } : {}),
    }
  } catch (e) {
    return `cannot read TLS files: ${(e as Error).message}`
  }
}

/** A check listener with --socket-mode applied to a Unix socket. */
function withMode(at: CheckListen | undefined, mode: number | undefined): CheckListen | undefined {
  if (at === undefined || !('path' in at) || mode === undefined) return at
  return { ...at, mode }
}

/** Run the sidecar until SIGTERM or SIGINT; returns the exit status. */
export async function runServe(o: ServeOptions, io: Io): Promise<number> {
  if (cluster.isPrimary && workerCount(o) > 1) return runPrimary(o, io)
  const worker = cluster.isWorker
  try {
    return await runOne(o, io, worker)
  } finally {
    // A worker's IPC channel keeps it alive; once drained it has nothing left to do.
    if (worker && process.connected) process.disconnect()
  }
}

async function runOne(o: ServeOptions, io: Io, worker: boolean): Promise<number> {
  const report = (m: WorkerMessage): void => {
    if (worker && process.connected) process.send?.(m)
  }
  const telemetry = createTelemetry({
    write: (line) => io.stdout(`${line}\n`),
    format: o.json || !io.isTTY ? 'json' : 'text',
    logDecisions: o.decisionLog,
  })
  if ((o.policy === undefined) === (o.bundle === undefined)) {
    io.stderr('verdict serve: give either --policy <file> or --bundle <url>\n')
    return EXIT_INVALID
  }
  const tls = readTls(o)
  if (typeof tls === 'string') {
    io.stderr(`verdict serve: ${tls}\n`)
    report({ verdict: 'failed', error: tls })
    return EXIT_INVALID
  }
  if (worker) shareMetricsWithPrimary(telemetry.registry)
  // --bundle: the policy comes from a bundle service (docs/fleet.md); no file to watch.
  const fleet = o.bundle !== undefined ? await startFleet(o, telemetry, io) : undefined
  if (o.bundle !== undefined && fleet === undefined) return EXIT_INVALID
  let loaded: Extract<LoadResult, { ok: true }> | undefined
  if (fleet === undefined) {
    const l = await loadEngine(o.policy!, {
      onDecision: telemetry.onDecision,
      fetch: telemetry.countFetches(globalThis.fetch),
    })
    if (!l.ok) {
      io.stderr(formatLocated(l.problems) + l.notes.map((n) => `${n}\n`).join(''))
      report({ verdict: 'failed', error: 'invalid policy' })
      return EXIT_INVALID
    }
    loaded = l
  }
  const engine = fleet?.engine ?? loaded!.engine
  const grpc = withMode(
    o.grpc ?? (o.http === undefined ? parseListenAddress(DEFAULT_GRPC) : undefined),
    o.socketMode,
  )
  const http = withMode(o.http, o.socketMode)
  const server = createExtAuthzServer({
    engine,
    telemetry,
    ...(grpc !== undefined ? { grpc } : {}),
    ...(http !== undefined ? { http } : {}),
    ...(tls !== undefined ? { tls } : {}),
    // A worker's primary serves the operations listener for the whole server.
    ...(o.metrics !== false && !worker ? { ops: o.metrics } : {}),
    // In fleet mode /readyz also waits for an active bundle, and /status is OPA's status report.
    ...(fleet !== undefined
      ? { opsReadiness: () => fleet.readiness(), opsStatus: () => fleet.status() }
      : {}),
    drainDelayMs: o.drainDelay ?? DEFAULT_DRAIN_DELAY_MS,
    statusOnError: o.statusOnError,
    ...(o.maxRequestBytes !== undefined ? { maxRequestBytes: o.maxRequestBytes } : {}),
    ...(o.maxConcurrent !== undefined ? { maxConcurrent: o.maxConcurrent } : {}),
    ...(o.decisionTimeout !== undefined ? { decisionTimeoutMs: o.decisionTimeout } : {}),
    ...(o.drainTimeout !== undefined ? { drainTimeoutMs: o.drainTimeout } : {}),
    ...(o.httpPathPrefix !== undefined ? { httpPathPrefix: o.httpPathPrefix } : {}),
    ...(o.receiveTimeout !== undefined ? { receiveTimeoutMs: o.receiveTimeout } : {}),
    ...(o.firstByteTimeout !== undefined ? { firstByteTimeoutMs: o.firstByteTimeout } : {}),
    ...(o.maxConnections !== undefined ? { maxConnections: o.maxConnections } : {}),
    ...(o.grpcMaxStreams !== undefined ? { grpcMaxConcurrentStreams: o.grpcMaxStreams } : {}),
    ...(o.grpcMaxConnectionAge !== undefined ? { grpcMaxConnectionAgeMs: o.grpcMaxConnectionAge } : {}),
    ...(o.grpcMaxConnectionAgeGrace !== undefined
      ? { grpcMaxConnectionAgeGraceMs: o.grpcMaxConnectionAgeGrace }
      : {}),
    ...(o.grpcMaxConnectionIdle !== undefined ? { grpcMaxConnectionIdleMs: o.grpcMaxConnectionIdle } : {}),
    ...(o.lingerTimeout !== undefined ? { lingerTimeoutMs: o.lingerTimeout } : {}),
    ...(o.lingerMaxBytes !== undefined ? { lingerMaxBytes: o.lingerMaxBytes } : {}),
  })
  let bound: BoundAddresses
  try {
    bound = await server.start()
  } catch (e) {
    await server.stop()
    await fleet?.close()
    engine.close()
    io.stderr(`cannot listen: ${(e as Error).message}\n`)
    report({ verdict: 'failed', error: `cannot listen: ${(e as Error).message}` })
    return 1
  }
  const file = loaded
  const watch =
    file === undefined
      ? undefined
      : watchPolicyFile(file.path, engine, {
          initialDigest: file.digest,
          onReload: ({ generation }) => telemetry.policyReloaded({ ok: true, generation }),
          onError: (e) =>
            telemetry.policyReloaded({ ok: false, error: formatLocated(problemsOf(e, file.path)).trim() }),
          ...(o.watch ? {} : { intervalMs: 2 ** 31 - 1 }),
        })
  if (!o.watch) watch?.close()
  if (worker) {
    telemetry.log('info', 'worker listening', { ...bound, policy: engine.info.name, pid: process.pid })
    report({ verdict: 'listening', bound })
  } else telemetry.log('info', 'listening', { ...bound, policy: engine.info.name, pid: process.pid })

  const onHup = (): void => {
    telemetry.log('info', 'SIGHUP: reloading policy')
    // Recompiles even when the text is unchanged (key files and bundles may have changed); a
    // closed watch (--no-watch) still does, and reports through the same telemetry.
    void watch?.reload()
  }
  process.on('SIGHUP', onHup)
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      process.off('SIGTERM', onTerm)
      process.off('SIGINT', onInt)
      process.off('disconnect', onGone)
      // A worker gets Ctrl-C from the terminal and SIGTERM from its primary: the second one must
      // not end the drain the first one began.
      if (worker) for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => {})
      telemetry.log('info', `${signal}: draining`)
      resolve()
    }
    const onGone = (): void => stop('primary gone')
    const onTerm = (): void => stop('SIGTERM')
    const onInt = (): void => stop('SIGINT')
    process.once('SIGTERM', onTerm)
    process.once('SIGINT', onInt)
    // A worker whose primary is gone drains and exits too.
    if (worker) process.once('disconnect', onGone)
  })
  process.off('SIGHUP', onHup)
  watch?.close()
  await server.stop()
  // Decision logs still buffered are sent before the process ends.
  await fleet?.close()
  engine.close()
  telemetry.log('info', worker ? 'worker stopped' : 'stopped')
  return 0
}

/**
 * `--workers N`: this process starts N workers (node:cluster), each running the whole sidecar with
 * its own engine, on the same listeners (the primary holds the listening sockets and hands each
 * new connection to the next worker). The primary serves the operations listener for all of them:
 * `/metrics` sums the workers' metrics, `/readyz` is ready while every worker listens and nobody
 * is draining. SIGHUP reaches every worker; each also watches the policy file. SIGTERM drains every
 * worker (each with its own drain delay); the primary exits 0 once they all exited 0.
 */
async function runPrimary(o: ServeOptions, io: Io): Promise<number> {
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

function address(v: string): ListenAddress {
  try {
    return parseListenAddress(v)
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message)
  }
}

/** `host:port`, or `unix:<path>` for a Unix domain socket (Envoy's `pipe` address). */
function checkAddress(v: string): CheckListen {
  if (v.startsWith('unix:')) {
    const path = v.slice('unix:'.length)
    if (path === '')
      throw new InvalidArgumentError('"unix:" needs a socket path, e.g. unix:/run/verdict.sock')
    return { path }
  }
  return address(v)
}

function fileMode(v: string): number {
  if (!/^0?[0-7]{3}$/.test(v)) throw new InvalidArgumentError(`"${v}" is not an octal file mode such as 660`)
  return Number.parseInt(v, 8)
}

function nonNegativeInt(v: string): number {
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 0)
    throw new InvalidArgumentError(`"${v}" is not 0 or a positive integer`)
  return n
}

function workers(v: string): number | 'auto' {
  if (v === 'auto') return 'auto'
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n <= 0 || n > 1024)
    throw new InvalidArgumentError(`"${v}" is not a number of workers (1-1024) or "auto"`)
  return n
}

function positiveInt(v: string): number {
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`"${v}" is not a positive integer`)
  return n
}

function denialStatus(v: string): number {
  const n = Number(v)
  if (!isValidHttpStatus(n) || n < 300)
    throw new InvalidArgumentError(`"${v}" is not a denial status Envoy accepts (300-599 from its list)`)
  return n
}

/** Register `serve` on the program. */
export function registerServe(program: Command, io: Io, setExit: (code: number) => void): void {
  const serve = program
    .command('serve')
    .description('run the Envoy ext_authz sidecar (gRPC and HTTP service mode) for a policy file')
    .option('-p, --policy <file>', 'policy file (YAML or JSON); reloaded when it changes and on SIGHUP')
    .option(
      '--grpc <host:port|unix:path>',
      `gRPC Authorization + Health listener, TCP or a Unix socket (default ${DEFAULT_GRPC} unless --http)`,
      checkAddress,
    )
    .option(
      '--http <host:port|unix:path>',
      'HTTP ext_authz service-mode listener, TCP or a Unix socket',
      checkAddress,
    )
    .option('--socket-mode <mode>', 'file mode of Unix socket listeners, octal (e.g. 660)', fileMode)
    .option('--tls-cert <file>', 'serve the gRPC and HTTP listeners over TLS with this certificate (PEM)')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .option(
      '--client-ca <file>',
      "require client certificates signed by these CAs (mTLS); the HTTP mode's source.principal is the certificate's URI SAN",
    )
    .option(
      '--workers <n|auto>',
      'processes serving checks on the same listeners; auto = one per core (default 1)',
      workers,
    )
    .addOption(
      new Option('--metrics <host:port|off>', '/healthz, /readyz and /metrics listener, or "off"')
        .argParser((v: string) => (v === 'off' ? false : address(v)))
        .default(parseListenAddress(DEFAULT_METRICS), DEFAULT_METRICS),
    )
    .option(
      '--status-on-error <status>',
      'HTTP status of denials when no decision could be made',
      denialStatus,
      403,
    )
    .option(
      '--max-request-bytes <n>',
      'largest CheckRequest or HTTP body accepted (default 5 MiB)',
      positiveInt,
    )
    .option('--max-concurrent <n>', 'most checks in progress at once (default 1024)', positiveInt)
    .option('--decision-timeout <ms>', 'deny with code timeout past this (default 2000)', positiveInt)
    .option(
      '--drain-delay <ms>',
      `on SIGTERM, keep serving this long with /readyz and gRPC health not ready before closing the listeners (default ${DEFAULT_DRAIN_DELAY_MS})`,
      nonNegativeInt,
    )
    .option(
      '--drain-timeout <ms>',
      'after the drain delay, wait this long for in-flight checks (default 10000)',
      positiveInt,
    )
    .option('--http-path-prefix <prefix>', "Envoy's http_service path_prefix, removed before deciding")
    .option(
      '--receive-timeout <ms>',
      'deny with 408 a check whose request (gRPC message, HTTP body) is not in this long after its headers (default 5000)',
      positiveInt,
    )
    .option(
      '--first-byte-timeout <ms>',
      'close connections silent this long before their first request (default 10000)',
      positiveInt,
    )
    .option(
      '--max-connections <n>',
      'most open connections on the gRPC and on the HTTP listener (default 4096)',
      positiveInt,
    )
    .option('--grpc-max-streams <n>', 'most concurrent calls per gRPC connection (default 100)', positiveInt)
    .option(
      '--grpc-max-connection-age <ms>',
      'send GOAWAY to gRPC connections this old, ±10% (default 300000)',
      positiveInt,
    )
    .option(
      '--grpc-max-connection-age-grace <ms>',
      'then close them this much later (default 10000, or decision timeout + 1000)',
      positiveInt,
    )
    .option(
      '--grpc-max-connection-idle <ms>',
      'close gRPC connections without calls for this long (default 60000)',
      positiveInt,
    )
    .option(
      '--linger-timeout <ms>',
      'an HTTP connection answered before its body was read is read and dropped this long before it is closed (default 2000)',
      positiveInt,
    )
    .option('--linger-max-bytes <n>', 'or until this many bytes were dropped (default 16 MiB)', positiveInt)
    .option('--no-watch', 'do not watch the policy file (SIGHUP still reloads)')
    .option('--no-decision-log', 'do not log one line per decision')
    .option('--json', 'JSON log lines even on a terminal')
  addFleetOptions(serve).action(async (opts: ServeOptions, cmd: Command) => {
    // The command line, for --workers to start each worker with the same one.
    const argv = (cmd.parent as unknown as { rawArgs?: string[] } | null)?.rawArgs
    setExit(await runServe(argv !== undefined ? { ...opts, argv } : opts, io))
  })
}
