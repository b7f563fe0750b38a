/**
 * The `.proto` files shipped with this package and the gRPC definitions loaded from them.
 */
import { fileURLToPath } from 'node:url'
import type { MethodDefinition } from '@grpc/grpc-js'
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader'

/** Directory holding the package's own `.proto` files (`envoy/...`, `google/rpc/...`, `grpc/...`). */
export const PROTO_DIR: string = fileURLToPath(new URL('../proto/', import.meta.url))

/**
 * How messages are turned into objects: protobuf JSON names (lowerCamelCase), 64-bit integers and
 * enums as strings, unset fields left out, bytes as `Buffer`. This is the shape `decide()` reads.
 */
export const LOADER_OPTIONS: Options = Object.freeze({
  includeDirs: [PROTO_DIR],
  keepCase: false,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: false,
})

const FILES = ['envoy/service/auth/v3/external_auth.proto', 'grpc/health/v1/health.proto']

let cached: PackageDefinition | undefined

/** The package definition of `envoy.service.auth.v3` and `grpc.health.v1` (loaded once). */
export function loadDefinitions(): PackageDefinition {
  cached ??= loadSync(FILES, LOADER_OPTIONS)
  return cached
}

/** A unary or streaming method definition, request and response as plain objects. */
export type Method = MethodDefinition<unknown, unknown>

function method(service: string, name: string): Method {
  const svc = loadDefinitions()[service] as Record<string, Method> | undefined
  const m = svc?.[name]
  if (m === undefined) throw new Error(`proto definition ${service}/${name} missing`)
  return m
}

/** `envoy.service.auth.v3.Authorization/Check`. */
export const checkMethod = (): Method => method('envoy.service.auth.v3.Authorization', 'Check')
/** `grpc.health.v1.Health/Check`. */
export const healthCheckMethod = (): Method => method('grpc.health.v1.Health', 'Check')
/** `grpc.health.v1.Health/Watch`. */
export const healthWatchMethod = (): Method => method('grpc.health.v1.Health', 'Watch')
