/**
 * Textual IP addresses through ipaddr.js, with the strictness of Node's `net.isIP` (which the CEL
 * functions used before, and which browsers, Deno and workers lack): dotted-decimal IPv4 with no
 * leading zeros, IPv6 whose embedded IPv4 tail is dotted-decimal too. Zone ids (`fe80::1%eth0`) are
 * not addresses here.
 */
import ipaddr from 'ipaddr.js'

/** Address family of a textual IP, or 0. */
export function ipFamily(s: string): 0 | 4 | 6 {
  if (s.length > 64 || s.includes('%')) return 0
  if (ipaddr.IPv4.isValidFourPartDecimal(s)) return 4
  if (!s.includes(':') || !ipaddr.IPv6.isValid(s)) return 0
  const tail = s.slice(s.lastIndexOf(':') + 1)
  return tail.includes('.') && !ipaddr.IPv4.isValidFourPartDecimal(tail) ? 0 : 6
}

/**
 * An IPv6 address whose dotted IPv4 tail is first rewritten as two hexadecimal groups: ipaddr.js
 * reads `::1.2.3.4` (IPv4-compatible) as `::ffff:1.2.3.4` (IPv4-mapped), which is another address.
 */
function parseV6(s: string): ipaddr.IPv6 {
  const colon = s.lastIndexOf(':')
  const tail = s.slice(colon + 1)
  if (!tail.includes('.')) return ipaddr.IPv6.parse(s)
  const [a, b, c, d] = tail.split('.').map(Number) as [number, number, number, number]
  return ipaddr.IPv6.parse(
    `${s.slice(0, colon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`,
  )
}

/** A parsed `addr/prefix` range. */
export interface IpRange {
  readonly addr: ipaddr.IPv4 | ipaddr.IPv6
  readonly bits: number
}

/** A range from an address of family 4 or 6 (checked by `ipFamily`) and a valid prefix length. */
export function ipRange(addr: string, family: 4 | 6, bits: number): IpRange {
  return { addr: family === 4 ? ipaddr.IPv4.parse(addr) : parseV6(addr), bits }
}

/**
 * Whether a valid address of family `family` is in `range`, as Node's BlockList answers: an IPv4
 * address is compared with an IPv6 range as its IPv4-mapped form (`::ffff:a.b.c.d`), an IPv6
 * address with an IPv4 range only when it is IPv4-mapped.
 */
export function inRange(range: IpRange, ip: string, family: 4 | 6): boolean {
  let a: ipaddr.IPv4 | ipaddr.IPv6 = family === 4 ? ipaddr.IPv4.parse(ip) : parseV6(ip)
  if (a.kind() !== range.addr.kind()) {
    if (a instanceof ipaddr.IPv4) a = a.toIPv4MappedAddress()
    else if (a.isIPv4MappedAddress()) a = a.toIPv4Address()
    else return false
  }
  return (a as ipaddr.IPv4).match(range.addr as ipaddr.IPv4, range.bits)
}
