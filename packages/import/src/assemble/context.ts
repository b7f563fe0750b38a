/**
 * What assembling one policy from the translated resources shares: the options, the problem list,
 * where each rule came from (for positions), the resources other policies refer to (AuthConfigs,
 * ExternalAuthorizers, Secrets), and the bundles collected on the way.
 */
import type { Problem } from '@verdict/core'
import type { ImportOptions, Scope } from '../context.js'
import type { Obj } from '../read.js'
import type { AuthConfigContribution } from '../translate/authorino.js'

/** The resource and JSON pointer a rule was translated from. */
export type Origin = { scope: Scope; pointer: string }

export interface AssembleContext {
  readonly options: ImportOptions
  readonly problems: Problem[]
  readonly origins: Map<Obj, Origin>
  readonly authConfigs: readonly AuthConfigContribution[]
  readonly authorizers: readonly { service: string; doc: Obj; scope: Scope }[]
  readonly secrets: ReadonlyMap<string, { keys: Obj[]; scope: Scope }>
  readonly bundles: Record<string, Obj>
}

/** The single target of the input's policies, `options.target`, or a problem. */
export function chooseTarget(targets: string[], ctx: AssembleContext): { ok: boolean; target?: string } {
  let target = ctx.options.target
  if (target !== undefined) {
    target = target.includes('/') ? target.slice(target.indexOf('/') + 1) : target
    if (!targets.includes(target)) {
      ctx.problems.push({
        code: 'import_target',
        message: `no policy targets "${ctx.options.target}" (targets: ${targets.join(', ') || 'none'})`,
        path: '',
      })
      return { ok: false }
    }
    return { ok: true, target }
  }
  if (targets.length > 1) {
    ctx.problems.push({
      code: 'import_target',
      message: `the policies target several backends (${targets.join(', ')}): choose one (--target <name>)`,
      path: '',
    })
    return { ok: false }
  }
  return targets[0] === undefined ? { ok: true } : { ok: true, target: targets[0] }
}

/** JWT providers that share an issuer get distinct names (`iss`, `iss#1`, ...), in input order. */
export function nameProviders(providers: readonly Obj[]): void {
  const seen = new Map<string, number>()
  for (const p of providers) {
    const iss = String(p.issuer)
    const n = seen.get(iss) ?? 0
    seen.set(iss, n + 1)
    p.name = n === 0 ? iss : `${iss}#${n}`
  }
}
