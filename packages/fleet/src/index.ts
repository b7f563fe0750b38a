/**
 * @verdict/fleet — verdict in OPA's management plane: bundles from a bundle service (ETag, long
 * polling, signatures, persistence, atomic activation), `verdict bundle build` / `sign`, decision
 * logs to a collector and status reports, all in OPA's formats. Host-side I/O only: core stays
 * pure, and this package drives it through `engine.update()` and `onDecision`.
 */
export {
  type BuildOptions,
  buildBundle,
  bundleResources,
  type FleetBundle,
  POLICY_PATHS,
  type ReadBundleOptions,
  readFleetBundle,
  signBundle,
} from './bundle.js'
export { type BundleEngine, createBundleEngine, PENDING_POLICY } from './bundle-engine.js'
export {
  type BundleSource,
  type BundleSourceEvent,
  type BundleSourceOptions,
  type BundleSourceStatus,
  createBundleSource,
  OPA_BUNDLE_CONTENT_TYPE,
  type OpaBundleStatus,
} from './bundle-source.js'
export {
  createDecisionLogger,
  DEFAULT_MASKS,
  type DecisionLogger,
  type DecisionLoggerOptions,
  erase,
  type OpaDecisionEvent,
} from './decision-log.js'
export {
  type CallOptions,
  createServiceClient,
  type ServiceClient,
  ServiceError,
  type ServiceOptions,
  type ServiceResponse,
  type ServiceTls,
} from './service-client.js'
export {
  fileDigest,
  isStructuredFile,
  type KeyMaterial,
  SIGNATURES_FILE,
  type SigningOptions,
  signFiles,
  type VerificationKey,
  type VerificationOptions,
  verifyFiles,
} from './signing.js'
export { createStatusReporter, type StatusOptions, type StatusReport, type StatusReporter } from './status.js'
export { cleanEntryName, DEFAULT_TAR_LIMITS, readTarGz, type TarLimits, writeTarGz } from './tar.js'
