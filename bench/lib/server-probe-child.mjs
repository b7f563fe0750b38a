// Preloaded into `verdict serve` by the sidecar bench (`node --import <this> verdict.js serve ...`,
// spawned with an IPC channel): on { probe: 'start' } it starts a v8.GCProfiler, on { probe: 'stop' }
// it answers with the V8 heap bytes allocated in between: the growth of the used heap plus what
// every collection in between freed (used size before minus after, over all spaces). Buffer and
// ArrayBuffer backing stores live outside the V8 heap and are not counted. The channel is unref'd,
// so it never keeps the server from exiting.
import { GCProfiler, getHeapStatistics } from 'node:v8'

let profiler
let usedAtStart = 0
process.on('message', (m) => {
  if (m?.probe === 'start') {
    profiler = new GCProfiler()
    usedAtStart = getHeapStatistics().used_heap_size
    profiler.start()
    process.send({ probe: 'started' })
  } else if (m?.probe === 'stop' && profiler !== undefined) {
    const { statistics } = profiler.stop()
    profiler = undefined
    let freed = 0
    let gcMs = 0
    for (const s of statistics) {
      freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize
      gcMs += s.cost / 1000
    }
    const allocatedBytes = getHeapStatistics().used_heap_size - usedAtStart + freed
    process.send({ probe: 'stopped', allocatedBytes, collections: statistics.length, gcMs })
  }
})
process.channel?.unref()
