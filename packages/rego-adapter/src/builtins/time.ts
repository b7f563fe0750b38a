/**
 * `time.*` builtins: Go's time layouts (format and parse), IANA zones through Intl, durations.
 * `time.now_ns` is the decision's clock. Nanosecond arguments pass through the SDK as JSON numbers,
 * so values above 2^53 arrive rounded to a few hundred nanoseconds; results are exact.
 */
import type { RegoBuiltin } from '../rego-policy.js'
import { currentScope, exactInt, isInt, isStr } from './scope.js'
import { DAYS, type Fields, fmtOffset, format, NAMED_LAYOUTS, NS_PER_MS, parse } from './time-layout.js'

const MAX_NS = 2n ** 63n - 1n

/** A zone: UTC, the host's local zone, or an IANA name. */
type Zone = { readonly name: string; readonly fmt?: Intl.DateTimeFormat }

const zones = new Map<string, Zone | null>()

function zone(name: string): Zone | undefined {
  if (name === '' || name === 'UTC') return { name: 'UTC' }
  let z = zones.get(name)
  if (z === undefined) {
    try {
      const tz = name === 'Local' ? undefined : name
      z = {
        name,
        fmt: new Intl.DateTimeFormat('en-US', {
          ...(tz !== undefined ? { timeZone: tz } : {}),
          hourCycle: 'h23',
          year: 'numeric',
          month: 'numeric',
          day: 'numeric',
          hour: 'numeric',
          minute: 'numeric',
          second: 'numeric',
          era: 'short',
          timeZoneName: 'short',
        }),
      }
    } catch {
      z = null
    }
    zones.set(name, z)
  }
  return z ?? undefined
}

/** Offset of `zone` from UTC at instant `ms`, in seconds, and its abbreviation. */
function offsetAt(z: Zone, ms: number): { offset: number; abbr: string } {
  if (z.fmt === undefined) return { offset: 0, abbr: 'UTC' }
  const parts = Object.fromEntries(z.fmt.formatToParts(new Date(ms)).map((p) => [p.type, p.value]))
  let year = Number(parts.year)
  if (parts.era === 'BC') year = 1 - year
  const local = Date.UTC(
    year,
    Number(parts.month) - 1,
    Number(parts.day),
    Number(parts.hour),
    Number(parts.minute),
    Number(parts.second),
  )
  const offset = Math.round((local - (ms - (((ms % 1000) + 1000) % 1000))) / 1000)
  return { offset, abbr: '' }
}

const ABBR_LOCALES = ['en-US', 'en-GB', 'en-IN', 'en-AU', 'ja-JP']
const abbrFormats = new Map<string, Intl.DateTimeFormat[]>()

/**
 * The zone's abbreviation at `ms` as Go's tzdata has it, where some English (or Japanese) locale
 * of ICU knows it (CET, IST, EST, AEDT, JST); else the offset as tzdata writes it (-03, +0545).
 */
function abbreviation(z: Zone, ms: number, offset: number): string {
  if (z.fmt === undefined) return 'UTC'
  let fmts = abbrFormats.get(z.name)
  if (fmts === undefined) {
    const tz = z.fmt.resolvedOptions().timeZone
    fmts = ABBR_LOCALES.map((l) => new Intl.DateTimeFormat(l, { timeZone: tz, timeZoneName: 'short' }))
    abbrFormats.set(z.name, fmts)
  }
  for (const f of fmts) {
    const name = f.formatToParts(new Date(ms)).find((p) => p.type === 'timeZoneName')?.value ?? ''
    if (/^[A-Z]{3,5}$/.test(name)) return name
  }
  return offset % 3600 === 0 ? fmtOffset(offset, '-07', false) : fmtOffset(offset, '-0700', false)
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b
  return (a % b !== 0n && a < 0n) !== b < 0n && a % b !== 0n ? q - 1n : q
}

function fields(ns: bigint, z: Zone): Fields {
  const ms = Number(floorDiv(ns, NS_PER_MS))
  const nanos = Number(ns - floorDiv(ns, 1_000_000_000n) * 1_000_000_000n)
  const { offset } = offsetAt(z, ms)
  const d = new Date(ms + offset * 1000)
  const year = d.getUTCFullYear()
  const start = Date.UTC(year, 0, 1)
  const dayStart = Date.UTC(year, d.getUTCMonth(), d.getUTCDate())
  return {
    year,
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    nanos,
    weekday: d.getUTCDay(),
    yday: Math.round((dayStart - start) / 86_400_000) + 1,
    offset,
    get abbr() {
      return abbreviation(z, ms, offset)
    },
  }
}

/** An `x` argument: ns, or [ns, zone], or [ns, zone, layout] when `layout` is allowed. */
function timeArg(x: unknown, withLayout = false): { ns: bigint; z: Zone; layout?: string } | undefined {
  // Nanoseconds outside int64 are an error in OPA.
  const num = (v: unknown) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) return undefined
    const ns = BigInt(Math.trunc(v))
    return inRange(ns) ? ns : undefined
  }
  if (typeof x === 'number') {
    const ns = num(x)
    return ns === undefined ? undefined : { ns, z: { name: 'UTC' } }
  }
  if (!Array.isArray(x) || x.length < 2 || x.length > (withLayout ? 3 : 2)) return undefined
  const ns = num(x[0])
  if (ns === undefined || !isStr(x[1])) return undefined
  const z = zone(x[1])
  if (z === undefined) return undefined
  if (x.length === 3) {
    if (!isStr(x[2])) return undefined
    return { ns, z, layout: NAMED_LAYOUTS[x[2]] ?? x[2] }
  }
  return { ns, z }
}

const inRange = (ns: bigint) => ns >= -MAX_NS - 1n && ns <= MAX_NS

const UNITS: Record<string, bigint> = {
  ns: 1n,
  us: 1000n,
  µs: 1000n,
  μs: 1000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
}

/** Go's `time.ParseDuration`, in nanoseconds. */
function parseDuration(s: string): bigint | undefined {
  let v = s
  let neg = false
  if (v[0] === '-' || v[0] === '+') {
    neg = v[0] === '-'
    v = v.slice(1)
  }
  if (v === '0') return 0n
  if (v === '') return undefined
  let total = 0n
  while (v !== '') {
    const m = /^([0-9]*)(?:\.([0-9]*))?([^0-9.]+)/.exec(v)
    if (m === null || (m[1] === '' && (m[2] ?? '') === '')) return undefined
    const unit = UNITS[m[3]!]
    if (unit === undefined) return undefined
    total += BigInt(m[1] || '0') * unit
    if (m[2] !== undefined && m[2] !== '') total += (BigInt(m[2]) * unit) / 10n ** BigInt(m[2].length)
    if (total > MAX_NS + (neg ? 1n : 0n)) return undefined
    v = v.slice(m[0].length)
  }
  return neg ? -total : total
}

function diff(a: Fields, b: Fields): number[] {
  const [t1, t2] = [a, b]
  let year = t2.year - t1.year
  let month = t2.month - t1.month
  let day = t2.day - t1.day
  let hour = t2.hour - t1.hour
  let min = t2.minute - t1.minute
  let sec = t2.second - t1.second
  if (sec < 0) {
    sec += 60
    min--
  }
  if (min < 0) {
    min += 60
    hour--
  }
  if (hour < 0) {
    hour += 24
    day--
  }
  if (day < 0) {
    day += 32 - new Date(Date.UTC(t1.year, t1.month - 1, 32)).getUTCDate()
    month--
  }
  if (month < 0) {
    month += 12
    year--
  }
  return [year, month, day, hour, min, sec]
}

const withArg =
  <T>(f: (a: { ns: bigint; z: Zone; layout?: string }) => T, layout = false): RegoBuiltin =>
  (x) => {
    const a = timeArg(x, layout)
    return a === undefined ? undefined : f(a)
  }

export const timeBuiltins: Record<string, RegoBuiltin> = {
  'time.now_ns': () => exactInt(BigInt(currentScope().nowMs) * NS_PER_MS),
  'time.parse_ns': (layout, value) => {
    if (!isStr(layout) || !isStr(value)) return undefined
    const ns = parse(NAMED_LAYOUTS[layout] ?? layout, value)
    return ns === undefined || !inRange(ns) ? undefined : exactInt(ns)
  },
  'time.parse_rfc3339_ns': (value) => {
    if (!isStr(value)) return undefined
    const ns = parse(NAMED_LAYOUTS.RFC3339!, value)
    return ns === undefined || !inRange(ns) ? undefined : exactInt(ns)
  },
  'time.parse_duration_ns': (s) => {
    if (!isStr(s)) return undefined
    const ns = parseDuration(s)
    return ns === undefined ? undefined : exactInt(ns)
  },
  'time.date': withArg(({ ns, z }) => {
    const f = fields(ns, z)
    return [f.year, f.month, f.day]
  }),
  'time.clock': withArg(({ ns, z }) => {
    const f = fields(ns, z)
    return [f.hour, f.minute, f.second]
  }),
  'time.weekday': withArg(({ ns, z }) => DAYS[fields(ns, z).weekday]),
  'time.format': withArg(
    ({ ns, z, layout }) => format(fields(ns, z), layout ?? NAMED_LAYOUTS.RFC3339Nano!),
    true,
  ),
  'time.add_date': (x, years, months, days) => {
    if (typeof x !== 'number' || !isInt(years) || !isInt(months) || !isInt(days)) return undefined
    const ns = BigInt(Math.trunc(x))
    const ms = floorDiv(ns, NS_PER_MS)
    const sub = ns - ms * NS_PER_MS
    const d = new Date(Number(ms))
    d.setUTCFullYear(d.getUTCFullYear() + years, d.getUTCMonth() + months, d.getUTCDate() + days)
    const out = BigInt(d.getTime()) * NS_PER_MS + sub
    return inRange(out) ? exactInt(out) : undefined
  },
  'time.diff': (a, b) => {
    const x = timeArg(a)
    const y = timeArg(b)
    if (x === undefined || y === undefined) return undefined
    const [early, late] = x.ns > y.ns ? [y.ns, x.ns] : [x.ns, y.ns]
    return diff(fields(early, x.z), fields(late, x.z))
  },
}
