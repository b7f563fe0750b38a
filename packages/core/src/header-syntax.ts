/** RFC 9110 header syntax checks shared by input normalization and decision outputs. */

/** A header field name: RFC 9110 token characters. */
export const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

// A character-class scan runs in the regex engine, several times faster than a JavaScript loop on
// long values (Authorization headers carry ~1 KB tokens).
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/

/** True when a header value holds a control character other than horizontal tab (CR/LF injection). */
export function hasControlChar(s: string): boolean {
  return CONTROL.test(s)
}
