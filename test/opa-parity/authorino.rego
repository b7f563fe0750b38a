# Authorino-dialect parity policy: reads the well-known attributes verdict builds.
package authorino.authz

import rego.v1

default allow := false

allow if {
	input.request.method == "GET"
	startswith(input.request.url_path, "/public")
}

allow if {
	input.request.headers["x-role"] == "admin"
	input.source.principal == "spiffe://cluster.local/ns/default/sa/admin"
}

allow if {
	input.metadata.filter_metadata.tenant.id == input.request.context_extensions.tenant
}

allow if {
	input.request.query == "debug=0"
	input.request.host == "api.example.com"
	input.destination.port == 8443
}
