/**
 * @verdict/core/testing — helpers for testing policies with vitest (or any runner): requests in one
 * line, tokens signed by a throwaway issuer, and matchers such as `expect(d).toAllow()`.
 */

export { type CaseDiff, decisionSummary, diffDecision, expectationSummary } from './case-diff.js'
export { CASE_FILE_SCHEMA, type Expectation } from './case-file.js'
export {
  type CaseFileResult,
  type CaseResult,
  formatCaseResults,
  type RunCasesOptions,
  runCaseFile,
} from './cases.js'
export {
  type CheckRequestOptions,
  checkRequest,
  httpRequest,
  type McpRequestOptions,
  mcpRequest,
} from './inputs.js'
export { createTestIssuer, type TestIssuer, type TestIssuerOptions } from './issuer.js'
export { type DenyExpectation, verdictMatchers } from './matchers.js'
export { createSeededRandom, type SeededRandom } from './random.js'
export { describeCaseFile } from './vitest-suite.js'
