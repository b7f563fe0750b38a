/**
 * agentgateway's CEL, unchanged: the examples of its CEL reference (the function table, the
 * standard and Kubernetes extensions it lists, header views, query accessors, the variables
 * schema, the example expressions of its CEL page) and the expected values of its function tests,
 * written here as case tables, run through `decide()` with the CEL evaluator.
 *
 * Each case is an expression and the value agentgateway documents for it (a CEL literal), or
 * `ERROR` when agentgateway fails the expression. A case agrees when an `allow` rule
 * `(<expression>) == (<expected>)` allows the request (for `ERROR`: when the expression fails).
 * Cases where verdict differs on purpose are listed in `DIFFERENT` with the reason; a listed case
 * that agrees, or an unlisted one that does not, fails the test. The count is printed.
 */
import { createCelEvaluator } from '@verdict/cel-adapter'
import { createEngine, type Decision } from '@verdict/core'
import { createTestIssuer, type TestIssuer } from '@verdict/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const ERROR = Symbol('error')

/** A request of the tables, in verdict's HTTP shape. */
type Request = Record<string, unknown>

interface Case {
  /** Where agentgateway documents it. */
  readonly doc: string
  readonly expr: string
  /** The expected value as a CEL literal, or `ERROR`. */
  readonly want: string | typeof ERROR
  /** The request (default `BASE`). */
  readonly request?: Request
  /** Claims of a verified token the request carries. */
  readonly jwt?: Record<string, unknown>
}

/** A test client certificate: O=verdict test, CN=client.example, two SANs. */
const CERT = `-----BEGIN CERTIFICATE-----
MIICAjCCAaegAwIBAgIUR16l2Y9oLqQW33CeOIlKrAtP734wCgYIKoZIzj0EAwIw
MDEVMBMGA1UECgwMdmVyZGljdCB0ZXN0MRcwFQYDVQQDDA5jbGllbnQuZXhhbXBs
ZTAgFw0yNjEyMDMxMDIwMTBaGA8yMTI2MTEwOTEwMjAxMFowMDEVMBMGA1UECgwM
dmVyZGljdCB0ZXN0MRcwFQYDVQQDDA5jbGllbnQuZXhhbXBsZTBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABPoZ9LH3B42eJgoO4+U3OKH7pOPCnJQssZ5sjkoyNprb
zANY3HeOqQmI94Y6DidlaLM9EU3I6IjBiW5EVu7FqSajgZwwgZkwHQYDVR0OBBYE
FJv7YBvFX/pMzgSPOwindlIk+fPwMB8GA1UdIwQYMBaAFJv7YBvFX/pMzgSPOwin
dlIk+fPwMA8GA1UdEwEB/wQFMAMBAf8wRgYDVR0RBD8wPYIOY2xpZW50LmV4YW1w
bGWGK3NwaWZmZTovL2NsdXN0ZXIubG9jYWwvbnMvZGVmYXVsdC9zYS9jbGllbnQw
CgYIKoZIzj0EAwIDSQAwRgIhAO0Yxmy0l6cbtN88UDIylAa8cB31TdNIJzkzuh7W
zZ8FAiEAyiwt2CFr7AIdB8F9/T2f58GDvM3U/YPNrej5TZpKLHQ=
-----END CERTIFICATE-----
`

const BODY = {
  type: 'sum',
  val1: 2,
  val2: 3,
  val4: 'hello',
  some_field: 'x',
  field_a: 1,
  field_b: 2,
  id: 'body-id',
  user: { preferences: { theme: 'dark' } },
}

const BASE: Request = {
  method: 'POST',
  path: '/api/test?foo=bar&foo=baz',
  host: 'example.com',
  scheme: 'http',
  protocol: 'HTTP/1.1',
  headers: {
    'content-type': 'application/json',
    'user-agent': 'curl/8.5.0',
    'x-user-id': 'user-7',
    'x-organization': 'acme',
    cookie: 'session=abc123; theme=dark',
    'x-multi': ['a,b', 'c'],
  },
  body: JSON.stringify(BODY),
  source: { address: '10.1.2.3', port: 50123, principal: 'spiffe://cluster.local/ns/default/sa/client' },
  destination: { address: '10.0.0.9', port: 8080 },
}

/** The same request without the header that arrives on two lines (for rules that read every header). */
const SINGLE: Request = {
  ...BASE,
  headers: Object.fromEntries(Object.entries(BASE.headers as object).filter(([k]) => k !== 'x-multi')),
}

const withPath = (path: string, extra: Request = {}): Request => ({ ...BASE, path, ...extra })

const mcpCall = (method: string, params: Record<string, unknown>, extra: Request = {}): Request => ({
  ...BASE,
  path: '/mcp',
  headers: { 'content-type': 'application/json', 'mcp-session-id': 'session-42' },
  body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  ...extra,
})

const FUNCS = 'cel-functions.md, Functions'
const STD = 'cel-functions.md, Standard Functions (strings extension)'
const IPLIB = 'cel-functions.md, Standard Functions (Kubernetes IP and CIDR extensions)'
const MATH = 'celx math extension (cel-go ext.Math)'
const VIEWS = 'cel-functions.md, Header Views'
const QUERY = 'cel-functions.md, Query Accessors'
const SCHEMA = 'cel.md, CEL context schema'
const PAGE = 'reference/cel (website), example expressions'
const TESTS = 'agentgateway function tests'

const CASES: readonly Case[] = [
  // --- Functions table
  { doc: FUNCS, expr: 'json(request.body).some_field', want: '"x"' },
  { doc: FUNCS, expr: 'toJson({"hello": "world"})', want: '\'{"hello":"world"}\'' },
  {
    doc: FUNCS,
    expr: 'unvalidatedJwtPayload(request.headers.authorization.split(" ")[1]).sub',
    want: '"test-user"',
    jwt: { sub: 'test-user' },
  },
  { doc: FUNCS, expr: 'json(request.body).with(b, b.field_a + b.field_b)', want: '3' },
  {
    doc: FUNCS,
    expr: '"request" in variables() && "source" in variables()',
    want: 'true',
    request: SINGLE,
  },
  { doc: FUNCS, expr: '"jwt" in variables()', want: 'false', request: SINGLE },
  { doc: FUNCS, expr: 'variables().jwt.sub', want: '"alice"', jwt: { sub: 'alice' }, request: SINGLE },
  { doc: FUNCS, expr: '{"a": 1, "b": 2}.mapValues(v, v * 2)', want: '{"a": 2, "b": 4}' },
  { doc: FUNCS, expr: '{"a":1,"b":2}.filterKeys(k, k == "a")', want: '{"a":1}' },
  { doc: FUNCS, expr: '{"x_a":1,"b":2}.filterKeys(k, !k.startsWith("x_"))', want: '{"b":2}' },
  { doc: FUNCS, expr: '{"a":2,"k":"v"}.merge({"a":3})', want: '{"a":3,"k":"v"}' },
  { doc: FUNCS, expr: 'base64.encode("hello")', want: '"aGVsbG8="' },
  { doc: FUNCS, expr: 'string(base64.decode("aGVsbG8K"))', want: '"hello\\n"' },
  { doc: FUNCS, expr: 'sha1.encode("hello")', want: '"aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"' },
  {
    doc: FUNCS,
    expr: 'sha256.encode("hello")',
    want: '"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"',
  },
  { doc: FUNCS, expr: 'md5.encode("hello")', want: '"5d41402abc4b2a76b9719d911017c592"' },
  { doc: FUNCS, expr: 'sha256.encode(b"hello") == sha256.encode("hello")', want: 'true' },
  { doc: FUNCS, expr: 'random() >= 0.0 && random() <= 1.0', want: 'true' },
  { doc: FUNCS, expr: 'default(request.headers["missing-header"], "fallback")', want: '"fallback"' },
  {
    doc: FUNCS,
    expr: 'coalesce(request.headers["x-id"], json(request.body).id, "fallback")',
    want: '"body-id"',
  },
  { doc: FUNCS, expr: 'coalesce(request.headers["x-id"], "fallback")', want: '"fallback"' },
  { doc: FUNCS, expr: 'coalesce(null, request.headers["x-id"])', want: 'null' },
  { doc: FUNCS, expr: 'coalesce(request.headers["x-id"])', want: ERROR },
  { doc: FUNCS, expr: '"/id/1234/data".regexReplace("/id/[0-9]*/", "/id/{id}/")', want: '"/id/{id}/data"' },
  { doc: FUNCS, expr: 'fail("denied")', want: ERROR },
  { doc: FUNCS, expr: 'uuid().size() == 36 && uuid().charAt(14) == "4" && uuid() != uuid()', want: 'true' },
  { doc: FUNCS, expr: 'jsonField(request.body, "val4")', want: '"hello"' },
  { doc: FUNCS, expr: 'jsonField(request.body, "missing")', want: ERROR },

  // --- agentgateway's function tests
  { doc: TESTS, expr: '[1,2].with(a, a + a)', want: '[1, 2, 1, 2]' },
  { doc: TESTS, expr: 'json(\'{"hi":1}\').hi', want: '1' },
  { doc: TESTS, expr: 'int(random() * 10.0) <= 10', want: 'true' },
  { doc: TESTS, expr: '"hello".base64Encode()', want: '"aGVsbG8="' },
  { doc: TESTS, expr: 'string("hello".base64Encode().base64Decode())', want: '"hello"' },
  { doc: TESTS, expr: 'default(a, "b")', want: '"b"' },
  { doc: TESTS, expr: 'default({"a":1}["a"], 2)', want: '1' },
  { doc: TESTS, expr: 'default({"a":1}["b"], 2)', want: '2' },
  { doc: TESTS, expr: 'default(a.b, "b")', want: '"b"' },
  {
    doc: TESTS,
    expr: '"/path/1/id/499c81c2/bar".regexReplace("/path/([0-9]+?)/id/([0-9a-z]{8})/bar", "/path/{n}/id/{id}/bar")',
    want: '"/path/{n}/id/{id}/bar"',
  },
  { doc: TESTS, expr: '"blah id=1234 bar".regexReplace("id=(.+?) ", "[$1] ")', want: '"blah [1234] bar"' },
  { doc: TESTS, expr: '"ab".regexReplace("a" + "b", "12")', want: '"12"' },
  { doc: TESTS, expr: '{"a":2}.merge({"b":3})', want: '{"a":2, "b":3}' },
  { doc: TESTS, expr: '{"a":2}.merge({"a":3})', want: '{"a":3}' },

  // --- strings extension
  { doc: STD, expr: "'hello'.stripPrefix('he')", want: '"llo"' },
  { doc: STD, expr: "'hello'.stripPrefix('hi')", want: '"hello"' },
  { doc: STD, expr: "'hello'.stripPrefix('')", want: '"hello"' },
  { doc: STD, expr: "'hello'.stripSuffix('lo')", want: '"hel"' },
  { doc: STD, expr: "'hello'.stripSuffix('hi')", want: '"hello"' },
  { doc: STD, expr: "'hello'.stripSuffix('')", want: '"hello"' },
  { doc: STD, expr: "'abc'.charAt(1)", want: '"b"' },
  { doc: STD, expr: "'hello mellow'.indexOf('ello')", want: '1' },
  { doc: STD, expr: "'hello mellow'.lastIndexOf('ello')", want: '7' },
  { doc: STD, expr: "['hello', 'mellow'].join(' ')", want: '"hello mellow"' },
  { doc: STD, expr: "'TacoCat'.lowerAscii()", want: '"tacocat"' },
  { doc: STD, expr: "'TacoCat'.upperAscii()", want: '"TACOCAT"' },
  { doc: STD, expr: "'hello hello'.replace('he', 'we', 1)", want: '"wello hello"' },
  { doc: STD, expr: "'hello hello hello'.split(' ', 2)", want: '["hello", "hello hello"]' },
  { doc: STD, expr: "'tacocat'.substring(0, 4)", want: '"taco"' },
  { doc: STD, expr: "'  trim\\n    '.trim()", want: '"trim"' },
  { doc: STD, expr: '["a", "b"].contains("a")', want: 'true' },
  { doc: STD, expr: '[1, 2].contains(3)', want: 'false' },

  // --- Kubernetes IP library
  { doc: IPLIB, expr: "ip('192.168.0.1')", want: '"192.168.0.1"' },
  { doc: IPLIB, expr: "ip('192.168.0.1.0')", want: ERROR },
  { doc: IPLIB, expr: "isIP('192.168.0.1')", want: 'true' },
  { doc: IPLIB, expr: "isIP('192.168.0.1.0')", want: 'false' },
  { doc: IPLIB, expr: 'ip("192.168.0.1").family()', want: '4' },
  { doc: IPLIB, expr: 'ip("0.0.0.0").isUnspecified()', want: 'true' },
  { doc: IPLIB, expr: 'ip("127.0.0.1").isUnspecified()', want: 'false' },
  { doc: IPLIB, expr: 'ip("127.0.0.1").isLoopback()', want: 'true' },
  { doc: IPLIB, expr: 'ip("1.2.3.4").isLoopback()', want: 'false' },
  { doc: IPLIB, expr: 'ip("224.0.0.1").isLinkLocalMulticast()', want: 'true' },
  { doc: IPLIB, expr: 'ip("224.0.1.1").isLinkLocalMulticast()', want: 'false' },
  { doc: IPLIB, expr: 'ip("169.254.169.254").isLinkLocalUnicast()', want: 'true' },
  { doc: IPLIB, expr: 'ip("192.168.0.1").isLinkLocalUnicast()', want: 'false' },
  { doc: IPLIB, expr: 'ip("192.168.0.1").isGlobalUnicast()', want: 'true' },
  { doc: IPLIB, expr: 'ip("255.255.255.255").isGlobalUnicast()', want: 'false' },
  { doc: IPLIB, expr: 'ip("2001:db8::68")', want: '"2001:db8::68"' },
  { doc: IPLIB, expr: 'ip("2001:db8:::68")', want: ERROR },
  { doc: IPLIB, expr: 'isIP("2001:db8::68")', want: 'true' },
  { doc: IPLIB, expr: 'isIP("2001:db8:::68")', want: 'false' },
  { doc: IPLIB, expr: 'ip("2001:db8::68").family()', want: '6' },
  { doc: IPLIB, expr: 'ip("::").isUnspecified()', want: 'true' },
  { doc: IPLIB, expr: 'ip("::1").isUnspecified()', want: 'false' },
  { doc: IPLIB, expr: 'ip("::1").isLoopback()', want: 'true' },
  { doc: IPLIB, expr: 'ip("2001:db8::abcd").isLoopback()', want: 'false' },
  { doc: IPLIB, expr: 'ip("ff02::1").isLinkLocalMulticast()', want: 'true' },
  { doc: IPLIB, expr: 'ip("fd00::1").isLinkLocalMulticast()', want: 'false' },
  { doc: IPLIB, expr: 'ip("fe80::1").isLinkLocalUnicast()', want: 'true' },
  { doc: IPLIB, expr: 'ip("fd80::1").isLinkLocalUnicast()', want: 'false' },
  { doc: IPLIB, expr: 'ip("2001:db8::abcd").isGlobalUnicast()', want: 'true' },
  { doc: IPLIB, expr: 'ip("ff00::1").isGlobalUnicast()', want: 'false' },
  { doc: IPLIB, expr: 'isIP(cidr("192.168.0.0/24"))', want: ERROR },
  { doc: IPLIB, expr: "cidr('127.0.0.1/8')", want: '"127.0.0.1/8"' },
  { doc: IPLIB, expr: "cidr('127.0.0.1/8').containsIP(ip('127.0.0.1'))", want: 'true' },
  { doc: IPLIB, expr: "cidr('127.0.0.1/8').containsIP(ip('128.0.0.1'))", want: 'false' },
  { doc: IPLIB, expr: "cidr('127.0.0.1/8').containsCIDR(cidr('128.0.0.1/32'))", want: 'false' },
  { doc: IPLIB, expr: "cidr('127.0.0.1/8').containsCIDR(cidr('127.0.0.1/27'))", want: 'true' },
  { doc: IPLIB, expr: "cidr('127.0.0.1/8').containsCIDR(cidr('127.0.0.1/32'))", want: 'true' },
  { doc: IPLIB, expr: "cidr('127.0.0.0/8').masked()", want: '"127.0.0.0/8"' },
  { doc: IPLIB, expr: "cidr('127.0.7.1/8').masked()", want: '"127.0.0.0/8"' },
  { doc: IPLIB, expr: "cidr('127.0.7.1/8').prefixLength()", want: '8' },
  { doc: IPLIB, expr: "cidr('::1/128').prefixLength()", want: '128' },
  { doc: IPLIB, expr: "cidr('127.0.0.1/8').containsIP('127.0.0.1')", want: 'true' },
  { doc: IPLIB, expr: "cidr('10.0.0.0/8').ip()", want: '"10.0.0.0"' },

  // --- math extension
  { doc: MATH, expr: 'math.greatest(1, 2)', want: '2' },
  { doc: MATH, expr: 'math.greatest([1, 2.5, 2u])', want: '2.5' },
  { doc: MATH, expr: 'math.least(-1, 0)', want: '-1' },
  { doc: MATH, expr: 'math.least([])', want: ERROR },
  { doc: MATH, expr: 'math.ceil(1.2)', want: '2.0' },
  { doc: MATH, expr: 'math.floor(-1.2)', want: '-2.0' },
  { doc: MATH, expr: 'math.round(1.5)', want: '2.0' },
  { doc: MATH, expr: 'math.round(-1.5)', want: '-2.0' },
  { doc: MATH, expr: 'math.trunc(-1.3)', want: '-1.0' },
  { doc: MATH, expr: 'math.abs(-1)', want: '1' },
  { doc: MATH, expr: 'math.abs(-9223372036854775807 - 1)', want: ERROR },
  { doc: MATH, expr: 'math.sign(-42)', want: '-1' },
  { doc: MATH, expr: 'math.sign(2.5)', want: '1.0' },
  { doc: MATH, expr: 'math.isNaN(0.0 / 0.0)', want: 'true' },
  { doc: MATH, expr: 'math.isInf(1.0 / 0.0)', want: 'true' },
  { doc: MATH, expr: 'math.isFinite(1.2)', want: 'true' },
  { doc: MATH, expr: 'math.sqrt(81)', want: '9.0' },
  { doc: MATH, expr: 'math.bitAnd(3, 5)', want: '1' },
  { doc: MATH, expr: 'math.bitOr(1u, 2u)', want: '3u' },
  { doc: MATH, expr: 'math.bitXor(3, 5)', want: '6' },
  { doc: MATH, expr: 'math.bitNot(1)', want: '-2' },
  { doc: MATH, expr: 'math.bitShiftLeft(1, 2)', want: '4' },
  { doc: MATH, expr: 'math.bitShiftRight(1024, 2)', want: '256' },
  { doc: MATH, expr: 'math.bitShiftRight(-1024, 3)', want: '2305843009213693824' },

  // --- Header views (x-multi arrives on two lines: "a,b" and "c")
  { doc: VIEWS, expr: 'request.headers["user-agent"]', want: '"curl/8.5.0"' },
  { doc: VIEWS, expr: 'request.headers["x-multi"]', want: '["a,b", "c"]' },
  { doc: VIEWS, expr: 'request.headers.join()["x-multi"]', want: '"a,b,c"' },
  { doc: VIEWS, expr: 'request.headers.raw()["x-multi"]', want: '["a,b", "c"]' },
  { doc: VIEWS, expr: 'request.headers.split()["x-multi"]', want: '["a", "b", "c"]' },
  { doc: VIEWS, expr: 'request.headers.raw()["user-agent"]', want: '["curl/8.5.0"]' },
  {
    doc: VIEWS,
    expr: 'request.headers.redacted().authorization',
    want: '"<redacted>"',
    jwt: { sub: 'alice' },
  },
  {
    doc: VIEWS,
    expr: 'request.headers.redacted().split()["authorization"]',
    want: '["<redacted>"]',
    jwt: { sub: 'alice' },
  },
  { doc: VIEWS, expr: 'request.headers.redacted()["x-user-id"]', want: '"user-7"' },
  { doc: VIEWS, expr: 'request.headers.cookie("session")', want: '"abc123"' },
  { doc: VIEWS, expr: 'request.headers.cookie("missing")', want: ERROR },

  // --- Query accessors
  { doc: QUERY, expr: 'request.pathAndQuery.query("foo")', want: '["bar", "baz"]' },
  { doc: QUERY, expr: 'request.uri.query("zap")', want: '["zip"]', request: withPath('/api/test?zap=zip') },
  { doc: QUERY, expr: 'request.pathAndQuery.query("nope")', want: ERROR },
  {
    doc: QUERY,
    expr: 'request.pathAndQuery.addQuery("foo", "qux")',
    want: '"/api/test?foo=bar&foo=baz&foo=qux"',
  },
  {
    doc: QUERY,
    expr: 'request.uri.setQuery("foo", "qux")',
    want: '"http://example.com/api/test?foo=qux"',
  },
  { doc: QUERY, expr: 'request.pathAndQuery.startsWith("/api/")', want: 'true' },

  // --- Variables (cel.md): the schema's examples, each on a request that has them
  { doc: SCHEMA, expr: 'request.method', want: '"GET"', request: withPath('/path', { method: 'GET' }) },
  { doc: SCHEMA, expr: 'request.uri', want: '"http://example.com/path"', request: withPath('/path') },
  { doc: SCHEMA, expr: 'request.host', want: '"example.com"' },
  { doc: SCHEMA, expr: 'request.scheme', want: '"https"', request: { ...BASE, scheme: 'https' } },
  { doc: SCHEMA, expr: 'request.path', want: '"/path"', request: withPath('/path?foo=bar') },
  { doc: SCHEMA, expr: 'request.pathAndQuery', want: '"/path?foo=bar"', request: withPath('/path?foo=bar') },
  { doc: SCHEMA, expr: 'request.version', want: '"HTTP/1.1"' },
  { doc: SCHEMA, expr: 'request.version', want: '"HTTP/2.0"', request: { ...BASE, protocol: 'HTTP/2' } },
  { doc: SCHEMA, expr: 'type(request.body) == bytes && size(request.body) > 0', want: 'true' },
  { doc: SCHEMA, expr: 'string(request.bodyPrefix).startsWith("{")', want: 'true' },
  { doc: SCHEMA, expr: 'request.startTime > timestamp("2020-01-01T00:00:00Z")', want: 'true' },
  { doc: SCHEMA, expr: 'jwt.sub', want: '"alice"', jwt: { sub: 'alice' } },
  { doc: SCHEMA, expr: 'jwt.rawToken.unredacted().split(".").size()', want: '3', jwt: { sub: 'alice' } },
  { doc: SCHEMA, expr: 'source.address', want: '"10.1.2.3"' },
  { doc: SCHEMA, expr: 'source.port', want: '50123' },
  { doc: SCHEMA, expr: 'source.rawAddress', want: '"10.1.2.3"' },
  { doc: SCHEMA, expr: 'source.rawPort', want: '50123' },
  { doc: SCHEMA, expr: 'source.identity.trustDomain', want: '"cluster.local"' },
  { doc: SCHEMA, expr: 'source.identity.namespace', want: '"default"' },
  { doc: SCHEMA, expr: 'source.identity.serviceAccount', want: '"client"' },
  {
    doc: SCHEMA,
    expr: 'source.subjectAltNames',
    want: '["client.example", "spiffe://cluster.local/ns/default/sa/client"]',
    request: { ...BASE, source: { ...(BASE.source as object), certificate: CERT } },
  },
  {
    doc: SCHEMA,
    expr: 'source.subjectCn',
    want: '"client.example"',
    request: { ...BASE, source: { ...(BASE.source as object), certificate: CERT } },
  },
  {
    doc: SCHEMA,
    expr: 'source.certificate.startsWith("-----BEGIN CERTIFICATE-----")',
    want: 'true',
    request: { ...BASE, source: { ...(BASE.source as object), certificate: CERT } },
  },
  { doc: SCHEMA, expr: 'has(source.certificate)', want: 'false' },
  { doc: SCHEMA, expr: 'destination.address', want: '"10.0.0.9"' },
  { doc: SCHEMA, expr: 'destination.port', want: '8080' },
  {
    doc: SCHEMA,
    expr: 'mcp.tool.name',
    want: '"echo"',
    request: mcpCall('tools/call', { name: 'echo', arguments: { text: 'hi' } }),
  },
  {
    doc: SCHEMA,
    expr: 'mcp.tool.arguments.text',
    want: '"hi"',
    request: mcpCall('tools/call', { name: 'echo', arguments: { text: 'hi' } }),
  },
  {
    doc: SCHEMA,
    expr: 'has(mcp.tool.arguments)',
    want: 'false',
    request: mcpCall('tools/call', { name: 'echo' }),
  },
  {
    doc: SCHEMA,
    expr: 'mcp.methodName',
    want: '"tools/call"',
    request: mcpCall('tools/call', { name: 'echo' }),
  },
  {
    doc: SCHEMA,
    expr: 'mcp.sessionId',
    want: '"session-42"',
    request: mcpCall('tools/call', { name: 'echo' }),
  },
  {
    doc: SCHEMA,
    expr: 'mcp.tool.target',
    want: '"everything"',
    request: mcpCall('tools/call', { name: 'echo' }, { contextExtensions: { mcp_target: 'everything' } }),
  },
  {
    doc: SCHEMA,
    expr: 'mcp.prompt.name',
    want: '"greeting"',
    request: mcpCall('prompts/get', { name: 'greeting' }),
  },
  {
    doc: SCHEMA,
    expr: 'mcp.resource.name',
    want: '"file:///readme.md"',
    request: mcpCall('resources/read', { uri: 'file:///readme.md' }),
  },

  // --- The CEL page's example expressions
  { doc: PAGE, expr: 'default(request.headers["x-user-id"], "anonymous")', want: '"user-7"' },
  {
    doc: PAGE,
    expr: 'default(request.headers["x-user-id"], "anonymous")',
    want: '"anonymous"',
    request: { ...BASE, headers: { 'content-type': 'application/json' } },
  },
  { doc: PAGE, expr: 'default(json(request.body).user.preferences.theme, "light")', want: '"dark"' },
  { doc: PAGE, expr: 'default(jwt.role, "user")', want: '"user"', jwt: { sub: 'alice' } },
  { doc: PAGE, expr: 'default(jwt.role, "user")', want: '"user"' },
  {
    doc: PAGE,
    expr: 'json(request.body).with(b, b.type == "sum" ? b.val1 + b.val2 : b.val3)',
    want: '5',
  },
  { doc: PAGE, expr: 'request.headers["user-agent"]', want: '"curl/8.5.0"' },
  { doc: PAGE, expr: '"openai.chat"', want: '"openai.chat"' },
  {
    doc: PAGE,
    expr: 'mcp.tool.name == "echo"',
    want: 'true',
    request: mcpCall('tools/call', { name: 'echo', arguments: {} }),
  },
  {
    doc: PAGE,
    expr: 'jwt.sub == "test-user" && mcp.tool.name == "add"',
    want: 'true',
    jwt: { sub: 'test-user' },
    request: mcpCall('tools/call', { name: 'add', arguments: { a: 1, b: 2 } }),
  },
  {
    doc: PAGE,
    expr: 'jwt.sub == "test-user" && mcp.tool.name == "add"',
    want: 'false',
    jwt: { sub: 'other-user' },
    request: mcpCall('tools/call', { name: 'add', arguments: { a: 1, b: 2 } }),
  },
  {
    doc: PAGE,
    expr: 'mcp.tool.name == "printEnv" && jwt.nested.key == "value"',
    want: 'true',
    jwt: { sub: 'alice', nested: { key: 'value' } },
    request: mcpCall('tools/call', { name: 'printEnv', arguments: {} }),
  },
  { doc: PAGE, expr: 'request.headers["x-organization"]', want: '"acme"' },
  { doc: PAGE, expr: 'has(jwt.sub)', want: 'true', jwt: { sub: 'alice' } },
  { doc: PAGE, expr: 'has(jwt.sub)', want: 'false' },
  { doc: PAGE, expr: 'jwt == null', want: 'true' },
  { doc: PAGE, expr: 'jwt != null', want: 'true', jwt: { sub: 'alice' } },
]

/** Cases where verdict differs on purpose, by `doc|expr`, with the reason (docs/cel.md). */
const DIFFERENT: Readonly<Record<string, string>> = {
  [`${VIEWS}|request.headers["x-multi"]`]:
    'a header read as one value that has several is a 400 ambiguous_header in verdict (docs/semantics.md); agentgateway gives a list',
  [`${VIEWS}|request.headers.raw()["x-multi"]`]:
    'the input keeps repeated lines joined by commas, so raw() of a repeated header is its values split on commas',
  [`${TESTS}|default(a, "b")`]:
    'an unknown variable is a load problem in verdict (cel_unknown_variable), not a value default() replaces',
  [`${TESTS}|default(a.b, "b")`]:
    'an unknown variable is a load problem in verdict (cel_unknown_variable), not a value default() replaces',
  [`${IPLIB}|isIP(cidr("192.168.0.0/24"))`]:
    'ip() and cidr() return strings in verdict, so isIP() of a range is false instead of a type error',
}

const key = (c: Case) => `${c.doc}|${c.expr}`

interface Outcome {
  readonly agrees: boolean
  readonly detail: string
}

let issuer: TestIssuer

async function evaluate(c: Case): Promise<Outcome> {
  const cel = c.want === ERROR ? `(${c.expr}) == (${c.expr})` : `(${c.expr}) == (${c.want})`
  const policy = {
    authentication: {
      jwt: {
        mode: 'Optional',
        providers: [{ name: 'test', issuer: issuer.issuer, jwks: { inline: issuer.jwks } }],
      },
    },
    rules: [{ id: 'agree', action: 'allow', cel }],
  }
  let engine: Awaited<ReturnType<typeof createEngine>>
  try {
    engine = await createEngine(policy, { evaluators: [createCelEvaluator()] })
  } catch (err) {
    return { agrees: false, detail: `does not load: ${(err as Error).message}` }
  }
  const request = structuredClone(c.request ?? BASE) as Request & { headers: Record<string, unknown> }
  if (c.jwt !== undefined) {
    request.headers = { ...request.headers, authorization: `Bearer ${await issuer.sign(c.jwt)}` }
  }
  const d: Decision = await engine.decide(request)
  if (c.want === ERROR) {
    const failed = !d.allowed && d.status === 403 && /agree: /.test(d.reason)
    return { agrees: failed, detail: `${d.status} ${d.reason}` }
  }
  return { agrees: d.allowed, detail: `${d.status} ${d.reason}` }
}

describe("agentgateway's CEL reference, unchanged", () => {
  const outcomes = new Map<number, Outcome>()

  beforeAll(async () => {
    issuer = await createTestIssuer({ issuer: 'https://issuer.agentgateway.test' })
  })

  afterAll(() => {
    const agree = [...outcomes.values()].filter((o) => o.agrees).length
    console.log(`agentgateway CEL cases: ${agree} of ${CASES.length} agree`)
    for (const [i, c] of CASES.entries()) {
      const o = outcomes.get(i)
      if (o !== undefined && !o.agrees) console.log(`  differs: ${c.expr} (${DIFFERENT[key(c)] ?? o.detail})`)
    }
  })

  it.each(CASES.map((c, i) => [c.expr, c, i] as const))('%s', async (_expr, c, i) => {
    const o = await evaluate(c)
    outcomes.set(i, o)
    const known = DIFFERENT[key(c)]
    if (known !== undefined) expect(o.agrees, `listed as different but agrees: ${known}`).toBe(false)
    else expect(o.agrees, o.detail).toBe(true)
  })

  it('every listed difference is a case', () => {
    const keys = new Set(CASES.map(key))
    for (const k of Object.keys(DIFFERENT)) expect(keys.has(k), k).toBe(true)
  })
})

/** Response-time and LLM-routing variables: a load problem that says why. */
describe('agentgateway variables that do not exist at authorization time', () => {
  const cases: Array<[string, RegExp]> = [
    ['response.code > 299', /'response' is not available at authorization time: response-time/],
    ['llm.inputTokens > 100', /'llm' is not available at authorization time: LLM routing/],
    ['backend.name == "openai"', /'backend' is not available at authorization time/],
    ['has(extproc.x)', /'extproc' is not available at authorization time/],
    ['request.endTime > request.startTime', /'request.endTime' is not available at authorization time/],
  ]
  it.each(cases)('%s', async (expr, message) => {
    const load = createEngine(
      { rules: [{ id: 'r', action: 'allow', cel: expr }] },
      {
        evaluators: [createCelEvaluator()],
      },
    )
    await expect(load).rejects.toThrow(message)
    await expect(load).rejects.toMatchObject({
      problems: expect.arrayContaining([expect.objectContaining({ code: 'cel_unavailable_variable' })]),
    })
  })
})
