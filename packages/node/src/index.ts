/**
 * @verdict/node — verdict for Node hosts. `@verdict/core` is host-free (web-standard APIs only);
 * what needs Node lives here: the TLS peer principal, the HTTP middleware for Express and
 * `node:http`, policy files (load, watch, reload) and file resources. `readSourceFile` is for
 * verdict's own packages (case files of `@verdict/core/testing`).
 *
 * `@verdict/core` re-exports the policy-file and resource functions under its "node" export
 * condition and `@verdict/core/middleware` re-exports the middleware, so existing imports keep
 * working (docs/architecture.md, "Core and its Node host").
 */

export {
  createHttpMiddleware,
  type FieldLineHeaders,
  type HttpMiddlewareOptions,
  headerFieldLines,
  type VerdictRequest,
} from './http-middleware.js'
export {
  createEngineFromFile,
  loadPolicyFile,
  type PolicyFile,
  type PolicyImporter,
  type PolicyWatch,
  readSourceFile,
  type WatchOptions,
  watchPolicyFile,
} from './policy-file.js'
export { createFileResourceLoader, type FileResourceOptions } from './resources.js'
export { tlsPeerPrincipal } from './tls-principal.js'
