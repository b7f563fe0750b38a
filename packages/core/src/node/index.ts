/**
 * `@verdict/core` in Node (the "node" export condition): the portable entry plus the Node host
 * functions that lived in core before they moved to `@verdict/node`, so existing imports keep
 * working. Browsers, Deno and workers get the portable entry (`../index.ts`) without them.
 */

// Node hosts: policy files and file resources (from @verdict/node)
export {
  createEngineFromFile,
  createFileResourceLoader,
  type FileResourceOptions,
  loadPolicyFile,
  type PolicyFile,
  type PolicyWatch,
  type WatchOptions,
  watchPolicyFile,
} from '@verdict/node'
export * from '../index.js'
