// The Rego reference policy section of rego.bench.mjs, run in a fresh process by lib/isolated.mjs
// (so the JIT has seen only the reference requests when it is timed).
import { referenceSection } from '../rego.bench.mjs'

export default referenceSection
