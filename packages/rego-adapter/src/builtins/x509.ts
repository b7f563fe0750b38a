/**
 * `crypto.x509.parse_certificates`: certificates as OPA returns them, which is Go's
 * `x509.Certificate` in JSON (plus OPA's `URIStrings`): DER slices in base64, OIDs as integer
 * arrays, Go's enum numbers for algorithms and usages, big integers as JSON numbers (exact, raw
 * JSON text), nil slices as null. DER is read by `@peculiar/asn1-x509` (pure JavaScript); this file
 * maps its structures onto Go's field names and rules.
 */
import { CertificationRequest } from '@peculiar/asn1-csr'
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
  Extensions,
  type GeneralName,
  KeyUsage,
  type Name,
  NameConstraints,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
} from '@peculiar/asn1-x509'
import type { RegoBuiltin } from '../rego-policy.js'
import { fromBase64, fromUtf8, toBase64 } from './bytes.js'
import { nodeCrypto } from './host.js'
import { privateKeyJson } from './keys.js'
import { parseIpRaw } from './net.js'
import { currentScope, goJson, isObj, isStr, rawJson } from './scope.js'

const b64 = (b: ArrayBuffer | ArrayBufferView) =>
  toBase64(
    b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength),
  )
const oid = (s: string) => s.split('.').map(Number)

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
function json(v: unknown): string {
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
const PUBLIC_KEY_ALGORITHMS: Record<string, number> = {
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
function pkixName(n: Name): Record<string, unknown> {
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
function goUrl(s: string): Record<string, unknown> {
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

const orNull = <T>(xs: T[]) => (xs.length === 0 ? null : xs)

/** Go's DNSNames, EmailAddresses, IPAddresses and URIs from a subjectAltName value (and URIStrings). */
function sanFields(value: ArrayBuffer): Record<string, unknown> {
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

function signatureAlgorithmOf(alg: { algorithm: string; parameters?: ArrayBuffer | null }): number {
  if (alg.algorithm === '1.2.840.113549.1.1.10' && alg.parameters != null)
    return PSS_BY_HASH[AsnParser.parse(alg.parameters, RsaSaPssParams).hashAlgorithm.algorithm] ?? 0
  return SIGNATURE_ALGORITHMS[alg.algorithm] ?? 0
}

function publicKey(spkiAlg: string, spki: ArrayBuffer, params: ArrayBuffer | null | undefined): unknown {
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
function certificateValue(der: Uint8Array): Record<string, unknown> {
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

/**
 * The DER blocks of a type in PEM text, base64 PEM, or base64 DER (as OPA reads them). With
 * `strict`, a PEM block of another type is an error (OPA's certificate reading); otherwise skipped.
 */
function ders(x: string, type = 'CERTIFICATE', strict = false): Uint8Array[] | undefined {
  let text = x
  if (!text.startsWith('-----BEGIN')) {
    const b = fromBase64(text)
    if (b === undefined) return undefined
    if (b.length === 0) return []
    const decoded = fromUtf8(b)
    if (!decoded.startsWith('-----BEGIN')) return [b]
    text = decoded
  }
  const out: Uint8Array[] = []
  for (const m of text.matchAll(/(?:^|\n)-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g)) {
    if (m[1] !== type) {
      if (strict) return undefined
      continue
    }
    const b = fromBase64(m[2]!.replace(/^[A-Za-z-]+:.*$/gm, ''))
    if (b === undefined) return undefined
    out.push(b)
  }
  return out
}

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

function parseCertificateRequest(x: unknown): unknown {
  if (!isStr(x)) return undefined
  const blocks = ders(x, 'CERTIFICATE REQUEST')
  if (blocks === undefined || blocks.length === 0) return undefined
  try {
    return rawJson(requestJson(blocks[0]!))
  } catch {
    return undefined
  }
}

/** PEM text as given, or base64-encoded PEM. */
function pem(x: string): string {
  if (x.includes('-----BEGIN')) return x
  const b = fromBase64(x)
  return b === undefined ? '' : fromUtf8(b)
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

// ---- crypto.x509.parse_and_verify_certificates[_with_options]: Go's Certificate.Verify ----

const VERIFY = 'crypto.x509.parse_and_verify_certificates'
type Cert = Record<string, unknown> & { der: Uint8Array }

/** Go's ExtKeyUsage numbers by the names OPA accepts in `KeyUsages`. */
const KEY_USAGE_NAMES: Record<string, number> = {
  KeyUsageAny: 0,
  KeyUsageServerAuth: 1,
  KeyUsageClientAuth: 2,
  KeyUsageCodeSigning: 3,
  KeyUsageEmailProtection: 4,
  KeyUsageIPSECEndSystem: 5,
  KeyUsageIPSECTunnel: 6,
  KeyUsageIPSECUser: 7,
  KeyUsageTimeStamping: 8,
  KeyUsageOCSPSigning: 9,
  KeyUsageMicrosoftServerGatedCrypto: 10,
  KeyUsageNetscapeServerGatedCrypto: 11,
  KeyUsageMicrosoftCommercialCodeSigning: 12,
  KeyUsageMicrosoftKernelCodeSigning: 13,
}
/** Signature algorithms Go refuses to verify (MD2, MD5, SHA-1, DSA). */
const INSECURE = new Set([0, 1, 2, 3, 7, 8, 9])
const KEY_USAGE_CERT_SIGN = 1 << 5

interface VerifyOptions {
  dnsName: string
  nowMs: number
  keyUsages: number[]
}

const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : [])
const timeMs = (v: unknown) => Date.parse(String(v))

/** DNS name constraint: `example.com` covers itself and subdomains, `.example.com` subdomains only. */
function dnsWithin(name: string, constraint: string): boolean {
  const n = name.toLowerCase()
  const c = constraint.toLowerCase()
  if (c === '') return true
  if (c.startsWith('.')) return n.endsWith(c)
  return n === c || n.endsWith(`.${c}`)
}

function emailWithin(email: string, constraint: string): boolean {
  if (constraint.includes('@')) return email.toLowerCase() === constraint.toLowerCase()
  return dnsWithin(email.slice(email.lastIndexOf('@') + 1), constraint)
}

/** Whether an address is in an `{"IP", "Mask"}` range of the same family (Go's IPNet.Contains). */
function ipWithin(address: string, range: string | { IP: string; Mask: string }): boolean {
  const { IP, Mask } = range as { IP: string; Mask: string }
  const a = parseIpRaw(address)
  const net = parseIpRaw(IP)
  const mask = fromBase64(Mask)
  if (a === undefined || net === undefined || mask === undefined || a.v6 !== net.v6) return false
  let m = 0n
  for (const b of mask) m = (m << 8n) | BigInt(b)
  return (a.addr & m) === (net.addr & m)
}

/** Whether the leaf's names satisfy a CA's name constraints (DNS, email, URI domains, IP ranges). */
function nameConstraintsOk(ca: Cert, leaf: Cert): boolean {
  const kinds: Array<[unknown, string, (n: string, c: string) => boolean]> = [
    [leaf.DNSNames, 'DNSDomains', dnsWithin],
    [leaf.EmailAddresses, 'EmailAddresses', emailWithin],
    [leaf.URIStrings, 'URIDomains', (u, c) => dnsWithin(goUrl(u).Host as string, c)],
    [leaf.IPAddresses, 'IPRanges', (ip, c) => ipWithin(ip, c)],
  ]
  for (const [names, field, within] of kinds) {
    // Ranges are {"IP", "Mask"} objects; the other constraints strings.
    const permitted = list(ca[`Permitted${field}`]) as unknown as string[]
    const excluded = list(ca[`Excluded${field}`]) as unknown as string[]
    for (const n of list(names)) {
      if (excluded.some((c) => within(n, c))) return false
      if (permitted.length > 0 && !permitted.some((c) => within(n, c))) return false
    }
  }
  return true
}

type CertType = 'leaf' | 'intermediate' | 'root'

/** Go's isValid: critical extensions, validity period, name constraints, CA and path length. */
function isValid(c: Cert, type: CertType, chain: Cert[], o: VerifyOptions): boolean {
  if (c.UnhandledCriticalExtensions !== null) return false
  if (o.nowMs < timeMs(c.NotBefore) || o.nowMs > timeMs(c.NotAfter)) return false
  if (type === 'leaf') return true
  if (!nameConstraintsOk(c, chain[0]!)) return false
  if (type === 'intermediate' && (c.BasicConstraintsValid !== true || c.IsCA !== true)) return false
  const maxPathLen = c.MaxPathLen as number
  if (c.BasicConstraintsValid === true && maxPathLen >= 0 && chain.length - 1 > maxPathLen) return false
  return true
}

/** Go's CheckSignatureFrom: the parent may sign, and its key verifies the child's signature. */
function signedBy(child: Cert, parent: Cert): boolean {
  if ((parent.Version === 3 && parent.BasicConstraintsValid !== true) || parent.IsCA !== true) return false
  const ku = parent.KeyUsage as number
  if (ku !== 0 && (ku & KEY_USAGE_CERT_SIGN) === 0) return false
  if (parent.PublicKeyAlgorithm === 0 || INSECURE.has(child.SignatureAlgorithm as number)) return false
  const { X509Certificate } = nodeCrypto(VERIFY)
  try {
    return new X509Certificate(child.der).verify(new X509Certificate(parent.der).publicKey)
  } catch {
    return false
  }
}

function sameCert(a: Cert, b: Cert): boolean {
  return a.Raw === b.Raw
}

/** Chains from the leaf to a root, as Go's buildChains finds them. */
function buildChains(
  chain: Cert[],
  roots: Cert[],
  intermediates: Cert[],
  o: VerifyOptions,
  depth = 0,
): Cert[][] {
  const cert = chain[chain.length - 1]!
  const out: Cert[][] = []
  const consider = (candidate: Cert, type: CertType) => {
    if (chain.some((c) => sameCert(c, candidate))) return
    if (candidate.RawSubject !== cert.RawIssuer) return
    if (!signedBy(cert, candidate)) return
    if (!isValid(candidate, type, chain, o)) return
    if (type === 'root') out.push([...chain, candidate])
    else if (depth < 100) out.push(...buildChains([...chain, candidate], roots, intermediates, o, depth + 1))
  }
  for (const r of roots) consider(r, 'root')
  for (const i of intermediates) consider(i, 'intermediate')
  return out
}

/** Go's checkChainForKeyUsage: each certificate with usages narrows the requested ones. */
function keyUsageOk(chain: Cert[], requested: number[]): boolean {
  const usages = [...requested]
  let remaining = usages.length
  for (let i = chain.length - 1; i >= 0; i--) {
    const eku = (chain[i]!.ExtKeyUsage as number[] | null) ?? []
    if (eku.length === 0 && chain[i]!.UnknownExtKeyUsage === null) continue
    if (eku.includes(0)) continue
    for (let j = 0; j < usages.length; j++) {
      if (usages[j] === -1 || eku.includes(usages[j]!)) continue
      usages[j] = -1
      if (--remaining === 0) return false
    }
  }
  return true
}

/** Go's VerifyHostname for a DNS name (one-label wildcards) or an IP address. */
function hostnameOk(leaf: Cert, host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '')
  if (/^[0-9.]+$/.test(h) || h.includes(':')) return list(leaf.IPAddresses).includes(h)
  return list(leaf.DNSNames).some((n) => {
    const p = n.toLowerCase().replace(/\.$/, '')
    if (p.startsWith('*.')) {
      const dot = h.indexOf('.')
      return dot > 0 && h.slice(dot) === p.slice(1)
    }
    return p === h
  })
}

/** `uriStrings`: OPA adds URIStrings to the chain without options only (OPA 1.7.1). */
function verifyChain(input: unknown, o: VerifyOptions, uriStrings: boolean): unknown {
  const INVALID = [false, []]
  if (!isStr(input)) return undefined
  const blocks = ders(input, 'CERTIFICATE', true)
  if (blocks === undefined || blocks.length < 2) return INVALID
  let certs: Cert[]
  try {
    certs = blocks.map((der) => ({ ...certificateValue(der), der }))
  } catch {
    return INVALID
  }
  const leaf = certs[certs.length - 1]!
  if (!isValid(leaf, 'leaf', [], o)) return INVALID
  if (o.dnsName !== '' && !hostnameOk(leaf, o.dnsName)) return INVALID
  const roots = [certs[0]!]
  const chains = roots.some((r) => sameCert(r, leaf))
    ? [[leaf]]
    : buildChains([leaf], roots, certs.slice(1, -1), o)
  const usages = o.keyUsages.length === 0 ? [1] : o.keyUsages
  const ok = usages.includes(0) ? chains : chains.filter((c) => keyUsageOk(c, usages))
  if (ok.length === 0) return INVALID
  const shown = ok[0]!.map(({ der: _d, URIStrings, ...c }) => json(uriStrings ? { ...c, URIStrings } : c))
  return rawJson(`[true,[${shown.join(',')}]]`)
}

function verifyOptions(opts: unknown): VerifyOptions | undefined {
  const o: VerifyOptions = { dnsName: '', nowMs: currentScope().nowMs, keyUsages: [] }
  if (opts === undefined) return o
  if (!isObj(opts)) return undefined
  for (const [k, v] of Object.entries(opts)) {
    if (k === 'DNSName') {
      if (!isStr(v)) return undefined
      o.dnsName = v.replace(/^"+|"+$/g, '')
    } else if (k === 'CurrentTime') {
      if (typeof v !== 'number' || !Number.isInteger(v)) return undefined
      o.nowMs = v / 1e6
    } else if (k === 'MaxConstraintComparisons') {
      if (typeof v !== 'number' || !Number.isInteger(v)) return undefined
    } else if (k === 'KeyUsages') {
      if (!Array.isArray(v)) return undefined
      for (const u of v) {
        if (!isStr(u)) continue
        const n = KEY_USAGE_NAMES[u.replace(/^"+|"+$/g, '')]
        if (n === undefined) return undefined
        o.keyUsages.push(n)
      }
    } else return undefined
  }
  return o
}

const x509VerifyBuiltins: Record<string, RegoBuiltin> = {
  [VERIFY]: (certs) => verifyChain(certs, verifyOptions(undefined)!, true),
  'crypto.x509.parse_and_verify_certificates_with_options': (certs, opts) => {
    const o = verifyOptions(opts)
    return o === undefined ? undefined : verifyChain(certs, o, false)
  },
}

export const x509Builtins: Record<string, RegoBuiltin> = {
  'crypto.x509.parse_certificates': parseCertificates,
  'crypto.x509.parse_certificate_request': parseCertificateRequest,
  [KEYPAIR]: parseKeypair,
  ...x509VerifyBuiltins,
}
