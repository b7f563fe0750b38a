/**
 * SPIFFE IDs (`spiffe://<trust-domain>/<path>`) parsed from a peer's principal, and the empty peer.
 */
import { EMPTY_STRINGS } from './fields.js'
import type { PeerInfo, SpiffeId } from './types.js'

const SPIFFE_TD = /^[a-z0-9._-]+$/

const SPIFFE_SEG = /^[A-Za-z0-9._-]+$/

const spiffeCache = new Map<string, SpiffeId | undefined>()

// Most traffic comes from few callers: a one-entry cache in front of a bounded map.
let lastPrincipal: string | undefined

let lastSpiffe: SpiffeId | undefined

/** Parse a SPIFFE ID; undefined when `principal` is not one (it may be a certificate subject). */
export function parseSpiffeId(principal: string | undefined): SpiffeId | undefined {
  if (principal === undefined) return undefined
  if (principal === lastPrincipal) return lastSpiffe
  let parsed: SpiffeId | undefined
  if (spiffeCache.has(principal)) parsed = spiffeCache.get(principal)
  else {
    parsed = parseSpiffeUncached(principal)
    if (parsed !== undefined) Object.freeze(parsed)
    // Bounded: a caller cycling through principals only costs the parse again.
    if (spiffeCache.size >= 1024) spiffeCache.clear()
    spiffeCache.set(principal, parsed)
  }
  lastPrincipal = principal
  lastSpiffe = parsed
  return parsed
}

function parseSpiffeUncached(principal: string): SpiffeId | undefined {
  if (!principal.startsWith('spiffe://') || principal.length > 2048) return undefined
  const rest = principal.slice(9)
  const slash = rest.indexOf('/')
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash)
  const path = slash === -1 ? '' : rest.slice(slash)
  if (!SPIFFE_TD.test(trustDomain)) return undefined
  if (path !== '') {
    const segs = path.split('/')
    for (let i = 1; i < segs.length; i++) {
      const s = segs[i]!
      if (!SPIFFE_SEG.test(s) || s === '.' || s === '..') return undefined
    }
    if (segs.length === 5 && segs[1] === 'ns' && segs[3] === 'sa') {
      return { id: principal, trustDomain, path, namespace: segs[2]!, serviceAccount: segs[4]! }
    }
  }
  return { id: principal, trustDomain, path }
}

/** The peer of a request that names none (shared: frozen). */
export const EMPTY_PEER: PeerInfo = Object.freeze({
  address: undefined,
  port: undefined,
  service: undefined,
  principal: undefined,
  certificate: undefined,
  labels: EMPTY_STRINGS,
  spiffe: undefined,
})
