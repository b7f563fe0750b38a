/**
 * Values: JSON patch and marshalling, object subsets, graph paths, OPA's value order, and the
 * deprecated `cast_*` builtins (v0 modules only).
 */
import type { RegoBuiltin } from '../rego-policy.js'
import { compareUtf8 } from './bytes.js'
import { goJson, isObj, isStr, type Obj } from './scope.js'

export function deepEqual(a: unknown, b: unknown): boolean {
  return goJson(a) === goJson(b)
}

/** `object.subset`: both objects, or both arrays (sets arrive as arrays); else an error. */
function subsetTop(sup: unknown, sub: unknown): boolean | undefined {
  if ((isObj(sup) && isObj(sub)) || (Array.isArray(sup) && Array.isArray(sub))) return subset(sup, sub)
  return undefined
}

function subset(sup: unknown, sub: unknown): boolean {
  if (isObj(sup) && isObj(sub))
    return Object.keys(sub).every((k) => Object.hasOwn(sup, k) && subset(sup[k], sub[k]))
  if (Array.isArray(sup) && Array.isArray(sub)) {
    // Arrays: sub is a contiguous run of sup. (Sets arrive as arrays too.)
    if (sub.length === 0) return true
    for (let i = 0; i + sub.length <= sup.length; i++)
      if (sub.every((x, j) => deepEqual(sup[i + j], x))) return true
    return false
  }
  return deepEqual(sup, sub)
}

/** JSON Pointer or array path to segments. */
function patchPath(p: unknown): string[] | undefined {
  if (Array.isArray(p)) return p.map((x) => String(x))
  if (!isStr(p)) return undefined
  if (p === '') return []
  // OPA reads a path without the leading '/' as if it had one.
  return (p.startsWith('/') ? p.slice(1) : p)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
}

function clone<T>(v: T): T {
  return structuredClone(v)
}

function getAt(doc: unknown, path: string[]): { ok: boolean; value?: unknown } {
  let cur = doc
  for (const seg of path) {
    if (isObj(cur) && Object.hasOwn(cur, seg)) cur = cur[seg]
    else if (Array.isArray(cur) && /^(0|[1-9][0-9]*)$/.test(seg) && Number(seg) < cur.length)
      cur = cur[Number(seg)]
    else return { ok: false }
  }
  return { ok: true, value: cur }
}

function addAt(
  doc: unknown,
  path: string[],
  value: unknown,
  replace: boolean,
): { ok: boolean; doc?: unknown } {
  if (path.length === 0) return { ok: true, doc: value }
  const parent = getAt(doc, path.slice(0, -1))
  if (!parent.ok) return { ok: false }
  const last = path[path.length - 1]!
  const p = parent.value
  if (isObj(p)) {
    if (replace && !Object.hasOwn(p, last)) return { ok: false }
    p[last] = value
  } else if (Array.isArray(p)) {
    if (last === '-' && !replace) p.push(value)
    else {
      if (!/^(0|[1-9][0-9]*)$/.test(last)) return { ok: false }
      const i = Number(last)
      if (replace ? i >= p.length : i > p.length) return { ok: false }
      p.splice(i, replace ? 1 : 0, value)
    }
  } else return { ok: false }
  return { ok: true, doc }
}

function removeAt(doc: unknown, path: string[]): { ok: boolean; doc?: unknown } {
  if (path.length === 0) return { ok: false }
  const parent = getAt(doc, path.slice(0, -1))
  if (!parent.ok) return { ok: false }
  const last = path[path.length - 1]!
  const p = parent.value
  if (isObj(p) && Object.hasOwn(p, last)) delete p[last]
  else if (Array.isArray(p) && /^(0|[1-9][0-9]*)$/.test(last) && Number(last) < p.length)
    p.splice(Number(last), 1)
  else return { ok: false }
  return { ok: true, doc }
}

function jsonPatch(target: unknown, patches: unknown): unknown {
  if (!Array.isArray(patches)) return undefined
  let doc = clone(target)
  for (const op of patches) {
    if (!isObj(op)) return undefined
    const path = patchPath(op.path)
    if (path === undefined) return undefined
    let r: { ok: boolean; doc?: unknown }
    switch (op.op) {
      case 'add':
        r = addAt(doc, path, clone(op.value), false)
        break
      case 'replace':
        r = addAt(doc, path, clone(op.value), true)
        break
      case 'remove':
        r = removeAt(doc, path)
        break
      case 'test': {
        const g = getAt(doc, path)
        r = g.ok && deepEqual(g.value, op.value) ? { ok: true, doc } : { ok: false }
        break
      }
      case 'move':
      case 'copy': {
        const from = patchPath(op.from)
        if (from === undefined) return undefined
        const g = getAt(doc, from)
        if (!g.ok) return undefined
        if (op.op === 'move') {
          const rm = removeAt(doc, from)
          if (!rm.ok) return undefined
          doc = rm.doc
        }
        r = addAt(doc, path, clone(g.value), false)
        break
      }
      default:
        return undefined
    }
    if (!r.ok) return undefined
    doc = r.doc
  }
  return doc
}

function neighbours(graph: Obj, node: unknown): unknown[] {
  const e = graph[String(node)]
  if (Array.isArray(e)) return e
  return []
}

/** `graph.reachable_paths`: every path from an initial node to where it cannot go on. */
function reachablePaths(graph: unknown, initial: unknown): unknown[] | undefined {
  if (!isObj(graph) || !Array.isArray(initial)) return undefined
  const out = new Map<string, unknown[]>()
  const add = (path: unknown[]) => {
    if (path.length > 0) out.set(goJson(path), path)
  }
  // OPA's pathBuilder, quirks included: `reached` is shared by every walk from one initial node,
  // and the paths of one node's already-reached neighbours accumulate.
  const walk = (root: unknown, path: unknown[], reached: Set<string>) => {
    if (!Object.hasOwn(graph, String(root))) {
      add(path)
      return
    }
    const here = [...path, root]
    const edges = neighbours(graph, root)
    if (edges.length === 0) {
      add(here)
      return
    }
    let paths: unknown[] = []
    for (const n of edges) {
      if (reached.has(goJson(n))) {
        paths = [...paths, ...here]
        add(paths)
      } else {
        reached.add(goJson(root))
        walk(n, here, reached)
      }
    }
  }
  for (const n of initial) walk(n, [], new Set())
  return sortSet([...out.values()])
}

/** Order of a Rego set of strings, numbers or arrays of them. */
export function sortSet<T>(xs: T[]): T[] {
  return xs.sort((a, b) => compareValues(a, b))
}

function typeRank(v: unknown): number {
  if (v === null) return 0
  if (typeof v === 'boolean') return 1
  if (typeof v === 'number') return 2
  if (typeof v === 'string') return 3
  if (Array.isArray(v)) return 5
  return 6
}

/** OPA's value order (null < boolean < number < string < array < object). */
export function compareValues(a: unknown, b: unknown): number {
  const ra = typeRank(a)
  const rb = typeRank(b)
  if (ra !== rb) return ra - rb
  if (typeof a === 'number' || typeof a === 'boolean') return Number(a) - Number(b)
  if (typeof a === 'string') return compareUtf8(a, b as string)
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const c = compareValues(a[i], b[i])
      if (c !== 0) return c
    }
    return a.length - b.length
  }
  if (isObj(a) && isObj(b)) return goJson(a) < goJson(b) ? -1 : goJson(a) > goJson(b) ? 1 : 0
  return 0
}

const castOf =
  (pred: (v: unknown) => boolean, map: (v: unknown) => unknown = (v) => v): RegoBuiltin =>
  (v) =>
    pred(v) ? map(v) : undefined

export const valueBuiltins: Record<string, RegoBuiltin> = {
  'object.subset': subsetTop,
  'json.marshal_with_options': (v, opts) => {
    if (!isObj(opts)) return undefined
    for (const k of Object.keys(opts)) if (!['pretty', 'indent', 'prefix'].includes(k)) return undefined
    const { pretty, indent, prefix } = opts
    if (
      (pretty !== undefined && typeof pretty !== 'boolean') ||
      (indent !== undefined && !isStr(indent)) ||
      (prefix !== undefined && !isStr(prefix))
    )
      return undefined
    const isPretty = pretty ?? (indent !== undefined || prefix !== undefined)
    if (!isPretty) return goJson(v)
    const pre = (prefix as string | undefined) ?? ''
    return pre + goJson(v, (indent as string | undefined) ?? '\t', pre, 0, true)
  },
  'json.patch': jsonPatch,
  'graph.reachable_paths': reachablePaths,
  cast_array: castOf(Array.isArray),
  cast_set: castOf(Array.isArray, (v) =>
    sortSet([...new Map((v as unknown[]).map((x) => [goJson(x), x])).values()]),
  ),
  cast_boolean: castOf((v) => typeof v === 'boolean'),
  cast_null: castOf((v) => v === null),
  cast_object: castOf(isObj),
  cast_string: castOf(isStr),
}
