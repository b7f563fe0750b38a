/**
 * `verdict eval`: decide one input against a policy and print the Decision as JSON.
 */
import { readFile } from 'node:fs/promises'
import { createEngine, type Decision, type Engine, loadPolicyFile } from '@verdict/core'
import { type Command, Option } from 'commander'
import { loadEvaluators } from './evaluators.js'
import type { Io } from './io.js'
import { loadEngine } from './load-engine.js'
import { displayPath, formatLocated } from './problems.js'

/** Exit status when a decision was made (allow or deny). */
const EXIT_DECIDED = 0
/** Exit status of `--fail` on a denial and of `--fail-defined` on an allow. */
const EXIT_FAIL = 1
/** Exit status when the policy or the input is invalid. */
export const EXIT_INVALID = 2

/** Line and column (1-based) of a character offset. */
function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset)
  const line = before.split('\n').length
  return `${line}:${offset - before.lastIndexOf('\n')}`
}

/** Parse the input document, or say where it is broken. */
function parseInput(text: string, name: string): { value: unknown } | { error: string } {
  try {
    return { value: JSON.parse(text) }
  } catch (e) {
    const msg = (e as Error).message
    const pos = /position (\d+)/.exec(msg)
    const at = pos ? `:${lineCol(text, Number(pos[1]))}` : ''
    return { error: `${name}${at}: invalid JSON: ${msg}` }
  }
}

interface EvalOptions {
  readonly policy: string
  readonly input?: string
  readonly json?: boolean
  /** Exit 1 when the request is not allowed (opa eval's `--fail`: the `allow` result is undefined). */
  readonly fail?: boolean
  /** Exit 1 when the request is allowed (opa eval's `--fail-defined`). */
  readonly failDefined?: boolean
  /** Also print each rule's outcome, and why, on stderr. */
  readonly explain?: boolean
}

type Obj = Record<string, unknown>

/** Each rule of the policy text: id, layer, action and what it tests, in policy order. */
function rulesOf(
  policy: Obj,
): Array<{ id: string; layer: string | undefined; action: string; test: string }> {
  const out: Array<{ id: string; layer: string | undefined; action: string; test: string }> = []
  const add = (rules: unknown, layer: string | undefined) => {
    if (!Array.isArray(rules)) return
    for (const r of rules as Obj[]) {
      if (typeof r?.id !== 'string') continue
      const kinds = Object.keys(r).filter(
        (k) => !['id', 'action', 'description', 'shadow', 'headers', 'response', 'responses'].includes(k),
      )
      const test = kinds
        .map((k) => `${k}: ${typeof r[k] === 'string' ? r[k] : JSON.stringify(r[k])}`)
        .join(', ')
      out.push({ id: r.id, layer, action: typeof r.action === 'string' ? r.action : 'allow', test })
    }
  }
  add(policy.rules, undefined)
  if (Array.isArray(policy.layers))
    for (const l of policy.layers as Obj[]) add(l?.rules, typeof l?.name === 'string' ? l.name : undefined)
  return out
}

/**
 * `--explain`: the same input through a dry-run copy of the policy (`shadow: true`: every rule is
 * evaluated and recorded, none enforced), one line per rule with its outcome and its condition.
 */
async function explain(
  path: string,
  input: unknown,
  decision: Decision,
  o: EvalOptions,
  io: Io,
): Promise<void> {
  const file = await loadPolicyFile(path)
  const policy = file.source.value as Obj
  const { evaluators } = await loadEvaluators()
  let dry: Engine | undefined
  let records: Decision['shadow'] = []
  try {
    dry = await createEngine({ ...policy, shadow: true }, { resources: file.resources, evaluators })
    records = (await dry.decide(input)).shadow ?? []
  } finally {
    dry?.close()
  }
  const byRule = new Map((records ?? []).map((r) => [r.rule, r]))
  const rules = rulesOf(policy).map((r) => {
    const rec = byRule.get(r.id)
    const outcome = rec === undefined ? 'not evaluated' : rec.outcome
    return {
      rule: r.id,
      ...(r.layer !== undefined ? { layer: r.layer } : {}),
      action: r.action,
      outcome,
      wouldDecide: rec?.wouldDecide ?? 'none',
      ...(rec?.error !== undefined ? { error: rec.error } : {}),
      decided: decision.rule === r.id,
      condition: r.test,
    }
  })
  const verdict = `${decision.allowed ? 'allow' : 'deny'} ${decision.status} (${decision.code})`
  if (o.json === true) {
    io.stderr(
      `${JSON.stringify({ explain: { decision: verdict, rule: decision.rule ?? null, reason: decision.reason, rules } })}\n`,
    )
    return
  }
  const lines = [
    `explain: ${verdict}${decision.rule !== undefined ? ` by rule ${decision.rule}` : ''}: ${decision.reason}`,
  ]
  if (rules.length === 0) lines.push('  (the policy has no rules)')
  if (records === undefined || records.length === 0)
    lines.push('  (no rule ran: the request was decided before the rules, see the reason above)')
  const width = Math.max(...rules.map((r) => r.rule.length), 4)
  for (const r of rules) {
    const what =
      r.outcome === 'error'
        ? `error: ${r.error}`
        : r.outcome === 'match'
          ? `matched${r.wouldDecide !== 'none' ? `, would ${r.wouldDecide}` : ''}`
          : r.outcome === 'no_match'
            ? `did not match${r.wouldDecide !== 'none' ? `, would ${r.wouldDecide}` : ''}`
            : r.outcome
    const at = r.layer !== undefined ? `${r.layer}/` : ''
    lines.push(
      `  ${r.decided ? '*' : ' '} ${`${at}${r.rule}`.padEnd(width)}  ${r.action.padEnd(7)} ${what}   (${r.condition})`,
    )
  }
  io.stderr(`${lines.join('\n')}\n`)
}

/** Run `verdict eval`; returns the exit status. */
async function runEval(o: EvalOptions, io: Io): Promise<number> {
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
    const pretty = io.isTTY && o.json !== true
    // The Decision is printed for every answer, the 400 and 415 of an input refused too.
    io.stdout(`${JSON.stringify(decision, null, pretty ? 2 : undefined)}\n`)
    if (decision.code === 'malformed_input') {
      io.stderr(`${name}: ${decision.reason}\n`)
      return EXIT_INVALID
    }
    if (o.explain === true) await explain(loaded.path, parsed.value, decision, o, io)
    if (o.fail === true && !decision.allowed) return EXIT_FAIL
    if (o.failDefined === true && decision.allowed) return EXIT_FAIL
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
    .option('--json', 'one-line JSON even on a terminal (and --explain as JSON)')
    .addOption(
      new Option(
        '--fail',
        "exit 1 when the request is not allowed (opa eval's --fail: allow undefined)",
      ).conflicts('failDefined'),
    )
    .option('--fail-defined', "exit 1 when the request is allowed (opa eval's --fail-defined)")
    .option('--explain', "print each rule's outcome and condition, and what decided, on stderr")
    .addHelpText(
      'after',
      '\nExit status: 0 when a decision was made (allow or deny); 1 with --fail on a deny or with\n' +
        '--fail-defined on an allow; 2 when the policy or the input is invalid (the Decision of a\n' +
        'refused input, 400 or 415, is still printed).',
    )
    .action(async (opts: EvalOptions) => setExit(await runEval(opts, io)))
}
