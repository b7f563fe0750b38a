/**
 * Kubernetes resources as users write them: YAML (or JSON) text with one or many documents, a
 * `kubectl get -o yaml` `List` among them, each object kept with the means to locate its fields in
 * the text (line and column), as core's policy loader locates its own.
 */
import type { Problem } from '@verdict/core'
import { nodeAt } from '@verdict/core/internal'
import { LineCounter, type Node, parseAllDocuments } from 'yaml'

/** A JSON pointer's position in the text. */
export type Position = { readonly line: number; readonly column: number }

/** One Kubernetes object of the input. */
export interface Resource {
  readonly apiVersion: string
  readonly kind: string
  readonly value: Record<string, unknown>
  /** Where the object is, for messages: `document 2` or `document 1, item 3`. */
  readonly where: string
  /** Position of a JSON pointer relative to the object (`/spec/rules/0`). */
  locate(pointer: string): Position | undefined
}

export type Obj = Record<string, unknown>

/** A policy document with the positions of its parts (the shape `createEngine` accepts). */
export interface SourceDocument {
  readonly value: unknown
  readonly locate: (pointer: string) => Position | undefined
  readonly origin?: string
}
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** True when the text's first non-empty document is a Kubernetes object or list. */
export function looksLikeResources(text: string): boolean {
  try {
    for (const doc of parseAllDocuments(text, { prettyErrors: false })) {
      if (!('contents' in doc) || doc.contents === null) continue
      const v = doc.toJS({ maxAliasCount: 100 }) as unknown
      if (v === null || v === undefined) continue
      return isObj(v) && typeof v.apiVersion === 'string' && typeof v.kind === 'string'
    }
  } catch {
    return false
  }
  return false
}

/**
 * Every object of the text, `List` items unfolded. Parse errors and documents that are not
 * Kubernetes objects are problems with their line and column.
 */
export function readResources(text: string): { resources: Resource[]; problems: Problem[] } {
  const lineCounter = new LineCounter()
  const resources: Resource[] = []
  const problems: Problem[] = []
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const list = Array.isArray(docs) ? docs : [docs]
  list.forEach((doc, d) => {
    const issues = [...doc.errors, ...doc.warnings]
    if (issues.length > 0) {
      for (const e of issues) {
        const lp = lineCounter.linePos(e.pos[0])
        problems.push({
          code: 'policy_parse',
          message: e.message.split('\n')[0] ?? e.message,
          path: '',
          line: lp.line,
          column: lp.col,
        })
      }
      return
    }
    let value: unknown
    try {
      value = doc.toJS({ maxAliasCount: 100 })
    } catch (e) {
      problems.push({ code: 'policy_parse', message: (e as Error).message, path: '' })
      return
    }
    if (value === null || value === undefined) return // an empty document (a trailing `---`)
    const at = (pointer: string): Position | undefined => {
      const start = nodeAt(doc.contents as Node | null, pointer)?.range?.[0]
      if (start === undefined) return undefined
      const p = lineCounter.linePos(start)
      return { line: p.line, column: p.col }
    }
    const add = (v: unknown, base: string, where: string): void => {
      if (!isObj(v) || typeof v.apiVersion !== 'string' || typeof v.kind !== 'string') {
        problems.push({
          code: 'import_not_a_resource',
          message: `${where} is not a Kubernetes object (apiVersion and kind)`,
          path: base,
          ...(at(base) ?? {}),
        })
        return
      }
      if (v.kind === 'List' || (v.kind.endsWith('List') && Array.isArray(v.items))) {
        const items = Array.isArray(v.items) ? v.items : []
        items.forEach((item, i) => {
          add(item, `${base}/items/${i}`, `${where}, item ${i + 1}`)
        })
        return
      }
      resources.push({
        apiVersion: v.apiVersion,
        kind: v.kind,
        value: v,
        where,
        locate: (pointer) => at(base + pointer),
      })
    }
    add(value, '', `document ${d + 1}`)
  })
  return { resources, problems }
}
