// `pnpm test`: vitest with coverage, then one plain closing line `N passed, M failed, K skipped`
// (CI reads it), exiting with vitest's status. Extra arguments go to vitest.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'

const out = 'coverage/vitest-results.json'
mkdirSync('coverage', { recursive: true })
const args = [
  'vitest',
  'run',
  '--coverage',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${out}`,
  ...process.argv.slice(2),
]
const r = spawnSync('npx', args, { stdio: 'inherit' })
if (existsSync(out)) {
  const j = JSON.parse(readFileSync(out, 'utf8'))
  const skipped = (j.numPendingTests ?? 0) + (j.numTodoTests ?? 0)
  console.log(`\n${j.numPassedTests} passed, ${j.numFailedTests} failed, ${skipped} skipped`)
}
process.exit(r.status ?? 1)
