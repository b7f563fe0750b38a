/**
 * Certificates as OPA returns them, which is Go's `x509.Certificate` in JSON (plus OPA's
 * `URIStrings`): DER slices in base64, OIDs as integer arrays, Go's enum numbers for algorithms and
 * usages, big integers as JSON numbers (exact, raw JSON text), nil slices as null. DER is read by
 * `@peculiar/asn1-x509` (pure JavaScript); this file maps its structures onto Go's field names and
 * rules.
 */
import { RSAPublicKey, RsaSaPssParams } from '@peculiar/asn1-rsa'
import { AsnConvert, AsnParser } from '@peculiar/asn1-schema'
import {
  AuthorityInfoAccessSyntax,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  CertificatePolicies,
  CRLDistributionPoints,
  ExtendedKeyUsage,
  type GeneralName,
  KeyUsage,
  type Name,
  NameConstraints,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
} from '@peculiar/asn1-x509'
import { toBase64 } from './bytes.js'
import { goJson } from './scope.js'

export const b64 = (b: ArrayBuffer | ArrayBufferView) =>
  toBase64(
    b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength),
  )
export const oid = (s: string) => s.split('.').map(Number)

/** A big-endian unsigned integer as decimal text. */
function bigText(b: ArrayBuffer, signed = false): string {
  const bytes = new Uint8Array(b)
  let n = 0n
  for (const x of bytes) n = (n << 8n) | BigInt(x)
  if (signed && bytes.length > 0 && bytes[0]! >= 0x80) n -= 1n << BigInt(8 * bytes.length)
  return n.toString()
}

/** A JSON value in which `Big` instances are written as bare numbers. */
class Big {
  constructor(readonly text: string) {}
}
export function json(v: unknown): string {
  if (v instanceof Big) return v.text
  if (Array.isArray(v)) return `[${v.map(json).join(',')}]`
  if (v !== null && typeof v === 'object')
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}:${json(x)}`)
      .join(',')}}`
  return goJson(v)
}

const SIGNATURE_ALGORITHMS: Record<string, number> = {
  '1.2.840.113549.1.1.2': 1,
  '1.2.840.113549.1.1.4': 2,
  '1.2.840.113549.1.1.5': 3,
  '1.2.840.113549.1.1.11': 4,
  '1.2.840.113549.1.1.12': 5,
  '1.2.840.113549.1.1.13': 6,
  '1.2.840.10040.4.3': 7,
  '2.16.840.1.101.3.4.3.2': 8,
  '1.2.840.10045.4.1': 9,
  '1.2.840.10045.4.3.2': 10,
  '1.2.840.10045.4.3.3': 11,
  '1.2.840.10045.4.3.4': 12,
  '1.3.101.112': 16,
}
const PSS_BY_HASH: Record<string, number> = {
  '2.16.840.1.101.3.4.2.1': 13,
  '2.16.840.1.101.3.4.2.2': 14,
  '2.16.840.1.101.3.4.2.3': 15,
}
export const PUBLIC_KEY_ALGORITHMS: Record<string, number> = {
  '1.2.840.113549.1.1.1': 1,
  '1.2.840.10040.4.1': 2,
  '1.2.840.10045.2.1': 3,
  '1.3.101.112': 4,
}
const EXT_KEY_USAGE: Record<string, number> = {
  '2.5.29.37.0': 0,
  '1.3.6.1.5.5.7.3.1': 1,
  '1.3.6.1.5.5.7.3.2': 2,
  '1.3.6.1.5.5.7.3.3': 3,
  '1.3.6.1.5.5.7.3.4': 4,
  '1.3.6.1.5.5.7.3.5': 5,
  '1.3.6.1.5.5.7.3.6': 6,
  '1.3.6.1.5.5.7.3.7': 7,
  '1.3.6.1.5.5.7.3.8': 8,
  '1.3.6.1.5.5.7.3.9': 9,
  '1.3.6.1.4.1.311.10.3.3': 10,
  '2.16.840.1.113730.4.1': 11,
  '1.3.6.1.4.1.311.2.1.22': 12,
  '1.3.6.1.4.1.311.61.1.1': 13,
}
/** pkix.Name's fields by attribute OID. */
const NAME_FIELDS: Record<string, [string, boolean]> = {
  '2.5.4.6': ['Country', true],
  '2.5.4.10': ['Organization', true],
  '2.5.4.11': ['OrganizationalUnit', true],
  '2.5.4.3': ['CommonName', false],
  '2.5.4.5': ['SerialNumber', false],
  '2.5.4.7': ['Locality', true],
  '2.5.4.8': ['Province', true],
  '2.5.4.9': ['StreetAddress', true],
  '2.5.4.17': ['PostalCode', true],
}
/** Critical extensions Go's parser understands (others land in UnhandledCriticalExtensions). */
const HANDLED = new Set([
  '2.5.29.15',
  '2.5.29.19',
  '2.5.29.17',
  '2.5.29.30',
  '2.5.29.31',
  '2.5.29.35',
  '2.5.29.14',
  '2.5.29.37',
  '2.5.29.32',
  '1.3.6.1.5.5.7.1.1',
])

/** Go's pkix.Name filled from an RDN sequence. */
export function pkixName(n: Name): Record<string, unknown> {
  const out: Record<string, unknown> = {
    Country: null,
    Organization: null,
    OrganizationalUnit: null,
    Locality: null,
    Province: null,
    StreetAddress: null,
    PostalCode: null,
    SerialNumber: '',
    CommonName: '',
    Names: null,
    ExtraNames: null,
  }
  const names: unknown[] = []
  for (const rdn of n)
    for (const atv of rdn) {
      const value = atv.value.anyValue === undefined ? atv.value.toString() : undefined
      names.push({ Type: oid(atv.type), Value: value ?? null })
      const field = NAME_FIELDS[atv.type]
      if (field === undefined || value === undefined) continue
      if (field[1]) out[field[0]] = [...((out[field[0]] as string[] | null) ?? []), value]
      else out[field[0]] = value
    }
  if (names.length > 0) out.Names = names
  return out
}

/** Go's net.IPNet of an `address/prefix` name constraint: `{"IP", "Mask"}` (the mask in base64). */
function ipNet(text: string): { IP: string; Mask: string } {
  const [ip = '', bits = ''] = text.split('/')
  const width = ip.includes(':') ? 16 : 4
  const n = Number(bits)
  if (!/^[0-9]+$/.test(bits) || n > width * 8) throw new TypeError('IP name constraint')
  const mask = new Uint8Array(width).map((_, i) => (0xff << (8 - Math.min(8, Math.max(0, n - 8 * i)))) & 0xff)
  return { IP: ip, Mask: toBase64(mask) }
}

/** Go's url.URL of a URI SAN (the fields it marshals). */
export function goUrl(s: string): Record<string, unknown> {
  const m = /^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/.exec(s)
  const [, scheme = '', authority, path = '', query, fragment] = m ?? []
  const opaque = authority === undefined && scheme !== '' && !path.startsWith('/')
  const decode = (x: string) => {
    try {
      return decodeURIComponent(x)
    } catch {
      return x
    }
  }
  const host = authority?.includes('@') ? authority.slice(authority.lastIndexOf('@') + 1) : (authority ?? '')
  return {
    Scheme: scheme.toLowerCase(),
    Opaque: opaque ? path : '',
    User: authority?.includes('@') ? {} : null,
    Host: host,
    Path: opaque ? '' : decode(path),
    RawPath: '',
    OmitHost: false,
    ForceQuery: query === '' && s.includes('?') && !s.includes('?#'),
    RawQuery: query ?? '',
    Fragment: fragment === undefined ? '' : decode(fragment),
    RawFragment: '',
  }
}

const uris = (names: readonly GeneralName[] | undefined) =>
  (names ?? []).flatMap((g) =>
    g.uniformResourceIdentifier === undefined ? [] : [g.uniformResourceIdentifier],
  )

export const orNull = <T>(xs: T[]) => (xs.length === 0 ? null : xs)

/** Go's DNSNames, EmailAddresses, IPAddresses and URIs from a subjectAltName value (and URIStrings). */
export function sanFields(value: ArrayBuffer): Record<string, unknown> {
  const san = [...AsnParser.parse(value, SubjectAlternativeName)]
  const pick = (f: (g: GeneralName) => string | undefined) =>
    orNull(san.flatMap((g) => (f(g) === undefined ? [] : [f(g)!])))
  const u = uris(san)
  return {
    DNSNames: pick((g) => g.dNSName),
    EmailAddresses: pick((g) => g.rfc822Name),
    IPAddresses: pick((g) => g.iPAddress),
    URIs: orNull(u.map(goUrl)),
    URIStrings: orNull(u),
  }
}

export function signatureAlgorithmOf(alg: { algorithm: string; parameters?: ArrayBuffer | null }): number {
  if (alg.algorithm === '1.2.840.113549.1.1.10' && alg.parameters != null)
    return PSS_BY_HASH[AsnParser.parse(alg.parameters, RsaSaPssParams).hashAlgorithm.algorithm] ?? 0
  return SIGNATURE_ALGORITHMS[alg.algorithm] ?? 0
}

export function publicKey(
  spkiAlg: string,
  spki: ArrayBuffer,
  params: ArrayBuffer | null | undefined,
): unknown {
  const key = new Uint8Array(spki)
  if (spkiAlg === '1.2.840.113549.1.1.1') {
    const k = AsnParser.parse(spki, RSAPublicKey)
    return { N: new Big(bigText(k.modulus)), E: new Big(bigText(k.publicExponent)) }
  }
  if (spkiAlg === '1.2.840.10045.2.1' && key[0] === 4 && params != null) {
    const half = (key.length - 1) / 2
    return {
      Curve: {},
      X: new Big(bigText(key.slice(1, 1 + half).buffer)),
      Y: new Big(bigText(key.slice(1 + half).buffer)),
    }
  }
  if (spkiAlg === '1.3.101.112') return toBase64(key)
  return null
}

/** One DER certificate as Go's struct (a JSON value with `Big` numbers). */
export function certificateValue(der: Uint8Array): Record<string, unknown> {
  const buf = der.slice().buffer
  const cert = AsnParser.parse(buf, Certificate)
  const tbs = cert.tbsCertificate
  const signatureAlgorithm = signatureAlgorithmOf(cert.signatureAlgorithm)
  const spki = tbs.subjectPublicKeyInfo
  const out: Record<string, unknown> = {
    Raw: b64(der),
    RawTBSCertificate: b64(cert.tbsCertificateRaw ?? AsnConvert.serialize(tbs)),
    RawSubjectPublicKeyInfo: b64(AsnConvert.serialize(spki)),
    RawSubject: b64(AsnConvert.serialize(tbs.subject)),
    RawIssuer: b64(AsnConvert.serialize(tbs.issuer)),
    Signature: b64(cert.signatureValue),
    SignatureAlgorithm: signatureAlgorithm,
    PublicKeyAlgorithm: PUBLIC_KEY_ALGORITHMS[spki.algorithm.algorithm] ?? 0,
    PublicKey: publicKey(spki.algorithm.algorithm, spki.subjectPublicKey, spki.algorithm.parameters),
    Version: tbs.version + 1,
    SerialNumber: new Big(bigText(tbs.serialNumber, true)),
    Issuer: pkixName(tbs.issuer),
    Subject: pkixName(tbs.subject),
    NotBefore: tbs.validity.notBefore.getTime().toISOString().replace('.000Z', 'Z'),
    NotAfter: tbs.validity.notAfter.getTime().toISOString().replace('.000Z', 'Z'),
    KeyUsage: 0,
    Extensions: null,
    ExtraExtensions: null,
    UnhandledCriticalExtensions: null,
    ExtKeyUsage: null,
    UnknownExtKeyUsage: null,
    BasicConstraintsValid: false,
    IsCA: false,
    MaxPathLen: 0,
    MaxPathLenZero: false,
    SubjectKeyId: null,
    AuthorityKeyId: null,
    OCSPServer: null,
    IssuingCertificateURL: null,
    DNSNames: null,
    EmailAddresses: null,
    IPAddresses: null,
    URIs: null,
    URIStrings: null,
    PermittedDNSDomainsCritical: false,
    PermittedDNSDomains: null,
    ExcludedDNSDomains: null,
    PermittedIPRanges: null,
    ExcludedIPRanges: null,
    PermittedEmailAddresses: null,
    ExcludedEmailAddresses: null,
    PermittedURIDomains: null,
    ExcludedURIDomains: null,
    CRLDistributionPoints: null,
    PolicyIdentifiers: null,
    Policies: null,
  }
  const extensions: unknown[] = []
  const unhandled: unknown[] = []
  for (const e of tbs.extensions ?? []) {
    const value = e.extnValue.buffer
    extensions.push({ Id: oid(e.extnID), Critical: e.critical, Value: b64(value) })
    if (e.critical && !HANDLED.has(e.extnID)) unhandled.push(oid(e.extnID))
    switch (e.extnID) {
      case '2.5.29.14':
        out.SubjectKeyId = b64(AsnParser.parse(value, SubjectKeyIdentifier).buffer)
        break
      case '2.5.29.35': {
        const k = AsnParser.parse(value, AuthorityKeyIdentifier).keyIdentifier
        if (k !== undefined) out.AuthorityKeyId = b64(k.buffer)
        break
      }
      case '2.5.29.19': {
        const bc = AsnParser.parse(value, BasicConstraints)
        out.BasicConstraintsValid = true
        out.IsCA = bc.cA
        out.MaxPathLen = bc.pathLenConstraint ?? -1
        out.MaxPathLenZero = bc.pathLenConstraint === 0
        break
      }
      case '2.5.29.15': {
        const ku = AsnParser.parse(value, KeyUsage)
        const bits = new Uint8Array(ku.value)
        let usage = 0
        for (let i = 0; i < 9; i++) if ((bits[i >> 3]! >> (7 - (i & 7))) & 1) usage |= 1 << i
        out.KeyUsage = usage
        break
      }
      case '2.5.29.37': {
        const known: number[] = []
        const unknown: number[][] = []
        for (const u of AsnParser.parse(value, ExtendedKeyUsage)) {
          const k = EXT_KEY_USAGE[u]
          if (k === undefined) unknown.push(oid(u))
          else known.push(k)
        }
        out.ExtKeyUsage = orNull(known)
        out.UnknownExtKeyUsage = orNull(unknown)
        break
      }
      case '2.5.29.17':
        Object.assign(out, sanFields(value))
        break
      case '2.5.29.31':
        out.CRLDistributionPoints = orNull(
          [...AsnParser.parse(value, CRLDistributionPoints)].flatMap((dp) =>
            uris(dp.distributionPoint?.fullName),
          ),
        )
        break
      case '1.3.6.1.5.5.7.1.1': {
        const aia = [...AsnParser.parse(value, AuthorityInfoAccessSyntax)]
        const urls = (method: string) =>
          orNull(aia.filter((a) => a.accessMethod === method).flatMap((a) => uris([a.accessLocation])))
        out.OCSPServer = urls('1.3.6.1.5.5.7.48.1')
        out.IssuingCertificateURL = urls('1.3.6.1.5.5.7.48.2')
        break
      }
      case '2.5.29.32': {
        const ids = [...AsnParser.parse(value, CertificatePolicies)].map((p) => p.policyIdentifier)
        out.PolicyIdentifiers = orNull(ids.map(oid))
        out.Policies = orNull(ids)
        break
      }
      case '2.5.29.30': {
        const nc = AsnParser.parse(value, NameConstraints)
        out.PermittedDNSDomainsCritical = e.critical
        const fill = (subtrees: typeof nc.permittedSubtrees, prefix: 'Permitted' | 'Excluded') => {
          const all = [...(subtrees ?? [])].map((s) => s.base)
          out[`${prefix}DNSDomains`] = orNull(
            all.flatMap((g) => (g.dNSName === undefined ? [] : [g.dNSName])),
          )
          out[`${prefix}EmailAddresses`] = orNull(
            all.flatMap((g) => (g.rfc822Name === undefined ? [] : [g.rfc822Name])),
          )
          out[`${prefix}URIDomains`] = orNull(uris(all))
          out[`${prefix}IPRanges`] = orNull(
            all.flatMap((g) => (g.iPAddress === undefined ? [] : [ipNet(g.iPAddress)])),
          )
        }
        fill(nc.permittedSubtrees, 'Permitted')
        fill(nc.excludedSubtrees, 'Excluded')
        break
      }
    }
  }
  out.Extensions = orNull(extensions)
  out.UnhandledCriticalExtensions = orNull(unhandled)
  return out
}
