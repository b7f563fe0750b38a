// The floor for bench/envoy.bench.mjs: an "authorizer" that answers every check with a canned
// allow and decides nothing, on bare node:http2 (gRPC Authorization/Check: an empty CheckResponse,
// status OK) and node:http (200, no body). Driven like `verdict serve`, it shows how much of the
// latency this machine, Node's HTTP stacks and the generator cost before any policy runs.
import { createServer as createHttpServer } from 'node:http'
import { createServer as createHttp2Server } from 'node:http2'

// gRPC frame: not compressed, 2 bytes: CheckResponse { status: {} } (code 0 = OK).
const ALLOW = Buffer.from([0, 0, 0, 0, 2, 0x0a, 0x00])
const grpc = createHttp2Server()
grpc.on('stream', (stream) => {
  stream.on('data', () => {})
  stream.on('end', () => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }))
    stream.end(ALLOW)
  })
})
const http = createHttpServer((req, res) => {
  req.resume()
  req.on('end', () => res.end())
})
http.keepAliveTimeout = 60_000
const listen = (server) =>
  new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${server.address().port}`)))
const [g, h] = await Promise.all([listen(grpc), listen(http)])
console.log(JSON.stringify({ msg: 'listening', grpc: g, http: h, pid: process.pid }))
process.on('SIGTERM', () => process.exit(0))
