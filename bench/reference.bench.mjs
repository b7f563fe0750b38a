// The reference policy side by side (lib/reference-suite.mjs), in its own process.
import { runIsolated } from './lib/isolated.mjs'

export default (report) => runIsolated(new URL('lib/reference-suite.mjs', import.meta.url), report)
