/**
 * `graphql.*` on graphql-js: its parser and its validation (the specification's rules, as OPA's
 * vendored gqlparser implements them), with the ASTs rewritten into the JSON OPA returns: gqlparser's
 * Go structs (`Operations`, `SelectionSet`, `Kind` numbers for values, ...) with null, empty and
 * `Position` fields pruned, as OPA prunes them. Only the glue is here.
 *
 * A query or schema may also be given as such an AST object (a previous `graphql.parse_*` result),
 * as OPA accepts it; it is turned back into a graphql-js document (`fromAst`).
 */
import {
  buildASTSchema,
  type ConstDirectiveNode,
  type DefinitionNode,
  type DirectiveNode,
  type DocumentNode,
  type FieldDefinitionNode,
  type GraphQLSchema,
  type InputValueDefinitionNode,
  Kind,
  type OperationTypeNode,
  parse,
  type SelectionNode,
  type TypeNode,
  type ValueNode,
  type VariableDefinitionNode,
  validate,
  validateSchema,
} from 'graphql'
import type { RegoBuiltin } from '../rego-policy.js'
import { isObj, isStr, type Obj } from './scope.js'

/** gqlparser's `ValueKind` numbers. */
const VALUE_KIND: Partial<Record<Kind, number>> = {
  [Kind.VARIABLE]: 0,
  [Kind.INT]: 1,
  [Kind.FLOAT]: 2,
  [Kind.STRING]: 3,
  [Kind.BOOLEAN]: 5,
  [Kind.NULL]: 6,
  [Kind.ENUM]: 7,
  [Kind.LIST]: 8,
  [Kind.OBJECT]: 9,
}

/** OPA's pruning: drop null and undefined, and arrays and objects that end up empty. */
function prune(v: unknown): unknown {
  if (Array.isArray(v)) {
    const out: unknown[] = []
    for (const x of v) {
      if (x === null || x === undefined) continue
      const p = prune(x)
      if (typeof p === 'object' && p !== null && Object.keys(p).length === 0) continue
      out.push(p)
    }
    return out
  }
  if (typeof v === 'object' && v !== null) {
    const out: Obj = {}
    for (const [k, x] of Object.entries(v)) {
      if (x === null || x === undefined) continue
      const p = prune(x)
      if (typeof p === 'object' && p !== null && Object.keys(p).length === 0) continue
      out[k] = p
    }
    return out
  }
  return v
}

function value(v: ValueNode): Obj {
  const Kind_ = VALUE_KIND[v.kind]
  switch (v.kind) {
    case Kind.VARIABLE:
      return { Raw: v.name.value, Kind: Kind_ }
    case Kind.STRING:
      return { Raw: v.value, Kind: v.block === true ? 4 : 3 }
    case Kind.NULL:
      return { Raw: 'null', Kind: Kind_ }
    case Kind.BOOLEAN:
      return { Raw: String(v.value), Kind: Kind_ }
    case Kind.LIST:
      return { Raw: '', Kind: Kind_, Children: v.values.map((x) => ({ Name: '', Value: value(x) })) }
    case Kind.OBJECT:
      return {
        Raw: '',
        Kind: Kind_,
        Children: v.fields.map((f) => ({ Name: f.name.value, Value: value(f.value) })),
      }
    default:
      return { Raw: v.value, Kind: Kind_ }
  }
}

function type(t: TypeNode): Obj {
  if (t.kind === Kind.NON_NULL_TYPE) return { ...type(t.type), NonNull: true }
  if (t.kind === Kind.LIST_TYPE) return { NamedType: '', Elem: type(t.type), NonNull: false }
  return { NamedType: t.name.value, NonNull: false }
}

const args = (xs: readonly { name: { value: string }; value: ValueNode }[] | undefined) =>
  (xs ?? []).map((a) => ({ Name: a.name.value, Value: value(a.value) }))

const directives = (ds: readonly (DirectiveNode | ConstDirectiveNode)[] | undefined) =>
  (ds ?? []).map((d) => ({ Name: d.name.value, Arguments: args(d.arguments), Location: '' }))

function selections(s: { selections: readonly SelectionNode[] } | undefined): Obj[] {
  return (s?.selections ?? []).map((x) => {
    if (x.kind === Kind.FIELD)
      return {
        Alias: x.alias?.value ?? x.name.value,
        Name: x.name.value,
        Arguments: args(x.arguments),
        Directives: directives(x.directives),
        SelectionSet: selections(x.selectionSet),
      }
    if (x.kind === Kind.FRAGMENT_SPREAD) return { Name: x.name.value, Directives: directives(x.directives) }
    return {
      TypeCondition: x.typeCondition?.name.value ?? '',
      Directives: directives(x.directives),
      SelectionSet: selections(x.selectionSet),
    }
  })
}

const variable = (v: VariableDefinitionNode) => ({
  Variable: v.variable.name.value,
  Type: type(v.type),
  DefaultValue: v.defaultValue === undefined ? undefined : value(v.defaultValue),
  Directives: directives(v.directives),
  Used: false,
})

function queryAst(doc: DocumentNode): Obj {
  const Operations: Obj[] = []
  const Fragments: Obj[] = []
  for (const d of doc.definitions) {
    if (d.kind === Kind.OPERATION_DEFINITION)
      Operations.push({
        Operation: d.operation,
        Name: d.name?.value ?? '',
        VariableDefinitions: (d.variableDefinitions ?? []).map(variable),
        Directives: directives(d.directives),
        SelectionSet: selections(d.selectionSet),
      })
    else if (d.kind === Kind.FRAGMENT_DEFINITION)
      Fragments.push({
        Name: d.name.value,
        VariableDefinition: (d.variableDefinitions ?? []).map(variable),
        TypeCondition: d.typeCondition.name.value,
        Directives: directives(d.directives),
        SelectionSet: selections(d.selectionSet),
      })
  }
  return prune({ Operations, Fragments }) as Obj
}

const description = (d: { description?: { value: string } | undefined }) => d.description?.value ?? ''

const argDef = (a: InputValueDefinitionNode) => ({
  Description: description(a),
  Name: a.name.value,
  DefaultValue: a.defaultValue === undefined ? undefined : value(a.defaultValue),
  Type: type(a.type),
  Directives: directives(a.directives),
})

const fieldDef = (f: FieldDefinitionNode | InputValueDefinitionNode) => ({
  Description: description(f),
  Name: f.name.value,
  Arguments: 'arguments' in f ? (f.arguments ?? []).map(argDef) : undefined,
  DefaultValue: 'defaultValue' in f && f.defaultValue !== undefined ? value(f.defaultValue) : undefined,
  Type: type(f.type),
  Directives: directives(f.directives),
})

const KIND: Record<string, string> = {
  Scalar: 'SCALAR',
  Object: 'OBJECT',
  Interface: 'INTERFACE',
  Union: 'UNION',
  Enum: 'ENUM',
  InputObject: 'INPUT_OBJECT',
}

function definition(d: DefinitionNode): Obj | undefined {
  const m = /^(Scalar|Object|Interface|Union|Enum|InputObject)Type(Definition|Extension)$/.exec(d.kind)
  if (m === null) return undefined
  const x = d as DefinitionNode & Record<string, never>
  const named = (xs: readonly { name: { value: string } }[] | undefined) =>
    (xs ?? []).map((n) => n.name.value)
  return {
    Kind: KIND[m[1]!],
    Description: 'description' in x ? description(x as { description?: { value: string } }) : '',
    Name: (x as unknown as { name: { value: string } }).name.value,
    Directives: directives((x as { directives?: readonly ConstDirectiveNode[] }).directives),
    Interfaces: named((x as { interfaces?: readonly { name: { value: string } }[] }).interfaces),
    Fields: (
      (x as { fields?: readonly (FieldDefinitionNode | InputValueDefinitionNode)[] }).fields ?? []
    ).map(fieldDef),
    Types: named((x as { types?: readonly { name: { value: string } }[] }).types),
    EnumValues: (
      (x as { values?: readonly { name: { value: string }; description?: { value: string } }[] }).values ?? []
    ).map((v) => ({
      Description: description(v),
      Name: v.name.value,
      Directives: directives((v as { directives?: readonly ConstDirectiveNode[] }).directives),
    })),
    BuiltIn: false,
  }
}

function schemaAst(doc: DocumentNode): Obj {
  const out: Record<string, Obj[]> = {
    Schema: [],
    SchemaExtension: [],
    Directives: [],
    Definitions: [],
    Extensions: [],
  }
  for (const d of doc.definitions) {
    if (d.kind === Kind.SCHEMA_DEFINITION || d.kind === Kind.SCHEMA_EXTENSION)
      out[d.kind === Kind.SCHEMA_DEFINITION ? 'Schema' : 'SchemaExtension']!.push({
        Description: d.kind === Kind.SCHEMA_DEFINITION ? description(d) : '',
        Directives: directives(d.directives),
        OperationTypes: (d.operationTypes ?? []).map((o) => ({
          Operation: o.operation,
          Type: o.type.name.value,
        })),
      })
    else if (d.kind === Kind.DIRECTIVE_DEFINITION)
      out.Directives!.push({
        Description: description(d),
        Name: d.name.value,
        Arguments: (d.arguments ?? []).map(argDef),
        Locations: d.locations.map((l) => l.value),
        IsRepeatable: d.repeatable,
      })
    else {
      const def = definition(d)
      if (def !== undefined) out[d.kind.endsWith('Extension') ? 'Extensions' : 'Definitions']!.push(def)
    }
  }
  return prune(out) as Obj
}

// ---- gqlparser JSON (as returned above, or written by hand) back to graphql-js nodes ----

const arr = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : [])
const str = (v: unknown): string => (isStr(v) ? v : '')
const nameNode = (v: unknown) => ({ kind: Kind.NAME, value: str(v) }) as const
const VALUE_NODE_KIND = [
  Kind.VARIABLE,
  Kind.INT,
  Kind.FLOAT,
  Kind.STRING,
  Kind.STRING,
  Kind.BOOLEAN,
  Kind.NULL,
  Kind.ENUM,
  Kind.LIST,
  Kind.OBJECT,
] as const

function valueNode(o: Obj): unknown {
  const k = typeof o.Kind === 'number' ? o.Kind : 0
  const raw = str(o.Raw)
  const children = arr(o.Children)
  switch (VALUE_NODE_KIND[k]) {
    case Kind.VARIABLE:
      return { kind: Kind.VARIABLE, name: nameNode(raw) }
    case Kind.STRING:
      return { kind: Kind.STRING, value: raw, block: k === 4 }
    case Kind.BOOLEAN:
      return { kind: Kind.BOOLEAN, value: raw === 'true' }
    case Kind.NULL:
      return { kind: Kind.NULL }
    case Kind.LIST:
      return { kind: Kind.LIST, values: children.map((c) => valueNode(isObj(c.Value) ? c.Value : {})) }
    case Kind.OBJECT:
      return {
        kind: Kind.OBJECT,
        fields: children.map((c) => ({
          kind: Kind.OBJECT_FIELD,
          name: nameNode(c.Name),
          value: valueNode(isObj(c.Value) ? c.Value : {}),
        })),
      }
    case undefined:
      throw new TypeError(`value kind ${k}`)
    default:
      return { kind: VALUE_NODE_KIND[k], value: raw }
  }
}

function typeNode(o: unknown): unknown {
  const t = isObj(o) ? o : {}
  const inner = isObj(t.Elem)
    ? { kind: Kind.LIST_TYPE, type: typeNode(t.Elem) }
    : { kind: Kind.NAMED_TYPE, name: nameNode(t.NamedType) }
  return t.NonNull === true ? { kind: Kind.NON_NULL_TYPE, type: inner } : inner
}

const argNodes = (v: unknown) =>
  arr(v).map((a) => ({
    kind: Kind.ARGUMENT,
    name: nameNode(a.Name),
    value: valueNode(isObj(a.Value) ? a.Value : {}),
  }))
const directiveNodes = (v: unknown) =>
  arr(v).map((d) => ({ kind: Kind.DIRECTIVE, name: nameNode(d.Name), arguments: argNodes(d.Arguments) }))
const named = (v: unknown) => ({ kind: Kind.NAMED_TYPE, name: nameNode(v) })

/**
 * OPA reads every selection of an AST object as a field (a fragment spread becomes a field named
 * after the fragment, an inline fragment a field without a name), so a query object with fragments
 * does not validate in OPA; the same here.
 */
function selectionSetNode(v: unknown): unknown {
  const selections = arr(v).map((x) => ({
    kind: Kind.FIELD,
    alias: isStr(x.Alias) && x.Alias !== x.Name ? nameNode(x.Alias) : undefined,
    name: nameNode(x.Name),
    arguments: argNodes(x.Arguments),
    directives: directiveNodes(x.Directives),
    selectionSet: Array.isArray(x.SelectionSet) ? selectionSetNode(x.SelectionSet) : undefined,
  }))
  return { kind: Kind.SELECTION_SET, selections }
}

const variableNodes = (v: unknown) =>
  arr(v).map((d) => ({
    kind: Kind.VARIABLE_DEFINITION,
    variable: { kind: Kind.VARIABLE, name: nameNode(d.Variable) },
    type: typeNode(d.Type),
    defaultValue: isObj(d.DefaultValue) ? valueNode(d.DefaultValue) : undefined,
    directives: directiveNodes(d.Directives),
  }))

function queryFromAst(o: Obj): DocumentNode {
  const definitions = [
    ...arr(o.Operations).map((op) => ({
      kind: Kind.OPERATION_DEFINITION,
      operation: str(op.Operation) || 'query',
      name: str(op.Name) === '' ? undefined : nameNode(op.Name),
      variableDefinitions: variableNodes(op.VariableDefinitions),
      directives: directiveNodes(op.Directives),
      selectionSet: selectionSetNode(op.SelectionSet),
    })),
    ...arr(o.Fragments).map((f) => ({
      kind: Kind.FRAGMENT_DEFINITION,
      name: nameNode(f.Name),
      typeCondition: named(f.TypeCondition),
      directives: directiveNodes(f.Directives),
      selectionSet: selectionSetNode(f.SelectionSet),
    })),
  ]
  return { kind: Kind.DOCUMENT, definitions } as unknown as DocumentNode
}

const descNode = (v: unknown) => (str(v) === '' ? undefined : { kind: Kind.STRING, value: str(v) })

const inputValueNodes = (v: unknown) =>
  arr(v).map((a) => ({
    kind: Kind.INPUT_VALUE_DEFINITION,
    description: descNode(a.Description),
    name: nameNode(a.Name),
    type: typeNode(a.Type),
    defaultValue: isObj(a.DefaultValue) ? valueNode(a.DefaultValue) : undefined,
    directives: directiveNodes(a.Directives),
  }))

const DEF_KIND: Record<string, string> = {
  SCALAR: 'Scalar',
  OBJECT: 'Object',
  INTERFACE: 'Interface',
  UNION: 'Union',
  ENUM: 'Enum',
  INPUT_OBJECT: 'InputObject',
}

function definitionNode(d: Obj, extension: boolean): unknown {
  const k = DEF_KIND[str(d.Kind)]
  if (k === undefined) throw new TypeError(`definition kind ${String(d.Kind)}`)
  const fields =
    k === 'InputObject'
      ? inputValueNodes(d.Fields)
      : arr(d.Fields).map((f) => ({
          kind: Kind.FIELD_DEFINITION,
          description: descNode(f.Description),
          name: nameNode(f.Name),
          arguments: inputValueNodes(f.Arguments),
          type: typeNode(f.Type),
          directives: directiveNodes(f.Directives),
        }))
  return {
    kind: `${k}Type${extension ? 'Extension' : 'Definition'}`,
    description: extension ? undefined : descNode(d.Description),
    name: nameNode(d.Name),
    directives: directiveNodes(d.Directives),
    interfaces: (Array.isArray(d.Interfaces) ? d.Interfaces : []).map(named),
    fields: k === 'Object' || k === 'Interface' || k === 'InputObject' ? fields : undefined,
    types: k === 'Union' ? (Array.isArray(d.Types) ? d.Types : []).map(named) : undefined,
    values:
      k === 'Enum'
        ? arr(d.EnumValues).map((v) => ({
            kind: Kind.ENUM_VALUE_DEFINITION,
            description: descNode(v.Description),
            name: nameNode(v.Name),
            directives: directiveNodes(v.Directives),
          }))
        : undefined,
  }
}

function schemaFromAst(o: Obj): DocumentNode {
  const schemaNode = (s: Obj, extension: boolean) => ({
    kind: extension ? Kind.SCHEMA_EXTENSION : Kind.SCHEMA_DEFINITION,
    description: extension ? undefined : descNode(s.Description),
    directives: directiveNodes(s.Directives),
    operationTypes: arr(s.OperationTypes).map((t) => ({
      kind: Kind.OPERATION_TYPE_DEFINITION,
      operation: str(t.Operation),
      type: named(t.Type),
    })),
  })
  const definitions = [
    ...arr(o.Schema).map((s) => schemaNode(s, false)),
    ...arr(o.SchemaExtension).map((s) => schemaNode(s, true)),
    ...arr(o.Directives).map((d) => ({
      kind: Kind.DIRECTIVE_DEFINITION,
      description: descNode(d.Description),
      name: nameNode(d.Name),
      arguments: inputValueNodes(d.Arguments),
      repeatable: d.IsRepeatable === true,
      locations: (Array.isArray(d.Locations) ? d.Locations : []).map(nameNode),
    })),
    ...arr(o.Definitions).map((d) => definitionNode(d, false)),
    ...arr(o.Extensions).map((d) => definitionNode(d, true)),
  ]
  return { kind: Kind.DOCUMENT, definitions } as unknown as DocumentNode
}

/** gqlparser reads text with no definitions (white space, commas, comments) as an empty document. */
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
