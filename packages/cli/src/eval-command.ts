/**
 * `verdict eval`: decide one input against a policy and print the Decision as JSON.
 */
import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import type { Io } from './io.js'
import { loadEngine } from './load-engine.js'
import { displayPath, formatLocated } from './problems.js'

/** Exit status when a decision was made (allow or deny). */
export const EXIT_DECIDED = 0
/** Exit status when the policy or the input is invalid. */
export const EXIT_INVALID = 2

/** Line and column (1-based) of a character offset. */
function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset)
  const line = before.split('\n').length
  return `${line}:${offset - before.lastIndexOf('\n')}`
}

/** Parse the input document, or say where it is broken. */
export function parseInput(text: string, name: string): { value: unknown } | { error: string } {
  try {
    return { value: JSON.parse(text) }
  } catch (e) {
    const msg = (e as Error).message
    const pos = /position (\d+)/.exec(msg)
    const at = pos ? `:${lineCol(text, Number(pos[1]))}` : ''
    return { error: `${name}${at}: invalid JSON: ${msg}` }
  }
}

export interface EvalOptions {
  readonly policy: string
  readonly input?: string
  readonly json?: boolean
}

/** Run `verdict eval`; returns the exit status. */
export async function runEval(o: EvalOptions, io: Io): Promise<number> {
  const loaded = await loadEngine(o.policy)
  if (!loaded.ok) {
    io.stderr(formatLocated(loaded.problems) + loaded.notes.map((n) => `${n}\n`).join(''))
    return EXIT_INVALID
  }
  const engine = loaded.engine
  try {
    const fromStdin = o.input === undefined || o.input === '-'
    let text: string
    try {
      text = fromStdin ? await io.readStdin() : await readFile(o.input!, 'utf8')
    } catch (e) {
      io.stderr(`cannot read input ${o.input}: ${(e as Error).message}\n`)
      return EXIT_INVALID
    }
    const name = fromStdin ? '<stdin>' : displayPath(o.input!)
    const parsed = parseInput(text, name)
    if ('error' in parsed) {
      io.stderr(`${parsed.error}\n`)
      return EXIT_INVALID
    }
    const decision = await engine.decide(parsed.value)
    if (decision.code === 'malformed_input') {
      io.stderr(`${name}: ${decision.reason}\n`)
      return EXIT_INVALID
    }
    const pretty = io.isTTY && o.json !== true
    io.stdout(`${JSON.stringify(decision, null, pretty ? 2 : undefined)}\n`)
    return EXIT_DECIDED
  } finally {
    engine.close()
  }
}

/** Register `eval` on the program. */
export function registerEval(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('eval')
    .description('decide one input against a policy and print the Decision as JSON')
    .requiredOption('-p, --policy <file>', 'policy file (YAML or JSON)')
    .option(
      '-i, --input <file>',
      'input as JSON: a CheckRequest or an HTTP-shaped object ("-" for stdin)',
      '-',
    )
    .option('--json', 'one-line JSON even on a terminal')
    .addHelpText(
      'after',
      '\nExit status: 0 when a decision was made (allow or deny), 2 when the policy or the input is invalid.',
    )
    .action(async (opts: EvalOptions) => setExit(await runEval(opts, io)))
}
