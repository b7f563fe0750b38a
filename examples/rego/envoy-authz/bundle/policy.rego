# An OPA-Envoy style policy at envoy/authz/allow, over input.attributes: Istio's sample
# authorizer as Rego (header `x-ext-authz: allow`), the caller's identity passed upstream, and a
# custom status for tenants over quota. Compile with:
#   opa build -t wasm -e envoy/authz/allow -o examples/rego/envoy-authz/bundle.tar.gz -b examples/rego/envoy-authz/bundle
# (`verdict test examples/rego/envoy-authz` does this itself when opa is on PATH)
package envoy.authz

import rego.v1

http := input.attributes.request.http

exhausted_tenants := {"acme-trial"}

over_quota if http.headers["x-tenant"] in exhausted_tenants

# verdict adds the verified JWT claims as input.jwt.
default user := "anonymous"

user := input.jwt.sub

default allow := {
	"allowed": false,
	"headers": {"x-ext-authz-check-result": "denied"},
	"body": "denied by ext_authz for not found header `x-ext-authz: allow` in the request",
}

allow := {
	"allowed": true,
	"headers": {"x-ext-authz-check-result": "allowed", "x-user": user},
	"request_headers_to_remove": ["x-ext-authz"],
	"response_headers_to_add": {"x-checked-by": "opa-wasm"},
} if {
	http.headers["x-ext-authz"] == "allow"
	not over_quota
}

allow := {
	"allowed": false,
	"http_status": 429,
	"headers": {"retry-after": "60"},
	"body": "tenant over quota",
} if {
	over_quota
}
