/**
 * `graphql.*` on graphql-js: its parser and its validation (the specification's rules, as OPA's
 * vendored gqlparser implements them), with the ASTs rewritten into the JSON OPA returns
 * (`graphql-to-json.ts`). Only the glue is here: reading queries and schemas, building and caching
 * schemas, and the builtins.
 *
 * A query or schema may also be given as such an AST object (a previous `graphql.parse_*` result),
 * as OPA accepts it; it is turned back into a graphql-js document (`graphql-from-json.ts`).
 */
import {
  buildASTSchema,
  type DocumentNode,
  type GraphQLSchema,
  Kind,
  type OperationTypeNode,
  parse,
  validate,
  validateSchema,
} from 'graphql'
import type { RegoBuiltin } from '../rego-policy.js'
import { queryFromAst, schemaFromAst } from './graphql-from-json.js'
import { queryAst, schemaAst } from './graphql-to-json.js'
import { isObj, isStr, type Obj } from './scope.js'

const blank = (s: string) => /^(?:[\s,\uFEFF]|#[^\n\r]*)*$/.test(s)
const EMPTY = { kind: Kind.DOCUMENT, definitions: [] } as unknown as DocumentNode

/** GraphQL text (or an AST object) as an executable document, or undefined. */
function parseQueryDoc(x: unknown): DocumentNode | undefined {
  if (isObj(x))
    try {
      return queryFromAst(x)
    } catch {
      return undefined
    }
  if (!isStr(x)) return undefined
  if (blank(x)) return EMPTY
  try {
    const doc = parse(x, { noLocation: true })
    const executable = doc.definitions.every(
      (d) => d.kind === Kind.OPERATION_DEFINITION || d.kind === Kind.FRAGMENT_DEFINITION,
    )
    return executable ? doc : undefined
  } catch {
    return undefined
  }
}

/** GraphQL text (or an AST object) as a type-system document, or undefined. */
function parseSchemaDoc(x: unknown): DocumentNode | undefined {
  if (isObj(x))
    try {
      return schemaFromAst(x)
    } catch {
      return undefined
    }
  if (!isStr(x)) return undefined
  if (blank(x)) return EMPTY
  try {
    const doc = parse(x, { noLocation: true })
    const sdl = doc.definitions.every(
      (d) => d.kind !== Kind.OPERATION_DEFINITION && d.kind !== Kind.FRAGMENT_DEFINITION,
    )
    return sdl ? doc : undefined
  } catch {
    return undefined
  }
}

/** A schema that passes validation, or undefined. */
/** SDL errors of graphql-js that gqlparser does not raise. */
const TOLERATED_SDL = [/^Enum value ".*" can only be defined once\.$/]

function buildAst(doc: DocumentNode): GraphQLSchema {
  try {
    return buildASTSchema(doc)
  } catch (e) {
    const messages = e instanceof Error ? e.message.split('\n\n') : []
    if (messages.length === 0 || !messages.every((m) => TOLERATED_SDL.some((re) => re.test(m)))) throw e
    return buildASTSchema(doc, { assumeValidSDL: true })
  }
}

function buildSchema(doc: DocumentNode): GraphQLSchema | undefined {
  try {
    const schema = buildAst(doc)
    // gqlparser accepts a schema without a query type; a query against it then fails validation.
    const errors = validateSchema(schema).filter((e) => !/^Query root type must be provided/.test(e.message))
    return errors.length === 0 ? schema : undefined
  } catch {
    return undefined
  }
}

/** Schemas given as text, parsed and built once (a policy passes the same schema every decision). */
const schemas = new Map<string, { doc: DocumentNode; schema: GraphQLSchema } | null>()

function schemaOf(x: unknown): { doc: DocumentNode; schema: GraphQLSchema } | undefined {
  const hit = isStr(x) ? schemas.get(x) : undefined
  if (hit !== undefined) return hit ?? undefined
  const doc = parseSchemaDoc(x)
  const schema = doc === undefined ? undefined : buildSchema(doc)
  const out = doc === undefined || schema === undefined ? undefined : { doc, schema }
  if (isStr(x)) {
    if (schemas.size >= 32) schemas.delete(schemas.keys().next().value as string)
    schemas.set(x, out ?? null)
  }
  return out
}

/** Parse and validate both; undefined when either fails. */
function verified(query: unknown, schemaText: unknown): [Obj, Obj] | undefined {
  const q = parseQueryDoc(query)
  const built = schemaOf(schemaText)
  if (q === undefined || built === undefined) return undefined
  const { doc: s, schema } = built
  // gqlparser refuses an operation whose root type the schema lacks; graphql-js leaves that to execution.
  for (const d of q.definitions)
    if (d.kind === Kind.OPERATION_DEFINITION && schema.getRootType(d.operation as OperationTypeNode) == null)
      return undefined
  try {
    if (validate(schema, q).length > 0) return undefined
  } catch {
    return undefined
  }
  return [queryAst(q), schemaAst(s)]
}

export const graphqlBuiltins: Record<string, RegoBuiltin> = {
  'graphql.parse_query': (q) => {
    const doc = isStr(q) ? parseQueryDoc(q) : undefined
    return doc === undefined ? undefined : queryAst(doc)
  },
  'graphql.parse_schema': (s) => {
    const doc = isStr(s) ? parseSchemaDoc(s) : undefined
    return doc === undefined ? undefined : schemaAst(doc)
  },
  'graphql.parse': (q, s) => verified(q, s),
  'graphql.parse_and_verify': (q, s) => {
    const v = verified(q, s)
    return v === undefined ? [false, {}, {}] : [true, ...v]
  },
  'graphql.is_valid': (q, s) => verified(q, s) !== undefined,
  'graphql.schema_is_valid': (s) => schemaOf(s) !== undefined,
}
