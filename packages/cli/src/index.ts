/**
 * @verdict/cli — the `verdict` command: `eval` one input, `check` a policy, `test` case files,
 * `serve` it as an Envoy ext_authz sidecar. Each command is a small module registering itself on a
 * commander program.
 *
 * The package's API is `main(argv, io?)`, what the `verdict` bin runs: it returns the exit code.
 * Everything else is the command's own plumbing and not exported.
 */
export type { Io } from './io.js'
export { main } from './main.js'
