/** The fields agentgateway shows of the peer's client certificate (`source` certificate variables). */

/** Parsed client certificates, by PEM text (policies see few distinct ones). */
const certificates = new Map<string, CertificateFields | null>()

export interface CertificateFields {
  readonly subjectAltNames: readonly string[]
  readonly issuer: string
  readonly subject: string
  readonly subjectCn: string | undefined
}

/** The part of node:crypto's X509Certificate read here. */
type X509 = new (
  pem: string,
) => { readonly subject: string; readonly issuer: string; readonly subjectAltName: string | undefined }

/**
 * node:crypto's X509Certificate where the runtime has it (Node, Bun and Deno through
 * `process.getBuiltinModule`), found when first needed; undefined in browsers and workers.
 */
let x509: X509 | null | undefined
function x509Certificate(): X509 | undefined {
  if (x509 === undefined) {
    const process = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
    let m: { X509Certificate?: X509 } | undefined
    try {
      m = process?.getBuiltinModule?.('node:crypto') as { X509Certificate?: X509 } | undefined
    } catch {
      m = undefined
    }
    x509 = m?.X509Certificate ?? null
  }
  return x509 ?? undefined
}

/**
 * The fields agentgateway shows of a peer certificate (Envoy sends it URL-encoded PEM). X.509 is
 * parsed by node:crypto; in a runtime without it, reading a certificate field is an evaluation
 * error (so the rule fails closed), never a silent "no certificate".
 */
export function certificateFields(pem: string | undefined): CertificateFields | undefined {
  if (pem === undefined || pem === '') return undefined
  const hit = certificates.get(pem)
  if (hit !== undefined) return hit ?? undefined
  const X509Certificate = x509Certificate()
  if (X509Certificate === undefined)
    throw new Error(
      'reading the client certificate needs node:crypto (process.getBuiltinModule), not in this runtime',
    )
  let fields: CertificateFields | null = null
  try {
    const text = pem.includes('%') ? decodeURIComponent(pem) : pem
    const cert = new X509Certificate(text)
    const dn = (s: string) => s.split('\n').filter((x) => x !== '')
    const subject = dn(cert.subject)
    fields = {
      subjectAltNames: (cert.subjectAltName ?? '')
        .split(', ')
        .filter((x) => x !== '')
        .map((x) => x.slice(x.indexOf(':') + 1)),
      issuer: dn(cert.issuer).join(','),
      subject: subject.join(','),
      subjectCn: subject.find((x) => x.startsWith('CN='))?.slice(3),
    }
  } catch {
    fields = null
  }
  if (certificates.size >= 64) certificates.delete(certificates.keys().next().value as string)
  certificates.set(pem, fields)
  return fields ?? undefined
}
