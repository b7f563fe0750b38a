// pnpm demo rows for seed 000: verdict's ext_authz server on loopback with the sample's policy,
// checked the way Envoy calls it: over gRPC (envoy.service.auth.v3.Authorization/Check) and in
// HTTP service mode.
import { fileURLToPath } from 'node:url'
import { createEngineFromFile } from '@verdict/core'
import { createCheckClient, createExtAuthzServer } from '@verdict/envoy'

const SAMPLE_BODY = 'denied by ext_authz for not found header `x-ext-authz: allow` in the request'

const checkRequest = (headers, principal) => ({
  attributes: {
    source: principal ? { principal } : {},
    request: { http: { method: 'GET', path: '/productpage', host: 'bookinfo', headers } },
  },
})

export default async function scenarios() {
  const engine = await createEngineFromFile(fileURLToPath(new URL('./policy.yaml', import.meta.url)))
  const server = createExtAuthzServer({ engine, grpc: { port: 0 }, http: { port: 0 } })
  const at = await server.start()
  const client = createCheckClient(at.grpc)
  const rows = []
  try {
    const grpc = async (name, headers, principal, expected) => {
      const res = await client.check(checkRequest(headers, principal))
      const allowed = res.status?.code === 0
      const result = (allowed ? res.okResponse?.headers : res.deniedResponse?.headers)?.find(
        (h) => h.header?.key === 'x-ext-authz-check-result',
      )?.header?.value
      rows.push({
        request: `gRPC ${name}`,
        expected,
        got: `${allowed ? 'allow' : 'deny'} (${result ?? 'no result header'})`,
      })
    }
    await grpc('x-ext-authz: allow', { 'x-ext-authz': 'allow' }, undefined, 'allow (allowed)')
    await grpc('no header', {}, undefined, 'deny (denied)')
    await grpc('no header, principal sa/a', {}, 'spiffe://cluster.local/ns/foo/sa/a', 'allow (allowed)')
    const http = async (name, headers, expected) => {
      const res = await fetch(`http://${at.http}/productpage`, { headers })
      const body = await res.text()
      const bodyNote =
        res.status === 200 ? '' : body === SAMPLE_BODY ? ', sample body' : `, body ${JSON.stringify(body)}`
      rows.push({
        request: `HTTP ${name}`,
        expected,
        got: `${res.status === 200 ? 'allow' : 'deny'} ${res.status}${bodyNote}`,
      })
    }
    await http('x-ext-authz: allow', { 'x-ext-authz': 'allow' }, 'allow 200')
    await http('x-ext-authz: no', { 'x-ext-authz': 'no' }, 'deny 403, sample body')
  } finally {
    client.close()
    await server.stop()
    engine.close()
  }
  return rows
}
