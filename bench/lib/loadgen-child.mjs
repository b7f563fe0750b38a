// A lean load generator for bench/envoy.bench.mjs, run as its own process (so its event loop and
// GC are not shared with the bench harness) and driven over IPC. Requests arrive pre-encoded:
// a gRPC frame for Authorization/Check sent on one bare node:http2 session, or raw HTTP/1.1 bytes
// written to a pool of keep-alive sockets. Responses are checked with a few byte reads (grpc-status
// and CheckResponse.status.code; the HTTP status line), with no decoder and little allocation.
//
// Open loop: request i is due at t0 + i / rate; its latency runs from that scheduled time, so a
// stall anywhere (sidecar, generator, kernel) shows up in the percentiles. The loop polls with
// setImmediate, which keeps this process busy on its core but sends each request on time.
//
// Messages in: { cmd: 'connect', transport: 'grpc' | 'http', target: 'host:port', path, payload,
// payloads, connections } (payload base64: the gRPC frame, or the whole HTTP request; payloads:
// gRPC frames sent in turn instead of the one payload; connections: gRPC
// connections to use in turn, default 1), { cmd: 'check' }, { cmd: 'rate',
// rate, ms, timeoutMs }, { cmd: 'saturate', concurrency, ms, timeoutMs }, { cmd: 'stalls', ms },
// { cmd: 'close' }. Each gets one reply: { ok, ... } with latencies summarized (n, errors, rps,
// p50, p99, p999, max in ms; for `rate` also sendLateP99/sendLateMax: how late the generator
// itself sent). Run with --expose-gc so each phase starts after a collection.
import { connect as netConnect } from 'node:net'

/** Read a protobuf varint at `i`; returns [value, next index] or undefined past the end. */
function varint(b, i) {
  let v = 0
  let mul = 1
  while (i < b.length) {
    const x = b[i++]
    v += (x & 0x7f) * mul
    if (x < 0x80) return [v, i]
    mul *= 128
  }
  return undefined
}

/** CheckResponse.status.code (field 1, then its field 1) from a gRPC-framed message; 0 if unset. */
function checkCode(frame) {
  const b = frame.subarray(5)
  let i = 0
  while (i < b.length) {
    const t = varint(b, i)
    if (t === undefined) return -1
    const [tag, j] = t
    const wire = tag & 7
    if (wire === 0) {
      const v = varint(b, j)
      if (v === undefined) return -1
      i = v[1]
    } else if (wire === 2) {
      const l = varint(b, j)
      if (l === undefined) return -1
      const [len, k] = l
      if (tag >>> 3 === 1) {
        // google.rpc.Status: look for `code` (field 1, varint).
        const s = b.subarray(k, k + len)
        let p = 0
        while (p < s.length) {
          const st = varint(s, p)
          if (st === undefined) return -1
          if (st[0] === 8) return varint(s, st[1])?.[0] ?? -1
          if ((st[0] & 7) === 0) p = varint(s, st[1])?.[1] ?? s.length
          else if ((st[0] & 7) === 2) {
            const sl = varint(s, st[1])
            if (sl === undefined) return -1
            p = sl[1] + sl[0]
          } else return -1
        }
        return 0
      }
      i = k + len
    } else if (wire === 5) i = j + 4
    else if (wire === 1) i = j + 8
    else return -1
  }
  return 0
}

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')
const WINDOW = 2 ** 31 - 1

function frameHeader(buf, at, length, type, flags, stream) {
  buf.writeUIntBE(length, at, 3)
  buf[at + 3] = type
  buf[at + 4] = flags
  buf.writeUInt32BE(stream, at + 5)
}

function frame(type, flags, stream, payload) {
  const b = Buffer.alloc(9 + payload.length)
  frameHeader(b, 0, payload.length, type, flags, stream)
  payload.copy(b, 9)
  return b
}

/** HPACK integer with an n-bit prefix (RFC 7541 5.1). */
function hpackInt(first, n, v) {
  const max = (1 << n) - 1
  if (v < max) return [first | v]
  const out = [first | max]
  v -= max
  while (v >= 128) {
    out.push((v % 128) + 128)
    v = Math.floor(v / 128)
  }
  out.push(v)
  return out
}
const hpackStr = (s) => [...hpackInt(0, 7, Buffer.byteLength(s)), ...Buffer.from(s)]

/**
 * gRPC over HTTP/2 written frame by frame (RFC 9113): the HEADERS block is encoded once
 * (static-table names, literals never indexed, so the server's HPACK state never matters to us),
 * each call is that block plus one DATA frame. Responses are not HPACK-decoded: a call succeeds
 * when a DATA frame carried a CheckResponse whose status.code is 0 and the stream then ended with
 * trailers (a failing gRPC server answers with trailers only, or resets the stream). Flow control:
 * our receive windows are opened to 2^31-1; the server's connection window is honoured (calls wait
 * for its WINDOW_UPDATE).
 *
 * One connection at a time, replaced as Envoy's pool replaces one: after a GOAWAY the calls the
 * server did not take (stream id above its last-stream-id) go to a new connection, the others
 * finish on the old one; a connection that closes or fails fails its calls, and the next call
 * opens a new one. `opened()` counts the connections opened so far.
 */
function grpcSender(target, path, messages) {
  const [host, port] = [
    target.slice(0, target.lastIndexOf(':')),
    Number(target.slice(target.lastIndexOf(':') + 1)),
  ]
  const block = Buffer.from([
    0x83, // :method POST
    0x86, // :scheme http
    ...hpackInt(0x00, 4, 4), // :path, literal without indexing, static name 4
    ...hpackStr(path),
    ...hpackInt(0x00, 4, 1), // :authority
    ...hpackStr(target),
    ...hpackInt(0x00, 4, 31), // content-type
    ...hpackStr('application/grpc'),
    0x00, // te: trailers (new name)
    ...hpackStr('te'),
    ...hpackStr('trailers'),
  ])
  // One call = HEADERS (END_HEADERS) + DATA (END_STREAM); stream ids are patched in per call.
  // Several messages are sent in turn, one per call (as Envoy's differ in request id and time).
  const dataAt = 9 + block.length
  const templates = messages.map((message) => {
    if (message.length > 16384) throw new Error('request larger than one DATA frame')
    const t = Buffer.alloc(9 + block.length + 9 + message.length)
    frameHeader(t, 0, block.length, 1, 0x4, 0)
    block.copy(t, 9)
    frameHeader(t, dataAt, message.length, 0, 0x1, 0)
    message.copy(t, dataAt + 9)
    return t
  })
  let nextTemplate = 0
  /** The largest message: a call starts when the send window has room for any of them. */
  const maxMessage = Math.max(...messages.map((m) => m.length))
  const settings = Buffer.alloc(12)
  settings.writeUInt16BE(2, 0) // ENABLE_PUSH = 0
  settings.writeUInt32BE(0, 2)
  settings.writeUInt16BE(4, 6) // INITIAL_WINDOW_SIZE
  settings.writeUInt32BE(WINDOW, 8)
  const update = (stream, n) => {
    const b = Buffer.alloc(4)
    b.writeUInt32BE(n)
    return frame(8, 0, stream, b)
  }

  const open = new Set()
  let current
  let opened = 0

  /** One HTTP/2 connection; `route` places calls it hands back (refused by a GOAWAY). */
  function connection() {
    const sock = netConnect({ host, port, noDelay: true })
    sock.write(Buffer.concat([H2_PREFACE, frame(4, 0, 0, settings), update(0, WINDOW - 65535)]))
    const calls = new Map() // stream id -> { body, done, deadline }
    // Calls held back by the server's connection window or its stream limit (as Envoy's pool holds them).
    const waiting = []
    let nextId = 1
    let sendWindow = 65535
    let maxStreams = Number.POSITIVE_INFINITY
    let received = 0
    let buf
    const conn = { dead: false, draining: false, calls, submit, sweep, close }
    const canStart = () => sendWindow >= maxMessage && calls.size < maxStreams
    const drain = () => {
      while (!conn.dead && !conn.draining && waiting.length > 0 && canStart()) start(waiting.shift())
      if (conn.draining && calls.size === 0) close()
    }
    const fail = (c) => {
      calls.delete(c.id)
      c.done(false)
      drain()
    }
    const start = (c) => {
      const callTemplate = templates[nextTemplate]
      nextTemplate = (nextTemplate + 1) % templates.length
      const b = Buffer.allocUnsafe(callTemplate.length)
      callTemplate.copy(b)
      c.id = nextId
      nextId += 2
      b.writeUInt32BE(c.id, 5)
      b.writeUInt32BE(c.id, dataAt + 5)
      sendWindow -= callTemplate.length - dataAt - 9
      calls.set(c.id, c)
      sock.write(b)
    }
    function submit(c) {
      if (waiting.length === 0 && canStart()) start(c)
      else waiting.push(c)
    }
    function close() {
      if (conn.dead) return
      conn.dead = true
      open.delete(conn)
      sock.end(frame(7, 0, 0, Buffer.alloc(8)))
    }
    const die = () => {
      if (conn.dead && calls.size === 0 && waiting.length === 0) return
      conn.dead = true
      open.delete(conn)
      for (const c of [...calls.values(), ...waiting.splice(0)]) fail(c)
    }
    /** GOAWAY: calls above `last` were never started by the server; they go elsewhere, the rest finish here. */
    const goaway = (last) => {
      conn.draining = true
      const refused = [...waiting.splice(0)]
      for (const [id, c] of calls)
        if (id > last) {
          calls.delete(id)
          refused.push(c)
        }
      for (const c of refused) route(c)
      drain()
    }
    function sweep(now) {
      for (const c of calls.values())
        if (c.deadline < now) {
          const b = Buffer.alloc(4)
          b.writeUInt32BE(8) // CANCEL
          sock.write(frame(3, 0, c.id, b))
          fail(c)
        }
      for (let i = waiting.length - 1; i >= 0; i--)
        if (waiting[i].deadline < now) waiting.splice(i, 1)[0].done(false)
    }
    sock.on('error', die)
    sock.on('close', die)
    sock.on('data', (chunk) => {
      buf = buf === undefined || buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
      let at = 0
      while (buf.length - at >= 9) {
        const len = buf.readUIntBE(at, 3)
        if (buf.length - at < 9 + len) break
        const type = buf[at + 3]
        const flags = buf[at + 4]
        const id = buf.readUInt32BE(at + 5) & 0x7fffffff
        const p = at + 9
        at = p + len
        if (type === 0) {
          received += len
          const c = calls.get(id)
          if (c !== undefined && len > 0) {
            const pad = flags & 0x8 ? buf[p] : 0
            const data = buf.subarray(p + (flags & 0x8 ? 1 : 0), p + len - pad)
            c.body = c.body === undefined ? Buffer.from(data) : Buffer.concat([c.body, data])
          }
          if (flags & 0x1 && c !== undefined) fail(c) // a gRPC answer ends with trailers, not data
        } else if (type === 1) {
          const c = calls.get(id)
          if (c !== undefined && flags & 0x1) {
            calls.delete(id)
            c.done(c.body !== undefined && checkCode(c.body) === 0)
            drain()
          }
        } else if (type === 3) {
          const c = calls.get(id)
          if (c !== undefined) fail(c)
        } else if (type === 4) {
          if (!(flags & 0x1)) {
            for (let e = p; e + 6 <= p + len; e += 6)
              if (buf.readUInt16BE(e) === 3) maxStreams = buf.readUInt32BE(e + 2) // MAX_CONCURRENT_STREAMS
            sock.write(frame(4, 0x1, 0, Buffer.alloc(0)))
            drain()
          }
        } else if (type === 6) {
          if (!(flags & 0x1)) sock.write(frame(6, 0x1, 0, buf.subarray(p, p + 8)))
        } else if (type === 7) goaway(buf.readUInt32BE(p) & 0x7fffffff)
        else if (type === 8 && id === 0) {
          sendWindow += buf.readUInt32BE(p) & 0x7fffffff
          drain()
        }
      }
      buf = at === buf.length ? undefined : buf.subarray(at)
      if (received > WINDOW / 2 && !conn.dead) {
        sock.write(update(0, received))
        received = 0
      }
    })
    return conn
  }

  /** The call on the current connection, or on a new one when it is gone or draining. */
  function route(c) {
    if (current === undefined || current.dead || current.draining) {
      current = connection()
      open.add(current)
      opened++
    }
    current.submit(c)
  }
  const sweep = setInterval(() => {
    const now = performance.now()
    for (const conn of open) conn.sweep(now)
  }, 20)
  /** Calls done(ok) once per request. */
  const send = (timeoutMs, done) =>
    route({ id: 0, body: undefined, done, deadline: performance.now() + timeoutMs })
  return {
    send,
    opened: () => opened,
    close: () => {
      clearInterval(sweep)
      for (const conn of [...open]) conn.close()
    },
  }
}

/**
 * HTTP/1.1 over raw keep-alive sockets, one request at a time on each; a new socket is opened when
 * every open one is busy. A response is its head plus a Content-Length or chunked body (without
 * trailers, as node:http answers); anything else counts as an error and the socket is dropped.
 */
function httpSender(target, request) {
  const [host, port] = [
    target.slice(0, target.lastIndexOf(':')),
    Number(target.slice(target.lastIndexOf(':') + 1)),
  ]
  const idle = []
  const all = new Set()
  const CRLF2 = Buffer.from('\r\n\r\n')
  const newConn = () => {
    const sock = netConnect({ host, port, noDelay: true })
    const conn = { sock, buf: undefined, done: undefined, deadline: 0, dead: false }
    all.add(conn)
    const fail = () => {
      conn.dead = true
      all.delete(conn)
      const d = conn.done
      conn.done = undefined
      d?.(false)
      const k = idle.indexOf(conn)
      if (k >= 0) idle.splice(k, 1)
    }
    sock.on('error', fail)
    sock.on('close', fail)
    sock.on('data', (c) => {
      conn.buf = conn.buf === undefined ? c : Buffer.concat([conn.buf, c])
      const b = conn.buf
      const end = b.indexOf(CRLF2)
      if (end < 0) return
      // The body: Content-Length bytes, or chunks up to the last (empty) one.
      const head = b.latin1Slice(0, end).toLowerCase()
      const at = head.indexOf('\r\ncontent-length:')
      if (at >= 0) {
        if (b.length < end + 4 + Number.parseInt(head.slice(at + 17), 10)) return
      } else if (head.includes('\r\ntransfer-encoding: chunked')) {
        let pos = end + 4
        for (;;) {
          const eol = b.indexOf('\r\n', pos, 'latin1')
          if (eol < 0) return
          const size = Number.parseInt(b.latin1Slice(pos, eol), 16)
          if (Number.isNaN(size)) {
            sock.destroy()
            return
          }
          pos = eol + 2 + size + 2 // no trailers follow the last chunk here
          if (b.length < pos) return
          if (size === 0) break
        }
      } else {
        sock.destroy()
        return
      }
      const status = (b[9] - 48) * 100 + (b[10] - 48) * 10 + (b[11] - 48)
      conn.buf = undefined
      const d = conn.done
      conn.done = undefined
      idle.push(conn)
      d?.(status === 200)
    })
    return conn
  }
  const send = (timeoutMs, done) => {
    let conn = idle.pop()
    while (conn?.dead) conn = idle.pop()
    conn ??= newConn()
    conn.done = done
    conn.deadline = performance.now() + timeoutMs
    conn.sock.write(request)
  }
  const sweep = setInterval(() => {
    const now = performance.now()
    for (const c of all) if (c.done !== undefined && c.deadline < now) c.sock.destroy()
  }, 20)
  return {
    send,
    close: () => {
      clearInterval(sweep)
      for (const c of all) c.sock.destroy()
    },
  }
}

/** Several gRPC connections used in turn, one call each (as Envoy's worker threads each keep one). */
function spread(senders) {
  if (senders.length === 1) return senders[0]
  let next = 0
  return {
    send: (timeoutMs, done) => {
      senders[next].send(timeoutMs, done)
      next = (next + 1) % senders.length
    },
    opened: () => senders.reduce((n, s) => n + s.opened(), 0),
    close: () => {
      for (const s of senders) s.close()
    },
  }
}

function summary(lat, n, errors, seconds) {
  const s = lat.subarray(0, n).sort()
  const pick = (p) => (n === 0 ? Number.NaN : s[Math.min(n - 1, Math.floor((p / 100) * n))])
  return {
    n,
    errors,
    rps: n / seconds,
    p50: pick(50),
    p99: pick(99),
    p999: pick(99.9),
    max: n ? s[n - 1] : Number.NaN,
  }
}

function fixedRate(sender, rate, ms, timeoutMs) {
  return new Promise((resolve) => {
    const total = Math.round((rate * ms) / 1000)
    const interval = 1000 / rate
    const lat = new Float64Array(total)
    let n = 0
    let errors = 0
    let sent = 0
    let answered = 0
    const t0 = performance.now()
    const finish = () => {
      const r = summary(lat, n, errors, (performance.now() - t0) / 1000)
      const l = summary(late, total, 0, 1)
      resolve({ ...r, sendLateP99: l.p99, sendLateMax: l.max })
    }
    const one = (scheduled) => (ok) => {
      if (ok) lat[n++] = performance.now() - scheduled
      else errors++
      if (++answered === total) finish()
    }
    const late = new Float64Array(total)
    const tick = () => {
      const now = performance.now()
      const due = Math.min(total, Math.floor((now - t0) / interval) + 1)
      for (; sent < due; sent++) {
        const scheduled = t0 + sent * interval
        late[sent] = now - scheduled
        sender.send(timeoutMs, one(scheduled))
      }
      if (sent < total) setImmediate(tick)
    }
    tick()
  })
}

let saturateLat = new Float64Array(1 << 16)

function saturate(sender, concurrency, ms, timeoutMs) {
  return new Promise((resolve) => {
    let lat = saturateLat
    let n = 0
    let errors = 0
    let running = concurrency
    const t0 = performance.now()
    const end = t0 + ms
    const worker = () => {
      const s = performance.now()
      sender.send(timeoutMs, (ok) => {
        const t = performance.now()
        if (ok) {
          if (n === lat.length) {
            saturateLat = new Float64Array(lat.length * 2)
            saturateLat.set(lat)
            lat = saturateLat
          }
          lat[n++] = t - s
        } else errors++
        if (t < end) worker()
        else if (--running === 0) resolve(summary(lat, n, errors, (performance.now() - t0) / 1000))
      })
    }
    for (let i = 0; i < concurrency; i++) worker()
  })
}

/**
 * How long this process was kept off its core: spin on the clock for `ms` and sum the gaps over
 * 0.1 ms (preemption, interrupts, the hypervisor). No allocation in the loop, so no GC either.
 */
function stalls(ms) {
  const t0 = performance.now()
  let prev = t0
  let total = 0
  let max = 0
  let over1 = 0
  while (prev - t0 < ms) {
    const t = performance.now()
    const gap = t - prev
    if (gap > 0.1) {
      total += gap
      if (gap > max) max = gap
      if (gap > 1) over1++
    }
    prev = t
  }
  return { totalMs: total, maxMs: max, over1ms: over1 }
}

/** Collect the previous phase's garbage before a measured one (needs --expose-gc). */
const collect = () => globalThis.gc?.()

let sender
process.on('message', async (m) => {
  try {
    let reply
    if (m.cmd === 'connect') {
      const payload = Buffer.from(m.payload, 'base64')
      // gRPC: `payloads` (base64 frames, sent in turn) when given, else the one `payload`.
      const frames = m.payloads?.map((p) => Buffer.from(p, 'base64')) ?? [payload]
      sender =
        m.transport === 'grpc'
          ? spread(Array.from({ length: m.connections ?? 1 }, () => grpcSender(m.target, m.path, frames)))
          : httpSender(m.target, payload)
      reply = { ok: true, pid: process.pid }
    } else if (m.cmd === 'check')
      reply = { ok: await new Promise((r) => sender.send(m.timeoutMs ?? 2000, r)) }
    else if (m.cmd === 'rate') {
      collect()
      const before = sender.opened?.() ?? 0
      reply = { ok: true, ...(await fixedRate(sender, m.rate, m.ms, m.timeoutMs)) }
      reply.reopened = (sender.opened?.() ?? 0) - before
    } else if (m.cmd === 'saturate') {
      collect()
      const before = sender.opened?.() ?? 0
      reply = { ok: true, ...(await saturate(sender, m.concurrency, m.ms, m.timeoutMs)) }
      reply.reopened = (sender.opened?.() ?? 0) - before
    } else if (m.cmd === 'stalls') reply = { ok: true, ...stalls(m.ms) }
    else if (m.cmd === 'close') {
      sender?.close()
      process.disconnect()
      return
    } else reply = { ok: false, error: `unknown command ${m.cmd}` }
    process.send(reply)
  } catch (e) {
    process.send({ ok: false, error: String(e?.stack ?? e) })
  }
})
// The bench process went away: nothing left to measure for.
process.on('disconnect', () => process.exit(0))
