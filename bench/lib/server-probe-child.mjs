// Preloaded into `verdict serve` by the sidecar bench (`node --import <this> verdict.js serve ...`,
// spawned with an IPC channel). On { probe: 'start' } it starts a v8.GCProfiler, on
// { probe: 'stop' } it answers with the V8 heap bytes allocated in between: the growth of the used
// heap plus what every collection in between freed (used size before minus after, over all
// spaces). Buffer and ArrayBuffer backing stores live outside the V8 heap and are not counted.
// On { probe: 'profile-start' } / { probe: 'profile-stop', path } it runs V8's CPU sampler (every
// 100 µs, through node:inspector) and writes the profile to `path`, so a profile covers the timed
// phases only, not start-up. The channel is unref'd, so it never keeps the server from exiting.
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { GCProfiler, getHeapStatistics } from 'node:v8'

let profiler
let usedAtStart = 0
let session
process.on('message', async (m) => {
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
  } else if (m?.probe === 'profile-start') {
    session = new Session()
    session.connect()
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval: 100 })
    await session.post('Profiler.start')
    process.send({ probe: 'profiling' })
  } else if (m?.probe === 'profile-stop' && session !== undefined) {
    const { profile } = await session.post('Profiler.stop')
    session.disconnect()
    session = undefined
    await writeFile(m.path, JSON.stringify(profile))
    process.send({ probe: 'profiled', path: m.path })
  }
})
process.channel?.unref()
