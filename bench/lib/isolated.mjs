// Run a suite in a child process and hand its sections to the parent's report. Node 20's V8
// occasionally dies in the deoptimizer ("Fatal error ... unreachable code",
// Deoptimizer::DoComputeBuiltinContinuation) during long mixed runs; in a child such a crash
// costs one retry instead of the whole `pnpm bench`.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ATTEMPTS = 3

function attempt(suite, args) {
  return new Promise((resolve) => {
    const sections = []
    const child = fork(fileURLToPath(import.meta.url), [suite.href], {
      execArgv: args,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    child.on('message', (m) => sections.push(m))
    child.on('exit', (code, signal) => resolve({ code, signal, sections }))
  })
}

/**
 * Run the suite module at `suite` (default export `(report) => Promise<void>`) in a fresh Node
 * process, retrying when it dies of a signal; its sections go to `report`.
 */
export async function runIsolated(suite, report, execArgv = []) {
  const failures = []
  for (let i = 0; i < ATTEMPTS; i++) {
    const r = await attempt(suite, execArgv)
    if (r.code === 0) {
      for (const s of r.sections) report.section(s.title, s.markdown)
      return
    }
    failures.push(r.signal ?? `exit ${r.code}`)
    if (r.signal === null) break
    console.error(`note: ${suite.pathname} died (${r.signal}); retrying`)
  }
  throw new Error(`${suite.pathname} failed: ${failures.join(', ')}`)
}

// As the child: run the suite and send each section to the parent.
if (process.send !== undefined && process.argv[2] !== undefined) {
  const mod = await import(process.argv[2])
  await mod.default({ section: (title, markdown) => process.send({ title, markdown }) })
  process.disconnect()
}
