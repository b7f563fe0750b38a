/**
 * Duplicate member names in JSON text. RFC 7515 §4 and RFC 7519 §4 let a JWT parser either
 * reject duplicates or take the last one; JSON.parse (and so jose) takes the last, while other
 * parsers take the first. A token whose header or claims read differently in two parsers is refused
 * rather than checked under one reading and used under another.
 *
 * core's MCP scanner (`findDuplicateGuardedKey` in mcp-call.ts) looks only at seven JSON-RPC keys,
 * folded case-insensitively, with a bit mask per object; here every name counts and names are
 * compared exactly after unescaping, so it cannot be reused as it is.
 */

/**
 * True when some object in `text` has two members with the same name once unescaped (`"a"` and
 * `"\u0061"` are the same name). One linear pass, iterative whatever the nesting: a stack holds one
 * entry per open bracket (a set of names for an object, null for an array). `text` must be valid
 * JSON (the caller has parsed it already); on other text the pass still ends, and a name that
 * cannot be decoded counts as a duplicate.
 */
export function hasDuplicateMember(text: string): boolean {
  const stack: Array<Set<string> | null> = []
  // Right after `{` or a `,` inside an object the next string is a member name.
  let expectName = false
  const n = text.length
  let i = 0
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === 34 /* " */) {
      let j = i + 1
      let escaped = false
      while (j < n) {
        const d = text.charCodeAt(j)
        if (d === 92 /* \ */) {
          escaped = true
          j += 2
          continue
        }
        if (d === 34) break
        j++
      }
      if (expectName) {
        const names = stack[stack.length - 1]
        if (names !== null && names !== undefined) {
          // JSON.parse of one string literal: no nesting, so no recursion on attacker input.
          let name: string
          try {
            name = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j)
          } catch {
            return true // not valid JSON after all: refuse rather than guess
          }
          if (names.has(name)) return true
          names.add(name)
        }
        expectName = false
      }
      i = j + 1
      continue
    }
    if (c === 123 /* { */) {
      stack.push(new Set())
      expectName = true
    } else if (c === 91 /* [ */) {
      stack.push(null)
      expectName = false
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      stack.pop()
      expectName = false
    } else if (c === 44 /* , */) {
      const top = stack[stack.length - 1]
      expectName = top !== null && top !== undefined
    }
    i++
  }
  return false
}
