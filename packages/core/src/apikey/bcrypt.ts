/**
 * bcrypt verification (`$2a$`, `$2b$`, `$2y$`), as htpasswd `-B` and agentgateway's `keyHash`
 * write it. Blowfish's initial state is the fractional hex digits of pi, computed once (BigInt
 * Machin formula) instead of being written out as a table.
 */
import { timingSafeEqual } from 'node:crypto'

const ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const INDEX = new Map([...ALPHABET].map((c, i) => [c, i]))

/** A bcrypt hash as written: `$2b$<cost>$<22 salt chars><31 hash chars>`. */
export const BCRYPT = /^\$2[aby]\$(\d\d)\$([./A-Za-z0-9]{22})([./A-Za-z0-9]{31})$/

/** Highest cost accepted: each step doubles the work of a (synchronous) verification. */
export const MAX_BCRYPT_COST = 14

function decode64(s: string, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes)
  let bits = 0
  let acc = 0
  let o = 0
  for (const c of s) {
    acc = (acc << 6) | INDEX.get(c)!
    bits += 6
    if (bits >= 8) {
      bits -= 8
      if (o < bytes) out[o++] = (acc >> bits) & 0xff
    }
  }
  return out
}

function encode64(b: Uint8Array): string {
  let s = ''
  for (let i = 0; i < b.length; i += 3) {
    const c1 = b[i]!
    const c2 = b[i + 1]
    const c3 = b[i + 2]
    s += ALPHABET[c1 >> 2]
    s += ALPHABET[((c1 & 3) << 4) | ((c2 ?? 0) >> 4)]
    if (c2 === undefined) break
    s += ALPHABET[((c2 & 15) << 2) | ((c3 ?? 0) >> 6)]
    if (c3 === undefined) break
    s += ALPHABET[c3 & 63]
  }
  return s
}

let PI_WORDS: Uint32Array | undefined

/** The first 1042 32-bit words of pi's fractional part: Blowfish's P-array and S-boxes. */
function piWords(): Uint32Array {
  if (PI_WORDS !== undefined) return PI_WORDS
  const words = 18 + 1024
  const bits = BigInt(words * 32 + 64)
  const one = 1n << bits
  const arctan = (x: bigint): bigint => {
    let sum = 0n
    let term = one / x
    const x2 = x * x
    for (let k = 1n; term !== 0n; k += 2n) {
      sum += (k & 2n) === 0n ? term / k : -(term / k)
      term /= x2
    }
    return sum
  }
  const pi = 16n * arctan(5n) - 4n * arctan(239n)
  const frac = (pi - 3n * one) >> 64n // drop the guard bits
  const out = new Uint32Array(words)
  for (let i = 0; i < words; i++) out[i] = Number((frac >> BigInt((words - 1 - i) * 32)) & 0xffffffffn)
  PI_WORDS = out
  return out
}

class Blowfish {
  readonly p: Uint32Array
  readonly s: Uint32Array
  constructor() {
    const w = piWords()
    this.p = w.slice(0, 18)
    this.s = w.slice(18)
  }
  private f(x: number): number {
    const s = this.s
    return (
      (((s[x >>> 24]! + s[256 + ((x >>> 16) & 255)]!) ^ s[512 + ((x >>> 8) & 255)]!) +
        s[768 + (x & 255)]!) >>>
      0
    )
  }
  /** Encrypt the block in `lr` (two words) in place. */
  encrypt(lr: Uint32Array, at: number): void {
    let l = lr[at]!
    let r = lr[at + 1]!
    const p = this.p
    for (let i = 0; i < 16; i += 2) {
      l = (l ^ p[i]!) >>> 0
      r = (r ^ this.f(l)) >>> 0
      r = (r ^ p[i + 1]!) >>> 0
      l = (l ^ this.f(r)) >>> 0
    }
    lr[at] = (r ^ p[17]!) >>> 0
    lr[at + 1] = (l ^ p[16]!) >>> 0
  }
  /** ExpandKey (with `salt`) or Expand0 (without), bcrypt's key schedule. */
  expand(key: Uint8Array, salt: Uint8Array | undefined): void {
    let kp = 0
    const word = (b: Uint8Array, pos: { i: number }): number => {
      let w = 0
      for (let j = 0; j < 4; j++) {
        w = ((w << 8) | b[pos.i]!) >>> 0
        pos.i = (pos.i + 1) % b.length
      }
      return w
    }
    const kpos = { i: kp }
    for (let i = 0; i < 18; i++) this.p[i] = (this.p[i]! ^ word(key, kpos)) >>> 0
    kp = kpos.i
    const spos = { i: 0 }
    const lr = new Uint32Array(2)
    const fill = (target: Uint32Array) => {
      for (let i = 0; i < target.length; i += 2) {
        if (salt !== undefined) {
          lr[0] = (lr[0]! ^ word(salt, spos)) >>> 0
          lr[1] = (lr[1]! ^ word(salt, spos)) >>> 0
        }
        this.encrypt(lr, 0)
        target[i] = lr[0]!
        target[i + 1] = lr[1]!
      }
    }
    fill(this.p)
    fill(this.s)
  }
}

const MAGIC = new TextEncoder().encode('OrpheanBeholderScryDoubt')

/** The 31-character hash part for `password` (UTF-8, NUL-terminated, at most 72 bytes). */
function hashPart(password: Uint8Array, cost: number, salt: Uint8Array): string {
  const key = new Uint8Array(Math.min(password.length + 1, 72))
  key.set(password.subarray(0, key.length))
  const bf = new Blowfish()
  bf.expand(key, salt)
  for (let i = 0, n = 2 ** cost; i < n; i++) {
    bf.expand(key, undefined)
    bf.expand(salt, undefined)
  }
  const ctext = new Uint32Array(6)
  for (let i = 0; i < 6; i++)
    ctext[i] =
      ((MAGIC[i * 4]! << 24) | (MAGIC[i * 4 + 1]! << 16) | (MAGIC[i * 4 + 2]! << 8) | MAGIC[i * 4 + 3]!) >>> 0
  for (let r = 0; r < 64; r++) for (let j = 0; j < 6; j += 2) bf.encrypt(ctext, j)
  const out = new Uint8Array(24)
  for (let i = 0; i < 6; i++) {
    out[i * 4] = ctext[i]! >>> 24
    out[i * 4 + 1] = (ctext[i]! >>> 16) & 255
    out[i * 4 + 2] = (ctext[i]! >>> 8) & 255
    out[i * 4 + 3] = ctext[i]! & 255
  }
  return encode64(out.subarray(0, 23))
}

/** Why `hash` is not a usable bcrypt hash, or undefined when it is. */
export function bcryptProblem(hash: string): string | undefined {
  const m = BCRYPT.exec(hash)
  if (m === null) return 'not a bcrypt hash ($2a$, $2b$ or $2y$, a two-digit cost, 53 characters)'
  const cost = Number(m[1])
  if (cost < 4 || cost > MAX_BCRYPT_COST) return `bcrypt cost ${cost} is outside 4..${MAX_BCRYPT_COST}`
  return undefined
}

/** True when `password` matches `hash` (compared in constant time). `hash` must pass `bcryptProblem`. */
export function bcryptVerify(password: string, hash: string): boolean {
  const m = BCRYPT.exec(hash)
  if (m === null) return false
  const salt = decode64(m[2]!, 16)
  const got = Buffer.from(hashPart(new TextEncoder().encode(password), Number(m[1]), salt))
  const want = Buffer.from(m[3]!)
  return got.length === want.length && timingSafeEqual(got, want)
}
