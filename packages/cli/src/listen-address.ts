/**
 * `host:port` arguments of `verdict serve`.
 */
import type { ListenAddress } from '@verdict/envoy'

/**
 * Parse `host:port`, `[ipv6]:port`, `:port` or `port`. A missing host means 127.0.0.1: the sidecar
 * binds to loopback unless told otherwise.
 *
 * @example
 * ```ts
 * parseListenAddress('0.0.0.0:9000') // { host: '0.0.0.0', port: 9000 }
 * ```
 */
export function parseListenAddress(text: string): ListenAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text)
  const port = m === null ? Number.NaN : Number(m[3])
  if (m === null || !Number.isInteger(port) || port > 65535)
    throw new Error(`"${text}" is not host:port (for example 127.0.0.1:9000)`)
  const host = m[1] ?? m[2]
  return { host: host === undefined || host === '' ? '127.0.0.1' : host, port }
}
