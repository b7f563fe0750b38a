/**
 * The shapes `decide()` accepts (docs/input.md), as types for callers who build inputs in
 * TypeScript. `decide()` itself takes `unknown`: any other value is answered with a 400, never a
 * throw, so a host may pass what it received unchecked.
 */

/** A header value: one string, or one per field line. */
export type HeaderValue = string | readonly string[]

/** One peer of an Envoy `AttributeContext` (`source` / `destination`), either spelling. */
export interface CheckRequestPeer {
  readonly address?: {
    readonly socketAddress?: { readonly address?: string; readonly portValue?: number }
    readonly socket_address?: { readonly address?: string; readonly port_value?: number }
  }
  readonly service?: string
  readonly labels?: Readonly<Record<string, string>>
  readonly principal?: string
  readonly certificate?: string
}

/** `attributes.request.http` of an Envoy v3 CheckRequest, either JSON spelling. */
export interface CheckRequestHttp {
  readonly id?: string
  readonly method?: string
  readonly headers?: Readonly<Record<string, string>>
  readonly headerMap?: {
    readonly headers?: ReadonlyArray<{
      readonly key: string
      readonly value?: string
      readonly rawValue?: string
    }>
  }
  readonly header_map?: {
    readonly headers?: ReadonlyArray<{
      readonly key: string
      readonly value?: string
      readonly raw_value?: string
    }>
  }
  readonly path?: string
  readonly host?: string
  readonly scheme?: string
  readonly query?: string
  readonly fragment?: string
  readonly size?: number | string
  readonly protocol?: string
  readonly body?: string
  /** Base64 in JSON. */
  readonly rawBody?: string
  readonly raw_body?: string
}

/** An Envoy ext_authz v3 `CheckRequest` as protobuf JSON (camelCase) or with proto field names. */
export interface CheckRequestInput {
  readonly attributes: {
    readonly source?: CheckRequestPeer
    readonly destination?: CheckRequestPeer
    readonly request?: { readonly time?: string; readonly http?: CheckRequestHttp }
    readonly contextExtensions?: Readonly<Record<string, string>>
    readonly context_extensions?: Readonly<Record<string, string>>
    readonly metadataContext?: { readonly filterMetadata?: Readonly<Record<string, unknown>> }
    readonly metadata_context?: { readonly filter_metadata?: Readonly<Record<string, unknown>> }
    readonly routeMetadataContext?: { readonly filterMetadata?: Readonly<Record<string, unknown>> }
    readonly route_metadata_context?: { readonly filter_metadata?: Readonly<Record<string, unknown>> }
    readonly tlsSession?: { readonly sni?: string }
    readonly tls_session?: { readonly sni?: string }
  }
}

/** One peer of a plain HTTP-shaped input. */
export interface HttpPeerInput {
  readonly address?: string
  readonly port?: number
  readonly service?: string
  readonly principal?: string
  readonly certificate?: string
  readonly labels?: Readonly<Record<string, string>>
}

/** A plain HTTP-shaped request (no `attributes` key). */
export interface HttpRequestInput {
  /** Default `GET` (or the `:method` header). */
  readonly method?: string
  /** The request target: path and query (`/reports?page=2`). `url` is read when `path` is absent. */
  readonly path?: string
  readonly url?: string
  readonly headers?: Readonly<Record<string, HeaderValue>>
  /** Text, bytes, or an already-parsed JSON value. */
  readonly body?: string | Uint8Array | ArrayBuffer | ArrayBufferView | null | boolean | number | object
  readonly host?: string
  readonly scheme?: string
  readonly protocol?: string
  readonly id?: string
  readonly source?: HttpPeerInput
  readonly destination?: HttpPeerInput
  readonly contextExtensions?: Readonly<Record<string, string>>
  /** `filter_metadata`: namespace -> JSON object (or `{ filterMetadata }`). */
  readonly metadata?: Readonly<Record<string, unknown>>
}

/** What `engine.decide(input)` accepts: a CheckRequest (either JSON dialect) or a plain HTTP request. */
export type DecideInput = CheckRequestInput | HttpRequestInput
