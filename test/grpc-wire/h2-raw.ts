/**
 * Bytes for the gRPC wire suite, written by hand so that the tests can send what no client
 * library would: protobuf fields of any wire type, HTTP/2 frames that ignore the peer's limits.
 *
 * - protobuf: varints, tags and fields (independent of @bufbuild/protobuf, which the server uses);
 * - gRPC: the 5-byte message prefix with any flag and any declared length;
 * - HTTP/2: frames, HPACK literal header fields (no Huffman, no table), and a reader that splits
 *   what the server sends into frames per stream.
 */
import net from 'node:net'

// ---- protobuf ----

/** A varint of `n` (a bigint for 64-bit values; negative numbers as ten-byte two's complement). */
export function varint(n: number | bigint): Buffer {
  let v = BigInt.asUintN(64, BigInt(n))
  const out: number[] = []
  do {
    let b = Number(v & 0x7fn)
    v >>= 7n
    if (v !== 0n) b |= 0x80
    out.push(b)
  } while (v !== 0n)
  return Buffer.from(out)
}

export const WT = { VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 } as const

export const tag = (field: number, wt: number): Buffer => varint(field * 8 + wt)

/** A length-delimited field (string, bytes or message). */
export function ld(field: number, ...parts: Array<Buffer | string>): Buffer {
  const body = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)))
  return Buffer.concat([tag(field, WT.LEN), varint(body.length), body])
}

/** A varint field. */
export const vf = (field: number, n: number | bigint): Buffer =>
  Buffer.concat([tag(field, WT.VARINT), varint(n)])

/**
 * Field `field` with wire type `wt` and some well-formed content of that type (a group holds one
 * varint field and is closed with its own end tag).
 */
export function anyOfType(field: number, wt: number): Buffer {
  switch (wt) {
    case WT.VARINT:
      return vf(field, 1)
    case WT.I64:
      return Buffer.concat([tag(field, WT.I64), Buffer.alloc(8, 1)])
    case WT.LEN:
      return ld(field, 'xy')
    case WT.SGROUP:
      return Buffer.concat([tag(field, WT.SGROUP), vf(1, 1), tag(field, WT.EGROUP)])
    case WT.I32:
      return Buffer.concat([tag(field, WT.I32), Buffer.alloc(4, 1)])
    default:
      throw new Error(`no content for wire type ${wt}`)
  }
}

// ---- gRPC ----

/** The gRPC length prefix (`flag`, `declared` length, default the message's) and the message. */
export function grpcFrame(message: Uint8Array, flag = 0, declared = message.length): Buffer {
  const b = Buffer.alloc(5 + message.length)
  b[0] = flag
  b.writeUInt32BE(declared >>> 0, 1)
  b.set(message, 5)
  return b
}

// ---- HTTP/2 ----

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')
export const FT = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
}
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 }

export function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const h = Buffer.alloc(9)
  h.writeUIntBE(payload.length, 0, 3)
  h[3] = type
  h[4] = flags
  h.writeUInt32BE(stream & 0x7fffffff, 5)
  return Buffer.concat([h, payload])
}

/** SETTINGS with `[id, value]` pairs (4 = INITIAL_WINDOW_SIZE, 3 = MAX_CONCURRENT_STREAMS). */
export function settings(pairs: Array<[number, number]> = []): Buffer {
  const p = Buffer.alloc(6 * pairs.length)
  pairs.forEach(([id, value], i) => {
    p.writeUInt16BE(id, 6 * i)
    p.writeUInt32BE(value, 6 * i + 2)
  })
  return frame(FT.SETTINGS, 0, 0, p)
}

export function windowUpdate(stream: number, increment: number): Buffer {
  const p = Buffer.alloc(4)
  p.writeUInt32BE(increment, 0)
  return frame(FT.WINDOW_UPDATE, 0, stream, p)
}

export function rstStream(stream: number, code: number): Buffer {
  const p = Buffer.alloc(4)
  p.writeUInt32BE(code, 0)
  return frame(FT.RST_STREAM, 0, stream, p)
}

/** An HPACK integer with an `n`-bit prefix (RFC 7541 5.1), first byte ORed with `first`. */
function hpackInt(value: number, n: number, first: number): Buffer {
  const max = (1 << n) - 1
  if (value < max) return Buffer.from([first | value])
  const out = [first | max]
  let v = value - max
  while (v >= 128) {
    out.push((v % 128) + 128)
    v = Math.floor(v / 128)
  }
  out.push(v)
  return Buffer.from(out)
}

/** A header block of literal fields without indexing, new names, no Huffman (RFC 7541 6.2.2). */
export function hpack(headers: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts: Buffer[] = []
  for (const [name, value] of headers) {
    const n = Buffer.from(name, 'latin1')
    const v = Buffer.from(value, 'latin1')
    parts.push(Buffer.from([0x00]), hpackInt(n.length, 7, 0), n, hpackInt(v.length, 7, 0), v)
  }
  return Buffer.concat(parts)
}

export const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check'

/** The request headers of a gRPC Check call, as a header block. */
export function checkHeaders(authority: string): Buffer {
  return hpack([
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', CHECK_PATH],
    [':authority', authority],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
  ])
}

interface StreamSeen {
  data: Buffer[]
  headers: number
  ended: boolean
  rst?: number
}

/**
 * A raw HTTP/2 client connection: writes frames, answers SETTINGS and PING, and records every
 * frame the server sends, per stream.
 */
export class RawH2 {
  readonly socket: net.Socket
  readonly streams = new Map<number, StreamSeen>()
  /** The last GOAWAY: the last stream the server took, and the error code. */
  goaway: { lastStream: number; code: number } | undefined
  closed = false
  private buf = Buffer.alloc(0)
  private readonly waiters: Array<() => void> = []
  readonly ready: Promise<void>

  constructor(target: string) {
    const [host, port] = target.split(':') as [string, string]
    this.socket = net.connect(Number(port), host)
    this.socket.on('error', () => {})
    this.ready = new Promise((resolve) => this.socket.once('connect', () => resolve()))
    this.socket.on('data', (d: Buffer) => this.read(d))
    this.socket.on('close', () => {
      this.closed = true
      this.notify()
    })
  }

  write(...frames: Buffer[]): void {
    if (!this.socket.destroyed) this.socket.write(Buffer.concat(frames))
  }

  stream(id: number): StreamSeen {
    let s = this.streams.get(id)
    if (s === undefined) {
      s = { data: [], headers: 0, ended: false }
      this.streams.set(id, s)
    }
    return s
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w()
  }

  private read(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d])
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3)
      if (this.buf.length < 9 + len) break
      const type = this.buf[3]!
      const flags = this.buf[4]!
      const id = this.buf.readUInt32BE(5) & 0x7fffffff
      const payload = this.buf.subarray(9, 9 + len)
      this.buf = this.buf.subarray(9 + len)
      if (type === FT.SETTINGS && (flags & FLAG.ACK) === 0) this.write(frame(FT.SETTINGS, FLAG.ACK, 0))
      else if (type === FT.PING && (flags & FLAG.ACK) === 0) this.write(frame(FT.PING, FLAG.ACK, 0, payload))
      else if (type === FT.GOAWAY)
        this.goaway = { lastStream: payload.readUInt32BE(0) & 0x7fffffff, code: payload.readUInt32BE(4) }
      else if (type === FT.DATA && id !== 0) {
        const s = this.stream(id)
        s.data.push(Buffer.from(payload))
        if (flags & FLAG.END_STREAM) s.ended = true
      } else if (type === FT.HEADERS) {
        const s = this.stream(id)
        s.headers++
        if (flags & FLAG.END_STREAM) s.ended = true
      } else if (type === FT.RST_STREAM) this.stream(id).rst = payload.readUInt32BE(0)
    }
    this.notify()
  }

  /** Resolves when `pred` holds (checked after every read and on close), rejects past `ms`. */
  until(pred: () => boolean, ms: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`raw HTTP/2 client: no ${what} within ${ms} ms`)), ms)
      const check = (): void => {
        if (pred()) {
          clearTimeout(timer)
          resolve()
        } else this.waiters.push(check)
      }
      check()
    })
  }

  destroy(): void {
    this.socket.destroy()
  }
}
