/**
 * `crypto.x509.parse_and_verify_certificates[_with_options]`: Go's Certificate.Verify over the
 * certificates given (the first is the root, the last the leaf): validity, name constraints,
 * signatures, key usages and the host name.
 */
import type { RegoBuiltin } from '../rego-policy.js'
import { fromBase64 } from './bytes.js'
import { nodeCrypto } from './host.js'
import { parseIpRaw } from './net.js'
import { currentScope, isObj, isStr, rawJson } from './scope.js'
import { certificateValue, goUrl, json } from './x509-certificate.js'
import { ders } from './x509-pem.js'

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

export const x509VerifyBuiltins: Record<string, RegoBuiltin> = {
  [VERIFY]: (certs) => verifyChain(certs, verifyOptions(undefined)!, true),
  'crypto.x509.parse_and_verify_certificates_with_options': (certs, opts) => {
    const o = verifyOptions(opts)
    return o === undefined ? undefined : verifyChain(certs, o, false)
  },
}
