/**
 * List results cut down on their way back: the JSON-RPC ids of the `tools/list`, `prompts/list`
 * and `resources/list` requests of a body the engine accepted are remembered, and the responses
 * with those ids (a JSON body, a batch, or SSE events) get their result through
 * `filterListResult` with the caller's own input.
 */
import type { Engine } from '@verdict/core/internal'
import { filterListResult, isListMethod } from '../filter-list-result.js'
import { sseRewrite } from './sse-rewrite.js'

type Obj = Record<string, unknown>

/** `id -> list method` for the list requests in `body`; undefined when there is none. */
export function listRequests(body: string | undefined): Map<string, string> | undefined {
  if (body === undefined) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return undefined
  }
  let out: Map<string, string> | undefined
  for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
    if (typeof m !== 'object' || m === null) continue
    const { method, id } = m as Obj
    if (
      typeof method === 'string' &&
      isListMethod(method) &&
      (typeof id === 'string' || typeof id === 'number')
    ) {
      out ??= new Map()
      out.set(idKey(id), method)
    }
  }
  return out
}

function idKey(id: unknown): string {
  return `${typeof id}:${String(id)}`
}

/** The upstream's response `up` with the results of the `lists` requests filtered for `input`'s caller. */
export async function withFilteredLists(
  engine: Engine,
  input: Obj,
  lists: ReadonlyMap<string, string>,
  up: Response & { body: ReadableStream<Uint8Array> },
  headers: Headers,
): Promise<Response> {
  const rewrite = async (text: string): Promise<string | undefined> => {
    let msg: unknown
    try {
      msg = JSON.parse(text)
    } catch {
      return undefined
    }
    let changed = false
    const each = async (m: unknown): Promise<unknown> => {
      if (typeof m !== 'object' || m === null || !('result' in m)) return m
      const listMethod = lists.get(idKey((m as Obj).id))
      if (listMethod === undefined) return m
      changed = true
      return { ...m, result: await filterListResult(engine, input, listMethod, (m as Obj).result) }
    }
    const next = Array.isArray(msg) ? await Promise.all(msg.map(each)) : await each(msg)
    return changed ? JSON.stringify(next) : undefined
  }
  const init = { status: up.status, statusText: up.statusText, headers }
  const ct = up.headers.get('content-type') ?? ''
  if (ct.startsWith('text/event-stream')) return new Response(up.body.pipeThrough(sseRewrite(rewrite)), init)
  const text = await up.text()
  return new Response((await rewrite(text)) ?? text, init)
}
