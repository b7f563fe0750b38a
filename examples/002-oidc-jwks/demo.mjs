// pnpm demo rows for seed 002: start the local OIDC issuer, protect an HTTP route with verdict
// (keys through discovery), run Test 1 (no token -> denied) and Test 2 (token from the password
// grant -> allowed), then 100 requests with 10 in flight, reporting latency.

import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { createEngine } from '@verdict/core'
import { createHttpMiddleware } from '@verdict/core/middleware'
import { parse } from 'yaml'
import { passwordGrant, startIssuer, TEST_USER } from './issuer.mjs'

async function loadRun(url, token, total = 100, concurrency = 10) {
  const times = []
  let next = 0
  let failures = 0
  const worker = async () => {
    while (next < total) {
      next++
      const t0 = performance.now()
      const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
      await res.arrayBuffer()
      times.push(performance.now() - t0)
      if (res.status !== 200) failures++
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  times.sort((a, b) => a - b)
  const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))]
  return { failures, count: times.length, p50: q(0.5), p99: q(0.99) }
}

export default async function scenarios() {
  const idp = await startIssuer()
  const policy = parse(await readFile(new URL('./policy.yaml', import.meta.url), 'utf8'))
  policy.authentication.jwt.providers[0].issuer = idp.issuer
  const engine = await createEngine(policy)
  const guard = createHttpMiddleware(engine)
  const api = createServer((req, res) => guard(req, res, () => res.end('{"choices":[]}')))
  await new Promise((r) => api.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${api.address().port}/v1/chat/completions`
  const rows = []
  try {
    const anon = await fetch(url)
    rows.push({ request: 'Test 1: no token', expected: 'deny 401', got: `deny ${anon.status}` })
    const token = await passwordGrant(idp.issuer, TEST_USER.username, TEST_USER.password)
    const ok = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
    rows.push({
      request: 'Test 2: token from the password grant',
      expected: 'allow 200',
      got: `${ok.status === 200 ? 'allow' : 'deny'} ${ok.status}`,
    })
    const load = await loadRun(url, token)
    rows.push({
      request: `load: ${load.count} requests, 10 concurrent (p50 ${load.p50.toFixed(2)} ms, p99 ${load.p99.toFixed(2)} ms)`,
      expected: '0 failed',
      got: `${load.failures} failed`,
    })
    rows.push({
      request: 'keys fetched once (discovery + JWKS)',
      expected: '1 + 1',
      got: `${idp.fetches.discovery} + ${idp.fetches.jwks}`,
    })
  } finally {
    api.close()
    engine.close()
    await idp.close()
  }
  return rows
}
