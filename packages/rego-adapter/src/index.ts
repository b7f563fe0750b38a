/**
 * @verdict/rego-adapter — compiled Rego as verdict rules. Loads OPA bundles built with
 * `opa build -t wasm` (or a raw `.wasm` plus data), checks them at load (ABI, exports, entrypoints,
 * builtins), and evaluates them in-process on the OPA-Envoy or Authorino input dialect. Every
 * failure inside an evaluation is an error value, which core turns into a fail-closed deny.
 */
export { authorinoInput } from './input/authorino.js'
export { opaEnvoyInput } from './input/opa-envoy.js'
export {
  type BundleModule,
  bundleFromWasm,
  DEFAULT_MAX_BUNDLE_BYTES,
  type RegoBundle,
  type RegoBundleBytes,
  readBundle,
} from './read-bundle.js'
export {
  createRegoEvaluator,
  type RegoDialect,
  type RegoOptions,
  type RegoRuleConfig,
} from './rego-evaluator.js'
export {
  DEFAULT_INITIAL_PAGES,
  DEFAULT_MAX_PAGES,
  type LoadRegoPolicyOptions,
  loadRegoPolicy,
  type RegoBuiltin,
  type RegoLoadProblem,
  type RegoMemoryOptions,
  type RegoPolicy,
  SDK_BUILTINS,
} from './rego-policy.js'
