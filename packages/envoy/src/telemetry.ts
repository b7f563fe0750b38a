/**
 * Telemetry for the sidecar: one JSON line per decision, Prometheus metrics, and the link between
 * the decision id (passed to `engine.decide(input, { id })`, so the id in the log is
 * the one sent to Envoy in `dynamic_metadata`).
 */
import { randomUUID } from 'node:crypto'
import { type Decision, type DecisionEvent, decisionEvent, isoTime } from '@verdict/core/internal'
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client'
import { createDecisionMetrics } from './decision-metrics.js'

/** `json`: one JSON object per line; `text`: one readable line per record, for terminals. */
export type LogFormat = 'json' | 'text'

export interface TelemetryOptions {
  /** Where log lines go (without the trailing newline). Default: standard output. */
  readonly write?: (line: string) => void
  readonly format?: LogFormat
  /** Log every decision (default true). Metrics are kept either way. */
  readonly logDecisions?: boolean
  /** Include Node's process metrics (default true). */
  readonly processMetrics?: boolean
}

/** Metrics, logs and decision ids for one sidecar. Create with `createTelemetry`. */
export interface Telemetry {
  readonly registry: Registry
  /** Pass to `createEngine({ onDecision })`: logs and counts every decision the engine makes. */
  readonly onDecision: (event: DecisionEvent) => void
  /** Wrap the engine's fetch so JWKS and discovery fetches are counted. */
  countFetches(fetch: typeof globalThis.fetch): typeof globalThis.fetch
  /**
   * A fresh decision id: the host passes it to `engine.decide(input, { id })`, so the log line and
   * Envoy's dynamic metadata carry the same id.
   */
  decisionId(): string
  /** Record a decision the host made itself (overload, malformed wire message, deadline). */
  hostDecision(decision: Decision, durationMs: number, policy: string): string
  /** Count a policy reload and log it. */
  policyReloaded(result: { ok: true; generation: number } | { ok: false; error: string }): void
  /** Log one operational record (startup, shutdown). */
  log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void
  /** Gauge of requests being decided right now. */
  readonly inflight: Gauge
}

const BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]

function textLine(time: string, level: string, msg: string, fields: Record<string, unknown>): string {
  const parts = Object.entries(fields)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`)
  return `${time.slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${msg}${parts.length ? ` ${parts.join(' ')}` : ''}`
}

/**
 * Create the metrics registry, decision log and decision-id tracking for a sidecar.
 *
 * @example
 * ```ts
 * const telemetry = createTelemetry({ format: 'json' })
 * const engine = await createEngine(policy, { onDecision: telemetry.onDecision })
 * const server = createExtAuthzServer({ engine, telemetry, grpc: { port: 9000 } })
 * ```
 */
export function createTelemetry(options: TelemetryOptions = {}): Telemetry {
  const write = options.write ?? ((line: string) => void process.stdout.write(`${line}\n`))
  const format = options.format ?? 'json'
  const logDecisions = options.logDecisions ?? true
  const registry = new Registry()
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'verdict_' })

  const decisionMetrics = createDecisionMetrics(registry, BUCKETS)
  const reloads = new Counter({
    name: 'verdict_policy_reloads_total',
    help: 'Policy reloads by result (success, failure); a failure keeps the previous policy.',
    labelNames: ['result'] as const,
    registers: [registry],
  })
  const generation = new Gauge({
    name: 'verdict_policy_generation',
    help: 'How many times the policy was swapped since start.',
    // Across workers (verdict serve --workers), the generation every worker has reached.
    aggregator: 'min',
    registers: [registry],
  })
  const fetches = new Counter({
    name: 'verdict_jwks_fetches_total',
    help: 'Fetches of remote JWKS and OIDC discovery documents by result (ok, error).',
    labelNames: ['result'] as const,
    registers: [registry],
  })
  const inflight = new Gauge({
    name: 'verdict_inflight_checks',
    help: 'Checks being decided right now.',
    registers: [registry],
  })
  const log: Telemetry['log'] = (level, msg, fields = {}) => {
    const time = isoTime(Date.now())
    try {
      write(
        format === 'json'
          ? JSON.stringify({ time, level, msg, ...fields })
          : textLine(time, level, msg, fields),
      )
    } catch {
      // A broken log sink must not break decisions.
    }
  }

  const record = (e: DecisionEvent): void => {
    decisionMetrics.record(e.allowed, e.code, e.rule ?? '', e.durationMs / 1000)
    if (!logDecisions) return
    // Only what identifies and explains the decision: never headers, query, path, body or tokens.
    // Every line has every field (null when unknown), whoever decided: the engine, or the host
    // for a request it refused before the engine saw it (gRPC or HTTP alike).
    log('info', 'decision', {
      id: e.id,
      decision_time: e.time,
      policy: e.policy,
      allowed: e.allowed,
      status: e.status,
      code: e.code,
      detail_code: e.detailCode ?? null,
      rule: e.rule ?? null,
      reason: e.reason,
      duration_ms: Math.round(e.durationMs * 1000) / 1000,
      method: e.input.method ?? null,
      subject: e.input.subject ?? null,
      mcp_method: e.input.mcpMethod ?? null,
      mcp_tool: e.input.mcpTool ?? null,
    })
  }

  return {
    registry,
    inflight,
    onDecision: record,
    countFetches(fetch) {
      return async (input, init) => {
        try {
          const res = await fetch(input, init)
          fetches.inc({ result: res.ok ? 'ok' : 'error' })
          return res
        } catch (e) {
          fetches.inc({ result: 'error' })
          throw e
        }
      }
    },
    decisionId: randomUUID,
    hostDecision(d, durationMs, policy) {
      const id = randomUUID()
      record(decisionEvent(d, id, policy, durationMs))
      return id
    },
    policyReloaded(r) {
      reloads.inc({ result: r.ok ? 'success' : 'failure' })
      if (r.ok) {
        generation.set(r.generation)
        log('info', 'policy reloaded', { generation: r.generation })
      } else log('error', 'policy reload failed; keeping the previous policy', { error: r.error })
    },
    log,
  }
}
