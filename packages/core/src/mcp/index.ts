/**
 * MCP in core (mcp/): reading the messages a request carries (extract, with the smuggling scan),
 * answering a denied message (denial, and the batch loop in batch.ts), and which rules apply to
 * which messages (scope, authorization).
 */

export { mcpDenialBody } from './denial.js'
export {
  DEFAULT_MAX_BATCH,
  DEFAULT_MCP_SETTINGS,
  extractMcp,
  MCP_METADATA_NAMESPACES,
  type McpMessages,
  type McpSettings,
} from './extract.js'
export { MCP_RESPONSE_METHOD } from './message.js'
export { findDuplicateGuardedKey } from './scan.js'
