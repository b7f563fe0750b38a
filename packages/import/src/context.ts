/**
 * What every kind module shares: problems located in the resource text, the check that every
 * field of a resource is either read or reported, and the record of where each generated rule came
 * from (so a problem core finds in the generated policy points at the resource's line).
 */
import type { Problem } from '@verdict/core'
import { isObj, type Obj, type Position, type Resource } from './read.js'

/** Options every kind module reads. */
export interface ImportOptions {
  /**
   * Trust domain of Kubernetes service accounts: `spiffe://<trustDomain>/ns/<ns>/sa/<name>`.
   * Default `cluster.local`.
   */
  readonly trustDomain?: string
  /**
   * The backend (or gateway, or workload) whose policies to import, by the name its `targetRefs`
   * give (`remote-mcp-backend`, or `Kind/name`). Required when the input targets several.
   */
  readonly target?: string
  /**
   * External authorizers by the Service a policy names (`namespace/name`, or `name`): a verdict
   * policy document whose rules stand for the authorizer (its deny is final). Authorino
   * `AuthConfig` objects in the same input stand for a Service whose name contains `authorino`.
   */
  readonly externalAuth?: Readonly<Record<string, Obj>>
  /** The `opa` binary for Authorino's inline Rego. Default: `OPA_BIN`, else `opa` on PATH. */
  readonly opa?: string
  /** Where compiled Rego bundles are written. Default: a directory under the OS temp dir. */
  readonly cacheDir?: string
  /** Namespace of objects that give none. Default `default`. */
  readonly defaultNamespace?: string
}

/** One resource being translated. */
export class Scope {
  constructor(
    readonly resource: Resource,
    private readonly sink: Problem[],
    readonly options: ImportOptions,
  ) {}

  get value(): Obj {
    return this.resource.value
  }

  get name(): string {
    const m = this.value.metadata
    return isObj(m) && typeof m.name === 'string' ? m.name : 'unnamed'
  }

  get namespace(): string {
    const m = this.value.metadata
    return isObj(m) && typeof m.namespace === 'string'
      ? m.namespace
      : (this.options.defaultNamespace ?? 'default')
  }

  /** `kind namespace/name` for messages. */
  get label(): string {
    return `${this.resource.kind} ${this.namespace}/${this.name}`
  }

  at(pointer: string): Position | undefined {
    return this.resource.locate(pointer)
  }

  problem(code: string, message: string, pointer: string): void {
    this.sink.push({ code, message: `${this.label}: ${message}`, path: pointer, ...(this.at(pointer) ?? {}) })
  }

  /**
   * Read an object's fields: each key of `known` is handed its value; any other key is a problem
   * (`import_unsupported_field`), so nothing is dropped silently. Returns false when `v` is not an
   * object (reported).
   */
  fields(v: unknown, pointer: string, known: Record<string, (value: unknown, at: string) => void>): boolean {
    if (!isObj(v)) {
      this.problem('import_invalid', 'must be an object', pointer)
      return false
    }
    for (const [k, val] of Object.entries(v)) {
      const at = `${pointer}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`
      const h = Object.hasOwn(known, k) ? known[k] : undefined
      if (h === undefined) this.problem('import_unsupported_field', `field "${k}" is not supported`, at)
      else h(val, at)
    }
    return true
  }

  str(v: unknown, pointer: string, what = 'a string'): string | undefined {
    if (typeof v === 'string' && v !== '') return v
    this.problem('import_invalid', `must be ${what}`, pointer)
    return undefined
  }

  list(v: unknown, pointer: string): unknown[] {
    if (Array.isArray(v)) return v
    this.problem('import_invalid', 'must be a list', pointer)
    return []
  }

  strings(v: unknown, pointer: string): string[] {
    const out: string[] = []
    this.list(v, pointer).forEach((s, i) => {
      const x = this.str(s, `${pointer}/${i}`)
      if (x !== undefined) out.push(x)
    })
    return out
  }
}

/** Fields of `metadata` that name or describe an object and never change a decision. */
const METADATA_FIELDS = [
  'name',
  'namespace',
  'labels',
  'annotations',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'managedFields',
  'selfLink',
  'finalizers',
  'ownerReferences',
  'generateName',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
] as const

/** Read `metadata` (only naming fields are allowed) and skip `status` (observed state). */
export function commonFields(s: Scope): Record<string, (v: unknown, at: string) => void> {
  const ignore = (): void => {}
  return {
    apiVersion: ignore,
    kind: ignore,
    metadata: (v, at) => {
      s.fields(v, at, Object.fromEntries(METADATA_FIELDS.map((k) => [k, ignore])))
    },
    // Written by controllers, never by users; it has no say in a decision.
    status: ignore,
  }
}

/**
 * A Gateway-API `targetRefs` list: each `{group, kind, name}` (kind defaulting to `defaultKind`)
 * goes to `into`; `sectionName` is a problem saying `sectionWhat`.
 */
export function readTargetRefs(
  s: Scope,
  v: unknown,
  at: string,
  defaultKind: string,
  sectionWhat: string,
  into: { kind: string; name: string }[],
): void {
  s.list(v, at).forEach((r, i) => {
    let kind = defaultKind
    let name: string | undefined
    s.fields(r, `${at}/${i}`, {
      group: () => {},
      kind: (k, q) => {
        kind = s.str(k, q) ?? kind
      },
      name: (n, q) => {
        name = s.str(n, q)
      },
      sectionName: (_n, q) => {
        s.problem('import_unsupported', `${sectionWhat} is not supported`, q)
      },
    })
    if (name !== undefined) into.push({ kind, name })
  })
}

/** A rule id from names: only `[A-Za-z0-9_.:/-]`, at most 128 characters. */
export function ruleId(...parts: string[]): string {
  return parts
    .join('/')
    .replace(/[^A-Za-z0-9_.:/-]/g, '-')
    .slice(0, 128)
}

/** A CEL string literal. */
export function celString(s: string): string {
  return JSON.stringify(s)
}

/** The SPIFFE id of a Kubernetes service account. */
export function spiffeOf(trustDomain: string, namespace: string, name: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${name}`
}
