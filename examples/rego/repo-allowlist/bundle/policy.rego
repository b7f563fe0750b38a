# Seed 001's external authorizer, written against Authorino's input dialect: MCP tool calls to the
# remote documentation server pass only for repositories on the allow-list (data.allowlist, from
# allowlist/data.json). Compile with:
#   opa build -t wasm -e mcp/repos/allow -o examples/rego/repo-allowlist/bundle.tar.gz -b examples/rego/repo-allowlist/bundle
# (`verdict test examples/rego/repo-allowlist` does this itself when opa is on PATH)
package mcp.repos

import rego.v1

default allow := false

mcp := input.metadata.filter_metadata.mcp_proxy

# MCP messages other than tool calls (initialize, tools/list, notifications) pass.
allow if {
	mcp.method != "tools/call"
}

allow if {
	mcp.method == "tools/call"
	mcp.params.arguments.repoName in data.allowlist.repositories
}
