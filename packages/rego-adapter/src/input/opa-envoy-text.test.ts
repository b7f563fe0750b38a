/**
 * The OPA-Envoy input written as text (what a Rego rule hands the module) against the object form
 * serialized: the same value and the same refusal for every request of the parity corpus and for
 * the shapes the text writer treats on its own (header values, MCP bodies read by core, numbers).
 */
import { createEngine, type Decision, type Evaluator, type RequestContext } from '@verdict/core'
import { describe, expect, test } from 'vitest'
import { EDGE_CASES, generatedCorpus } from '../../../../test/opa-parity/corpus.js'
import { opaEnvoyInput } from './opa-envoy.js'
import { opaEnvoyInputText } from './opa-envoy-text.js'

type Obj = Record<string, unknown>

/** A rule kind that records the text `make` gives for each decision and allows. */
function capture(make: (ctx: RequestContext) => string): { evaluator: Evaluator; last: () => string } {
  let text = ''
  return {
    evaluator: {
      kind: 'capture',
      compile: () => ({
        ok: true,
        program: {
          evaluate: (ctx) => {
            text = make(ctx)
            return { ok: true, value: true }
          },
        },
      }),
    },
    last: () => text,
  }
}

const policy = { rules: [{ id: 'c', action: 'allow', capture: {} }] }

async function bothForms(): Promise<(request: Obj) => Promise<{ text: Outcome; object: Outcome }>> {
  const t = capture((ctx) => opaEnvoyInputText(ctx, 64))
  const o = capture((ctx) => JSON.stringify(opaEnvoyInput(ctx)))
  const withText = await createEngine(policy, { evaluators: [t.evaluator] })
  const withObject = await createEngine(policy, { evaluators: [o.evaluator] })
  return async (request) => ({
    text: outcome(await withText.decide(request), t.last()),
    object: outcome(await withObject.decide(request), o.last()),
  })
}

interface Outcome {
  readonly allowed: boolean
  readonly status: number
  readonly detail: string | undefined
  readonly input: unknown
}

function outcome(d: Decision, text: string): Outcome {
  return {
    allowed: d.allowed,
    status: d.status,
    detail: d.detailCode ?? d.code,
    input: text === '' ? undefined : JSON.parse(text),
  }
}

const post = (body: string, headers: Obj = {}): Obj => ({
  method: 'POST',
  path: '/mcp',
  host: 'mcp.example',
  headers: { 'content-type': 'application/json', ...headers },
  body,
})

const rpc = (args: string) =>
  `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":${args}}}`

describe('OPA-Envoy input as text', () => {
  test('the same value and outcome as the object form, over the parity corpus', async () => {
    const decide = await bothForms()
    const corpus = [...generatedCorpus(16, 160), ...EDGE_CASES]
    for (const c of corpus) {
      const { text, object } = await decide(c.request)
      expect(text, c.name).toEqual(object)
    }
  })

  test('header values, MCP bodies and numbers the writer handles on its own', async () => {
    const decide = await bothForms()
    const requests: Obj[] = [
      post(rpc('{"q":"a \\"quoted\\" word"}'), { 'x-q': 'say "hi"', 'x-b': 'back\\slash', 'x-t': 'a\tb' }),
      post(rpc('{"e":"caf\\u00e9","s":"\\/"}'), { 'x-u': 'café ☕', 'x-s': 'lone \ud800 surrogate' }),
      // every order of written-whole and plain values (the writer leaves a plain value's closing
      // quote to what follows it), an escaped value first and last
      {
        method: 'GET',
        path: '/',
        headers: { 'x-a': 'q"1', 'x-b': 'plain', 'x-c': 't\tab', 'x-d': 'p', 'x-e': 'p2', 'x-f': 'b\\s' },
      },
      { method: 'GET', path: '/', headers: { 'x-only': 'one "quoted"' } },
      { method: 'GET', path: '/', headers: { 'x-only': 'plain' } },
      post(rpc('{"n":1.50,"m":1E2,"k":2e-1,"big":12345678901234567891}')),
      post(`  ${rpc('{"pretty": [1, 2, {"k": "v"}]}')}\n`),
      post(rpc('{"a":1,"a":2}')), // a repeated name core's scan does not guard: refused by the plugin's reading
      post(rpc('{"a":1,"\\u0061":2}')), // the same name once unescaped
      post(rpc('{"a":{"b":1},"c":{"b":2}}')), // the same name in two objects is fine
      // many names in one object (kept in a set past the first few), with and without a repeat
      post(rpc(`{${Array.from({ length: 40 }, (_, k) => `"k${k}":${k}`).join(',')}}`)),
      post(rpc(`{${Array.from({ length: 40 }, (_, k) => `"k${k}":${k}`).join(',')},"k3":0}`)),
      // What the text path takes from core's MCP extraction: too deep and numbers no double holds
      // are refused there, before any rule
      post(rpc(`{"a":${'['.repeat(70)}${']'.repeat(70)}}`)),
      post(rpc('{"n":-1e400}')),
      post(`[${rpc('{"x":1}')},${rpc('{"y":2}')}]`), // a batch: each message's document
      // `params` and `arguments` taken from the body's text: nested objects around them, escaped
      // names, no arguments, a prompt
      post(
        '{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"_meta":{"p":{"q":[{}]}},"name":"t","arguments":{"x":[{"y":{}}],"z":{}}},"extra":{"params":{}}}',
      ),
      post(
        '{"jsonrpc":"2.0","id":2,"method":"tools/call","par\u0061ms":{"name":"t","\u0061rguments":{"k":"v"}}}',
      ),
      post('{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t"}}'),
      post('{"jsonrpc":"2.0","id":4,"method":"prompts/get","params":{"name":"p","arguments":{"k":"v"}}}'),
      post('{"params":{"name":"t","arguments":{"k":1}},"jsonrpc":"2.0","method":"tools/call"}'),
      post(`\ufeff${rpc('{}')}`),
      post(rpc('{}'), { 'content-type': 'application/json-seq' }),
      post(rpc('{"deep":[[[[1]]]]}'), { 'content-length': '1' }),
      {
        ...post(rpc('{"r":"x"}')),
        headers: { 'content-type': 'application/json' },
        filterMetadata: {
          mcp_proxy: { method: 'tools/call', params: { name: 't' } },
        },
      },
    ]
    for (const r of requests) {
      const { text, object } = await decide(r)
      expect(text, JSON.stringify(r)).toEqual(object)
    }
    const repeated = await decide(post(rpc('{"a":1,"a":2}')))
    expect(repeated.text.detail).toBe('duplicate_json_key')
  })

  test('an MCP body core accepted stands as parsed_body as the client wrote it (numbers keep their digits)', async () => {
    const t = capture((ctx) => opaEnvoyInputText(ctx, 64))
    const engine = await createEngine(policy, { evaluators: [t.evaluator] })
    const body = rpc('{"n":1.50,"big":12345678901234567891}')
    expect((await engine.decide(post(body))).allowed).toBe(true)
    expect(t.last()).toContain(`"parsed_body":${body},`)
    // The `mcp` addition's params and tool arguments too, from the same text.
    const args = '{"n":1.50,"big":12345678901234567891}'
    expect(t.last()).toContain(
      `"mcp":{"method":"tools/call","params":{"name":"t","arguments":${args}},"id":1,`,
    )
    expect(t.last()).toContain(`"tool":{"name":"t","arguments":${args}}`)
  })
})
