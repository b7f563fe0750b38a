/**
 * `verdict convert <resources.yaml>`: print the verdict policy Kubernetes resources become
 * (XAccessPolicy, Authorino AuthConfig, ...; docs/kubernetes.md), or every problem at its line.
 */
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { importResources } from '@verdict/import'
import type { Command } from 'commander'
import { stringify } from 'yaml'
import { EXIT_INVALID } from './eval-command.js'
import { externalAuthOption } from './import-hook.js'
import type { Io } from './io.js'
import { formatLocated } from './problems.js'

interface ConvertOptions {
  readonly target?: string
  readonly externalAuth?: readonly string[]
  readonly json?: boolean
}

/** Run `verdict convert`; returns the exit status (0 converted, 2 problems). */
async function runConvert(file: string, o: ConvertOptions, io: Io): Promise<number> {
  const abs = resolve(file)
  let text: string
  try {
    text = await readFile(abs, 'utf8')
  } catch (e) {
    io.stderr(`${file}: cannot read: ${(e as Error).message}\n`)
    return EXIT_INVALID
  }
  let externalAuth: Record<string, Record<string, unknown>>
  try {
    externalAuth = externalAuthOption(o.externalAuth)
  } catch (e) {
    io.stderr(`${(e as Error).message}\n`)
    return EXIT_INVALID
  }
  const r = importResources(text, {
    ...(o.target !== undefined ? { target: o.target } : {}),
    ...(Object.keys(externalAuth).length > 0 ? { externalAuth } : {}),
  })
  if (r.problems.length > 0 || r.policy === undefined) {
    const problems = r.problems.map((p) => ({ ...p, file: abs }))
    if (o.json) io.stdout(`${JSON.stringify({ ok: false, problems, targets: r.targets })}\n`)
    else
      io.stderr(`${formatLocated(problems)}${problems.length} problem${problems.length === 1 ? '' : 's'}\n`)
    return EXIT_INVALID
  }
  io.stdout(o.json ? `${JSON.stringify(r.policy)}\n` : stringify(r.policy, { lineWidth: 0 }))
  return 0
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v]

/** Register `convert` on the program. */
export function registerConvert(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('convert')
    .description('print the verdict policy that Kubernetes resources (XAccessPolicy, AuthConfig, ...) become')
    .argument('<file>', 'YAML with one or more resources (a kubectl List too)')
    .option('--target <name>', 'the backend whose policies to convert, when the file targets several')
    .option(
      '--external-auth <ref=file>',
      'an ExternalAuth Service (namespace/name) as a verdict policy file',
      collect,
    )
    .option('--json', 'print the policy as JSON')
    .addHelpText(
      'after',
      '\nExit status: 0 when converted, 2 when the file has problems (each at file:line:col).',
    )
    .action(async (file: string, opts: ConvertOptions) => {
      // `--target` and `--external-auth` are also the program's own options, which take them first.
      const g = program.opts<ConvertOptions>()
      const externalAuth = [...(g.externalAuth ?? []), ...(opts.externalAuth ?? [])]
      const target = opts.target ?? g.target
      setExit(
        await runConvert(
          file,
          {
            ...opts,
            ...(target !== undefined ? { target } : {}),
            ...(externalAuth.length > 0 ? { externalAuth } : {}),
          },
          io,
        ),
      )
    })
}
