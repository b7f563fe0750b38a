/**
 * What a command may touch of its process: output streams, standard input, the terminal check.
 * Injected so the commands run the same in tests as from the shell.
 */
import { text } from 'node:stream/consumers'

export interface Io {
  /** Write to standard output (text as given, no newline added). */
  stdout(text: string): void
  stderr(text: string): void
  /** True when standard output is a terminal: human output by default. */
  readonly isTTY: boolean
  /** Read all of standard input as UTF-8. */
  readStdin(): Promise<string>
}

/** The real process's streams. */
export function processIo(): Io {
  return {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    isTTY: process.stdout.isTTY === true,
    readStdin: () => text(process.stdin),
  }
}
