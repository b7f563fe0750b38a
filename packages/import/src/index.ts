/**
 * `@verdict/import`: the Kubernetes resources users already write, as verdict policy documents.
 * `importResources(text, options)` reads every document of the text, translates each resource with
 * its kind's module, and returns the policy with every problem located at its line and column in
 * the text. Nothing is dropped silently: a field is translated, documented as having no say in
 * decisions (docs/kubernetes.md), or a problem. `installPolicyImporter()` lets core load such files
 * as policies.
 */
export type { ImportOptions } from './context.js'
export { type ImportResult, importResources } from './import-resources.js'
export { importPolicyText, installPolicyImporter } from './policy-importer.js'
export { looksLikeResources, type Resource, readResources, type SourceDocument } from './read.js'
