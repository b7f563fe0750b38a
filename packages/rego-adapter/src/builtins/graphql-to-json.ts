/**
 * graphql-js documents as the JSON OPA returns for them: gqlparser's Go structs (`Operations`,
 * `SelectionSet`, `Kind` numbers for values, ...) with null, empty and `Position` fields pruned,
 * as OPA prunes them.
 */
import {
  type ConstDirectiveNode,
  type DefinitionNode,
  type DirectiveNode,
  type DocumentNode,
  type FieldDefinitionNode,
  type InputValueDefinitionNode,
  Kind,
  type SelectionNode,
  type TypeNode,
  type ValueNode,
  type VariableDefinitionNode,
} from 'graphql'
import type { Obj } from './scope.js'

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

export function queryAst(doc: DocumentNode): Obj {
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

export function schemaAst(doc: DocumentNode): Obj {
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
