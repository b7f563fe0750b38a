/** Query accessors on any string holding a query (`request.pathAndQuery`, `request.uri`), and Go's `SplitN`. */
import { type CelValue, celList } from '@bufbuild/cel'

// Query accessors on `request.pathAndQuery` / `request.uri` (any string holding a query)

function splitTarget(s: string): { base: string; query: string | undefined; fragment: string } {
  const hash = s.indexOf('#')
  const fragment = hash === -1 ? '' : s.slice(hash)
  const noFrag = hash === -1 ? s : s.slice(0, hash)
  const q = noFrag.indexOf('?')
  return q === -1
    ? { base: noFrag, query: undefined, fragment }
    : { base: noFrag.slice(0, q), query: noFrag.slice(q + 1), fragment }
}

export function query(s: string, name: string): CelValue {
  const { query } = splitTarget(s)
  const values = new URLSearchParams(query ?? '').getAll(name)
  if (values.length === 0) throw new Error(`no such key: ${name}`)
  return celList(values)
}

export function withQuery(s: string, name: string, value: string, replace: boolean): string {
  const { base, query, fragment } = splitTarget(s)
  const p = new URLSearchParams(query ?? '')
  if (replace) p.set(name, value)
  else p.append(name, value)
  return `${base}?${p.toString()}${fragment}`
}

/** Go's `strings.SplitN`: n < 0 all parts, 0 none, else at most n with the rest in the last. */
export function splitN(s: string, sep: string, n: bigint): string[] {
  if (n === 0n) return []
  const all = sep === '' ? Array.from(s) : s.split(sep)
  if (n < 0n || BigInt(all.length) <= n) return all
  const k = Number(n)
  const head = all.slice(0, k - 1)
  return [...head, all.slice(k - 1).join(sep)]
}
