import { describe, expect, it } from 'vitest'
import { DeadlineQueue } from './deadline-queue.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** Resolves once `f` is true (checked every few ms), so no test depends on how fast timers run. */
async function until(f: () => boolean): Promise<void> {
  while (!f()) await sleep(5)
}

describe('DeadlineQueue', () => {
  it('fires each live deadline once, in the order added, and never a cancelled one', async () => {
    const q = new DeadlineQueue(20)
    const fired: number[] = []
    const ds = Array.from({ length: 50 }, (_, i) => q.add(() => fired.push(i)))
    for (let i = 0; i < 50; i += 3) ds[i]!.cancel()
    ds[0]!.cancel() // twice: no effect
    await until(() => q.empty)
    expect(fired).toEqual(Array.from({ length: 50 }, (_, i) => i).filter((i) => i % 3 !== 0))
    await sleep(40)
    expect(fired).toHaveLength(33)
  })

  it('keeps firing when the first entry is cancelled, and for entries added while it fires', async () => {
    const q = new DeadlineQueue(15)
    const fired: string[] = []
    const first = q.add(() => fired.push('first'))
    q.add(() => {
      fired.push('second')
      q.add(() => fired.push('added while firing'))
    })
    first.cancel()
    await until(() => fired.length === 2)
    expect(fired).toEqual(['second', 'added while firing'])
    expect(q.empty).toBe(true)
  })

  it('renew starts a deadline again, after those added before it', async () => {
    const q = new DeadlineQueue(25)
    const fired: string[] = []
    const a = q.add(() => fired.push('a'))
    await sleep(10)
    q.add(() => fired.push('b'))
    q.renew(a)
    await until(() => fired.length === 2)
    expect(fired).toEqual(['b', 'a'])
  })

  it('a deadline that throws does not stop the others', async () => {
    const q = new DeadlineQueue(10)
    const fired: string[] = []
    q.add(() => {
      throw new Error('boom')
    })
    q.add(() => fired.push('after'))
    await until(() => q.empty)
    expect(fired).toEqual(['after'])
  })
})
