/**
 * Rego expressions whose values verdict must compute as `opa eval` does (`../builtins.parity.test.ts`);
 * test data, kept out of the build and the package (`src/testing/` is excluded from both).
 * Key material and times shared by the families are in `parity-cases/shared.ts`.
 */
import { AWS_CASES } from './parity-cases/aws.js'
import { EDGE_CASES } from './parity-cases/edges.js'
import { GLOB_CASES } from './parity-cases/globs.js'
import { GRAPHQL_CASES } from './parity-cases/graphql.js'
import { JSON_SCHEMA_CASES } from './parity-cases/json-schema.js'
import { KEY_CASES } from './parity-cases/keys.js'
import { REGO_PARSE_CASES } from './parity-cases/rego-parse.js'
import { TEMPLATE_CASES } from './parity-cases/template.js'
import { TOKEN_NET_TIME_CASES } from './parity-cases/tokens-net-time.js'
import { VALUE_CASES } from './parity-cases/values.js'
import { X509_CASES } from './parity-cases/x509.js'

/** Every parity case, one family per file in `parity-cases/`. */
export const PARITY_CASES: readonly string[] = [
  ...TEMPLATE_CASES,
  ...X509_CASES,
  ...AWS_CASES,
  ...GLOB_CASES,
  ...KEY_CASES,
  ...GRAPHQL_CASES,
  ...JSON_SCHEMA_CASES,
  ...VALUE_CASES,
  ...TOKEN_NET_TIME_CASES,
  ...EDGE_CASES,
  ...REGO_PARSE_CASES,
]

/**
 * Where verdict differs from `opa eval`, and why: the JavaScript SDK hands a Rego set to a host
 * builtin as a JSON array (sets have no JSON form), so a builtin that treats sets and arrays
 * differently sees an array. The test checks these still differ, so a fix shows up.
 */
export const KNOWN_DIFFERENCES: readonly string[] = [
  // The set's elements key the matches in OPA; verdict, seeing an array, uses their indexes.
  'net.cidr_contains_matches(["1.1.1.0/24"], {"1.1.1.1", "2.2.2.2"})',
  'net.cidr_contains_matches({"1.1.1.0/24"}, "1.1.1.1")',
  // A set in OPA is a subset test; an array is a contiguous-run test.
  'object.subset({1, 2, 3}, {3, 1})',
  // ajv checks uniqueItems only among items of the type `items` declares; gojsonschema among all.
  'json.match_schema({"a": [1, 1]}, {"properties": {"a": {"items": {"type": "string"}, "uniqueItems": true}}})',
  // Numbers reach a host builtin parsed: render_template prints their shortest form, OPA the text
  // they were written in.
  'strings.render_template("{{.n}}", {"n": 1.0})',
  'strings.render_template("{{.n}}", {"n": 1e21})',
  // A set reaches the template as an array (OPA refuses a set there).
  'strings.render_template("{{.s}}", {"s": {"x"}})',
  // rego.parse_module refuses what it does not follow (undefined; OPA answers): equal numbers
  // written differently in one set, two comprehensions of one kind in a set, `p.q()` heads.
  'rego.parse_module("p.rego", "package a\\np := {1, 1.0}")',
  'rego.parse_module("p.rego", "package a\\np := {[x | x := 1], [y | y := 2]}")',
  'rego.parse_module("p.rego", "package a\\np.q() if x")',
]

/** Builtins OPA 1.x accepts only in v0 Rego (`--v0-compatible`). */
export const PARITY_CASES_V0: readonly string[] = [
  'cast_array([1, 2])',
  'cast_array({3, 1})',
  'cast_array("x")',
  'cast_set([2, 1, 2])',
  'cast_boolean(true)',
  'cast_boolean("true")',
  'cast_null(null)',
  'cast_object({"a": 1})',
  'cast_object([1])',
  'cast_string("s")',
  'cast_string(1)',
]
