// A canned-answer Authorization/Check server on `@grpc/grpc-js`, for bench/grpc-stack.bench.mjs:
// it answers every Check with the same CheckResponse as bench/lib/canned-authz-child.mjs (an
// empty google.rpc.Status: bytes 0a 00) and decides nothing, so what it costs per call is
// grpc-js's own machinery. The service is a plain grpc-js method definition whose
// (de)serializers pass bytes through: the request is never decoded, the answer is written as is.
import { Server, ServerCredentials } from '@grpc/grpc-js'

const ALLOW = Buffer.from([0x0a, 0x00])
const bytes = (b) => b
const service = {
  check: {
    path: '/envoy.service.auth.v3.Authorization/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  },
}
const server = new Server()
server.addService(service, { check: (_call, callback) => callback(null, ALLOW) })
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err
  console.log(JSON.stringify({ msg: 'listening', grpc: `127.0.0.1:${port}`, pid: process.pid }))
})
process.on('SIGTERM', () => process.exit(0))
