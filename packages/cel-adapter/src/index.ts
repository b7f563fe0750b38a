/**
 * @verdict/cel-adapter — CEL rule bodies for verdict policies, with agentgateway's variable names
 * (`request`, `jwt`, `source`, `destination`, `mcp`, `metadata`, `context`).
 *
 * Expressions compile when the policy loads (syntax, unknown variables and functions, limits);
 * evaluation errors come back as values that the engine turns into fail-closed outcomes. The CEL
 * engine (`@bufbuild/cel`, RE2 regular expressions) stays behind this package's interface: the
 * package exports `createCelEvaluator`, its options and its limits, nothing of the compiler.
 */
export { type CelOptions, createCelEvaluator } from './cel-evaluator.js'
export { type CelLimits, DEFAULT_CEL_LIMITS } from './compile/limits.js'
export type { CelProblemCode } from './compile/problems.js'
