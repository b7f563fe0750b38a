/**
 * Policy documents: parse YAML or JSON text keeping positions, validate against the JSON Schema
 * with ajv, and report every problem at once with its JSON path (and line/column for text).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml'
import type { Problem } from './errors.js'
import { PolicyError } from './errors.js'
import policySchema from './policy.schema.json' with { type: 'json' }

/** The JSON Schema of the policy document (draft-07). */
export const POLICY_SCHEMA: Readonly<Record<string, unknown>> = policySchema

/** Maps a JSON pointer to a 1-based line and column in the source text. */
export type Locator = (pointer: string) => { line: number; column: number } | undefined

/** A document with the means to locate its parts in the text it came from. */
export interface SourceDocument {
  readonly value: unknown
  readonly locate: Locator
  /** File name or description, for messages. */
  readonly origin?: string
}

const noLocation: Locator = () => undefined

/**
 * Keys are equal when their text is: `1` and `"1"` both become the property "1", so the second
 * would silently win.
 */
function sameKey(a: unknown, b: unknown): boolean {
  const text = (k: unknown) => String(isScalar(k) ? k.value : k)
  return a === b || text(a) === text(b)
}

/**
 * Parse a policy from YAML or JSON text (JSON is YAML). Duplicate keys are an error: a document
 * whose meaning depends on which of two keys wins is not a policy.
 */
export function parsePolicyText(text: string, origin?: string): SourceDocument {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, uniqueKeys: sameKey, prettyErrors: false })
  // Warnings too: an unresolved tag (`!custom`, `!!js/function`) would silently become a string.
  const issues = [...doc.errors, ...doc.warnings]
  if (issues.length > 0) {
    throw new PolicyError(issues.map((e) => yamlProblem(text, lineCounter, e.code, e.pos[0], e.message)))
  }
  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount: 100 })
  } catch (e) {
    throw new PolicyError([{ code: 'policy_parse', message: (e as Error).message, path: '' }])
  }
  const locate: Locator = (pointer) => {
    const node = nodeAt(doc.contents as Node | null, pointer)
    const start = node?.range?.[0]
    if (start === undefined) return undefined
    const p = lineCounter.linePos(start)
    return { line: p.line, column: p.col }
  }
  return origin === undefined ? { value, locate } : { value, locate, origin }
}

/**
 * A YAML error located at the token that causes it. The parser reports some errors where it gave
 * up (the end of the text, the start of the next line): an unclosed `[`/`{` is reported at the
 * bracket, an unterminated quoted string at its opening quote, an error at the start of an indented
 * line at its first character; the message quotes the token found there.
 */
function yamlProblem(text: string, lines: LineCounter, code: string, pos: number, raw: string): Problem {
  let at = Math.min(pos, text.length)
  let message = raw.split('\n')[0] ?? raw
  const unclosed = /end with a ([\]}])/.exec(message)
  if (unclosed !== undefined && unclosed !== null) {
    const open = unclosedBracket(text, at, unclosed[1] === ']' ? '[' : '{')
    if (open !== -1) {
      at = open
      message = `"${text[open]}" is never closed: expected "${unclosed[1]}" (or the collection is not indented enough)`
    }
  } else if (/Missing closing (["'])/.test(message)) {
    const q = /Missing closing (["'])/.exec(message)![1]!
    const open = text.lastIndexOf(q, Math.max(0, at - 1))
    if (open !== -1) {
      at = open
      message = `the string starting with ${q} is never closed: expected a closing ${q}`
    }
  }
  // From where the parser stopped (end of text, start of a line) to the token itself.
  while (at > 0 && at >= text.length) at--
  while (at > 0 && /\s/.test(text[at] ?? '') && (text[at] === '\n' || at === text.length - 1)) at--
  while (at < text.length && text[at] === ' ' && lines.linePos(at).col === 1) {
    let j = at
    while (text[j] === ' ') j++
    if (text[j] === '\n' || j >= text.length) break
    at = j
  }
  const token = /^[^\s,:[\]{}]+|^\S/.exec(text.slice(at))?.[0]
  if (token !== undefined && code !== 'BAD_INDENT' && !message.includes('never closed'))
    message = `${message} (at ${JSON.stringify(token.length > 40 ? `${token.slice(0, 40)}...` : token)})`
  const lp = lines.linePos(at)
  return { code: 'policy_parse', message, path: '', line: lp.line, column: lp.col }
}

/** Offset of the last `open` bracket before `end` that is not closed before it (outside quotes); -1 if none. */
function unclosedBracket(text: string, end: number, open: '[' | '{'): number {
  const close = open === '[' ? ']' : '}'
  const stack: number[] = []
  let quote: string | undefined
  for (let i = 0; i < end && i < text.length; i++) {
    const c = text[i]
    if (quote !== undefined) {
      if (c === '\\' && quote === '"') i++
      else if (c === quote) quote = undefined
      continue
    }
    if (c === '#' && (i === 0 || /\s/.test(text[i - 1]!))) {
      while (i < end && text[i] !== '\n') i++
    } else if (c === '"' || c === "'") quote = c
    else if (c === open) stack.push(i)
    else if (c === close) stack.pop()
  }
  return stack.at(-1) ?? -1
}

/** The YAML node a JSON pointer names, or the deepest one on its way (for problem locations). */
export function nodeAt(root: Node | null, pointer: string): Node | undefined {
  let node: Node | null | undefined = root
  if (pointer === '') return node ?? undefined
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (isMap(node)) {
      const pair: { key: unknown; value: unknown } | undefined = node.items.find(
        (p) => isScalar(p.key) && String(p.key.value) === key,
      )
      if (pair === undefined) return node
      node = (pair.value as Node | null) ?? (pair.key as Node)
    } else if (isSeq(node)) {
      const item = node.items[Number(key)] as Node | undefined
      if (item === undefined) return node
      node = item
    } else return node ?? undefined
  }
  return node ?? undefined
}

/** Wrap an already-parsed object (no positions). */
export function sourceFromValue(value: unknown): SourceDocument {
  return { value, locate: noLocation }
}

let validator: ValidateFunction | undefined
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true })

function validateFn(): ValidateFunction {
  validator ??= ajv.compile(POLICY_SCHEMA)
  return validator
}

/** Compile a schema fragment (an evaluator's config schema) with the shared ajv instance. */
export function compileSchema(schema: Readonly<Record<string, unknown>>): ValidateFunction {
  return ajv.compile(schema)
}

/** Problems for ajv errors, with paths prefixed by `base` and located in the source. */
export function schemaProblems(
  errors: readonly ErrorObject[] | null | undefined,
  base: string,
  locate: Locator,
): Problem[] {
  if (!errors) return []
  const out: Problem[] = []
  const seen = new Set<string>()
  for (const e of errors) {
    // `if/then`-style wrapper errors repeat their children; keep the informative ones.
    if (e.keyword === 'if') continue
    let path = base + e.instancePath
    let message = e.message ?? 'is invalid'
    if (e.keyword === 'additionalProperties')
      message = `unknown field "${String(e.params.additionalProperty)}"`
    else if (e.keyword === 'enum')
      message = `must be one of: ${(e.params.allowedValues as unknown[]).map(shown).join(', ')}`
    else if (e.keyword === 'const') message = `must be one of: ${shown(e.params.allowedValue)}`
    else if (e.keyword === 'not' && path === '') {
      // Not an object at all (an empty file): the type error says it; this one would mislead.
      if (errors.some((x) => x.keyword === 'type' && x.instancePath === '')) continue
      if (e.schemaPath === '#/dependencies/layers/not') {
        // A top-level default would be ambiguous next to layers (which layer?): point at it.
        message = 'must not have both default and layers: give each layer its own default'
        path = '/default'
      } else message = 'must not have both rules and layers'
    }
    const key = `${path}|${message}`
    if (seen.has(key)) continue
    seen.add(key)
    const pos = locate(path)
    out.push({ code: 'schema', message, path, ...(pos ?? {}) })
  }
  return out
}

/** An allowed value as a message shows it: strings bare, anything else as JSON. */
function shown(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v)
}

/**
 * Validate against the policy schema; returns problems (empty when valid). A top-level `"$schema"`
 * string (editors read it to find `policy.schema.json`) is allowed and ignored.
 */
export function validatePolicyShape(src: SourceDocument): Problem[] {
  const validate = validateFn()
  let value = src.value
  const problems: Problem[] = []
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && '$schema' in value) {
    const { $schema, ...rest } = value as Record<string, unknown>
    if (typeof $schema !== 'string')
      problems.push({
        code: 'schema',
        message: 'must be string',
        path: '/$schema',
        ...(src.locate('/$schema') ?? {}),
      })
    value = rest
  }
  if (validate(value)) return problems
  return [...problems, ...schemaProblems(validate.errors, '', src.locate)]
}

/** Escape a key for use in a JSON pointer. */
export function pointer(...parts: ReadonlyArray<string | number>): string {
  return parts.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('')
}
