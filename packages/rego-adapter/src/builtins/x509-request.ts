/** `crypto.x509.parse_certificate_request`: a DER certificate request as Go's x509.CertificateRequest. */
import { CertificationRequest } from '@peculiar/asn1-csr'
import { AsnConvert, AsnParser } from '@peculiar/asn1-schema'
import { Extensions } from '@peculiar/asn1-x509'
import { isStr, rawJson } from './scope.js'
import {
  b64,
  json,
  oid,
  orNull,
  PUBLIC_KEY_ALGORITHMS,
  pkixName,
  publicKey,
  sanFields,
  signatureAlgorithmOf,
} from './x509-certificate.js'
import { ders } from './x509-pem.js'

/** A DER certificate request as Go's x509.CertificateRequest (JSON text). */
function requestJson(der: Uint8Array): string {
  const csr = AsnParser.parse(der.slice().buffer, CertificationRequest)
  const info = csr.certificationRequestInfo
  const spki = info.subjectPKInfo
  const out: Record<string, unknown> = {
    Raw: b64(der),
    RawTBSCertificateRequest: b64(csr.certificationRequestInfoRaw ?? AsnConvert.serialize(info)),
    RawSubjectPublicKeyInfo: b64(AsnConvert.serialize(spki)),
    RawSubject: b64(AsnConvert.serialize(info.subject)),
    Version: info.version,
    Signature: b64(csr.signature),
    SignatureAlgorithm: signatureAlgorithmOf(csr.signatureAlgorithm),
    PublicKeyAlgorithm: PUBLIC_KEY_ALGORITHMS[spki.algorithm.algorithm] ?? 0,
    PublicKey: publicKey(spki.algorithm.algorithm, spki.subjectPublicKey, spki.algorithm.parameters),
    Subject: pkixName(info.subject),
    Attributes: null,
    Extensions: null,
    ExtraExtensions: null,
    DNSNames: null,
    EmailAddresses: null,
    IPAddresses: null,
    URIs: null,
  }
  const attributes: unknown[] = []
  const extensions: unknown[] = []
  for (const a of info.attributes) {
    if (a.type !== '1.2.840.113549.1.9.14') continue
    const sets = a.values.map((v) =>
      [...AsnParser.parse(v, Extensions)].map((e) => {
        const value = e.extnValue.buffer
        extensions.push({ Id: oid(e.extnID), Critical: e.critical, Value: b64(value) })
        if (e.extnID === '2.5.29.17') {
          const { URIStrings: _u, ...san } = sanFields(value)
          Object.assign(out, san)
        }
        return { Type: oid(e.extnID), Value: b64(value) }
      }),
    )
    attributes.push({ Type: oid(a.type), Value: sets })
  }
  out.Attributes = orNull(attributes)
  out.Extensions = orNull(extensions)
  return json(out)
}

export function parseCertificateRequest(x: unknown): unknown {
  if (!isStr(x)) return undefined
  const blocks = ders(x, 'CERTIFICATE REQUEST')
  if (blocks === undefined || blocks.length === 0) return undefined
  try {
    return rawJson(requestJson(blocks[0]!))
  } catch {
    return undefined
  }
}
