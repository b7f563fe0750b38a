/**
 * Regular expressions for CEL's `matches`: RE2 semantics (linear time, no backreferences), with
 * compiled patterns kept in a small LRU cache so a pattern is compiled once, not per request.
 */
import { RE2JS } from '@bufbuild/re2'

/** What `@bufbuild/cel` asks of a regex engine. */
export interface RegexEngine {
  compile(pattern: string): { test(text: string): boolean }
}

type Matcher = { test(text: string): boolean }

/**
 * A cached RE2 engine. Patterns longer than `maxPatternLength` are rejected, and so are texts
 * longer than `maxTextLength`: RE2 is linear, but this implementation needs up to ~0.5 µs per
 * character on hard patterns, and a decision must not block for seconds on a 4 MB body.
 */
export function createRegexCache(size: number, maxPatternLength: number, maxTextLength: number): RegexEngine {
  const cache = new Map<string, Matcher>()
  return {
    compile(pattern: string) {
      const hit = cache.get(pattern)
      if (hit !== undefined) {
        // Re-insert so the map's order is least recently used first.
        cache.delete(pattern)
        cache.set(pattern, hit)
        return hit
      }
      if (pattern.length > maxPatternLength) {
        throw new Error(`regular expression longer than ${maxPatternLength} characters`)
      }
      const compiled = RE2JS.compile(pattern)
      const re: Matcher = {
        test(text: string): boolean {
          if (text.length > maxTextLength) {
            throw new Error(`text longer than ${maxTextLength} characters for a regular expression`)
          }
          return compiled.test(text)
        },
      }
      if (size > 0) {
        if (cache.size >= size) cache.delete(cache.keys().next().value as string)
        cache.set(pattern, re)
      }
      return re
    },
  }
}
