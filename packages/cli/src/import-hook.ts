/**
 * Kubernetes resources as policy files: installs `@verdict/import` as core's policy importer, so
 * `check`, `eval`, `serve` (reloads too) and `test` (case files naming `resources.yaml` or
 * `resources.yaml#backend`) read XAccessPolicy, Authorino, ... files as they read verdict ones.
 */
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { type ImportOptions, installPolicyImporter } from '@verdict/import'
import { parse } from 'yaml'

/** What `--target` and `--external-auth` said. */
export interface ImportFlags {
  readonly target?: string
  /** `namespace/service=policy.yaml` entries. */
  readonly externalAuth?: readonly string[]
}

/** The `externalAuth` import option from `ref=file` flags; bundle paths made absolute. */
export function externalAuthOption(entries: readonly string[] = []): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {}
  for (const e of entries) {
    const eq = e.indexOf('=')
    if (eq <= 0) throw new Error(`--external-auth ${e}: write <namespace/service>=<policy file>`)
    const file = resolve(e.slice(eq + 1))
    const doc = parse(readFileSync(file, 'utf8')) as Record<string, unknown>
    const bundles = doc.bundles as Record<string, Record<string, unknown>> | undefined
    if (bundles !== undefined)
      for (const b of Object.values(bundles))
        for (const k of ['path', 'wasm', 'data'])
          if (typeof b[k] === 'string' && !isAbsolute(b[k] as string))
            b[k] = resolve(dirname(file), b[k] as string)
    out[e.slice(0, eq)] = doc
  }
  return out
}

/** Install the importer (again, with new flags: the last call wins). */
export function installImporter(flags: ImportFlags = {}): void {
  const options: ImportOptions = {
    ...(flags.externalAuth && flags.externalAuth.length > 0
      ? { externalAuth: externalAuthOption(flags.externalAuth) }
      : {}),
  }
  installPolicyImporter(flags.target === undefined ? options : { ...options, target: flags.target })
}
