/**
 * gqlparser's JSON (as `graphql-to-json.ts` writes it, or written by hand) back to graphql-js
 * documents, for a query or schema given as an AST object (as OPA accepts it).
 */
import { type DocumentNode, Kind } from 'graphql'
import { isObj, isStr, type Obj } from './scope.js'

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

export function queryFromAst(o: Obj): DocumentNode {
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

export function schemaFromAst(o: Obj): DocumentNode {
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
