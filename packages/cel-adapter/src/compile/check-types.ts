/**
 * Type checking of CEL expressions at load, against the declared variables' known field types.
 *
 * @bufbuild/cel has no checker, so this is a focused inference over the parsed syntax tree: the
 * fields whose types are known (`request.method` is a string, `request.headers` a map of strings,
 * `source.port` a number, ...) and literals get a type, everything else is `dyn` (JWT claims,
 * `json(...)`, `request.json`, `mcp.tool.arguments`, metadata). Only clear mismatches between two
 * known types are reported: `request.method + 1` (string + int) fails on every request, and
 * `request.method == 1` is never true. A `dyn` operand is never a problem.
 */
import type { Expr } from '@bufbuild/cel-spec/cel/expr/syntax_pb.js'

/** An inferred type. `num` is a number whose CEL kind (int, uint, double) is not fixed. */
type CelType =
  | { readonly k: 'dyn' }
  | { readonly k: 'string' | 'bool' | 'bytes' | 'null' | 'timestamp' | 'duration' | 'type' }
  | { readonly k: 'num'; readonly n: 'int' | 'uint' | 'double' | 'number' }
  | { readonly k: 'list'; readonly elem: CelType }
  | { readonly k: 'map'; readonly key: CelType; readonly value: CelType }
  | { readonly k: 'record'; readonly name: string; readonly fields: Readonly<Record<string, CelType>> }

const DYN: CelType = { k: 'dyn' }
const STRING: CelType = { k: 'string' }
const BOOL: CelType = { k: 'bool' }
const BYTES: CelType = { k: 'bytes' }
const NULL: CelType = { k: 'null' }
const TIMESTAMP: CelType = { k: 'timestamp' }
const DURATION: CelType = { k: 'duration' }
const INT: CelType = { k: 'num', n: 'int' }
const UINT: CelType = { k: 'num', n: 'uint' }
const DOUBLE: CelType = { k: 'num', n: 'double' }
const NUMBER: CelType = { k: 'num', n: 'number' }
const STRINGS: CelType = { k: 'list', elem: STRING }
const STRING_MAP: CelType = { k: 'map', key: STRING, value: STRING }
const LIST_MAP: CelType = { k: 'map', key: STRING, value: STRINGS }

function record(name: string, fields: Record<string, CelType>): CelType {
  return { k: 'record', name, fields }
}

const PEER_FIELDS: Record<string, CelType> = {
  address: STRING,
  port: NUMBER,
  rawAddress: STRING,
  rawPort: NUMBER,
  principal: STRING,
  spiffeId: STRING,
  identity: record('identity', { trustDomain: STRING, namespace: STRING, serviceAccount: STRING }),
  service: STRING,
  labels: STRING_MAP,
  certificate: STRING,
  subjectAltNames: STRINGS,
  issuer: STRING,
  subject: STRING,
  subjectCn: STRING,
}

/** The variables whose fields have known types (docs/cel.md, "Variables"); others are dyn. */
const VARIABLE_TYPES: ReadonlyMap<string, CelType> = new Map<string, CelType>([
  [
    'request',
    record('request', {
      method: STRING,
      path: STRING,
      pathAndQuery: STRING,
      uri: STRING,
      host: STRING,
      scheme: STRING,
      protocol: STRING,
      version: STRING,
      headers: STRING_MAP,
      headerValues: LIST_MAP,
      query: LIST_MAP,
      body: BYTES,
      bodyPrefix: BYTES,
      json: DYN,
      startTime: TIMESTAMP,
    }),
  ],
  ['source', record('source', PEER_FIELDS)],
  ['destination', record('destination', { ...PEER_FIELDS, hostname: STRING })],
  [
    'mcp',
    record('mcp', {
      method: STRING,
      methodName: STRING,
      id: DYN,
      sessionId: STRING,
      params: DYN,
      tool: record('mcp.tool', { name: STRING, arguments: DYN, target: STRING }),
      prompt: record('mcp.prompt', { name: STRING, arguments: DYN, target: STRING }),
      resource: record('mcp.resource', { uri: STRING, name: STRING, target: STRING }),
    }),
  ],
  ['basicAuth', record('basicAuth', { username: STRING })],
  ['context', STRING_MAP],
])

/** The type's name in messages. */
function typeName(t: CelType): string {
  switch (t.k) {
    case 'num':
      return t.n
    case 'list':
      return t.elem.k === 'dyn' ? 'list' : `list(${typeName(t.elem)})`
    case 'map':
      return t.value.k === 'dyn' ? 'map' : `map(string, ${typeName(t.value)})`
    case 'record':
      return `${t.name} (an object)`
    default:
      return t.k
  }
}

/** Result types of functions and methods that do not depend on their arguments. */
const RESULT: Readonly<Record<string, CelType>> = {
  size: INT,
  string: STRING,
  int: INT,
  uint: UINT,
  double: DOUBLE,
  bool: BOOL,
  bytes: BYTES,
  timestamp: TIMESTAMP,
  duration: DURATION,
  startsWith: BOOL,
  endsWith: BOOL,
  matches: BOOL,
  isIP: BOOL,
  isCIDR: BOOL,
  lowerAscii: STRING,
  upperAscii: STRING,
  trim: STRING,
  toJson: STRING,
  to_json: STRING,
  uuid: STRING,
}

/** String methods: called on a known non-string, they fail on every request. */
const STRING_METHODS = new Set(['startsWith', 'endsWith', 'matches', 'lowerAscii', 'upperAscii', 'trim'])

const ARITHMETIC: Readonly<Record<string, string>> = {
  '_+_': '+',
  '_-_': '-',
  '_*_': '*',
  '_/_': '/',
  '_%_': '%',
}
const EQUALITY: Readonly<Record<string, string>> = { '_==_': '==', '_!=_': '!=' }
const ORDER: Readonly<Record<string, string>> = { '_<_': '<', '_<=_': '<=', '_>_': '>', '_>=_': '>=' }
const LOGIC: Readonly<Record<string, string>> = { '_&&_': '&&', '_||_': '||' }

const known = (t: CelType): boolean => t.k !== 'dyn'

/** The type all of `ts` share when they are plain scalars of one kind, else dyn. */
function common(ts: readonly CelType[]): CelType {
  const first = ts[0]
  if (
    first === undefined ||
    first.k === 'num' ||
    first.k === 'list' ||
    first.k === 'map' ||
    first.k === 'record'
  )
    return DYN
  return ts.every((t) => t.k === first.k) ? first : DYN
}

/** Kinds that may meet in `==`/`<`: numbers with numbers, else the same kind. */
function comparable(a: CelType, b: CelType): boolean {
  if (!known(a) || !known(b)) return true
  if (a.k === 'null' || b.k === 'null') return true
  const group = (t: CelType) => (t.k === 'record' ? 'map' : t.k)
  return group(a) === group(b)
}

function ordered(a: CelType, b: CelType): boolean {
  if (!known(a) || !known(b)) return true
  if (a.k === 'num' && b.k === 'num') return true
  if (a.k !== b.k) return false
  return a.k === 'string' || a.k === 'bytes' || a.k === 'timestamp' || a.k === 'duration' || a.k === 'bool'
}

/** The result of `a op b`, or undefined when the combination always fails. */
function arithmetic(op: string, a: CelType, b: CelType): CelType | undefined {
  if (!known(a) || !known(b)) return DYN
  if (a.k === 'num' && b.k === 'num') return a.n === b.n ? a : NUMBER
  if (op === '+') {
    if (a.k === 'string' && b.k === 'string') return STRING
    if (a.k === 'bytes' && b.k === 'bytes') return BYTES
    if (a.k === 'list' && b.k === 'list') return a.elem.k === b.elem.k ? a : { k: 'list', elem: DYN }
    if (a.k === 'timestamp' && b.k === 'duration') return TIMESTAMP
    if (a.k === 'duration' && (b.k === 'timestamp' || b.k === 'duration')) return b
    return undefined
  }
  if (op === '-') {
    if (a.k === 'timestamp' && b.k === 'timestamp') return DURATION
    if (a.k === 'timestamp' && b.k === 'duration') return TIMESTAMP
    if (a.k === 'duration' && b.k === 'duration') return DURATION
  }
  return undefined
}

/** Where a problem is, as an expression id; the caller turns it into line and column. */
export interface TypeProblem {
  readonly id: bigint
  readonly message: string
}

/** Mismatches in `e`, with the ids of the expressions where they are. */
export function typeProblems(e: Expr, variables: ReadonlySet<string>): TypeProblem[] {
  const problems: TypeProblem[] = []
  const report = (at: Expr, message: string) =>
    problems.push({ id: at.id, message: `type mismatch: ${message}` })

  const infer = (x: Expr | undefined, scope: ReadonlyMap<string, CelType>): CelType => {
    if (x === undefined) return DYN
    const k = x.exprKind
    switch (k.case) {
      case 'constExpr': {
        switch (k.value.constantKind.case) {
          case 'stringValue':
            return STRING
          case 'int64Value':
            return INT
          case 'uint64Value':
            return UINT
          case 'doubleValue':
            return DOUBLE
          case 'boolValue':
            return BOOL
          case 'bytesValue':
            return BYTES
          case 'nullValue':
            return NULL
          default:
            return DYN
        }
      }
      case 'identExpr': {
        const name = k.value.name
        const bound = scope.get(name)
        if (bound !== undefined) return bound
        return variables.has(name) ? (VARIABLE_TYPES.get(name) ?? DYN) : DYN
      }
      case 'selectExpr': {
        const operand = infer(k.value.operand, scope)
        if (k.value.testOnly) return BOOL
        return field(x, operand, k.value.field)
      }
      case 'listExpr': {
        const elems = k.value.elements.map((el) => infer(el, scope))
        return { k: 'list', elem: common(elems) }
      }
      case 'structExpr': {
        const keys: CelType[] = []
        const values: CelType[] = []
        for (const entry of k.value.entries) {
          if (entry.keyKind.case === 'mapKey') keys.push(infer(entry.keyKind.value, scope))
          values.push(infer(entry.value, scope))
        }
        if (k.value.messageName !== '') return DYN
        return { k: 'map', key: common(keys), value: common(values) }
      }
      case 'comprehensionExpr': {
        const c = k.value
        const range = infer(c.iterRange, scope)
        infer(c.accuInit, scope)
        const inner = new Map(scope)
        // Over a list the variable is an element (its index with two variables), over a map a key.
        const element: CelType =
          c.iterVar2 !== ''
            ? range.k === 'list'
              ? INT
              : range.k === 'map'
                ? range.key
                : DYN
            : range.k === 'list'
              ? range.elem
              : range.k === 'map'
                ? range.key
                : DYN
        inner.set(c.iterVar, element)
        if (c.iterVar2 !== '')
          inner.set(c.iterVar2, range.k === 'list' ? range.elem : range.k === 'map' ? range.value : DYN)
        inner.set(c.accuVar, DYN)
        infer(c.loopCondition, inner)
        infer(c.loopStep, inner)
        infer(c.result, new Map(scope).set(c.accuVar, DYN))
        return DYN
      }
      case 'callExpr':
        return call(x, scope)
      default:
        return DYN
    }
  }

  const field = (at: Expr, operand: CelType, name: string): CelType => {
    switch (operand.k) {
      case 'record':
        return operand.fields[name] ?? DYN
      case 'map':
        return operand.value
      case 'string':
      case 'bool':
      case 'num':
      case 'bytes':
      case 'list':
      case 'timestamp':
      case 'duration':
        report(at, `${typeName(operand)} has no field '${name}'`)
        return DYN
      default:
        return DYN
    }
  }

  const call = (x: Expr, scope: ReadonlyMap<string, CelType>): CelType => {
    if (x.exprKind.case !== 'callExpr') return DYN
    const c = x.exprKind.value
    const fn = c.function
    const target = c.target === undefined ? undefined : infer(c.target, scope)
    const args = c.args.map((a) => infer(a, scope))
    const [a, b] = args as [CelType, CelType]
    const arith = ARITHMETIC[fn]
    if (arith !== undefined && args.length === 2) {
      const r = arithmetic(arith, a, b)
      if (r !== undefined) return r
      report(x, `'${arith}' cannot combine ${typeName(a)} and ${typeName(b)}`)
      return DYN
    }
    if (fn === '-_' && args.length === 1) {
      if (known(a) && a.k !== 'num' && a.k !== 'duration') report(x, `'-' cannot negate ${typeName(a)}`)
      return a.k === 'num' || a.k === 'duration' ? a : DYN
    }
    const eq = EQUALITY[fn]
    if (eq !== undefined && args.length === 2) {
      if (!comparable(a, b))
        report(x, `'${eq}' compares ${typeName(a)} with ${typeName(b)}, which is never equal`)
      return BOOL
    }
    const ord = ORDER[fn]
    if (ord !== undefined && args.length === 2) {
      if (!ordered(a, b)) report(x, `'${ord}' cannot compare ${typeName(a)} with ${typeName(b)}`)
      return BOOL
    }
    // `&&` and `||` absorb errors (`false && 32` is false), so their operands are not checked.
    if (LOGIC[fn] !== undefined) return BOOL
    if (fn === '!_' && args.length === 1) {
      if (known(a) && a.k !== 'bool') report(x, `'!' needs a bool, not ${typeName(a)}`)
      return BOOL
    }
    if (fn === '_?_:_' && args.length === 3) {
      if (known(a) && a.k !== 'bool') report(x, `the condition of '? :' must be a bool, not ${typeName(a)}`)
      const [, y, z] = args as [CelType, CelType, CelType]
      return y.k === z.k && y.k !== 'num' && y.k !== 'list' && y.k !== 'map' && y.k !== 'record' ? y : DYN
    }
    if (fn === '@in' && args.length === 2) {
      if (known(b) && b.k !== 'list' && b.k !== 'map' && b.k !== 'record')
        report(x, `'in' needs a list or a map on its right, not ${typeName(b)}`)
      return BOOL
    }
    if ((fn === '_[_]' || fn === '_[?_]') && args.length === 2) {
      if (fn === '_[?_]') return DYN
      switch (a.k) {
        case 'list':
          if (known(b) && b.k !== 'num') report(x, `a list is indexed by a number, not ${typeName(b)}`)
          return a.elem
        case 'map':
          return a.value
        case 'record': {
          const key = c.args[1]?.exprKind
          if (key?.case === 'constExpr' && key.value.constantKind.case === 'stringValue')
            return a.fields[key.value.constantKind.value] ?? DYN
          return DYN
        }
        case 'dyn':
        case 'null':
          return DYN
        default:
          report(x, `${typeName(a)} cannot be indexed with [...]`)
          return DYN
      }
    }
    if (target !== undefined && STRING_METHODS.has(fn) && known(target) && target.k !== 'string')
      report(x, `${fn}() is a string method, called on ${typeName(target)}`)
    if (target !== undefined && target.k === 'string') {
      if (fn === 'split') return STRINGS
      if (fn === 'replace' || fn === 'substring' || fn === 'stripPrefix' || fn === 'stripSuffix')
        return STRING
      if (fn === 'contains') return BOOL
    }
    if (fn === 'size' && (target === undefined || target.k !== 'record')) return INT
    if (fn === 'dyn' || fn === 'type') return fn === 'type' ? { k: 'type' } : DYN
    // A method on a header view (`request.headers.join()`) returns a view: only string methods
    // and the functions above have known results.
    if (target !== undefined && target.k !== 'string' && !STRING_METHODS.has(fn) && fn !== 'size') return DYN
    return RESULT[fn] ?? DYN
  }

  infer(e, new Map())
  return problems
}
