/** RFC 9110 header syntax checks shared by input normalization and decision outputs. */

/** A header field name: RFC 9110 token characters. */
export const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** True when a header value holds a control character other than horizontal tab (CR/LF injection). */
export function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if ((c < 32 && c !== 9) || c === 127) return true
  }
  return false
}
