/**
 * Envoy's `envoy.type.v3.StatusCode` is a closed list: only these may be sent in a denied response.
 */
const NAMES: ReadonlyArray<readonly [number, string]> = [
  [100, 'Continue'],
  [200, 'OK'],
  [201, 'Created'],
  [202, 'Accepted'],
  [203, 'NonAuthoritativeInformation'],
  [204, 'NoContent'],
  [205, 'ResetContent'],
  [206, 'PartialContent'],
  [207, 'MultiStatus'],
  [208, 'AlreadyReported'],
  [226, 'IMUsed'],
  [300, 'MultipleChoices'],
  [301, 'MovedPermanently'],
  [302, 'Found'],
  [303, 'SeeOther'],
  [304, 'NotModified'],
  [305, 'UseProxy'],
  [307, 'TemporaryRedirect'],
  [308, 'PermanentRedirect'],
  [400, 'BadRequest'],
  [401, 'Unauthorized'],
  [402, 'PaymentRequired'],
  [403, 'Forbidden'],
  [404, 'NotFound'],
  [405, 'MethodNotAllowed'],
  [406, 'NotAcceptable'],
  [407, 'ProxyAuthenticationRequired'],
  [408, 'RequestTimeout'],
  [409, 'Conflict'],
  [410, 'Gone'],
  [411, 'LengthRequired'],
  [412, 'PreconditionFailed'],
  [413, 'PayloadTooLarge'],
  [414, 'URITooLong'],
  [415, 'UnsupportedMediaType'],
  [416, 'RangeNotSatisfiable'],
  [417, 'ExpectationFailed'],
  [421, 'MisdirectedRequest'],
  [422, 'UnprocessableEntity'],
  [423, 'Locked'],
  [424, 'FailedDependency'],
  [426, 'UpgradeRequired'],
  [428, 'PreconditionRequired'],
  [429, 'TooManyRequests'],
  [431, 'RequestHeaderFieldsTooLarge'],
  [500, 'InternalServerError'],
  [501, 'NotImplemented'],
  [502, 'BadGateway'],
  [503, 'ServiceUnavailable'],
  [504, 'GatewayTimeout'],
  [505, 'HTTPVersionNotSupported'],
  [506, 'VariantAlsoNegotiates'],
  [507, 'InsufficientStorage'],
  [508, 'LoopDetected'],
  [510, 'NotExtended'],
  [511, 'NetworkAuthenticationRequired'],
]

const BY_CODE = new Map<number, string>(NAMES)
const BY_NAME = new Map<string, number>(NAMES.map(([c, n]) => [n, c]))

/** Every status code Envoy accepts, in ascending order. */
export const VALID_HTTP_STATUSES: readonly number[] = NAMES.map(([c]) => c)

/** True when `code` is one of Envoy's `StatusCode` values (so 0, 418 and 299 are not). */
export function isValidHttpStatus(code: unknown): code is number {
  return typeof code === 'number' && BY_CODE.has(code)
}

/** The protobuf enum name of a status (`403` -> `Forbidden`), for protobuf JSON. */
export function httpStatusName(code: number): string | undefined {
  return BY_CODE.get(code)
}

/** The numeric status of a protobuf enum name (`Forbidden` -> 403). */
export function httpStatusFromName(name: string): number | undefined {
  return BY_NAME.get(name)
}
