/** The `verdict.dev/v1` `ExternalAuthorizer` resource: what an external authorization Service decides. */
import { commonFields, type Scope } from '../context.js'
import { isObj, type Obj } from '../read.js'

/** `verdict.dev/v1` `ExternalAuthorizer`: what an external authorization Service decides, as verdict rules. */
export function importExternalAuthorizer(s: Scope): Obj | undefined {
  let doc: Obj | undefined
  const fields = commonFields(s)
  fields.spec = (spec, at) => {
    if (!isObj(spec)) return void s.problem('import_invalid', 'spec must be an object', at)
    const allowed = ['rules', 'responses', 'bundles', 'default', 'description']
    for (const k of Object.keys(spec))
      if (!allowed.includes(k))
        s.problem('import_unsupported_field', `field "${k}" is not supported`, `${at}/${k}`)
    doc = spec
  }
  s.fields(s.value, '', fields)
  if (doc === undefined) s.problem('import_invalid', 'spec is required', '')
  return doc
}
