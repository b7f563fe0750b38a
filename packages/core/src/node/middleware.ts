/**
 * `@verdict/core/middleware`: the HTTP middleware for Express and `node:http`, which lives in
 * `@verdict/node`; re-exported here so imports written before the move keep working.
 */
export {
  createHttpMiddleware,
  type FieldLineHeaders,
  type HttpMiddlewareOptions,
  headerFieldLines,
  type VerdictRequest,
} from '@verdict/node'
