/**
 * A Rego `decide` rule that denies without a body answers as the OPA-Envoy plugin answers: the
 * status only, no body (Envoy then sends its own empty 403), unless the policy document gives
 * the denial a body (the rule's `response`, its layer's `denied`, or top-level
 * `responses.denied`), which then applies as for any other rule.
 */

type Obj = Record<string, unknown>

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

function hasBody(spec: unknown): boolean {
  return isObject(spec) && spec.body !== undefined
}

/** `/rules/3/rego` -> its segments, unescaped (RFC 6901). */
function segments(pointer: string): string[] {
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
}

function at(root: unknown, path: readonly string[]): unknown {
  let v = root
  for (const s of path) {
    if (Array.isArray(v)) v = v[Number(s)]
    else if (isObject(v) && Object.hasOwn(v, s)) v = v[s]
    else return undefined
  }
  return v
}

/**
 * True when the rule body at `evaluatorPath` (a `rego` body, not a `when` condition) belongs to a
 * `decide` rule whose denials the document gives no body.
 */
export function answersStatusOnly(document: Readonly<Obj>, evaluatorPath: string): boolean {
  const segs = segments(evaluatorPath)
  const n = segs.length
  if (n < 3 || segs[n - 1] !== 'rego' || segs[n - 3] !== 'rules') return false
  const rule = at(document, segs.slice(0, n - 1))
  if (!isObject(rule) || rule.action !== 'decide' || hasBody(rule.response)) return false
  if (segs[0] === 'layers' && n >= 5 && hasBody(at(document, ['layers', segs[1]!, 'denied']))) return false
  return !hasBody(at(document, ['responses', 'denied']))
}

/**
 * The rule's value with an empty body on a denial that has none: `false` and `{allowed: false}`
 * without `body` send the status only, as the plugin does. Other values are returned as they are.
 */
export function statusOnlyDenial(value: unknown): unknown {
  if (value === false) return { allowed: false, body: '' }
  if (isObject(value) && value.allowed === false && value.body === undefined) return { ...value, body: '' }
  return value
}
