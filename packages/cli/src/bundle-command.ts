/**
 * `verdict bundle build <dir>` and `verdict bundle sign <bundle>`: OPA-format bundles carrying a
 * verdict policy (docs/fleet.md). Also the `serve --bundle` wiring: the policy from a bundle
 * service, decision logs to a collector, status reports, `/readyz` and `/status`.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import type { DecisionEvent } from '@verdict/core'
import type { Telemetry } from '@verdict/envoy'
import {
  type BundleSource,
  buildBundle,
  createBundleEngine,
  createBundleSource,
  createDecisionLogger,
  createStatusReporter,
  type DecisionLogger,
  type ServiceOptions,
  type SigningOptions,
  type StatusReporter,
  signBundle,
  type VerificationOptions,
} from '@verdict/fleet'
import { type Command, InvalidArgumentError } from 'commander'
import { EXIT_INVALID } from './eval-command.js'
import { loadEvaluators } from './evaluators.js'
import type { Io } from './io.js'

interface SignFlags {
  readonly signingKey?: string
  readonly signingAlg: string
  readonly keyId: string
  readonly scope?: string
}

function signingOf(f: SignFlags): SigningOptions | undefined {
  if (f.signingKey === undefined) return undefined
  return {
    key: readFileSync(f.signingKey, 'utf8'),
    algorithm: f.signingAlg,
    keyId: f.keyId,
    ...(f.scope !== undefined ? { scope: f.scope } : {}),
  }
}

function roots(v: string, prev: string[] = []): string[] {
  return [...prev, v]
}

/** Register `bundle build` and `bundle sign`. */
export function registerBundle(program: Command, io: Io, setExit: (code: number) => void): void {
  const bundle = program
    .command('bundle')
    .description('build and sign OPA-format bundles holding a verdict policy')
  bundle
    .command('build')
    .description('write an OPA bundle (.tar.gz) from a directory holding verdict/policy.yaml (docs/fleet.md)')
    .argument('<dir>', 'directory to bundle (every regular file, by its relative path)')
    .option('-o, --output <file>', 'output file', 'bundle.tar.gz')
    .option('-r, --revision <revision>', '.manifest revision')
    .option('--root <root>', '.manifest root (repeat for several)', roots)
    .option('--signing-key <file>', 'sign with this private key (PEM) or HMAC secret file')
    .option('--signing-alg <alg>', 'JWS algorithm', 'RS256')
    .option('--key-id <id>', 'kid of the signature', 'default')
    .option('--scope <scope>', 'scope claim of the signature')
    .action(async (dir: string, f: SignFlags & { output: string; revision?: string; root?: string[] }) => {
      try {
        const signing = signingOf(f)
        const bytes = await buildBundle(dir, {
          ...(f.revision !== undefined ? { revision: f.revision } : {}),
          ...(f.root !== undefined ? { roots: f.root } : {}),
          ...(signing !== undefined ? { signing } : {}),
        })
        writeFileSync(f.output, bytes)
        io.stdout(`wrote ${f.output} (${bytes.length} bytes${signing !== undefined ? ', signed' : ''})\n`)
        setExit(0)
      } catch (e) {
        io.stderr(`verdict bundle build: ${(e as Error).message}\n`)
        setExit(EXIT_INVALID)
      }
    })
  bundle
    .command('sign')
    .description("add OPA's /.signatures.json to a bundle (replacing any), as opa sign does")
    .argument('<bundle>', 'the .tar.gz bundle')
    .requiredOption('--signing-key <file>', 'private key (PEM) or HMAC secret file')
    .option('-o, --output <file>', 'output file (default: the bundle, replaced)')
    .option('--signing-alg <alg>', 'JWS algorithm', 'RS256')
    .option('--key-id <id>', 'kid of the signature', 'default')
    .option('--scope <scope>', 'scope claim of the signature')
    .action(async (path: string, f: SignFlags & { output?: string }) => {
      try {
        const out = await signBundle(new Uint8Array(readFileSync(path)), signingOf(f)!)
        writeFileSync(f.output ?? path, out)
        io.stdout(`wrote ${f.output ?? path} (signed)\n`)
        setExit(0)
      } catch (e) {
        io.stderr(`verdict bundle sign: ${(e as Error).message}\n`)
        setExit(EXIT_INVALID)
      }
    })
}

/** `serve` flags of the fleet mode. */
export interface FleetFlags {
  readonly bundle?: string
  readonly bundlePersistDir?: string
  readonly bundleTokenFile?: string
  readonly bundleVerificationKey?: string
  readonly bundleKeyId?: string
  readonly bundleScope?: string
  readonly bundleSigningAlg?: string
  readonly bundleMinDelay?: number
  readonly bundleMaxDelay?: number
  readonly bundleLongPoll?: number
  readonly tlsClientCert?: string
  readonly tlsClientKey?: string
  readonly tlsCa?: string
  readonly decisionLogUrl?: string
  readonly statusUrl?: string
  readonly label?: string[]
}

/** Register the fleet options on `serve`. */
export function addFleetOptions(serve: Command): Command {
  const seconds = (v: string) => {
    const n = Number(v)
    if (!Number.isFinite(n) || n <= 0)
      throw new InvalidArgumentError(`"${v}" is not a positive number of seconds`)
    return n
  }
  const label = (v: string, prev: string[] = []) => {
    if (!/^[^=]+=/.test(v)) throw new InvalidArgumentError(`"${v}" is not key=value`)
    return [...prev, v]
  }
  return serve
    .option(
      '--bundle <url>',
      'take the policy from this OPA bundle service URL instead of --policy (docs/fleet.md)',
    )
    .option(
      '--bundle-persist-dir <dir>',
      'keep the last activated bundle here and start from it when the service is down',
    )
    .option(
      '--bundle-token-file <file>',
      'bearer token for the bundle, log and status services (read again when it changes)',
    )
    .option(
      '--bundle-verification-key <file>',
      'only activate bundles signed by this public key (PEM) or HMAC secret',
    )
    .option('--bundle-key-id <id>', "id of the verification key (default: the signature's kid)")
    .option('--bundle-scope <scope>', 'required signature scope')
    .option('--bundle-signing-alg <alg>', 'algorithm of the verification key (default RS256)')
    .option('--bundle-min-delay <s>', 'least seconds between polls (default 60)', seconds)
    .option('--bundle-max-delay <s>', 'most seconds between polls (default 120)', seconds)
    .option(
      '--bundle-long-poll <s>',
      'long polling timeout in seconds (when the service supports it)',
      seconds,
    )
    .option('--tls-client-cert <file>', 'client certificate (PEM) for the services')
    .option('--tls-client-key <file>', 'its private key (PEM)')
    .option('--tls-ca <file>', 'CA certificates (PEM) to trust for the services')
    .option('--decision-log-url <url>', "POST decision logs in OPA's format to <url>/logs")
    .option('--status-url <url>', "POST status reports in OPA's format to <url>/status")
    .option('--label <key=value>', 'label of this instance in logs and status (repeat for several)', label)
}

export interface FleetRun {
  readonly engine: import('@verdict/core').Engine
  readonly onDecision: (e: DecisionEvent) => void
  /** `/readyz` on the server's operations listener: ready once a bundle is active, with its revision. */
  readiness(): { readonly ready: boolean; readonly detail: Readonly<Record<string, unknown>> }
  /** `/status` on the operations listener: OPA's status report. */
  status(): unknown
  close(): Promise<void>
}

/** Start the fleet mode: engine from the bundle service, logs, status. Returns undefined (after printing why) when it cannot. */
export async function startFleet(f: FleetFlags, telemetry: Telemetry, io: Io): Promise<FleetRun | undefined> {
  const read = (p: string | undefined) => (p === undefined ? undefined : readFileSync(p, 'utf8'))
  let service: Omit<ServiceOptions, 'url'>
  let verification: VerificationOptions | undefined
  try {
    const tls = {
      ...(f.tlsClientCert !== undefined ? { cert: read(f.tlsClientCert)! } : {}),
      ...(f.tlsClientKey !== undefined ? { key: read(f.tlsClientKey)! } : {}),
      ...(f.tlsCa !== undefined ? { ca: read(f.tlsCa)! } : {}),
    }
    service = {
      ...(f.bundleTokenFile !== undefined ? { tokenFile: f.bundleTokenFile } : {}),
      ...(Object.keys(tls).length > 0 ? { tls } : {}),
    }
    if (f.bundleVerificationKey !== undefined) {
      const key = {
        key: read(f.bundleVerificationKey)!,
        ...(f.bundleSigningAlg !== undefined ? { algorithm: f.bundleSigningAlg } : {}),
      }
      const id = f.bundleKeyId ?? 'default'
      verification = {
        keys: { [id]: key },
        ...(f.bundleKeyId !== undefined ? { keyId: f.bundleKeyId } : {}),
        ...(f.bundleScope !== undefined ? { scope: f.bundleScope } : {}),
      }
    }
  } catch (e) {
    io.stderr(`verdict serve: ${(e as Error).message}\n`)
    return undefined
  }
  const labels = Object.fromEntries(
    (f.label ?? []).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  )
  let logger: DecisionLogger | undefined
  let source: BundleSource | undefined
  const onDecision = (e: DecisionEvent) => {
    telemetry.onDecision(e)
    logger?.onDecision(e)
  }
  const { evaluators } = await loadEvaluators()
  const be = await createBundleEngine({
    evaluators,
    onDecision,
    fetch: telemetry.countFetches(globalThis.fetch),
  })
  const name = 'verdict'
  if (f.decisionLogUrl !== undefined)
    logger = createDecisionLogger({
      ...service,
      url: f.decisionLogUrl,
      labels,
      registry: telemetry.registry,
      bundles: () => (be.revision !== undefined ? { [name]: { revision: be.revision } } : {}),
    })
  source = createBundleSource({
    ...service,
    url: f.bundle!,
    name,
    ...(f.bundleMinDelay !== undefined ? { minDelayMs: f.bundleMinDelay * 1000 } : {}),
    ...(f.bundleMaxDelay !== undefined ? { maxDelayMs: f.bundleMaxDelay * 1000 } : {}),
    ...(f.bundleLongPoll !== undefined ? { longPollingTimeoutSeconds: f.bundleLongPoll } : {}),
    ...(f.bundlePersistDir !== undefined ? { persistDir: f.bundlePersistDir } : {}),
    ...(verification !== undefined ? { verification } : {}),
    activate: (b) => be.activate(b),
    onEvent: (e) => {
      if (e.type === 'activated')
        telemetry.log('info', 'bundle activated', { revision: e.revision, from: e.from })
      else if (e.type === 'error')
        telemetry.log('warn', 'bundle not activated', { code: e.code, error: e.message })
    },
  })
  const reporter: StatusReporter = createStatusReporter({
    ...(f.statusUrl !== undefined ? { service: { ...service, url: f.statusUrl } } : {}),
    labels,
    sources: [source],
    registry: telemetry.registry,
    ...(logger !== undefined ? { plugins: () => ({ decision_logs: logger!.state }) } : {}),
  })
  await source.start()
  return {
    engine: be.engine,
    onDecision,
    readiness() {
      const st = source.status()
      return {
        ready: st.active,
        detail: { bundle: { name, active_revision: st.bundle.active_revision ?? null, stale: st.stale } },
      }
    },
    status: () => reporter.report(),
    async close() {
      source?.close()
      reporter.close()
      if (logger !== undefined) {
        await logger.flush(5000)
        logger.close()
      }
      be.engine.close()
    },
  }
}
