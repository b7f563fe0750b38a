package envoy.authz_test

import data.envoy.authz
import rego.v1

request(headers) := {"attributes": {"request": {"http": {"method": "GET", "path": "/", "headers": headers}}}}

test_header_allows if {
	d := authz.allow with input as request({"x-ext-authz": "allow"})
	d.allowed
	d.headers["x-ext-authz-check-result"] == "allowed"
	d.headers["x-user"] == "anonymous"
	d.request_headers_to_remove == ["x-ext-authz"]
}

test_jwt_subject_forwarded if {
	d := authz.allow with input as object.union(request({"x-ext-authz": "allow"}), {"jwt": {"sub": "alice"}})
	d.headers["x-user"] == "alice"
}

test_missing_header_denies_with_body if {
	d := authz.allow with input as request({})
	not d.allowed
	d.body == "denied by ext_authz for not found header `x-ext-authz: allow` in the request"
	not d.http_status
}

test_over_quota_is_429 if {
	d := authz.allow with input as request({"x-ext-authz": "allow", "x-tenant": "acme-trial"})
	not d.allowed
	d.http_status == 429
	d.headers["retry-after"] == "60"
}
