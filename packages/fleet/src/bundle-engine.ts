/**
 * An engine whose policy comes from bundles: it starts on a deny-everything placeholder, and each
 * bundle is compiled fully by `engine.update()` before the atomic swap. The engine's resource
 * loader reads from the bundle being activated (core fixes the loader when the engine is made,
 * so it delegates to whichever bundle is compiling).
 */
import { createEngine, type Engine, type EngineOptions, type ResourceLoader } from '@verdict/core'
import type { FleetBundle } from './bundle.js'

/** The policy served before any bundle was activated: every request denied. */
export const PENDING_POLICY = { name: 'verdict-bundle-pending', default: 'deny' } as const

export interface BundleEngine {
  readonly engine: Engine
  /** Compile `bundle` and swap it in; throws (the previous policy stays) when it does not compile. */
  activate(bundle: FleetBundle): Promise<void>
  /** Revision of the policy in force, undefined before the first activation. */
  readonly revision: string | undefined
}

export async function createBundleEngine(
  options: Omit<EngineOptions, 'resources'> = {},
): Promise<BundleEngine> {
  let compiling: ResourceLoader | undefined
  const resources: ResourceLoader = {
    read(location) {
      if (compiling === undefined)
        return Promise.reject(new Error(`${location}: no bundle is being activated`))
      return compiling.read(location)
    },
  }
  const engine = await createEngine(PENDING_POLICY, { ...options, resources })
  let revision: string | undefined
  let queue: Promise<unknown> = Promise.resolve()
  return {
    engine,
    get revision() {
      return revision
    },
    activate(bundle) {
      const run = queue.then(async () => {
        compiling = bundle.resources
        try {
          await engine.update(bundle.policy)
          revision = bundle.revision
        } finally {
          compiling = undefined
        }
      })
      queue = run.catch(() => {})
      return run
    },
  }
}
