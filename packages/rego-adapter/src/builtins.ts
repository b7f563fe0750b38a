/**
 * Rego builtins that `opa build -t wasm` leaves to the host (the module's `builtins()` export
 * names them) and that need no I/O, implemented in JavaScript with OPA's results. The list of host
 * builtins comes from OPA itself (docs/rego.md, "Builtins"); `builtins.test.ts` derives it from
 * the `opa` binary and checks every name is either here or in `UNSUPPORTED_BUILTINS`.
 *
 * Conventions of every implementation: arguments are the JSON the SDK dumped (a Rego set arrives
 * as an array); a builtin error is `undefined` (OPA's default, non-strict `opa eval` makes the
 * expression undefined); numbers beyond 2^53 are returned as raw JSON text (`exactInt`).
 */
import { awsBuiltins } from './builtins/aws.js'
import { cryptoBuiltins } from './builtins/crypto.js'
import { globBuiltins } from './builtins/globs.js'
import { graphqlBuiltins } from './builtins/graphql.js'
import { jsonSchemaBuiltins } from './builtins/jsonschema.js'
import { keyBuiltins } from './builtins/keys.js'
import { miscBuiltins } from './builtins/misc.js'
import { netBuiltins } from './builtins/net.js'
import { regoParseBuiltins } from './builtins/rego-parse.js'
import { type DecisionScope, setScope } from './builtins/scope.js'
import { patchSdkBuiltins, sdkBuiltins } from './builtins/sdk.js'
import { templateBuiltins } from './builtins/template.js'
import { timeBuiltins } from './builtins/time.js'
import { valueBuiltins } from './builtins/values.js'
import { x509Builtins } from './builtins/x509.js'
import type { RegoBuiltin } from './rego-policy.js'

export { currentScope, type DecisionScope } from './builtins/scope.js'

/** Every host builtin verdict provides, by Rego name. */
export const HOST_BUILTINS: Readonly<Record<string, RegoBuiltin>> = Object.freeze(
  Object.assign(
    Object.create(null),
    miscBuiltins,
    valueBuiltins,
    cryptoBuiltins,
    netBuiltins,
    timeBuiltins,
    sdkBuiltins,
    jsonSchemaBuiltins,
    graphqlBuiltins,
    keyBuiltins,
    globBuiltins,
    awsBuiltins,
    x509Builtins,
    templateBuiltins,
    regoParseBuiltins,
  ),
)

// The SDK dispatches `sprintf` and `yaml.*` to its own implementations first; make those OPA's.
patchSdkBuiltins()

const IO = 'network or host I/O, which verdict does not do inside a decision'

/**
 * Host builtins a module may import that verdict refuses at load, with the reason. A host that can
 * do better registers its own in `RegoOptions.builtins`.
 */
export const UNSUPPORTED_BUILTINS: Readonly<Record<string, string>> = Object.freeze(
  Object.assign(Object.create(null), {
    'http.send': IO,
    'net.lookup_ip_addr': IO,
    'opa.runtime': "the OPA runtime's configuration and environment, which verdict has not",
  }),
)

/** Run `fn` (one or more evaluations) with the decision's clock and per-decision caches. */
export function withDecisionScope<T>(scope: DecisionScope, fn: () => T): T {
  const prev = setScope(scope)
  try {
    return fn()
  } finally {
    setScope(prev)
  }
}

const SCOPES = {}

/**
 * The scope of one verdict decision: `time.now_ns` is `ctx.now`, and `uuid.rfc4122` / `rand.intn`
 * answer the same key with the same value for every rule of the decision.
 */
export function decisionScope(ctx: {
  readonly now: number
  memo<T>(key: object, make: () => T): T
}): DecisionScope {
  return ctx.memo(SCOPES, () => ({ nowMs: ctx.now, cache: new Map() }))
}

/**
 * The load error for a module that imports a builtin verdict refuses, with the Rego rules that
 * call it when the module names its functions (`called in data.envoy.authz.allow`).
 */
export function unsupportedBuiltinMessage(
  name: string,
  reason: string,
  callers: readonly string[] = [],
): string {
  const where = callers.length > 0 ? `, called in ${callers.slice(0, 5).join(', ')}` : ''
  return (
    `module needs builtin "${name}"${where} (${reason}); ` +
    'remove the call from the Rego source or register an implementation in RegoOptions.builtins'
  )
}
