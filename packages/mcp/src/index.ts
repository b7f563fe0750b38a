/**
 * @verdict/mcp — tool-level and argument-level authorization for the Model Context Protocol.
 *
 * - `createMcpEvaluator()`: the `mcp` rule body (kube-agentic-networking's sources, methods,
 *   tools and base-protocol option, plus argument allow-lists).
 * - `filterListResult()`: a `tools/list` / `prompts/list` / `resources/list` result cut down to
 *   what one caller may use.
 * - `createMcpGateway()`: a Streamable HTTP gateway (node:http and Web handlers) in front of any
 *   MCP server; `guardTransport()`: the same checks inside a server built with the official SDK.
 *
 * Extraction of the MCP call and smuggling checks live in @verdict/core, so Envoy users need
 * nothing from this package but the evaluator.
 */
export { type FilterListOptions, filterListResult, isListMethod } from './filter-list-result.js'
export { guardTransport, type McpGuardOptions } from './guard-transport.js'
export {
  type ArgumentMatch,
  createMcpEvaluator,
  MCP_RULE_SCHEMA,
  type McpEvaluatorOptions,
  type McpRuleConfig,
  type McpSource,
} from './mcp-evaluator.js'
export { createMcpGateway, type McpGateway, type McpGatewayOptions } from './mcp-gateway.js'
