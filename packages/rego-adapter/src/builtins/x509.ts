/**
 * The `crypto.x509.*` builtins: certificates (`x509-certificate.ts`, Go's `x509.Certificate` in
 * JSON), certificate requests (`x509-request.ts`), key pairs (here) and chain verification
 * (`x509-verify.ts`).
 */
import type { RegoBuiltin } from '../rego-policy.js'
import { toBase64 } from './bytes.js'
import { nodeCrypto } from './host.js'
import { privateKeyJson } from './keys.js'
import { isStr, rawJson } from './scope.js'
import { b64, certificateValue, json } from './x509-certificate.js'
import { ders, pem } from './x509-pem.js'
import { parseCertificateRequest } from './x509-request.js'
import { x509VerifyBuiltins } from './x509-verify.js'

function parseCertificates(x: unknown): unknown {
  if (!isStr(x)) return undefined
  const blocks = ders(x, 'CERTIFICATE', true)
  if (blocks === undefined) return undefined
  try {
    return rawJson(`[${blocks.map((d) => json(certificateValue(d))).join(',')}]`)
  } catch {
    return undefined
  }
}

/**
 * `crypto.x509.parse_keypair`: Go's tls.Certificate of a certificate chain and its private key
 * (which must match the first certificate's public key, compared by node:crypto).
 */
function parseKeypair(certs: unknown, key: unknown): unknown {
  if (!isStr(certs) || !isStr(key)) return undefined
  const chain = ders(pem(certs))
  if (chain === undefined || chain.length === 0) return undefined
  const keyPem = /(?:^|\n)(-----BEGIN ((?:[A-Z0-9]+ )?PRIVATE KEY)-----[\s\S]*?-----END \2-----)/.exec(
    pem(key),
  )?.[1]
  if (keyPem === undefined) return undefined
  const { createPrivateKey, createPublicKey } = nodeCrypto(KEYPAIR)
  try {
    // The leaf is Go's plain x509.Certificate: no URIStrings (OPA adds those in parse_certificates).
    const { URIStrings: _u, ...leaf } = certificateValue(chain[0]!)
    const spki = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' })
    if (toBase64(new Uint8Array(spki)) !== leaf.RawSubjectPublicKeyInfo) return undefined
    return rawJson(
      `{"Certificate":${json(chain.map((d) => b64(d)))},"PrivateKey":${privateKeyJson(keyPem, KEYPAIR)},` +
        `"OCSPStaple":null,"SignedCertificateTimestamps":null,"SupportedSignatureAlgorithms":null,"Leaf":${json(leaf)}}`,
    )
  } catch {
    return undefined
  }
}
const KEYPAIR = 'crypto.x509.parse_keypair'

export const x509Builtins: Record<string, RegoBuiltin> = {
  'crypto.x509.parse_certificates': parseCertificates,
  'crypto.x509.parse_certificate_request': parseCertificateRequest,
  [KEYPAIR]: parseKeypair,
  ...x509VerifyBuiltins,
}
