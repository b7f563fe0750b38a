/**
 * @verdict/cel-adapter — CEL rule bodies for verdict policies, with agentgateway's variable names
 * (`request`, `jwt`, `source`, `destination`, `mcp`, `metadata`, `context`).
 *
 * Expressions compile when the policy loads (syntax, unknown variables and functions, limits);
 * evaluation errors come back as values that the engine turns into fail-closed outcomes. The CEL
 * engine (`@bufbuild/cel`, RE2 regular expressions) stays behind this package's interface.
 */
export { type CelOptions, createCelEvaluator, toPlain } from './cel-evaluator.js'
export {
  type CelEnvironment,
  type CelLimits,
  type CelProblem,
  type CelProblemCode,
  type CelRunResult,
  type CompiledExpression,
  compileCel,
  createCelEnvironment,
  DEFAULT_CEL_LIMITS,
} from './compile-cel.js'
export { celView } from './value-view.js'
export { RequestVariables, requestVariables, VARIABLE_NAMES, type VariableName } from './variables.js'
