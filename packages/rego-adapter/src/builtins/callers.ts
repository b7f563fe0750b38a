/**
 * Which compiled Rego rules call a host builtin, read from the module's bytes: a call is
 * `i32.const <builtin id>; i32.const 0; <args>; call env.opa_builtinN`, and OPA names each rule's
 * function in the wasm name section (`g0.data.envoy.authz.allow`). Used for load errors only; a
 * module without names (stripped) gives none.
 */

function leb(b: Uint8Array, at: number): [number, number] {
  let v = 0
  let shift = 0
  let i = at
  for (;;) {
    const byte = b[i++]
    if (byte === undefined) throw new RangeError('truncated')
    v += (byte & 0x7f) * 2 ** shift
    shift += 7
    if ((byte & 0x80) === 0) return [v, i]
  }
}

function name(b: Uint8Array, at: number): [string, number] {
  const [len, i] = leb(b, at)
  return [new TextDecoder().decode(b.subarray(i, i + len)), i + len]
}

function skipLimits(b: Uint8Array, at: number): number {
  const flags = b[at]!
  let i = leb(b, at + 1)[1]
  if (flags & 1) i = leb(b, i)[1]
  return i
}

/** Rule paths (`data.envoy.authz.allow`) that call the builtin with this id, or none when unknown. */
export function builtinCallers(wasm: Uint8Array, builtinId: number): string[] {
  try {
    const builtinFns = new Set<number>()
    let imported = 0
    const bodies: Array<[number, number]> = []
    const names = new Map<number, string>()
    let at = 8
    while (at < wasm.length) {
      const id = wasm[at]!
      const [size, start] = leb(wasm, at + 1)
      const end = start + size
      if (id === 2) {
        let [count, i] = leb(wasm, start)
        while (count-- > 0) {
          const [mod, a] = name(wasm, i)
          const [field, c] = name(wasm, a)
          const kind = wasm[c]!
          i = c + 1
          if (kind === 0) {
            if (mod === 'env' && /^opa_builtin[0-4]$/.test(field)) builtinFns.add(imported)
            imported++
            i = leb(wasm, i)[1]
          } else if (kind === 1) i = skipLimits(wasm, i + 1)
          else if (kind === 2) i = skipLimits(wasm, i)
          else i += 2
        }
      } else if (id === 10) {
        let [count, i] = leb(wasm, start)
        while (count-- > 0) {
          const [len, b] = leb(wasm, i)
          bodies.push([b, b + len])
          i = b + len
        }
      } else if (id === 0) {
        const [section, i] = name(wasm, start)
        let j = i
        while (section === 'name' && j < end) {
          const sub = wasm[j]!
          const [len, k] = leb(wasm, j + 1)
          if (sub === 1) {
            let [count, m] = leb(wasm, k)
            while (count-- > 0) {
              const [idx, n] = leb(wasm, m)
              const [fn, o] = name(wasm, n)
              names.set(idx, fn)
              m = o
            }
          }
          j = k + len
        }
      }
      at = end
    }
    const out = new Set<string>()
    bodies.forEach(([from, to], i) => {
      const fn = names.get(imported + i)
      if (fn === undefined) return
      for (let p = from; p < to; p++) {
        if (wasm[p] !== 0x10) continue
        const [callee] = leb(wasm, p + 1)
        if (!builtinFns.has(callee)) continue
        // The nearest `i32.const id; i32.const 0` before the call names the builtin.
        for (let q = p - 3; q >= Math.max(from, p - 64); q--) {
          if (wasm[q] !== 0x41) continue
          const [v, r] = leb(wasm, q + 1)
          if (wasm[r] === 0x41 && wasm[r + 1] === 0x00) {
            if (v === builtinId) out.add(fn.replace(/^g[0-9]+\./, ''))
            break
          }
        }
      }
    })
    return [...out].sort()
  } catch {
    return []
  }
}
