# OPA-Envoy parity policy: every result shape the plugin maps, chosen by the x-case header, and
# an echo of the whole input document. Built with `opa build -t wasm -e envoy/authz/result` by
# test/opa-envoy-parity.test.ts and served by `opa run` with envoy_ext_authz_grpc.
package envoy.authz

import rego.v1

http := input.attributes.request.http

case := object.get(object.get(http, "headers", {}), "x-case", "")

default result := false

# The input document itself, in the body of a denial (verdict's additions, when any, left out).
result := {"allowed": false, "http_status": 403, "body": json.marshal(object.remove(input, ["version", "jwt", "mcp"]))} if case == "echo"

result := true if case == "true"

result := {"allowed": false} if case == "deny-object"

result := {
	"allowed": false,
	"http_status": 429,
	"body": sprintf("slow down %s", [http.method]),
	"headers": {"retry-after": "5", "x-reasons": ["rate", "burst"]},
	"dynamic_metadata": {"limited": true, "path": http.path},
} if case == "deny-full"

result := {
	"allowed": true,
	"headers": {"x-user": object.get(input, "source_principal", "anonymous"), "x-tags": ["a", "b"]},
	"response_headers_to_add": {"x-served-by": "policy"},
	"request_headers_to_remove": ["authorization", "x-case"],
	"query_parameters_to_set": {"from": "policy", "list": ["1", "2"]},
	"query_parameters_to_remove": ["debug"],
	"dynamic_metadata": {"segments": count(input.parsed_path), "query": input.parsed_query, "size": object.get(http, "size", 0)},
	"ignored": "the plugin ignores fields it does not know",
} if case == "allow-full"

# Decided on the parsed body: JSON or form-urlencoded, as the plugin parses them.
result := {"allowed": true, "headers": {"x-action": action}} if {
	case == "body"
	action := body_action
	action in {"read", "list"}
}

result := {"allowed": false, "http_status": 403, "body": sprintf("action %v refused", [body_action]), "headers": {"x-truncated": sprintf("%v", [input.truncated_body])}} if {
	case == "body"
	not body_action in {"read", "list"}
}

body_action := input.parsed_body.action if is_string(input.parsed_body.action)

body_action := input.parsed_body.action[0] if is_array(input.parsed_body.action)

body_action := "none" if input.parsed_body == null

# Peers, TLS and metadata as the plugin shows them.
result := {"allowed": true, "dynamic_metadata": {
	"source": object.get(input.attributes, "source", {}),
	"destination": object.get(input.attributes, "destination", {}),
	"tls": object.get(input.attributes, "tlsSession", {}),
	"metadata": object.get(input.attributes, "metadataContext", {}),
	"route": object.get(input.attributes, "routeMetadataContext", {}),
	"ext": object.get(input.attributes, "contextExtensions", {}),
	"time": object.get(input.attributes.request, "time", {}),
}} if case == "peers"

# A result the plugin refuses: an error in both (the plugin answers a gRPC error, verdict a 403).
result := {"allowed": false, "http_status": 418} if case == "bad-status"
