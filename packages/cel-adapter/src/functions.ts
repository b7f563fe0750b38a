/**
 * The functions verdict adds to CEL, registered as ordinary `@bufbuild/cel` functions, plus the
 * override of `timestamp(int)` (the engine reads the integer as milliseconds; CEL says seconds).
 *
 * `default(value, fallback)` is not here: it must see its first argument's error, which a function
 * never does, so `compile/rewrites.ts` rewrites it into a conditional when the expression loads.
 */

import { type CelFunc, CelScalar, type CelValue, celFunc, celMethod, objectType } from '@bufbuild/cel'
import { strings } from '@bufbuild/cel/ext'
import { create } from '@bufbuild/protobuf'
import { reflect } from '@bufbuild/protobuf/reflect'
import { TimestampSchema } from '@bufbuild/protobuf/wkt'
import { agentgatewayFunctions } from './agentgateway/functions.js'
import { type IpRange, inRange, ipFamily, ipRange } from './ip.js'
import { NUMBER_FUNCTIONS } from './numbers.js'

const { STRING, BOOL, INT } = CelScalar
const TIMESTAMP = objectType(TimestampSchema)

/** Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, CEL's timestamp range. */
const MIN_SECONDS = -62135596800n
const MAX_SECONDS = 253402300799n

/** A CEL timestamp value (what `timestamp(...)` returns), for variables such as `request.startTime`. */
export function timestampValue(seconds: bigint, nanos: number): CelValue {
  return reflect(
    TimestampSchema,
    create(TimestampSchema, { seconds, nanos: Math.floor(nanos) }),
  ) as unknown as CelValue
}

function timestampFromSeconds(s: bigint) {
  if (s < MIN_SECONDS || s > MAX_SECONDS) throw new Error('timestamp out of range')
  return create(TimestampSchema, { seconds: s, nanos: 0 })
}

/** Address family of a textual IP, or 0. Zone ids (`fe80::1%eth0`) are not addresses here. */
const family = ipFamily

function parseIp(s: string): string {
  if (family(s) === 0) throw new Error(`invalid IP address "${s.slice(0, 64)}"`)
  return s
}

const CIDR_CACHE_MAX = 512
const cidrCache = new Map<string, IpRange>()

/** Parse `addr/prefix` into a matcher; cached because policies repeat the same few ranges. */
function parseCidr(s: string): IpRange {
  const hit = cidrCache.get(s)
  if (hit !== undefined) return hit
  const slash = s.indexOf('/')
  const addr = slash === -1 ? '' : s.slice(0, slash)
  const bits = slash === -1 ? '' : s.slice(slash + 1)
  const fam = family(addr)
  const max = fam === 4 ? 32 : 128
  if (fam === 0 || !/^\d{1,3}$/.test(bits) || Number(bits) > max) {
    throw new Error(`invalid CIDR "${s.slice(0, 64)}"`)
  }
  const list = ipRange(addr, fam, Number(bits))
  if (cidrCache.size >= CIDR_CACHE_MAX) cidrCache.delete(cidrCache.keys().next().value as string)
  cidrCache.set(s, list)
  return list
}

function contains(cidr: string, ip: string): boolean {
  const list = parseCidr(cidr)
  const fam = family(parseIp(ip)) as 4 | 6
  return inRange(list, ip, fam)
}

/** Longest string `replace` may build; past it, an error (a deny rule then denies). */
const MAX_REPLACE_LENGTH = 1_048_576

/**
 * `s.replace(sub, repl[, n])` in one pass: the strings extension rebuilt the whole string for every
 * occurrence (quadratic; minutes on a 600 kB body) and misread an empty `sub` and a negative `n`.
 * As cel-go: `n < 0` (or absent) replaces all, an empty `sub` matches before every code point and
 * at the end.
 */
function replace(this: string, sub: string, repl: string, n?: bigint): string {
  let left = n === undefined || n < 0n ? Number.POSITIVE_INFINITY : Number(n)
  const parts: string[] = []
  let length = 0
  let at = 0
  const take = (end: number): void => {
    length += end - at + repl.length
    if (length > MAX_REPLACE_LENGTH)
      throw new Error(`replace would build more than ${MAX_REPLACE_LENGTH} characters`)
    parts.push(this.slice(at, end), repl)
    at = end + sub.length
    left--
  }
  if (sub === '') {
    for (let i = 0; i <= this.length && left > 0; ) {
      take(i)
      if (i === this.length) break
      const c = this.codePointAt(i)!
      at = i
      i += c > 0xffff ? 2 : 1
    }
  } else {
    for (let i = this.indexOf(sub); i !== -1 && left > 0; i = this.indexOf(sub, at)) take(i)
  }
  if (length + this.length - at > MAX_REPLACE_LENGTH)
    throw new Error(`replace would build more than ${MAX_REPLACE_LENGTH} characters`)
  parts.push(this.slice(at))
  return parts.join('')
}

/** The strings extension without its `replace`, which `VERDICT_FUNCTIONS` replaces. */
export const STRINGS_EXTENSION: readonly CelFunc[] = strings.filter((f) => f.name !== 'replace')

/** The functions added to every CEL environment, documented in docs/cel.md. */
export const VERDICT_FUNCTIONS: readonly CelFunc[] = [
  celFunc('timestamp', [INT], TIMESTAMP, timestampFromSeconds),
  celFunc('ip', [STRING], STRING, parseIp),
  celFunc('cidr', [STRING], STRING, (s) => {
    parseCidr(s)
    return s
  }),
  celFunc('isIP', [STRING], BOOL, (s) => family(s) !== 0),
  celFunc('isCIDR', [STRING], BOOL, (s) => {
    try {
      parseCidr(s)
      return true
    } catch {
      return false
    }
  }),
  celMethod('inCidr', STRING, [STRING], BOOL, function (cidr) {
    return contains(cidr, this)
  }),
  celMethod('containsIP', STRING, [STRING], BOOL, function (ip) {
    return contains(this, ip)
  }),
  celMethod('replace', STRING, [STRING, STRING], STRING, replace),
  celMethod('replace', STRING, [STRING, STRING, INT], STRING, replace),
  // Comparing or computing with an integer beyond 2^53 from the request is an error (numbers.ts).
  ...NUMBER_FUNCTIONS,
  // agentgateway's library (agentgateway.ts).
  ...agentgatewayFunctions(),
]
