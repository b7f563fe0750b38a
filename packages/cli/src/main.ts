/**
 * The `verdict` program: commander wiring of every command.
 */
import { Command, CommanderError } from 'commander'
import { registerBundle } from './bundle-command.js'
import { registerCheck } from './check-command.js'
import { registerConvert } from './convert-command.js'
import { registerEval } from './eval-command.js'
import { installImporter } from './import-hook.js'
import { type Io, processIo } from './io.js'
import { registerServe } from './serve-command.js'
import { registerTest } from './test-command.js'

/** A command module: adds one subcommand to the program. */
type RegisterCommand = (program: Command, io: Io, setExit: (code: number) => void) => void

/** Every subcommand, in help order. */
const COMMANDS: readonly RegisterCommand[] = [
  registerEval,
  registerCheck,
  registerTest,
  registerServe,
  registerBundle,
  registerConvert,
]

/** The program with every command; output goes through `io`. */
export function createProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command('verdict')
    .description('policy decisions for Envoy ext_authz, AI gateways and MCP servers')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) })
    .showHelpAfterError('(run with --help for usage)')
    // Policy files of Kubernetes resources (docs/kubernetes.md): which backend, which authorizer.
    .option('--target <name>', 'with a file of Kubernetes resources: the backend whose policies to use')
    .option(
      '--external-auth <ref=file>',
      'an ExternalAuth Service (namespace/name) as a verdict policy file',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .hook('preAction', () => {
      const o = program.opts<{ target?: string; externalAuth?: string[] }>()
      installImporter({
        ...(o.target !== undefined ? { target: o.target } : {}),
        ...(o.externalAuth !== undefined ? { externalAuth: o.externalAuth } : {}),
      })
    })
  for (const register of COMMANDS) register(program, io, setExit)
  return program
}

/**
 * Run the program on `argv` (as `process.argv`: node, script, arguments) and return the exit status.
 *
 * @example
 * ```ts
 * process.exitCode = await main(process.argv)
 * ```
 */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  let code = 0
  const program = createProgram(io, (c) => {
    code = c
  })
  try {
    await program.parseAsync([...argv])
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0) return 0
      // commander printed the problem already; a usage error exits like an invalid input.
      if (e.code === 'commander.help' || e.code === 'commander.executeSubCommandAsync') return 0
      return 2
    }
    io.stderr(`verdict: ${(e as Error)?.stack ?? String(e)}\n`)
    return 1
  }
  return code
}
