/**
 * The `rego` rule body: `rego: { bundle, entrypoint, dialect }`, with bundles declared in the
 * policy document's top-level `bundles` section (or given as bytes in `RegoOptions.bundles`).
 */
import {
  type CompileResult,
  type CompileSite,
  type EvalResult,
  type Evaluator,
  type Problem,
  type ProblemCode,
  pointer,
  type RequestContext,
  type RuleProgram,
  VerdictUsageError,
} from '@verdict/core'
import { resolveInputOptions } from '@verdict/core/internal'
import { decisionScope, withDecisionScope } from './builtins.js'
import { authorinoInput } from './input/authorino.js'
import { opaEnvoyInputText } from './input/opa-envoy-text.js'
import { answersStatusOnly, statusOnlyDenial } from './plugin-denial.js'
import {
  bundleFromWasm,
  DEFAULT_MAX_BUNDLE_BYTES,
  type RegoBundle,
  type RegoBundleBytes,
  readBundle,
  sniffBundle,
} from './read-bundle.js'
import {
  DEFAULT_INITIAL_PAGES,
  DEFAULT_MAX_PAGES,
  loadRegoPolicy,
  type RegoBuiltin,
  type RegoMemoryOptions,
  type RegoPolicy,
} from './rego-policy.js'

/** Which input document the policy was written against (protocols.md §3). */
export type RegoDialect = 'opa-envoy' | 'authorino'

/** A rule body as written in the policy document. */
export interface RegoRuleConfig {
  /** Name of a bundle in the document's `bundles` section or in `RegoOptions.bundles`. */
  readonly bundle: string
  /** Rule path in slash form, as given to `opa build -e` (`envoy/authz/allow`). */
  readonly entrypoint: string
  /** Input dialect; default `opa-envoy`. */
  readonly dialect?: RegoDialect
}

export interface RegoOptions {
  /** Bundles given as bytes by a library user, by name. A name may not also be in the document. */
  readonly bundles?: Readonly<Record<string, RegoBundleBytes>>
  /** Host builtins by Rego name, checked against what each module imports at load time. */
  readonly builtins?: Readonly<Record<string, RegoBuiltin>>
  /** Memory limits per module instance. */
  readonly memory?: RegoMemoryOptions
  /** Largest uncompressed bundle accepted (default 64 MiB). */
  readonly maxBundleBytes?: number
}

const DIALECTS: readonly RegoDialect[] = ['opa-envoy', 'authorino']
const ENTRYPOINT = /^[A-Za-z_][A-Za-z0-9_-]*(\/[A-Za-z_][A-Za-z0-9_-]*)*$/

const CONFIG_SCHEMA = {
  type: 'object',
  description: 'A rule decided by a compiled Rego bundle (OPA wasm).',
  additionalProperties: false,
  required: ['bundle', 'entrypoint'],
  properties: {
    bundle: {
      type: 'string',
      minLength: 1,
      description: 'Name of a bundle in the top-level bundles section.',
    },
    entrypoint: {
      type: 'string',
      pattern: ENTRYPOINT.source,
      description: 'Rule path in slash form, as given to `opa build -e` (envoy/authz/allow).',
    },
    dialect: { enum: DIALECTS, description: 'Input document: opa-envoy (default) or authorino.' },
  },
} as const

/**
 * Keys of the per-decision memo: the input serialized once per dialect, shared by every rego rule.
 * Exported for tests and benchmarks that hand a rule a prebuilt input text (not from the package).
 */
export const INPUT_TEXT_KEYS: Readonly<Record<RegoDialect, object>> = { 'opa-envoy': {}, authorino: {} }

/**
 * The input for `dialect` as JSON text, made once per decision; the policy writes the text
 * straight into the module's memory. The OPA-Envoy document is written as text directly
 * (input/opa-envoy-text.ts), without building its objects first.
 */
function inputText(ctx: RequestContext, dialect: RegoDialect, maxJsonDepth: number): string {
  return ctx.memo(INPUT_TEXT_KEYS[dialect], () =>
    dialect === 'authorino' ? JSON.stringify(authorinoInput(ctx)) : opaEnvoyInputText(ctx, maxJsonDepth),
  )
}

/** The policy's `input.maxJsonDepth` (the schema checked it), for reading the body as the plugin does. */
function maxJsonDepthOf(document: Readonly<Record<string, unknown>>): number {
  const input = isObject(document.input) ? document.input : {}
  return resolveInputOptions(input as Parameters<typeof resolveInputOptions>[0]).maxJsonDepth
}

type Obj = Record<string, unknown>

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

function problem(code: ProblemCode, message: string, path: string): Problem {
  return { code, message, path }
}

/** A module instance shared by every rule of one policy that uses it, released with the last. */
interface SharedPolicy {
  readonly policy: RegoPolicy
  users: number
}

/** Problems of a shared load, reported with the first rule that meets them. */
interface Failed {
  readonly problems: Problem[]
  reported: boolean
}

type Loaded = { readonly bundle: RegoBundle } | Failed

/** Per policy document: bundles read, module instances made. */
interface DocumentState {
  readonly bundles: Map<string, Promise<Loaded>>
  readonly instances: Map<string, Promise<SharedPolicy | Failed>>
}

/** The problems the first time; afterwards a pointer to the bundle, so each is listed once. */
function reportOnce(f: Failed, bundle: string, rulePath: string): CompileResult {
  if (f.reported)
    return {
      ok: false,
      problems: [problem('rego_bundle', `bundle "${bundle}" failed to load`, `${rulePath}/bundle`)],
    }
  f.reported = true
  return { ok: false, problems: f.problems }
}

function positive(v: number | undefined, name: string): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 1))
    throw new VerdictUsageError(name, `RegoOptions.${name} must be a positive integer`)
}

/** Validate the rule body; problems carry JSON paths under `base`. */
function checkConfig(config: unknown, base: string): RegoRuleConfig | Problem[] {
  if (!isObject(config)) return [problem('rego_config', 'rego rule body must be an object', base)]
  const problems: Problem[] = []
  for (const k of Object.keys(config))
    if (!['bundle', 'entrypoint', 'dialect'].includes(k))
      problems.push(problem('rego_config', `unknown field "${k.slice(0, 64)}"`, `${base}${pointer(k)}`))
  if (typeof config.bundle !== 'string' || config.bundle === '')
    problems.push(problem('rego_config', 'bundle must be a non-empty string', `${base}/bundle`))
  if (typeof config.entrypoint !== 'string' || !ENTRYPOINT.test(config.entrypoint))
    problems.push(
      problem(
        'rego_config',
        'entrypoint must be a rule path in slash form (envoy/authz/allow)',
        `${base}/entrypoint`,
      ),
    )
  if (config.dialect !== undefined && !DIALECTS.includes(config.dialect as RegoDialect))
    problems.push(problem('rego_config', `dialect must be one of ${DIALECTS.join(', ')}`, `${base}/dialect`))
  if (problems.length > 0) return problems
  return config as unknown as RegoRuleConfig
}

/**
 * The Rego evaluator: rules `rego: { bundle, entrypoint, dialect }` evaluate a compiled OPA wasm
 * module on the request's OPA-Envoy or Authorino input. With `action: decide` the value may be a
 * boolean or an OPA-Envoy decision object; with allow/deny/require only `true` matches.
 *
 * @example
 * ```ts
 * const engine = await createEngine(
 *   `
 * bundles:
 *   authz: { path: bundle.tar.gz }
 * rules:
 *   - id: opa
 *     action: decide
 *     rego: { bundle: authz, entrypoint: envoy/authz/allow, dialect: opa-envoy }
 * `,
 *   { evaluators: [createRegoEvaluator()], resources: createFileResourceLoader({ baseDir: '.' }) },
 * )
 * ```
 */
export function createRegoEvaluator(options: RegoOptions = {}): Evaluator {
  positive(options.memory?.initialPages, 'memory.initialPages')
  positive(options.memory?.maxPages, 'memory.maxPages')
  positive(options.maxBundleBytes, 'maxBundleBytes')
  const initialPages = options.memory?.initialPages ?? DEFAULT_INITIAL_PAGES
  const maxPages = options.memory?.maxPages ?? DEFAULT_MAX_PAGES
  if (initialPages > maxPages)
    throw new VerdictUsageError(
      'memory.initialPages',
      'RegoOptions.memory.initialPages exceeds memory.maxPages',
    )
  const maxBundleBytes = options.maxBundleBytes ?? DEFAULT_MAX_BUNDLE_BYTES
  const memory = { initialPages, maxPages }
  const preloaded: Obj = Object.create(null)
  for (const [k, v] of Object.entries(options.bundles ?? {})) preloaded[k] = v
  const states = new WeakMap<object, DocumentState>()

  function stateFor(doc: object): DocumentState {
    let s = states.get(doc)
    if (s === undefined) {
      s = { bundles: new Map(), instances: new Map() }
      states.set(doc, s)
    }
    return s
  }

  async function readDeclared(name: string, site: CompileSite, at: string): Promise<Loaded> {
    const fail = (message: string, path = at, code: ProblemCode = 'rego_bundle'): Loaded => ({
      problems: [problem(code, message, path)],
      reported: false,
    })
    const declared = isObject(site.document.bundles) ? site.document.bundles : {}
    const inDoc = Object.hasOwn(declared, name)
    const given = Object.hasOwn(preloaded, name) ? (preloaded[name] as RegoBundleBytes) : undefined
    if (inDoc && given !== undefined)
      return fail(`bundle "${name}" is declared in the document and given in RegoOptions.bundles; keep one`)
    if (given !== undefined) return fromBytesSource(given, name, at)
    if (!inDoc) {
      const known = [...Object.keys(declared), ...Object.keys(preloaded)]
      return fail(
        `bundle "${name}" is not declared in /bundles${known.length > 0 ? ` (declared: ${known.join(', ')})` : ''}`,
        `${site.path}/bundle`,
        'rego_config',
      )
    }
    const decl = declared[name]
    if (!isObject(decl)) return fail('a bundle must be an object: {path}, {url} or {wasm, data?}')
    const keys = Object.keys(decl)
    const unknown = keys.filter((k) => !['path', 'url', 'wasm', 'data'].includes(k))
    if (unknown.length > 0)
      return fail(`unknown field "${unknown[0]!.slice(0, 64)}"`, `${at}${pointer(unknown[0]!)}`)
    const sources = ['path', 'url', 'wasm'].filter((k) => decl[k] !== undefined)
    if (sources.length !== 1) return fail('a bundle needs exactly one of path, url or wasm')
    const src = sources[0]!
    const location = decl[src]
    if (typeof location !== 'string' || location === '')
      return fail(`${src} must be a non-empty string`, `${at}/${src}`)
    if (src === 'url' && !/^https?:\/\//i.test(location))
      return fail('url must be an http(s) URL', `${at}/url`)
    if (decl.data !== undefined && (src !== 'wasm' || typeof decl.data !== 'string' || decl.data === ''))
      return fail('data (a JSON file path) goes only with wasm', `${at}/data`)
    let bytes: Uint8Array
    try {
      bytes = await site.resources.read(location)
    } catch (e) {
      return fail(
        `cannot read ${location}: ${(e as Error)?.message ?? String(e)}`,
        `${at}/${src}`,
        'resource',
      )
    }
    if (src === 'wasm') {
      let data: Uint8Array | undefined
      if (typeof decl.data === 'string') {
        try {
          data = await site.resources.read(decl.data)
        } catch (e) {
          return fail(
            `cannot read ${decl.data}: ${(e as Error)?.message ?? String(e)}`,
            `${at}/data`,
            'resource',
          )
        }
      }
      return fromBytesSource(data === undefined ? { wasm: bytes } : { wasm: bytes, data }, name, at)
    }
    const kind = sniffBundle(bytes)
    if (kind === 'wasm') return fromBytesSource({ wasm: bytes }, name, at)
    if (kind !== 'gzip')
      return fail(`${location} is neither a gzipped bundle nor a wasm module`, `${at}/${src}`)
    return fromBytesSource({ tarGz: bytes }, name, at)
  }

  async function fromBytesSource(src: RegoBundleBytes, name: string, at: string): Promise<Loaded> {
    const b =
      'tarGz' in src ? await readBundle(src.tarGz, maxBundleBytes) : bundleFromWasm(src.wasm, src.data)
    if (Array.isArray(b))
      return { problems: b.map((m) => problem('rego_bundle', `bundle "${name}": ${m}`, at)), reported: false }
    return { bundle: b }
  }

  async function instantiate(
    bundle: RegoBundle,
    modPath: string,
    at: string,
  ): Promise<SharedPolicy | Failed> {
    const mod = bundle.modules.find((m) => m.path === modPath)!
    const p = await loadRegoPolicy(mod.bytes, bundle.data, {
      memory,
      ...(options.builtins !== undefined ? { builtins: options.builtins } : {}),
    })
    if (Array.isArray(p))
      return { problems: p.map((x) => problem(x.code, `/${modPath}: ${x.message}`, at)), reported: false }
    return { policy: p, users: 0 }
  }

  async function compile(config: unknown, site: CompileSite): Promise<CompileResult> {
    const cfg = checkConfig(config, site.path)
    if (Array.isArray(cfg)) return { ok: false, problems: cfg }
    const dialect = cfg.dialect ?? 'opa-envoy'
    const state = stateFor(site.document)
    const inDoc = isObject(site.document.bundles) && Object.hasOwn(site.document.bundles, cfg.bundle)
    const at = inDoc ? pointer('bundles', cfg.bundle) : `${site.path}/bundle`
    let pending = state.bundles.get(cfg.bundle)
    if (pending === undefined) {
      pending = readDeclared(cfg.bundle, site, at)
      state.bundles.set(cfg.bundle, pending)
    }
    const loaded = await pending
    if ('problems' in loaded) return reportOnce(loaded, cfg.bundle, site.path)
    const bundle = loaded.bundle
    const listed = bundle.modules.find((m) => m.entrypoints.includes(cfg.entrypoint))
    const anyListed = bundle.modules.some((m) => m.entrypoints.length > 0)
    if (listed === undefined && anyListed) {
      const all = bundle.modules.flatMap((m) => m.entrypoints)
      return {
        ok: false,
        problems: [
          problem(
            'rego_entrypoint',
            `bundle "${cfg.bundle}" has no wasm entrypoint ${cfg.entrypoint} (manifest lists: ${all.slice(0, 10).join(', ')})`,
            `${site.path}/entrypoint`,
          ),
        ],
      }
    }
    const modPath = (listed ?? bundle.modules[0]!).path
    const key = `${cfg.bundle}\u0000${modPath}`
    let inst = state.instances.get(key)
    if (inst === undefined) {
      inst = instantiate(bundle, modPath, at)
      state.instances.set(key, inst)
    }
    const shared = await inst
    if ('problems' in shared) return reportOnce(shared, cfg.bundle, site.path)
    const id = shared.policy.entrypoints[cfg.entrypoint]
    if (id === undefined) {
      const names = Object.keys(shared.policy.entrypoints)
      return {
        ok: false,
        problems: [
          problem(
            'rego_entrypoint',
            `module /${modPath} of bundle "${cfg.bundle}" has no entrypoint ${cfg.entrypoint} (it has: ${names.slice(0, 10).join(', ')})`,
            `${site.path}/entrypoint`,
          ),
        ],
      }
    }
    shared.users++
    const label = `rego ${cfg.entrypoint}`
    // A denial without a body sends the status only, as OPA-Envoy does (plugin-denial.ts).
    const statusOnly = answersStatusOnly(site.document, site.path)
    const policy = shared.policy
    const maxJsonDepth = maxJsonDepthOf(site.document)
    // A module that imports no builtin from the host reads neither the decision's clock nor its
    // caches: it runs without setting up the decision scope.
    const scoped = policy.builtins.length > 0
    let released = false
    const program: RuleProgram = {
      evaluate(ctx: RequestContext): EvalResult {
        let input: string
        try {
          input = inputText(ctx, dialect, maxJsonDepth)
        } catch (e) {
          return {
            ok: false,
            error: `${label}: input could not be serialized: ${(e as Error)?.message ?? e}`,
          }
        }
        const r = scoped
          ? withDecisionScope(decisionScope(ctx), () => policy.evaluate(input, id, label))
          : policy.evaluate(input, id, label)
        return statusOnly && r.ok ? { ok: true, value: statusOnlyDenial(r.value) } : r
      },
      dispose() {
        if (released) return
        released = true
        if (--shared.users === 0) {
          policy.dispose()
          // Later compiles of the same document object read the bundles again.
          states.delete(site.document)
        }
      },
    }
    return { ok: true, program }
  }

  return { kind: 'rego', configSchema: CONFIG_SCHEMA, compile }
}
