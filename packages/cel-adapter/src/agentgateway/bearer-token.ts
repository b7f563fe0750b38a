/** The bearer token of the Authorization header (`jwt.rawToken` without a verified token). */
import type { CheckInput } from '@verdict/core/internal'

/** The identity fields of `jwt.rawToken`: the bearer token of the Authorization header. */
export function bearerToken(input: CheckInput): string | undefined {
  const h = input.headers.authorization
  if (h === undefined) return undefined
  const m = /^bearer[ \t]+(\S+)$/i.exec(h.trim())
  return m?.[1]
}
