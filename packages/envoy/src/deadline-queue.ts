/**
 * Deadlines that all have the same length (a server's receive timeout, its decision timeout), kept
 * in one list behind one timer instead of a Node timer per call. Entries are added in the order
 * they expire, so the list is a queue: adding and cancelling are O(1), and the timer always waits
 * for the first entry. A cancelled entry leaves the list at once, so nothing outlives its call.
 */

/** One pending deadline; `cancel` it when the call it guards finishes first. */
export interface Deadline {
  cancel(): void
}

class Entry implements Deadline {
  prev: Entry | undefined = undefined
  next: Entry | undefined = undefined
  linked = true

  constructor(
    readonly queue: DeadlineQueue,
    public at: number,
    public fire: () => void,
  ) {}

  cancel(): void {
    if (this.linked) this.queue.unlink(this)
  }
}

export class DeadlineQueue {
  private head: Entry | undefined = undefined
  private tail: Entry | undefined = undefined
  private timer: ReturnType<typeof setTimeout> | undefined = undefined
  /** When the timer fires (ms on `performance.now()`'s clock); NaN when none is set. */
  private timerAt = Number.NaN

  /** @param ms how long after `add` each deadline expires */
  constructor(private readonly ms: number) {}

  /** Call `fire` `ms` from now unless the returned deadline is cancelled first. */
  add(fire: () => void): Deadline {
    const e = new Entry(this, performance.now() + this.ms, fire)
    const tail = this.tail
    if (tail === undefined) {
      this.head = e
      this.tail = e
      this.arm(e.at)
    } else {
      tail.next = e
      e.prev = tail
      this.tail = e
    }
    return e
  }

  /** Start the deadline of `d` again from now (it moves to the end of the queue). */
  renew(d: Deadline): void {
    const e = d as Entry
    if (e.linked) this.unlink(e)
    e.at = performance.now() + this.ms
    e.linked = true
    e.prev = this.tail
    e.next = undefined
    if (this.tail === undefined) {
      this.head = e
      this.arm(e.at)
    } else this.tail.next = e
    this.tail = e
  }

  /** @internal */
  unlink(e: Entry): void {
    e.linked = false
    if (e.prev === undefined) this.head = e.next
    else e.prev.next = e.next
    if (e.next === undefined) this.tail = e.prev
    else e.next.prev = e.prev
    e.prev = undefined
    e.next = undefined
    // The timer stays set: when it fires early it waits for the new first entry.
  }

  /** Whether no deadline is pending. */
  get empty(): boolean {
    return this.head === undefined
  }

  private arm(at: number): void {
    // A timer already due at or before `at` will look at the queue then.
    if (this.timer !== undefined && this.timerAt <= at) return
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timerAt = at
    this.timer = setTimeout(() => this.run(), Math.max(0, Math.ceil(at - performance.now())))
    this.timer.unref()
  }

  private run(): void {
    this.timer = undefined
    this.timerAt = Number.NaN
    const now = performance.now()
    for (let e = this.head; e !== undefined && e.at <= now; e = this.head) {
      this.unlink(e)
      try {
        e.fire()
      } catch {
        // One failing deadline must not stop the others.
      }
    }
    if (this.head !== undefined) this.arm(this.head.at)
  }
}
