/**
 * One compiled Rego module, instantiated through `@open-policy-agent/opa-wasm` after checks the
 * SDK leaves to runtime: ABI version and exports, imports, builtins, entrypoints. Evaluation turns
 * every failure (abort, trap, memory limit, thrown string or object) into an error value.
 */
import { type LoadedPolicy, loadPolicy } from '@open-policy-agent/opa-wasm'
import type { EvalResult } from '@verdict/core'
import { builtinCallers } from './builtins/callers.js'
import { inScope } from './builtins/scope.js'
import { HOST_BUILTINS, UNSUPPORTED_BUILTINS, unsupportedBuiltinMessage } from './builtins.js'
import { utf8Length } from './input/bytes.js'

/**
 * The parts of the WebAssembly JS API used here. Typed locally because the repo's `lib` (ES2023,
 * no DOM) has no WebAssembly declarations.
 */
type WasmKind = 'function' | 'table' | 'memory' | 'global' | 'tag'
interface WasmModule {
  readonly __wasmModule?: never
}
interface WasmApi {
  compile(bytes: Uint8Array): Promise<WasmModule>
  Module: {
    imports(m: WasmModule): Array<{ module: string; name: string; kind: WasmKind }>
    exports(m: WasmModule): Array<{ name: string; kind: WasmKind }>
  }
  Global: abstract new (...args: never[]) => { value: unknown }
  RuntimeError: abstract new (...args: never[]) => Error
}
const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly

/** A host implementation of a Rego builtin: JSON arguments in, a JSON value (or undefined) out. */
export type RegoBuiltin = (...args: unknown[]) => unknown

/** Memory limits of one module instance, in 64 KiB wasm pages. */
export interface RegoMemoryOptions {
  /** Pages at start (default 5, as the SDK). Raise it if a module declares a larger minimum. */
  readonly initialPages?: number
  /** Most pages the instance may grow to (default 512 = 32 MiB). Evaluations needing more deny. */
  readonly maxPages?: number
}

export interface LoadRegoPolicyOptions {
  readonly memory?: RegoMemoryOptions
  /** Builtins beyond the SDK's, by Rego name (`custom.lookup`). The SDK's own take precedence. */
  readonly builtins?: Readonly<Record<string, RegoBuiltin>>
}

/** A load-time problem with a stable code. */
export interface RegoLoadProblem {
  readonly code: 'rego_abi' | 'rego_builtin' | 'rego_module'
  readonly message: string
}

/** A loaded module instance. Not safe to share across threads; evaluation is synchronous. */
export interface RegoPolicy {
  /** Entrypoint name (slash form) -> id. */
  readonly entrypoints: Readonly<Record<string, number>>
  /** Builtins the module imports from the host. */
  readonly builtins: readonly string[]
  /** `1.2` etc. */
  readonly abiVersion: string
  /**
   * Evaluate an entrypoint on an input given as JSON text (a string, or its UTF-8 bytes as an
   * `ArrayBuffer`), serialized once by the caller. Returns the single result's value, or an error
   * for anything else.
   */
  evaluate(input: string | ArrayBuffer, entrypoint: number, label?: string): EvalResult
  /** The module's heap pointer (for leak checks). */
  heapPointer(): number
  /** Current size of the instance's memory, in pages. */
  memoryPages(): number
  /** Drop the instance; later evaluations fail. */
  dispose(): void
}

/** Builtins `@open-policy-agent/opa-wasm` 1.10 implements in JavaScript (its `src/builtins`). */
export const SDK_BUILTINS: readonly string[] = Object.freeze([
  'json.is_valid',
  'regex.split',
  'sprintf',
  'yaml.is_valid',
  'yaml.marshal',
  'yaml.unmarshal',
])

export const DEFAULT_INITIAL_PAGES = 5
export const DEFAULT_MAX_PAGES = 512

const ALLOWED_IMPORTS = new Map<string, WasmKind>([
  ['env.memory', 'memory'],
  ['env.opa_abort', 'function'],
  ['env.opa_println', 'function'],
  ['env.opa_builtin0', 'function'],
  ['env.opa_builtin1', 'function'],
  ['env.opa_builtin2', 'function'],
  ['env.opa_builtin3', 'function'],
  ['env.opa_builtin4', 'function'],
])

const COMMON_EXPORTS = [
  'opa_malloc',
  'opa_heap_ptr_get',
  'opa_heap_ptr_set',
  'opa_json_parse',
  'opa_json_dump',
  'builtins',
  'entrypoints',
]
const CTX_EXPORTS = [
  'eval',
  'opa_eval_ctx_new',
  'opa_eval_ctx_set_input',
  'opa_eval_ctx_set_data',
  'opa_eval_ctx_set_entrypoint',
  'opa_eval_ctx_get_result',
]

type Exports = Record<string, unknown>

/** Problems with the module's shape, found without running it. */
function checkShape(mod: WasmModule): RegoLoadProblem[] {
  const problems: RegoLoadProblem[] = []
  for (const i of Wasm.Module.imports(mod)) {
    const name = `${i.module}.${i.name}`
    const kind = ALLOWED_IMPORTS.get(name)
    if (kind !== i.kind)
      problems.push({
        code: 'rego_abi',
        message: `module imports ${i.kind} ${name.slice(0, 80)}, which the OPA wasm ABI 1.x does not define`,
      })
  }
  const exports = new Map(Wasm.Module.exports(mod).map((e) => [e.name, e.kind]))
  for (const g of ['opa_wasm_abi_version', 'opa_wasm_abi_minor_version']) {
    if (exports.get(g) !== 'global')
      problems.push({
        code: 'rego_abi',
        message: `module does not export the global ${g} (built before OPA 0.27?)`,
      })
  }
  const missing = COMMON_EXPORTS.filter((e) => exports.get(e) !== 'function')
  if (exports.get('opa_eval') !== 'function')
    missing.push(...CTX_EXPORTS.filter((e) => exports.get(e) !== 'function'))
  if (missing.length > 0)
    problems.push({ code: 'rego_abi', message: `module lacks OPA wasm ABI exports: ${missing.join(', ')}` })
  return problems
}

function globalValue(v: unknown): number | undefined {
  if (typeof v === 'number') return v
  if (v instanceof Wasm.Global) return Number(v.value)
  return undefined
}

function sanitize(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  return s.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 200)
}

/** A readable reason for anything the SDK or the module threw. */
export function describeThrown(e: unknown, maxPages: number): string {
  if (e instanceof RangeError && /memory/i.test(e.message))
    return `exceeded the memory limit of ${maxPages} pages (${maxPages * 64} KiB)`
  if (e instanceof Wasm.RuntimeError) return `module trapped: ${sanitize(e.message)}`
  if (e instanceof SyntaxError) return `module returned malformed JSON (${sanitize(e.message)})`
  if (e instanceof Error) return sanitize(e.message)
  if (typeof e === 'string') return `aborted: ${sanitize(e)}`
  if (typeof e === 'object' && e !== null) {
    const m = (e as { message?: unknown }).message
    if (typeof m === 'string') return sanitize(m)
    try {
      return `threw ${sanitize(JSON.stringify(e) ?? 'an object')}`
    } catch {
      return 'threw an object'
    }
  }
  return `threw ${sanitize(String(e))}`
}

/** Map a result set to the single result's value. */
export function resultValue(rs: unknown, label: string): EvalResult {
  if (!Array.isArray(rs)) return { ok: false, error: `${label} returned a malformed result set` }
  if (rs.length === 0) return { ok: false, error: `${label} is undefined for this input (empty result set)` }
  if (rs.length > 1)
    return { ok: false, error: `${label} produced ${rs.length} results, expected exactly one` }
  const first: unknown = rs[0]
  if (typeof first !== 'object' || first === null || !Object.hasOwn(first, 'result'))
    return { ok: false, error: `${label} returned a binding without "result" (compile with -e ${label})` }
  return { ok: true, value: (first as { result: unknown }).result }
}

/**
 * Load one module with its data. Returns the policy, or every problem found.
 *
 * @example
 * ```ts
 * const p = await loadRegoPolicy(wasmBytes, { servers: ['a'] }, { memory: { maxPages: 256 } })
 * if (Array.isArray(p)) throw new Error(p.map((x) => x.message).join('\n'))
 * const input = new TextEncoder().encode(JSON.stringify({ user: 'alice' })).buffer
 * p.evaluate(input, p.entrypoints['example/allow']!) // { ok: true, value: true }
 * ```
 */
export async function loadRegoPolicy(
  wasm: Uint8Array,
  data: Readonly<Record<string, unknown>>,
  options: LoadRegoPolicyOptions = {},
): Promise<RegoPolicy | RegoLoadProblem[]> {
  const initial = options.memory?.initialPages ?? DEFAULT_INITIAL_PAGES
  const maxPages = options.memory?.maxPages ?? DEFAULT_MAX_PAGES
  let mod: WasmModule
  try {
    mod = await Wasm.compile(wasm)
  } catch (e) {
    return [{ code: 'rego_module', message: `not a valid wasm module: ${describeThrown(e, maxPages)}` }]
  }
  const shape = checkShape(mod)
  if (shape.length > 0) return shape

  // verdict's host builtins (./builtins.ts), then the host's own, which win over ours.
  const custom: Record<string, RegoBuiltin> = Object.assign(Object.create(null), HOST_BUILTINS)
  for (const [k, f] of Object.entries(options.builtins ?? {})) custom[k] = f
  let loaded: LoadedPolicy
  try {
    loaded = await loadPolicy(mod as never, { initial, maximum: maxPages }, custom)
  } catch (e) {
    const why = describeThrown(e, maxPages)
    const hint = /memory/i.test(why) ? ' (check memory.initialPages and memory.maxPages)' : ''
    return [{ code: 'rego_abi', message: `module failed to load: ${why.replace(/^aborted: /, '')}${hint}` }]
  }
  const exports = (loaded.wasmInstance as unknown as { exports: Exports }).exports
  const minor = globalValue(exports.opa_wasm_abi_minor_version) ?? 0
  const problems: RegoLoadProblem[] = []
  if (minor < 2) {
    const missing = CTX_EXPORTS.filter((n) => typeof exports[n] !== 'function')
    if (missing.length > 0)
      problems.push({
        code: 'rego_abi',
        message: `ABI 1.${minor} module lacks exports: ${missing.join(', ')}`,
      })
  } else if (typeof exports.opa_eval !== 'function') {
    problems.push({ code: 'rego_abi', message: `ABI 1.${minor} module lacks the export opa_eval` })
  }

  let builtins: string[]
  let builtinIds: Readonly<Record<string, unknown>> = {}
  try {
    const addr = (exports.opa_json_dump as (a: number) => number)((exports.builtins as () => number)())
    const mem = new Uint8Array(loaded.mem.buffer)
    const end = mem.indexOf(0, addr)
    const map: unknown = JSON.parse(new TextDecoder().decode(mem.subarray(addr, end === -1 ? addr : end)))
    builtins = typeof map === 'object' && map !== null ? Object.keys(map) : []
    if (typeof map === 'object' && map !== null) builtinIds = map as Record<string, unknown>
  } catch (e) {
    return [
      { code: 'rego_abi', message: `module's builtins() is unreadable: ${describeThrown(e, maxPages)}` },
    ]
  }
  const sdk = new Set(SDK_BUILTINS)
  // The SDK looks builtins up with `obj[name]`, so a name such as `toString` would reach
  // Object.prototype instead of any host function: never dispatchable, so never provided.
  let missingBuiltins = builtins.filter((b) => b in {} || (!sdk.has(b) && !Object.hasOwn(custom, b)))
  for (const b of missingBuiltins.filter((b) => Object.hasOwn(UNSUPPORTED_BUILTINS, b)))
    problems.push({
      code: 'rego_builtin',
      message: unsupportedBuiltinMessage(
        b,
        UNSUPPORTED_BUILTINS[b]!,
        builtinCallers(wasm, Number(builtinIds[b])),
      ),
    })
  missingBuiltins = missingBuiltins.filter((b) => !Object.hasOwn(UNSUPPORTED_BUILTINS, b))
  if (missingBuiltins.length > 0) {
    problems.push({
      code: 'rego_builtin',
      message: `module needs builtin${missingBuiltins.length > 1 ? 's' : ''} ${missingBuiltins
        .map((b) => `"${sanitize(b)}"`)
        .join(', ')}, not provided by the SDK nor registered in RegoOptions.builtins`,
    })
  }
  const entrypoints: Record<string, number> = Object.create(null)
  const eps: unknown = loaded.entrypoints
  if (typeof eps === 'object' && eps !== null)
    for (const [k, v] of Object.entries(eps)) if (typeof v === 'number') entrypoints[k] = v
  if (problems.length > 0) return problems

  try {
    loaded.setData(data)
  } catch (e) {
    return [{ code: 'rego_module', message: `data did not load: ${describeThrown(e, maxPages)}` }]
  }

  let current: LoadedPolicy | undefined = loaded
  const memory = loaded.mem
  const heapGet = exports.opa_heap_ptr_get as () => number
  const run =
    minor >= 2
      ? directEval(loaded, exports, memory)
      : (p: LoadedPolicy, input: string | ArrayBuffer, entrypoint: number) =>
          p.evaluate(typeof input === 'string' ? encoder.encode(input).buffer : input, entrypoint)
  // Host builtins read the evaluation's scope (clock, per-decision caches); a module that imports
  // none runs without one.
  const scoped = builtins.length > 0
  return {
    entrypoints,
    builtins,
    abiVersion: `1.${minor}`,
    evaluate(input: string | ArrayBuffer, entrypoint: number, label = 'entrypoint'): EvalResult {
      const p = current
      if (p === undefined) return { ok: false, error: `${label}: the bundle was released (policy replaced)` }
      let rs: unknown
      try {
        rs = scoped ? inScope(() => run(p, input, entrypoint)) : run(p, input, entrypoint)
      } catch (e) {
        return { ok: false, error: `${label}: ${describeThrown(e, maxPages)}` }
      }
      return resultValue(rs, label)
    },
    heapPointer: () => heapGet(),
    memoryPages: () => memory.buffer.byteLength / 65536,
    dispose() {
      current = undefined
    },
  }
}

const encoder = new TextEncoder()

/** The SDK's state after `setData`: where data lives and where each evaluation's heap starts. */
interface SdkState {
  readonly dataAddr: number
  readonly dataHeapPtr: number
}

/**
 * ABI 1.2's one-call evaluation, as the SDK's `evaluate` does it, but writing JSON text straight
 * into the module's memory (no intermediate byte array, no second copy) and reading the result
 * through one cached view. `opa_eval` parses the input at the heap start and resets the heap to
 * just after it, so every evaluation starts from the same heap.
 */
function directEval(
  loaded: LoadedPolicy,
  exports: Exports,
  memory: { buffer: ArrayBuffer; grow(pages: number): number },
): (p: LoadedPolicy, input: string | ArrayBuffer, entrypoint: number) => unknown {
  const opaEval = exports.opa_eval as (
    ctx: number,
    entrypoint: number,
    data: number,
    input: number,
    len: number,
    heap: number,
    format: number,
  ) => number
  const state = loaded as unknown as SdkState
  let view = new Uint8Array(memory.buffer)
  // Growing the memory (here or inside the module) detaches the old buffer, which leaves the view
  // empty: checking its length spares a call to the `buffer` accessor on every evaluation.
  const fresh = (): Uint8Array => {
    if (view.byteLength === 0) view = new Uint8Array(memory.buffer)
    return view
  }
  /** Grow the memory so that `end` bytes fit (the SDK's rounding: whole pages). */
  const reserve = (end: number): void => {
    const short = end - memory.buffer.byteLength
    if (short > 0) memory.grow(Math.ceil(short / 65536))
  }
  // The memory from the heap start on, kept while neither moves (a view per call costs more).
  let tail: Uint8Array = view.subarray(0, 0)
  let tailAt = -1
  const fromHeapStart = (addr: number): Uint8Array => {
    if (tailAt !== addr || tail.byteLength === 0) {
      tail = fresh().subarray(addr)
      tailAt = addr
    }
    return tail
  }
  return (_p, input, entrypoint) => {
    const addr = state.dataHeapPtr
    let len: number
    if (typeof input === 'string') {
      // Encode straight into the module's memory; when the room after the heap start is too small
      // for the text, grow by exactly its UTF-8 length and encode again.
      const written = encoder.encodeInto(input, fromHeapStart(addr))
      if (written.read === input.length) len = written.written
      else {
        len = utf8Length(input)
        reserve(addr + len)
        encoder.encodeInto(input, fresh().subarray(addr, addr + len))
      }
    } else {
      len = input.byteLength
      reserve(addr + len)
      fresh().set(new Uint8Array(input), addr)
    }
    // No input at all (the SDK's `if (input)`): address 0.
    const none = len === 0 && typeof input === 'string'
    const ret = opaEval(0, entrypoint, state.dataAddr, none ? 0 : addr, len, addr + len, 0)
    const out = fresh()
    // A boolean rule's usual answer is read off the bytes, without decoding and parsing them.
    if (out[ret + 11] === 116 && isText(out, ret, TRUE_SET_TEXT)) return TRUE_SET
    if (out[ret + 11] === 102 && isText(out, ret, FALSE_SET_TEXT)) return FALSE_SET
    let end = out.indexOf(0, ret)
    if (end === -1) end = out.length
    return JSON.parse(decoder.decode(out.subarray(ret, end)))
  }
}

const decoder = new TextDecoder()

/** The result sets of a boolean rule, as `opa_eval` writes them (NUL-terminated) and parsed. */
const TRUE_SET_TEXT = encoder.encode('[{"result":true}]\0')
const FALSE_SET_TEXT = encoder.encode('[{"result":false}]\0')
const TRUE_SET = Object.freeze([Object.freeze({ result: true })])
const FALSE_SET = Object.freeze([Object.freeze({ result: false })])

/** True when `mem` holds exactly `text` at `at`. */
function isText(mem: Uint8Array, at: number, text: Uint8Array): boolean {
  if (at + text.length > mem.length) return false
  for (let k = 0; k < text.length; k++) if (mem[at + k] !== text[k]) return false
  return true
}
