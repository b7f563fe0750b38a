/**
 * @verdict/envoy — verdict as an Envoy external authorizer: `envoy.service.auth.v3.Authorization`
 * over gRPC, Envoy's HTTP ext_authz service mode, gRPC health, and the operations a sidecar needs
 * (health and readiness, Prometheus metrics, one log line per decision, graceful shutdown).
 *
 * The boundary is three small steps, each in its own file: request (CheckRequest message ->
 * the JSON `decide()` reads), evaluation (the engine, under a deadline), response (Decision ->
 * CheckResponse message). The package holds no policy logic.
 *
 * Exported: the server, its telemetry and operations handler, and a Check client for probes and
 * tests. The steps themselves (message conversion, limiter, proto loading) are not public.
 */
export {
  type CheckClient,
  type CheckClientTls,
  type CheckResponseMessage,
  createCheckClient,
} from './check-client.js'
export { clusterMetricsSource, type MetricsSource, shareMetricsWithPrimary } from './cluster-metrics.js'
export {
  type BoundAddresses,
  createExtAuthzServer,
  type ExtAuthzServer,
  type ExtAuthzServerOptions,
  type ListenAddress,
  type ListenerTls,
  type SocketPathAddress,
} from './ext-authz-server.js'
export { createOpsHandler, type OpsHandlerOptions } from './ops-handler.js'
export { createTelemetry, type LogFormat, type Telemetry, type TelemetryOptions } from './telemetry.js'
