package mcp.repos_test

import data.mcp.repos
import rego.v1

metadata(m) := {"metadata": {"filter_metadata": {"mcp_proxy": m}}}

tool_call(tool, repo) := metadata({
	"jsonrpc": "2.0",
	"method": "tools/call",
	"params": {"name": tool, "arguments": {"repoName": repo}},
})

test_tools_list_allowed if {
	repos.allow with input as metadata({"jsonrpc": "2.0", "method": "tools/list"})
}

test_listed_repositories_allowed if {
	repos.allow with input as tool_call("ask_question", "kubernetes-sigs/kube-agentic-networking")
	repos.allow with input as tool_call("read_wiki_structure", "kubernetes-sigs/gateway-api")
}

test_other_repository_denied if {
	not repos.allow with input as tool_call("ask_question", "kubernetes/kubernetes")
}

test_tool_call_without_repository_denied if {
	not repos.allow with input as metadata({"method": "tools/call", "params": {"name": "ask_question"}})
}

test_not_mcp_denied if {
	not repos.allow with input as {"request": {"method": "GET"}}
}

# The seed's second step: the list edited down to one repository.
test_edited_allowlist_denies_gateway_api if {
	not repos.allow with input as tool_call("ask_question", "kubernetes-sigs/gateway-api")
		with data.allowlist.repositories as ["kubernetes-sigs/kube-agentic-networking"]
}
