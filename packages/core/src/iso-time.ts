/**
 * `new Date(ms).toISOString()` for timestamps on hot paths (every decision event carries one): the
 * `YYYY-MM-DDTHH:MM:SS.` prefix is formatted once per second and reused, which turns ~450 ns
 * into a string concatenation.
 */
let cachedSecond = Number.NaN
let cachedPrefix = ''

/** The ISO 8601 UTC form of `ms` (milliseconds since the epoch), as `Date.prototype.toISOString`. */
export function isoTime(ms: number): string {
  // Date truncates fractional milliseconds toward zero.
  const whole = Math.trunc(ms)
  const second = Math.floor(whole / 1000)
  if (second !== cachedSecond) {
    const iso = new Date(second * 1000).toISOString()
    // Years outside 0000-9999 are formatted with a sign and six digits: no shortcut for those.
    if (iso.length !== 24) return new Date(whole).toISOString()
    cachedSecond = second
    cachedPrefix = iso.slice(0, 20)
  }
  const milli = whole - second * 1000
  return `${cachedPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`
}
