/** IP addresses and CIDR ranges on strings, as Kubernetes' CEL library: family, classes, masks, containment. */
import { ipFamily as family } from '../ip.js'

// IP addresses and CIDR ranges (Kubernetes' library, on strings)

export function ipFamily(s: string): 0 | 4 | 6 {
  return family(s)
}

/** The 4 or 16 bytes of a valid textual address. */
function ipBytes(s: string): Uint8Array {
  const fam = ipFamily(s)
  if (fam === 4) return Uint8Array.from(s.split('.').map(Number))
  if (fam !== 6) throw new Error(`invalid IP address "${s.slice(0, 64)}"`)
  // An embedded IPv4 tail (`::ffff:1.2.3.4`) becomes two hexadecimal groups.
  let text = s
  const lastColon = text.lastIndexOf(':')
  if (text.slice(lastColon + 1).includes('.')) {
    const v4 = text
      .slice(lastColon + 1)
      .split('.')
      .map(Number)
    const hi = ((v4[0]! << 8) | v4[1]!).toString(16)
    const lo = ((v4[2]! << 8) | v4[3]!).toString(16)
    text = `${text.slice(0, lastColon + 1)}${hi}:${lo}`
  }
  const parse = (p: string): number[] => (p === '' ? [] : p.split(':').map((x) => Number.parseInt(x, 16)))
  const double = text.indexOf('::')
  const head = parse(double === -1 ? text : text.slice(0, double))
  const rest = double === -1 ? [] : parse(text.slice(double + 2))
  const groups = [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest]
  const out = new Uint8Array(16)
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8
    out[2 * i + 1] = g & 0xff
  })
  return out
}

export function bytesToIp(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join('.')
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16))
  // Compress the longest run of zero groups (of two or more), as RFC 5952 says.
  let best = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLen && j - i >= 2) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  if (best === -1) return groups.join(':')
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`
}

interface Cidr {
  readonly addr: Uint8Array
  readonly bits: number
}

export function parseCidr(s: string): Cidr {
  const slash = s.indexOf('/')
  const addr = slash === -1 ? '' : s.slice(0, slash)
  const bits = slash === -1 ? '' : s.slice(slash + 1)
  const fam = ipFamily(addr)
  if (fam === 0 || !/^\d{1,3}$/.test(bits) || Number(bits) > (fam === 4 ? 32 : 128)) {
    throw new Error(`invalid CIDR "${s.slice(0, 64)}"`)
  }
  return { addr: ipBytes(addr), bits: Number(bits) }
}

export function masked(addr: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(addr)
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i))
    out[i] = out[i]! & ((0xff << (8 - keep)) & 0xff)
  }
  return out
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

function inRange(c: Cidr, addr: Uint8Array): boolean {
  return c.addr.length === addr.length && sameBytes(masked(c.addr, c.bits), masked(addr, c.bits))
}

const range = (s: string): Cidr => parseCidr(s)

const IPV4_RANGES = {
  unspecified: range('0.0.0.0/32'),
  loopback: range('127.0.0.0/8'),
  linkLocalMulticast: range('224.0.0.0/24'),
  linkLocalUnicast: range('169.254.0.0/16'),
  multicast: range('224.0.0.0/4'),
  broadcast: range('255.255.255.255/32'),
}
const IPV6_RANGES = {
  unspecified: range('::/128'),
  loopback: range('::1/128'),
  linkLocalUnicast: range('fe80::/10'),
  multicast: range('ff00::/8'),
}

/** An IPv4-mapped IPv6 address as its IPv4 address, as Go's netip unmaps it. */
function unmapped(s: string): Uint8Array {
  const b = ipBytes(s)
  if (b.length === 16 && b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return b.slice(12)
  }
  return b
}

type IpClass = 'unspecified' | 'loopback' | 'linkLocalMulticast' | 'linkLocalUnicast'

export function isClass(s: string, cls: IpClass): boolean {
  const b = unmapped(s)
  if (b.length === 4) return inRange(IPV4_RANGES[cls], b)
  // ff02::/16 and its scope variants: ffX2 (Go: the low nibble of the second byte is 2).
  if (cls === 'linkLocalMulticast') return b[0] === 0xff && (b[1]! & 0x0f) === 0x02
  return inRange(IPV6_RANGES[cls], b)
}

export function isGlobalUnicast(s: string): boolean {
  const b = unmapped(s)
  if (b.length === 4) {
    const r = IPV4_RANGES
    return ![r.unspecified, r.loopback, r.multicast, r.linkLocalUnicast, r.broadcast].some((c) =>
      inRange(c, b),
    )
  }
  const r = IPV6_RANGES
  return ![r.unspecified, r.loopback, r.multicast, r.linkLocalUnicast].some((c) => inRange(c, b))
}

export function containsCidr(outer: string, inner: string): boolean {
  const o = parseCidr(outer)
  const i = parseCidr(inner)
  return o.addr.length === i.addr.length && o.bits <= i.bits && inRange(o, i.addr)
}
