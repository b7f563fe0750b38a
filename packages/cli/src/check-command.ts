/**
 * `verdict check`: compile a policy with every evaluator and report every problem with its
 * location.
 */
import type { Command } from 'commander'
import { EXIT_INVALID } from './eval-command.js'
import type { Io } from './io.js'
import { loadEngine } from './load-engine.js'
import { displayPath, formatLocated } from './problems.js'

interface CheckOptions {
  readonly policy: string
  readonly json?: boolean
}

/** Run `verdict check`; returns the exit status (0 valid, 2 invalid). */
async function runCheck(o: CheckOptions, io: Io): Promise<number> {
  const loaded = await loadEngine(o.policy)
  if (loaded.ok) {
    const name = loaded.engine.info.name
    loaded.engine.close()
    if (o.json) io.stdout(`${JSON.stringify({ ok: true, file: loaded.path, name, problems: [] })}\n`)
    else io.stdout(`${displayPath(loaded.path)}: ok (policy "${name}")\n`)
    return 0
  }
  if (o.json) {
    io.stdout(
      `${JSON.stringify({ ok: false, file: loaded.problems[0]?.file, problems: loaded.problems, notes: loaded.notes })}\n`,
    )
  } else {
    const n = loaded.problems.length
    io.stderr(
      `${formatLocated(loaded.problems)}${loaded.notes.map((x) => `${x}\n`).join('')}${n} problem${n === 1 ? '' : 's'}\n`,
    )
  }
  return EXIT_INVALID
}

/** Register `check` on the program. */
export function registerCheck(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('check')
    .description('compile a policy and report every problem with file:line:column')
    .requiredOption('-p, --policy <file>', 'policy file (YAML or JSON)')
    .option('--json', 'print {ok, problems} as JSON on stdout')
    .addHelpText('after', '\nExit status: 0 when the policy is valid, 2 when it has problems.')
    .action(async (opts: CheckOptions) => setExit(await runCheck(opts, io)))
}
