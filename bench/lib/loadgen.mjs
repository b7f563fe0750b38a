// Driving bench/lib/loadgen-child.mjs from a bench: pinning, the generator process, and the
// machine's noise (how long a core is taken from a spinning process). Shared by the sidecar,
// envoy and gRPC stack benches.
import { spawn, spawnSync } from 'node:child_process'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'

const LOADGEN = fileURLToPath(new URL('./loadgen-child.mjs', import.meta.url))

/**
 * Whether processes can be pinned to cores 0 and 1 (Linux, two or more cores, `taskset`), unless
 * the environment variable `envVar` is "0".
 */
export function canPin(envVar) {
  return (
    process.env[envVar] !== '0' &&
    process.platform === 'linux' &&
    cpus().length >= 2 &&
    spawnSync('taskset', ['-c', '0', 'true']).status === 0
  )
}

/** `argv` pinned to `core` with taskset, or as is when `core` is undefined. */
export function onCore(core, argv) {
  return core === undefined ? argv : ['taskset', '-c', String(core), ...argv]
}

/** A generator process (pinned to `core` when given); `ask` sends one command, resolves with its reply. */
export function startLoadgen(core) {
  const [cmd, ...args] = onCore(core, [process.execPath, '--expose-gc', LOADGEN])
  const proc = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const waiting = []
  proc.on('message', (m) => waiting.shift()?.(m))
  const exited = new Promise((r) => proc.on('exit', r))
  return {
    ask: (m) =>
      new Promise((resolve, reject) => {
        waiting.push((r) => (r.ok === false && r.error ? reject(new Error(r.error)) : resolve(r)))
        proc.send(m)
      }),
    close: () => {
      if (proc.connected) proc.send({ cmd: 'close' })
      return exited
    },
  }
}

/** Time each of cores 0 and 1 spent off the CPU while spinning on both at once for `ms`. */
export async function machineStalls(ms) {
  const gens = [startLoadgen(0), startLoadgen(1)]
  const r = await Promise.all(gens.map((g) => g.ask({ cmd: 'stalls', ms })))
  await Promise.all(gens.map((g) => g.close()))
  return r
}
