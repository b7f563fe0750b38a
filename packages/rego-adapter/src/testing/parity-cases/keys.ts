/** Parity cases: key parsing and JWK conversion. */
import { EC_PKCS8, RSA_PKCS1, RSA_PKCS8 } from './shared.js'

const ED_PKCS8 =
  '"-----BEGIN PRIVATE KEY-----\\nMC4CAQAwBQYDK2VwBCIEIMkJIYD6PwkTVD0olNqQFz+aUdEZkdXFepkByF50Hr+v\\n-----END PRIVATE KEY-----\\n"'

export const KEY_CASES: readonly string[] = [
  `crypto.parse_private_keys(${RSA_PKCS1})`,
  `crypto.parse_private_keys(${RSA_PKCS8})`,
  `crypto.parse_private_keys(${EC_PKCS8})`,
  `crypto.parse_private_keys(${ED_PKCS8})`,
  `crypto.parse_private_keys(concat("", [${RSA_PKCS1}, "junk between", ${EC_PKCS8}]))`,
  `crypto.parse_private_keys(concat("\\n", [${RSA_PKCS1}, "junk between", ${EC_PKCS8}]))`,
  `crypto.parse_private_keys(base64.encode(${EC_PKCS8}))`,
  'crypto.parse_private_keys("")',
  'crypto.parse_private_keys("   ")',
  'crypto.parse_private_keys("junk")',
  'crypto.parse_private_keys("-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n")',
  'crypto.parse_private_keys("-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n")',
]
