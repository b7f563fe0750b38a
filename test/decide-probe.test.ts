/**
 * `decide(input, { probe: 'list' })` (issue 18): the option reaches evaluators as
 * `RequestContext.probe`; the MCP evaluator skips its `arguments` tests for a probe, and only for
 * one; list filtering asks through it; a probe is otherwise an ordinary decision (its event too).
 */
import { createEngine, type DecisionEvent, type Evaluator, ok, type RequestContext } from '@verdict/core'
import { createMcpEvaluator, filterListResult } from '@verdict/mcp'
import { describe, expect, it } from 'vitest'

const call = (name: string, args: Record<string, unknown>) => ({
  method: 'POST',
  path: '/mcp',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } }),
})

/** An evaluator that records `ctx.probe` and matches. */
function recorder(seen: unknown[]): Evaluator {
  return {
    kind: 'probe-recorder',
    compile: () => ({
      ok: true,
      program: {
        evaluate(ctx: RequestContext) {
          seen.push(ctx.probe)
          return ok(true)
        },
      },
    }),
  }
}

describe("decide(input, { probe: 'list' })", () => {
  it('reaches evaluators as ctx.probe; absent, or any other value, is no probe', async () => {
    const seen: unknown[] = []
    const e = await createEngine(
      { rules: [{ id: 'r', action: 'allow', 'probe-recorder': true }] },
      { evaluators: [recorder(seen)] },
    )
    const input = { method: 'GET', path: '/' }
    await e.decide(input)
    await e.decide(input, { probe: 'list' })
    await e.decide(input, { probe: 'other' as 'list' })
    await e.decide(input, { id: 'x' })
    expect(seen).toEqual([undefined, 'list', undefined, undefined])
  })

  it("the mcp evaluator skips argument tests for a probe only; the probe's event is emitted as any", async () => {
    const events: DecisionEvent[] = []
    const e = await createEngine(
      {
        rules: [
          { id: 'small', action: 'allow', mcp: { tools: ['pay'], arguments: { amount: { in: [1, 2] } } } },
        ],
      },
      { evaluators: [createMcpEvaluator()], onDecision: (ev) => events.push(ev) },
    )
    // Without the arguments the rule wants, a call is not allowed...
    expect((await e.decide(call('pay', {}))).allowed).toBe(false)
    expect((await e.decide(call('pay', { amount: 5 }))).allowed).toBe(false)
    expect((await e.decide(call('pay', { amount: 1 }))).allowed).toBe(true)
    // ...but the tool is one the caller may use with some arguments.
    expect(await e.decide(call('pay', {}), { probe: 'list' })).toMatchObject({ allowed: true, rule: 'small' })
    // Other tests still apply to a probe.
    expect((await e.decide(call('refund', {}), { probe: 'list' })).allowed).toBe(false)
    expect(events).toHaveLength(5)
    expect(events.map((ev) => ev.allowed)).toEqual([false, false, true, true, false])
  })

  it('filterListResult keeps a tool whose rule tests arguments, and drops one no rule allows', async () => {
    const e = await createEngine(
      {
        rules: [
          { id: 'small', action: 'allow', mcp: { tools: ['pay'], arguments: { amount: { in: [1] } } } },
        ],
      },
      { evaluators: [createMcpEvaluator()] },
    )
    const list = {
      method: 'POST',
      path: '/mcp',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    }
    const result = { tools: [{ name: 'pay' }, { name: 'refund' }] }
    expect(await filterListResult(e, list, 'tools/list', result)).toEqual({ tools: [{ name: 'pay' }] })
  })

  it('the RequestContext an evaluator received stands for its request (recognized by class, not by shape)', async () => {
    let received: RequestContext | undefined
    const capture: Evaluator = {
      kind: 'capture',
      compile: () => ({
        ok: true,
        program: {
          evaluate(ctx: RequestContext) {
            received ??= ctx
            return ok(false)
          },
        },
      }),
    }
    const e = await createEngine(
      {
        rules: [
          { id: 'c', action: 'deny', capture: true },
          { id: 'pay', action: 'allow', mcp: { source: { spiffe: 'spiffe://t/a' }, tools: ['pay'] } },
        ],
      },
      { evaluators: [createMcpEvaluator(), capture] },
    )
    const list = {
      method: 'POST',
      path: '/mcp',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      source: { principal: 'spiffe://t/a' },
    }
    await e.decide(list)
    const result = { tools: [{ name: 'pay' }, { name: 'refund' }] }
    expect(received).toBeDefined()
    expect(await filterListResult(e, received, 'tools/list', result)).toEqual({ tools: [{ name: 'pay' }] })
    // An object that only looks like a context is taken as a request input, and matches nothing.
    const lookalike = { input: { raw: list }, memo: () => undefined }
    expect(await filterListResult(e, lookalike, 'tools/list', result)).toEqual({ tools: [] })
  })
})
