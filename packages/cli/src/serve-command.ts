/**
 * `verdict serve`: run the ext_authz sidecar (gRPC, HTTP service mode, operations) for a policy
 * file, reloading it when it changes or on SIGHUP and draining on SIGTERM.
 */
import cluster from 'node:cluster'
import { watchPolicyFile } from '@verdict/core/internal'
import {
  type BoundAddresses,
  createExtAuthzServer,
  createTelemetry,
  shareMetricsWithPrimary,
} from '@verdict/envoy'
import { type Command, Option } from 'commander'
import { addFleetOptions, startFleet } from './bundle-command.js'
import { EXIT_INVALID } from './eval-command.js'
import type { Io } from './io.js'
import { parseListenAddress } from './listen-address.js'
import { type LoadResult, loadEngine } from './load-engine.js'
import { formatLocated, problemsOf } from './problems.js'
import {
  address,
  checkAddress,
  DEFAULT_DRAIN_DELAY_MS,
  DEFAULT_GRPC,
  DEFAULT_METRICS,
  denialStatus,
  fileMode,
  nonNegativeInt,
  positiveInt,
  readTls,
  type ServeOptions,
  withMode,
  workers,
} from './serve-options.js'
import { runPrimary, type WorkerMessage, workerCount } from './serve-workers.js'

export type { CheckListen, ServeOptions } from './serve-options.js'
export { DEFAULT_DRAIN_DELAY_MS, DEFAULT_GRPC, DEFAULT_METRICS } from './serve-options.js'

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
