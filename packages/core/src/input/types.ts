/**
 * The normalized request (`CheckInput`), its peers, and the options that bound normalization.
 */

/**
 * The header Envoy sets when it cut the body (`with_request_body.allow_partial_message`). Only
 * Envoy may set it: hosts that take requests from clients directly drop it.
 */
export const PARTIAL_BODY_HEADER = 'x-envoy-auth-partial-body'

/** Parsed SPIFFE ID (`spiffe://<trust-domain>/<path>`). */
export interface SpiffeId {
  readonly id: string
  readonly trustDomain: string
  readonly path: string
  /** From a Kubernetes-style path `/ns/<namespace>/sa/<service-account>`. */
  readonly namespace?: string
  readonly serviceAccount?: string
}

/** One side of the connection (`source` is the downstream client, `destination` the local proxy). */
export interface PeerInfo {
  readonly address: string | undefined
  readonly port: number | undefined
  readonly service: string | undefined
  readonly principal: string | undefined
  readonly certificate: string | undefined
  readonly labels: Readonly<Record<string, string>>
  /** Present when `principal` is a valid SPIFFE ID. */
  readonly spiffe: SpiffeId | undefined
}

/** Which shape the caller used. */
export type InputDialect = 'protojson' | 'proto' | 'http'

/** A normalized request. Built once per decision; policies never see the raw input directly. */
export interface CheckInput {
  readonly dialect: InputDialect
  readonly id: string | undefined
  readonly time: string | undefined
  readonly method: string
  /** Percent-decoded path without query or fragment (see `docs/input.md` for the rule). */
  readonly path: string
  /** The request target exactly as received, with query. */
  readonly rawPath: string
  /** The raw query string without `?` (empty when none). */
  readonly rawQuery: string
  /** Decoded query parameters, name -> values in order. */
  readonly query: Readonly<Record<string, readonly string[]>>
  /**
   * The canonical host: lower case, no trailing dot, no port when it is the scheme's default (both
   * 80 and 443 when the scheme is unknown). `http.host`, `:authority` and `host` must agree.
   */
  readonly host: string
  readonly scheme: string
  readonly protocol: string
  /**
   * Header names lower-cased; repeated headers joined as Envoy joins them (`,`; `; ` for cookie).
   * `host` and `:authority` hold the canonical host (see `host`).
   */
  readonly headers: Readonly<Record<string, string>>
  /** Number of header entries in `headers`. */
  readonly headerCount: number
  /**
   * Names that arrived as more than one field line (repeated entries, a list value, or keys that
   * differ only in case), in first-seen order. With a comma inside one value, these are the
   * headers `headerValues` splits (see docs/semantics.md, "Headers with several values").
   */
  readonly repeatedHeaders: readonly string[]
  /** Names dropped by `headersWithUnderscores: 'drop'`: removed before the request goes upstream. */
  readonly droppedHeaders: readonly string[]
  /** Body as text (`raw_body` decoded as UTF-8 when only bytes were sent). */
  readonly body: string | undefined
  /** True when Envoy cut the body (`x-envoy-auth-partial-body: true`). */
  readonly bodyTruncated: boolean
  /** Declared request size in bytes, -1 when unknown. */
  readonly size: number
  readonly source: PeerInfo
  readonly destination: PeerInfo
  readonly contextExtensions: Readonly<Record<string, string>>
  /** `metadata_context.filter_metadata` as plain JSON (namespace -> object). */
  readonly filterMetadata: Readonly<Record<string, unknown>>
  /** `route_metadata_context.filter_metadata` as plain JSON. */
  readonly routeMetadata: Readonly<Record<string, unknown>>
  readonly tlsSni: string | undefined
  /** The object given to `decide()`, for dialects that pass it through (OPA-Envoy's `attributes`). */
  readonly raw: Readonly<Record<string, unknown>>
}

/** Limits and path handling applied while normalizing. */
export interface InputOptions {
  /** Largest body accepted, in bytes of UTF-8 (default 4 MiB). Larger: 413. */
  readonly maxBodyBytes?: number
  /** Most header entries accepted (default 200). More: 431. */
  readonly maxHeaders?: number
  /** Largest total size of header names and values (default 64 KiB). Larger: 431. */
  readonly maxHeaderBytes?: number
  /** Deepest JSON body accepted when parsed (default 64). Deeper: treated as malformed. */
  readonly maxJsonDepth?: number
  /**
   * Reject paths that proxies and servers may interpret differently (default true): empty segments
   * (`//`), dot segments (`.`, `..`, also percent-encoded), encoded `/` or `\`, and a literal `\`.
   */
  readonly rejectAmbiguousPaths?: boolean
  /**
   * Header names with `_` (`x_role` next to `x-role`; CGI-style servers read both as one): `reject`
   * (default, 400), `drop` (rules do not see them and an allow removes them upstream) or `allow`.
   * As Envoy's `headers_with_underscores_action`.
   */
  readonly headersWithUnderscores?: UnderscoreAction
}

export type UnderscoreAction = 'reject' | 'drop' | 'allow'

export interface ResolvedInputOptions {
  readonly maxBodyBytes: number
  readonly maxHeaders: number
  readonly maxHeaderBytes: number
  readonly maxJsonDepth: number
  readonly rejectAmbiguousPaths: boolean
  readonly headersWithUnderscores: UnderscoreAction
}

export const DEFAULT_INPUT_OPTIONS: ResolvedInputOptions = Object.freeze({
  maxBodyBytes: 4 * 1024 * 1024,
  maxHeaders: 200,
  maxHeaderBytes: 64 * 1024,
  maxJsonDepth: 64,
  rejectAmbiguousPaths: true,
  headersWithUnderscores: 'reject',
})

export function resolveInputOptions(o: InputOptions | undefined): ResolvedInputOptions {
  if (o === undefined) return DEFAULT_INPUT_OPTIONS
  return {
    maxBodyBytes: o.maxBodyBytes ?? DEFAULT_INPUT_OPTIONS.maxBodyBytes,
    maxHeaders: o.maxHeaders ?? DEFAULT_INPUT_OPTIONS.maxHeaders,
    maxHeaderBytes: o.maxHeaderBytes ?? DEFAULT_INPUT_OPTIONS.maxHeaderBytes,
    maxJsonDepth: o.maxJsonDepth ?? DEFAULT_INPUT_OPTIONS.maxJsonDepth,
    rejectAmbiguousPaths: o.rejectAmbiguousPaths ?? DEFAULT_INPUT_OPTIONS.rejectAmbiguousPaths,
    headersWithUnderscores: o.headersWithUnderscores ?? DEFAULT_INPUT_OPTIONS.headersWithUnderscores,
  }
}
