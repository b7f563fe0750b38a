/** `net.cidr_*` builtins, with addresses as BigInt (Go's net.ParseIP / net.ParseCIDR rules). */
import type { RegoBuiltin } from '../rego-policy.js'
import { isObj, isStr } from './scope.js'
import { sortSet } from './values.js'

interface Net {
  readonly v6: boolean
  readonly addr: bigint
  readonly bits: number
  /** The address as written, when a prefix-less address got its class's mask (`cidr_merge`). */
  readonly host?: bigint
}

/** Dotted-quad IPv4 as Go reads it: four decimal octets, no leading zeros. */
const V4 =
  /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])$/

/** IPv6 text: hex groups of 1-4 digits, at most one `::`, an optional IPv4 tail, no zone. */
function isIPv6(s: string): boolean {
  const v4 = /:((?:[0-9]+\.){3}[0-9]+)$/.exec(s)
  if (v4 !== null && !V4.test(v4[1]!)) return false
  const text = v4 === null ? s : `${s.slice(0, -v4[1]!.length)}0:0`
  const halves = text.split('::')
  if (halves.length > 2) return false
  const groups = halves.map((h) => (h === '' ? [] : h.split(':')))
  if (!groups.every((g) => g.every((x) => /^[0-9a-fA-F]{1,4}$/.test(x)))) return false
  const n = groups.reduce((a, g) => a + g.length, 0)
  return halves.length === 2 ? n <= 7 : n === 8
}

export function parseIpRaw(s: string): { v6: boolean; addr: bigint } | undefined {
  if (V4.test(s)) return { v6: false, addr: s.split('.').reduce((a, o) => (a << 8n) | BigInt(o), 0n) }
  if (!isIPv6(s)) return undefined
  let text = s
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (v4 !== null) {
    const n = parseIpRaw(v4[1]!)!.addr
    text = `${text.slice(0, -v4[1]!.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined]
  const h = head === '' ? [] : head!.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t]
  return { v6: true, addr: groups.reduce((a, g) => (a << 16n) | BigInt(`0x${g}`), 0n) }
}

/** An address; Go treats ::ffff:a.b.c.d as IPv4. */
function parseIp(s: string): { v6: boolean; addr: bigint } | undefined {
  const ip = parseIpRaw(s)
  if (ip?.v6 === true && ip.addr >> 32n === 0xffffn) return { v6: false, addr: ip.addr & 0xffffffffn }
  return ip
}

function parseCidr(s: string): Net | undefined {
  const slash = s.indexOf('/')
  if (slash === -1) return undefined
  const ip = parseIpRaw(s.slice(0, slash))
  const bitsText = s.slice(slash + 1)
  if (ip === undefined || !/^[0-9]{1,3}$/.test(bitsText)) return undefined
  const bits = Number(bitsText)
  const width = ip.v6 ? 128 : 32
  if (bits > width) return undefined
  return { v6: ip.v6, addr: ip.addr & mask(width, bits), bits }
}

const mask = (width: number, bits: number) =>
  ((1n << BigInt(width)) - 1n) ^ ((1n << BigInt(width - bits)) - 1n)

function fmt(v6: boolean, addr: bigint): string {
  // Go writes an IPv4-mapped IPv6 address as IPv4.
  if (v6 && addr >> 32n === 0xffffn) return fmt(false, addr & 0xffffffffn)
  if (!v6) return [24n, 16n, 8n, 0n].map((s) => ((addr >> s) & 0xffn).toString()).join('.')
  const g = Array.from({ length: 8 }, (_, i) => Number((addr >> BigInt(112 - 16 * i)) & 0xffffn))
  // Longest run of two or more zero groups becomes "::" (RFC 5952, as Go).
  let best = -1
  let len = 0
  for (let i = 0; i < 8; i++) {
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > len && j - i >= 2) {
      best = i
      len = j - i
    }
    i = j
  }
  const hex = g.map((x) => x.toString(16))
  if (best === -1) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + len).join(':')}`
}

/** A CIDR, or a single address as a /32 or /128 (what `cidr_contains_matches` accepts). */
function netOf(s: string): Net | undefined {
  const n = parseCidr(s)
  if (n !== undefined) return n
  const ip = parseIp(s)
  return ip === undefined ? undefined : { ...ip, bits: ip.v6 ? 128 : 32 }
}

/** An IPv4-mapped IPv6 network (::ffff:a.b.c.d/96 and longer) as the IPv4 network it is. */
function unmapped(n: Net): Net {
  if (n.v6 && n.bits >= 96 && n.addr >> 32n === 0xffffn)
    return { v6: false, addr: n.addr & 0xffffffffn, bits: n.bits - 96 }
  return n
}

function contains(o: Net, i: Net): boolean {
  const outer = unmapped(o)
  const inner = unmapped(i)
  if (outer.v6 !== inner.v6 || inner.bits < outer.bits) return false
  return (inner.addr & mask(outer.v6 ? 128 : 32, outer.bits)) === outer.addr
}

/** Elements of a `cidr_contains_matches` operand: [key, cidr] pairs. */
function entries(v: unknown): Array<[unknown, string]> | undefined {
  const cidrOf = (x: unknown) => (isStr(x) ? x : Array.isArray(x) && isStr(x[0]) ? x[0] : undefined)
  let pairs: Array<[unknown, unknown]>
  if (isStr(v)) pairs = [[v, v]]
  else if (Array.isArray(v)) pairs = v.map((x, i) => [i, x])
  else if (isObj(v)) pairs = Object.entries(v)
  else return undefined
  const out: Array<[unknown, string]> = []
  for (const [k, x] of pairs) {
    const c = cidrOf(x)
    if (c === undefined) return undefined
    out.push([k, c])
  }
  return out
}

/** An address without a prefix gets its IPv4 class's mask, as Go's `IP.DefaultMask` (none for IPv6). */
function classful(s: string): Net | undefined {
  const ip = parseIp(s)
  if (ip === undefined || ip.v6) return undefined
  const first = Number(ip.addr >> 24n)
  const bits = first < 128 ? 8 : first < 192 ? 16 : 24
  return { v6: false, addr: ip.addr & mask(32, bits), bits, host: ip.addr }
}

function merge(list: unknown): string[] | undefined {
  if (!Array.isArray(list)) return undefined
  const nets: Net[] = []
  for (const x of list) {
    if (!isStr(x)) return undefined
    const n = x.includes('/') ? parseCidr(x) : classful(x)
    if (n === undefined) return undefined
    nets.push(n)
  }
  const out: string[] = []
  for (const v6 of [false, true]) {
    const width = v6 ? 128 : 32
    // Ranges [start, end], merged, then split back into the fewest CIDRs.
    const ranges = nets
      .filter((n) => n.v6 === v6)
      .map((n) => [n.addr, n.addr + (1n << BigInt(width - n.bits)) - 1n] as [bigint, bigint])
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    const merged: Array<[bigint, bigint]> = []
    for (const r of ranges) {
      const last = merged[merged.length - 1]
      if (last === undefined || r[0] > last[1] + 1n) merged.push([r[0], r[1]])
      else if (r[1] > last[1]) last[1] = r[1]
    }
    for (let [start, end] of merged) {
      while (start <= end) {
        let bits = width
        while (bits > 0) {
          const size = 1n << BigInt(width - bits + 1)
          if (start % size !== 0n || start + size - 1n > end) break
          bits--
        }
        // OPA writes a prefix-less address that merged with nothing as given, with its class's mask.
        const end2 = start + (1n << BigInt(width - bits)) - 1n
        const within = nets.filter((n) => n.v6 === v6 && n.addr >= start && n.addr <= end2)
        const alone = within.length === 1 && within[0]!.bits === bits ? within[0]!.host : undefined
        out.push(`${fmt(v6, alone ?? start)}/${bits}`)
        start += 1n << BigInt(width - bits)
      }
    }
  }
  return sortSet(out)
}

export const netBuiltins: Record<string, RegoBuiltin> = {
  'net.cidr_is_valid': (x) => isStr(x) && parseCidr(x) !== undefined,
  'net.cidr_expand': (x) => {
    if (!isStr(x)) return undefined
    const n = parseCidr(x)
    if (n === undefined) return undefined
    const count = 1n << BigInt((n.v6 ? 128 : 32) - n.bits)
    if (count > 1n << 24n) return undefined
    const out: string[] = []
    for (let i = 0n; i < count; i++) out.push(fmt(n.v6, n.addr + i))
    return sortSet(out)
  },
  'net.cidr_contains_matches': (a, b) => {
    const xs = entries(a)
    const ys = entries(b)
    if (xs === undefined || ys === undefined) return undefined
    const out: unknown[] = []
    for (const [kx, cx] of xs) {
      const nx = parseCidr(cx)
      if (nx === undefined) return undefined
      for (const [ky, cy] of ys) {
        const ny = netOf(cy)
        if (ny === undefined) return undefined
        if (contains(nx, ny)) out.push([kx, ky])
      }
    }
    return sortSet(out)
  },
  'net.cidr_merge': merge,
}
