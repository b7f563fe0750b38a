// docs/cli.md lists every command the program has, and every flag of each, as `verdict <cmd> --help`
// prints them; the root package.json runs the CLI as `pnpm verdict ...`.
import { readFileSync } from 'node:fs'
import { type Io, main } from '@verdict/cli'
import { expect, test } from 'vitest'

const doc = readFileSync(new URL('../docs/cli.md', import.meta.url), 'utf8')

async function help(args: string[]): Promise<string> {
  let out = ''
  const io: Io = {
    stdout: (t) => {
      out += t
    },
    stderr: () => {},
    isTTY: false,
    readStdin: async () => '',
  }
  await main(['node', 'verdict', ...args, '--help'], io)
  return out
}

/** Subcommand names in a help text's "Commands:" section, without commander's `help`. */
function commandsIn(text: string): string[] {
  const section = /\nCommands:\n([\s\S]*)$/.exec(text)?.[1] ?? ''
  return [...section.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!).filter((c) => c !== 'help')
}

/** Long flags in a help text's "Options:" section, without --help and --version. */
function flagsIn(text: string): string[] {
  const section = /\nOptions:\n([\s\S]*?)(?:\n\n|$)/.exec(text)?.[1] ?? ''
  return [...section.matchAll(/^ {2}(?:-[A-Za-z], )?(--[a-z][a-z-]*)/gm)]
    .map((m) => m[1]!)
    .filter((f) => f !== '--help' && f !== '--version')
}

async function everyCommand(): Promise<string[][]> {
  const out: string[][] = []
  const walk = async (path: string[]) => {
    const subs = commandsIn(await help(path))
    if (path.length > 0 && subs.length === 0) out.push(path)
    for (const s of subs) await walk([...path, s])
  }
  await walk([])
  return out
}

test('every command has a row in the command table', async () => {
  const commands = await everyCommand()
  expect(commands.map((c) => c.join(' '))).toEqual(expect.arrayContaining(['eval', 'check', 'test', 'serve']))
  const rows = [...doc.matchAll(/^\| `verdict ([a-z ]+?)(?: [-<[]|`)/gm)].map((m) => m[1]!.trim())
  for (const c of commands)
    expect(rows, `docs/cli.md has no row for verdict ${c.join(' ')}`).toContain(c.join(' '))
})

test('every flag of every command is documented', async () => {
  const missing: string[] = []
  for (const c of [[], ...(await everyCommand())])
    for (const flag of flagsIn(await help(c)))
      if (!new RegExp(`\`[^\`]*${flag}(?![a-z-])`).test(doc))
        missing.push(`verdict ${c.join(' ')} ${flag}`.replace('  ', ' '))
  expect(missing).toEqual([])
})

test('the docs do not call a command "meant to register"', () => {
  expect(doc).not.toMatch(/meant to/)
})

test('`pnpm verdict` runs the CLI at the repository root', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  expect(pkg.scripts.verdict).toBe('node packages/cli/bin/verdict.js')
})
