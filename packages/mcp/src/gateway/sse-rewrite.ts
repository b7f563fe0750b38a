/**
 * Rewriting the data of a server-sent event stream as it passes: each event's `data` lines are
 * joined, handed to `rewrite`, and replaced by one `data:` line when it returns a new text; every
 * other line (`id:`, `event:`, `retry:`, comments) and every event it leaves alone passes as it
 * came. Events are separated by a blank line; CRLF and CR are normalized to LF so the split is
 * simple. (An SSE parser such as eventsource-parser yields parsed events, not the stream's lines,
 * so passing the rest through unchanged would mean re-serializing it.)
 */
export type DataRewrite = (data: string) => Promise<string | undefined>

export function sseRewrite(rewrite: DataRewrite): TransformStream<Uint8Array, Uint8Array> {
  const decoder = new TextDecoder()
  const encoder = new TextEncoder()
  let buffer = ''
  const flushEvents = async (
    controller: TransformStreamDefaultController<Uint8Array>,
    final: boolean,
  ): Promise<void> => {
    buffer = buffer.replace(/\r\n?/g, '\n')
    for (;;) {
      const end = buffer.indexOf('\n\n')
      if (end === -1) break
      const event = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      controller.enqueue(encoder.encode(`${await rewriteEvent(event, rewrite)}\n\n`))
    }
    if (final && buffer.length > 0) controller.enqueue(encoder.encode(buffer))
  }
  return new TransformStream({
    async transform(chunk, controller) {
      buffer += decoder.decode(chunk, { stream: true })
      await flushEvents(controller, false)
    },
    async flush(controller) {
      buffer += decoder.decode()
      await flushEvents(controller, true)
    },
  })
}

async function rewriteEvent(event: string, rewrite: DataRewrite): Promise<string> {
  const lines = event.split('\n')
  const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(l.startsWith('data: ') ? 6 : 5))
  if (data.length === 0) return event
  const next = await rewrite(data.join('\n'))
  if (next === undefined) return event
  const kept = lines.filter((l) => !l.startsWith('data:'))
  return [...kept, `data: ${next}`].join('\n')
}
