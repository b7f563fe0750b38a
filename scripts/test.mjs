// `pnpm test`: vitest with coverage, then one plain closing line `N passed, M failed, K skipped`
// (CI reads it), exiting with vitest's status. Extra arguments go to vitest.
// vitest's bin runs under this node directly: `npx` spawned by pnpm warns about pnpm's env config.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const out = 'coverage/vitest-results.json'
mkdirSync('coverage', { recursive: true })
const require = createRequire(new URL('../package.json', import.meta.url))
const vitestPackage = require.resolve('vitest/package.json')
const vitestBin = join(dirname(vitestPackage), require(vitestPackage).bin.vitest)
const args = [
  vitestBin,
  'run',
  '--coverage',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${out}`,
  ...process.argv.slice(2),
]
const r = spawnSync(process.execPath, args, { stdio: 'inherit' })
if (existsSync(out)) {
  const j = JSON.parse(readFileSync(out, 'utf8'))
  const skipped = (j.numPendingTests ?? 0) + (j.numTodoTests ?? 0)
  console.log(`\n${j.numPassedTests} passed, ${j.numFailedTests} failed, ${skipped} skipped`)
}
process.exit(r.status ?? 1)
