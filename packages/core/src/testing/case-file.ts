/**
 * A case file as written: its JSON Schema and types, reading and validating it, and its fixtures
 * (issuers and identities, with `include`d fixture files). Problems in a file other than the case
 * file are reported against that file.
 */
import { dirname, resolve } from 'node:path'
import { readSourceFile } from '@verdict/node'
import { compileSchema, type SourceDocument, schemaProblems } from '../document.js'
import { PolicyError, type Problem } from '../errors.js'

/** JSON Schema of a case file (documented in docs/testing.md). */
export const CASE_FILE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['policy', 'cases'],
  properties: {
    policy: { type: 'string', minLength: 1 },
    description: { type: 'string' },
    fixtures: {
      type: 'object',
      additionalProperties: false,
      properties: {
        include: { type: 'array', items: { type: 'string' } },
        issuers: {
          type: 'object',
          additionalProperties: {
            type: 'object',
            additionalProperties: false,
            required: ['provider'],
            properties: {
              provider: { type: 'string' },
              alg: { enum: ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'] },
            },
          },
        },
        identities: { type: 'object', additionalProperties: { type: 'string' } },
      },
    },
    cases: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'expect'],
        // Both would leave one of them silently unused.
        not: { required: ['checkRequest', 'request'] },
        properties: {
          name: { type: 'string', minLength: 1 },
          checkRequest: { type: 'object' },
          request: {
            type: 'object',
            additionalProperties: false,
            properties: {
              method: { type: 'string' },
              path: { type: 'string' },
              host: { type: 'string' },
              headers: { type: 'object', additionalProperties: { type: 'string' } },
              body: {},
              principal: { type: 'string' },
              token: { type: 'string' },
              jwt: {
                type: 'object',
                additionalProperties: false,
                required: ['issuer'],
                properties: { issuer: { type: 'string' }, claims: { type: 'object' } },
              },
              mcp: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  method: { type: 'string' },
                  tool: { type: 'string' },
                  arguments: { type: 'object' },
                  id: { type: ['string', 'integer', 'null'] },
                  metadata: { type: 'boolean' },
                },
              },
            },
          },
          expect: {
            type: 'object',
            additionalProperties: false,
            // An empty expectation would pass whatever the policy decides.
            minProperties: 1,
            properties: {
              allowed: { type: 'boolean' },
              status: { type: 'integer' },
              code: { type: 'string' },
              rule: { type: ['string', 'null'] },
              headers: { type: 'object', additionalProperties: { type: 'string' } },
              body: { type: 'string' },
              bodyContains: { type: 'string' },
              reasonContains: { type: 'string' },
              mcpError: {
                type: 'object',
                additionalProperties: false,
                properties: { code: { type: 'integer' }, message: { type: 'string' } },
              },
            },
          },
        },
      },
    },
  },
} as const

interface RequestSpec {
  method?: string
  path?: string
  host?: string
  headers?: Record<string, string>
  body?: unknown
  principal?: string
  token?: string
  jwt?: { issuer: string; claims?: Record<string, unknown> }
  mcp?: {
    method?: string
    tool?: string
    arguments?: Record<string, unknown>
    id?: string | number | null
    metadata?: boolean
  }
}

export interface Expectation {
  allowed?: boolean
  status?: number
  code?: string
  rule?: string | null
  headers?: Record<string, string>
  body?: string
  bodyContains?: string
  reasonContains?: string
  mcpError?: { code?: number; message?: string }
}

export interface CaseSpec {
  name: string
  checkRequest?: Record<string, unknown>
  request?: RequestSpec
  expect: Expectation
}

export interface Fixtures {
  include?: string[]
  issuers?: Record<string, { provider: string; alg?: 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA' }>
  identities?: Record<string, string>
}

export interface CaseFile {
  policy: string
  cases: CaseSpec[]
  fixtures?: Fixtures
}

/**
 * A `PolicyError` about a file other than the case file (its policy, an included fixture file):
 * `file` names it, and the problems' lines and columns are in that file.
 */
class PolicyFileError extends PolicyError {
  readonly file: string
  constructor(file: string, problems: readonly Problem[]) {
    super(problems)
    this.file = file
  }
}

/** Run `load`; its `PolicyError`s are reported against `file`, located in `source` when given. */
export async function inFile<T>(file: string, load: () => Promise<T>, source?: SourceDocument): Promise<T> {
  try {
    return await load()
  } catch (e) {
    if (!(e instanceof PolicyError) || e instanceof PolicyFileError) throw e
    // A patched copy of the policy (fixture issuers) has no text: locate its problems in the file's.
    const located = e.problems.map((p) => {
      if (p.line !== undefined || source === undefined) return p
      const at = source.locate(p.path)
      return at === undefined ? p : { ...p, line: at.line, column: at.column }
    })
    throw new PolicyFileError(file, located)
  }
}

const validateCaseFile = compileSchema(CASE_FILE_SCHEMA as unknown as Record<string, unknown>)

export async function readCaseFile(path: string): Promise<CaseFile> {
  const { source } = await readSourceFile(path)
  if (!validateCaseFile(source.value))
    throw new PolicyError(schemaProblems(validateCaseFile.errors, '', source.locate))
  return source.value as CaseFile
}

export async function mergedFixtures(
  fileDir: string,
  f: Fixtures | undefined,
  seen = new Set<string>(),
): Promise<Fixtures> {
  const out: Fixtures = { issuers: { ...(f?.issuers ?? {}) }, identities: { ...(f?.identities ?? {}) } }
  for (const inc of f?.include ?? []) {
    const p = resolve(fileDir, inc)
    if (seen.has(p)) continue
    seen.add(p)
    const v = (await inFile(p, () => readSourceFile(p))).source.value as Fixtures
    const nested = await mergedFixtures(dirname(p), v, seen)
    out.issuers = { ...nested.issuers, ...out.issuers }
    out.identities = { ...nested.identities, ...out.identities }
  }
  return out
}
