/**
 * @verdict/cli — the `verdict` command: `eval` one input, `check` a policy, `test` case files,
 * `serve` it as an Envoy ext_authz sidecar. Each command is a small module registering itself on a commander program.
 */
export { type CheckOptions, runCheck } from './check-command.js'
export { type EvalOptions, EXIT_DECIDED, EXIT_INVALID, parseInput, runEval } from './eval-command.js'
export {
  EVALUATOR_SOURCES,
  type EvaluatorSource,
  type LoadedEvaluators,
  loadEvaluators,
} from './evaluators.js'
export { type Io, processIo } from './io.js'
export { parseListenAddress } from './listen-address.js'
export { type LoadResult, loadEngine } from './load-engine.js'
export { COMMANDS, createProgram, main, type RegisterCommand } from './main.js'
export { formatLocated, type LocatedProblem, problemsOf } from './problems.js'
export { DEFAULT_GRPC, DEFAULT_METRICS, runServe, type ServeOptions } from './serve-command.js'
export { EXIT_FAILED, findCaseFiles, runTest, type TestOptions } from './test-command.js'
