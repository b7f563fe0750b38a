/**
 * `verdict serve`: run the ext_authz sidecar (gRPC, HTTP service mode, operations) for a policy
 * file, reloading it when it changes or on SIGHUP and draining on SIGTERM.
 */
import { isValidHttpStatus, watchPolicyFile } from '@verdict/core/internal'
import {
  type BoundAddresses,
  createExtAuthzServer,
  createTelemetry,
  type ListenAddress,
} from '@verdict/envoy'
import { type Command, InvalidArgumentError, Option } from 'commander'
import { addFleetOptions, type FleetFlags, startFleet } from './bundle-command.js'
import { EXIT_INVALID } from './eval-command.js'
import type { Io } from './io.js'
import { parseListenAddress } from './listen-address.js'
import { type LoadResult, loadEngine } from './load-engine.js'
import { formatLocated, problemsOf } from './problems.js'

export interface ServeOptions extends FleetFlags {
  /** Policy file; or `bundle` (a bundle service URL, docs/fleet.md). */
  readonly policy?: string
  readonly grpc?: ListenAddress
  readonly http?: ListenAddress
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

/** Run the sidecar until SIGTERM or SIGINT; returns the exit status. */
export async function runServe(o: ServeOptions, io: Io): Promise<number> {
  const telemetry = createTelemetry({
    write: (line) => io.stdout(`${line}\n`),
    format: o.json || !io.isTTY ? 'json' : 'text',
    logDecisions: o.decisionLog,
  })
  if ((o.policy === undefined) === (o.bundle === undefined)) {
    io.stderr('verdict serve: give either --policy <file> or --bundle <url>\n')
    return EXIT_INVALID
  }
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
      return EXIT_INVALID
    }
    loaded = l
  }
  const engine = fleet?.engine ?? loaded!.engine
  let serving = false
  const grpc = o.grpc ?? (o.http === undefined ? parseListenAddress(DEFAULT_GRPC) : undefined)
  const server = createExtAuthzServer({
    engine,
    telemetry,
    ...(grpc !== undefined ? { grpc } : {}),
    ...(o.http !== undefined ? { http: o.http } : {}),
    ...(o.metrics !== false && fleet === undefined ? { ops: o.metrics } : {}),
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
    serving = true
    if (fleet !== undefined && o.metrics !== false)
      bound = { ...bound, ops: await fleet.listenOps(o.metrics, () => serving) }
  } catch (e) {
    await server.stop()
    await fleet?.close()
    engine.close()
    io.stderr(`cannot listen: ${(e as Error).message}\n`)
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
  telemetry.log('info', 'listening', { ...bound, policy: engine.info.name, pid: process.pid })

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
      telemetry.log('info', `${signal}: draining`)
      resolve()
    }
    const onTerm = (): void => stop('SIGTERM')
    const onInt = (): void => stop('SIGINT')
    process.once('SIGTERM', onTerm)
    process.once('SIGINT', onInt)
  })
  process.off('SIGHUP', onHup)
  watch?.close()
  serving = false
  await server.stop()
  // Decision logs still buffered are sent before the process ends.
  await fleet?.close()
  engine.close()
  telemetry.log('info', 'stopped')
  return 0
}

function address(v: string): ListenAddress {
  try {
    return parseListenAddress(v)
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message)
  }
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
      '--grpc <host:port>',
      `gRPC Authorization + Health listener (default ${DEFAULT_GRPC} unless --http)`,
      address,
    )
    .option('--http <host:port>', 'HTTP ext_authz service-mode listener', address)
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
      '--drain-timeout <ms>',
      'on SIGTERM, wait this long for in-flight checks (default 10000)',
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
  addFleetOptions(serve).action(async (opts: ServeOptions) => setExit(await runServe(opts, io)))
}
