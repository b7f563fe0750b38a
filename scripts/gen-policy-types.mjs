#!/usr/bin/env node
// Generates packages/core/src/policy-document.ts (the `PolicyDocument` type) from the policy's
// JSON Schema, packages/core/src/policy.schema.json, so the type cannot drift from what the loader
// accepts. `node scripts/gen-policy-types.mjs` (`pnpm gen:types`) writes the file; `--check` exits 1
// when it is stale; `--print` writes the text to stdout (test/policy-document-type.test.ts compares).
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { compile } from 'json-schema-to-typescript'

const root = new URL('../', import.meta.url)
// VERDICT_SCHEMA_DIR: another folder holding policy.schema.json and policy-document.ts (tests).
const dir = process.env.VERDICT_SCHEMA_DIR ?? fileURLToPath(new URL('packages/core/src', root))
export const SCHEMA_PATH = `${dir}/policy.schema.json`
export const OUTPUT_PATH = `${dir}/policy-document.ts`
const FORMAT_AS = fileURLToPath(new URL('packages/core/src/policy-document.ts', root))

const BANNER = `/**
 * The policy document as a TypeScript type, GENERATED from policy.schema.json by
 * scripts/gen-policy-types.mjs. Do not edit: change the schema and run \`pnpm gen:types\`.
 */`

/** The generated module text for the schema at `SCHEMA_PATH`. */
export async function generate() {
  const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8'))
  const ts = await compile(schema, 'PolicyDocument', {
    bannerComment: BANNER,
    // As the schema says: where it does not close an object, the type does not either.
    additionalProperties: true,
    strictIndexSignatures: true,
    unreachableDefinitions: false,
    declareExternallyReferenced: true,
    enableConstEnums: false,
    format: true,
    style: { semi: false, singleQuote: true, printWidth: 110, trailingComma: 'all' },
    // draft-07 `$id` with a host name: never fetch anything while generating.
    $refOptions: { resolve: { external: false } },
  })
  // `{}` (an object schema with no properties) accepts any non-nullish value in TypeScript.
  // Only `PolicyDocument` is exported: the types of its parts are named for readability, not for
  // import (core's public entry exports `PolicyDocument` alone; knip holds the file to that).
  const text = ts
    .replace(/^export interface VerdictPolicyDocument\b/m, 'export interface PolicyDocument')
    .replaceAll(/^export (interface|type) (?!PolicyDocument\b)/gm, '$1 ')
    .replaceAll(/: \{\}$/gm, ': { [k: string]: unknown }')
  // The repository's formatter, so `biome check .` passes on the generated file.
  return execFileSync('pnpm', ['exec', 'biome', 'format', `--stdin-file-path=${FORMAT_AS}`], {
    input: text,
    encoding: 'utf8',
    cwd: fileURLToPath(root),
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = await generate()
  if (process.argv.includes('--check')) {
    const current = readFileSync(OUTPUT_PATH, 'utf8')
    if (current !== text) {
      console.error(`${OUTPUT_PATH} is stale: run pnpm gen:types`)
      process.exit(1)
    }
  } else if (process.argv.includes('--print')) {
    process.stdout.write(text)
  } else {
    writeFileSync(OUTPUT_PATH, text)
    console.log(`wrote ${OUTPUT_PATH}`)
  }
}
