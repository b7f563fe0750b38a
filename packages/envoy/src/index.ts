/**
 * @verdict/envoy — verdict as an Envoy external authorizer: `envoy.service.auth.v3.Authorization`
 * over gRPC, Envoy's HTTP ext_authz service mode, gRPC health, and the operations a sidecar needs
 * (health and readiness, Prometheus metrics, one log line per decision, graceful shutdown).
 *
 * The boundary is three small steps, each in its own file: request (CheckRequest message ->
 * the JSON `decide()` reads), evaluation (the engine, under a deadline), response (Decision ->
 * CheckResponse message). The package holds no policy logic.
 */
export { type CheckClient, type CheckResponseMessage, createCheckClient } from './check-client.js'
export { checkRequestToJson, timestampToJson } from './check-request-to-json.js'
export {
  evaluateCheck,
  type FailurePolicy,
  hostDenial,
  type IdentifiedDecision,
} from './evaluate-check.js'
export {
  type BoundAddresses,
  createExtAuthzServer,
  type ExtAuthzServer,
  type ExtAuthzServerOptions,
  type ListenAddress,
} from './ext-authz-server.js'
export { createHealthService, HEALTH_SERVICES, type HealthService } from './health-service.js'
export {
  createHttpAuthzHandler,
  HEADERS_TO_REMOVE,
  type HttpAuthzHandlerOptions,
} from './http-authz-handler.js'
export { createLimiter, type Limiter } from './limiter.js'
export { createOpsHandler, type OpsHandlerOptions } from './ops-handler.js'
export { LOADER_OPTIONS, loadDefinitions, PROTO_DIR } from './proto.js'
export {
  jsonToStruct,
  MAX_STRUCT_DEPTH,
  type StructMessage,
  StructTooDeep,
  structToJson,
  type ValueMessage,
} from './struct.js'
export { createTelemetry, type LogFormat, type Telemetry, type TelemetryOptions } from './telemetry.js'
export { DECISION_ID_KEY, toCheckResponseMessage } from './to-check-response-message.js'
