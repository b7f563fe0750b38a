/**
 * agentgateway's CEL library (its `cel-functions.md` reference) registered as ordinary
 * `@bufbuild/cel` functions; each group is implemented in the file beside it. The functions that take
 * an expression rather than a value (`with`, `mapValues`, `filterKeys`, `coalesce`) are macros:
 * compile/rewrites.ts rewrites them when the expression loads, into comprehensions over the
 * internal map functions of maps.ts.
 */
import {
  type CelFunc,
  type CelMap,
  CelScalar,
  type CelValue,
  celFunc,
  celList,
  celMethod,
  listType,
  mapType,
} from '@bufbuild/cel'
import { base64Encode, utf8Encode } from '@verdict/core/internal'
import { regexReplace } from '../regex-replace.js'

import { decodeBase64, digest, formDecode, formEncode, urlDecode, urlEncode } from './encoding.js'
import { cookie, headerView } from './header-views.js'
import { bytesToIp, containsCidr, ipFamily, isClass, isGlobalUnicast, masked, parseCidr } from './ip-cidr.js'
import { json, jsonField, text, toJson, unvalidatedJwtPayload } from './json.js'
import { contains, flatten, MAP_PUT, mapPut, merge, NEW_MAP, newMap } from './maps.js'
import { mathFunctions } from './math.js'
import { query, splitN, withQuery } from './query.js'

const { STRING, BYTES, BOOL, INT, DOUBLE, DYN } = CelScalar
const MAP = mapType(DYN, DYN)
const LIST = listType(DYN)

/** agentgateway's functions, documented in docs/cel.md. */
export function agentgatewayFunctions(): CelFunc[] {
  return [
    // JSON
    celFunc('json', [STRING], DYN, json),
    celFunc('json', [BYTES], DYN, json),
    celFunc('jsonField', [STRING, STRING], DYN, jsonField),
    celFunc('jsonField', [BYTES, STRING], DYN, jsonField),
    celFunc('toJson', [DYN], STRING, toJson),
    celFunc('to_json', [DYN], STRING, toJson),
    celFunc('unvalidatedJwtPayload', [STRING], DYN, unvalidatedJwtPayload),
    // Maps
    celMethod('merge', MAP, [MAP], MAP, function (this: CelMap, other: CelMap) {
      return merge(this, other)
    }),
    celFunc('flatten', [DYN], DYN, flatten),
    celFunc('flattenRecursive', [DYN], DYN, flatten),
    celFunc('flatten_recursive', [DYN], DYN, flatten),
    celFunc(NEW_MAP, [], MAP, newMap),
    celFunc(MAP_PUT, [MAP, DYN, DYN], MAP, mapPut),
    celMethod('contains', LIST, [DYN], BOOL, function (this: CelValue, x: CelValue) {
      return contains(this, x)
    }),
    celMethod('contains', MAP, [DYN], BOOL, function (this: CelValue, x: CelValue) {
      return contains(this, x)
    }),
    // Misc
    celFunc('fail', [STRING], DYN, (msg) => {
      throw new Error(`fail() called: ${msg}`)
    }),
    celFunc('fail', [], DYN, () => {
      throw new Error('fail() called')
    }),
    celFunc('uuid', [], STRING, () => globalThis.crypto.randomUUID()),
    celFunc('random', [], DOUBLE, () => Math.random()),
    // Encodings and hashes
    ...(['base64Encode', 'base64.encode'] as const).flatMap((name) => [
      celFunc(name, [BYTES], STRING, (b) => base64Encode(b)),
      celFunc(name, [STRING], STRING, (s) => base64Encode(utf8Encode(s))),
    ]),
    celMethod('base64Encode', BYTES, [], STRING, function (this: Uint8Array) {
      return base64Encode(this)
    }),
    celMethod('base64Encode', STRING, [], STRING, function (this: string) {
      return base64Encode(utf8Encode(this))
    }),
    celFunc('base64.decode', [STRING], BYTES, decodeBase64),
    celFunc('base64.decode', [BYTES], BYTES, (b) => decodeBase64(text(b))),
    celFunc('base64Decode', [STRING], BYTES, decodeBase64),
    celFunc('base64Decode', [BYTES], BYTES, (b) => decodeBase64(text(b))),
    celMethod('base64Decode', STRING, [], BYTES, function (this: string) {
      return decodeBase64(this)
    }),
    ...(['sha1', 'sha256', 'md5'] as const).flatMap((alg) => [
      celFunc(`${alg}.encode`, [STRING], STRING, digest(alg)),
      celFunc(`${alg}.encode`, [BYTES], STRING, digest(alg)),
    ]),
    celFunc('url.encode', [STRING], STRING, urlEncode),
    celFunc('url.decode', [STRING], STRING, urlDecode),
    celFunc('form.encode', [MAP], STRING, formEncode),
    celFunc('form.decode', [STRING], MAP, formDecode as never),
    // Strings
    celMethod('stripPrefix', STRING, [STRING], STRING, function (this: string, p: string) {
      return this.startsWith(p) ? this.slice(p.length) : this
    }),
    celMethod('stripSuffix', STRING, [STRING], STRING, function (this: string, s: string) {
      return s !== '' && this.endsWith(s) ? this.slice(0, this.length - s.length) : this
    }),
    celMethod(
      'regexReplace',
      STRING,
      [STRING, STRING],
      STRING,
      function (this: string, re: string, to: string) {
        return regexReplace(this, re, to)
      },
    ),
    // `s.split(sep, n)` as cel-go and agentgateway: at most n parts, the last one the rest
    // (@bufbuild/cel 0.6.1 drops the rest).
    celMethod('split', STRING, [STRING, INT], LIST, function (this: string, sep: string, n: bigint) {
      return celList(splitN(this, sep, n)) as never
    }),
    // `jwt.rawToken.unredacted()`: verdict does not redact values a rule reads.
    celMethod('unredacted', STRING, [], STRING, function (this: string) {
      return this
    }),
    // IP and CIDR
    celMethod('family', STRING, [], INT, function (this: string) {
      const f = ipFamily(this)
      if (f === 0) throw new Error(`invalid IP address "${this.slice(0, 64)}"`)
      return BigInt(f)
    }),
    ...(['unspecified', 'loopback', 'linkLocalMulticast', 'linkLocalUnicast'] as const).map((cls) =>
      celMethod(`is${cls[0]!.toUpperCase()}${cls.slice(1)}`, STRING, [], BOOL, function (this: string) {
        return isClass(this, cls)
      }),
    ),
    celMethod('isGlobalUnicast', STRING, [], BOOL, function (this: string) {
      return isGlobalUnicast(this)
    }),
    celMethod('containsCIDR', STRING, [STRING], BOOL, function (this: string, other: string) {
      return containsCidr(this, other)
    }),
    celMethod('masked', STRING, [], STRING, function (this: string) {
      const c = parseCidr(this)
      return `${bytesToIp(masked(c.addr, c.bits))}/${c.bits}`
    }),
    celMethod('prefixLength', STRING, [], INT, function (this: string) {
      return BigInt(parseCidr(this).bits)
    }),
    celMethod('ip', STRING, [], STRING, function (this: string) {
      parseCidr(this)
      return this.slice(0, this.indexOf('/'))
    }),
    // Header views
    celMethod('join', MAP, [], MAP, function (this: CelValue) {
      return headerView(this, 'join').with('value', false) as never
    }),
    celMethod('split', MAP, [], MAP, function (this: CelValue) {
      return headerView(this, 'split').with('split', false) as never
    }),
    celMethod('raw', MAP, [], MAP, function (this: CelValue) {
      return headerView(this, 'raw').with('raw', false) as never
    }),
    celMethod('redacted', MAP, [], MAP, function (this: CelValue) {
      return headerView(this, 'redacted').with(undefined, true) as never
    }),
    celMethod('cookie', MAP, [STRING], STRING, function (this: CelValue, name: string) {
      return cookie(this, name)
    }),
    // Query accessors
    celMethod('query', STRING, [STRING], LIST, function (this: string, name: string) {
      return query(this, name) as never
    }),
    celMethod('addQuery', STRING, [STRING, STRING], STRING, function (this: string, n: string, v: string) {
      return withQuery(this, n, v, false)
    }),
    celMethod('setQuery', STRING, [STRING, STRING], STRING, function (this: string, n: string, v: string) {
      return withQuery(this, n, v, true)
    }),
    ...mathFunctions(),
  ]
}
