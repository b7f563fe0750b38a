/**
 * `verdict serve`'s options: their type, defaults, the parsers of its flags' values, and the TLS
 * files and socket mode they name (`serve-command.ts`).
 */
import { readFileSync } from 'node:fs'
import { isValidHttpStatus } from '@verdict/core/internal'
import type { ListenAddress, ListenerTls, SocketPathAddress } from '@verdict/envoy'
import { InvalidArgumentError } from 'commander'
import type { FleetFlags } from './bundle-command.js'
import { parseListenAddress } from './listen-address.js'

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

/** The TLS material of --tls-cert, --tls-key, --client-ca; a message when it cannot be read. */
export function readTls(o: ServeOptions): ListenerTls | string | undefined {
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
export function withMode(at: CheckListen | undefined, mode: number | undefined): CheckListen | undefined {
  if (at === undefined || !('path' in at) || mode === undefined) return at
  return { ...at, mode }
}
export function address(v: string): ListenAddress {
  try {
    return parseListenAddress(v)
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message)
  }
}

/** `host:port`, or `unix:<path>` for a Unix domain socket (Envoy's `pipe` address). */
export function checkAddress(v: string): CheckListen {
  if (v.startsWith('unix:')) {
    const path = v.slice('unix:'.length)
    if (path === '')
      throw new InvalidArgumentError('"unix:" needs a socket path, e.g. unix:/run/verdict.sock')
    return { path }
  }
  return address(v)
}

export function fileMode(v: string): number {
  if (!/^0?[0-7]{3}$/.test(v)) throw new InvalidArgumentError(`"${v}" is not an octal file mode such as 660`)
  return Number.parseInt(v, 8)
}

export function nonNegativeInt(v: string): number {
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 0)
    throw new InvalidArgumentError(`"${v}" is not 0 or a positive integer`)
  return n
}

export function workers(v: string): number | 'auto' {
  if (v === 'auto') return 'auto'
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n <= 0 || n > 1024)
    throw new InvalidArgumentError(`"${v}" is not a number of workers (1-1024) or "auto"`)
  return n
}

export function positiveInt(v: string): number {
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`"${v}" is not a positive integer`)
  return n
}

export function denialStatus(v: string): number {
  const n = Number(v)
  if (!isValidHttpStatus(n) || n < 300)
    throw new InvalidArgumentError(`"${v}" is not a denial status Envoy accepts (300-599 from its list)`)
  return n
}
