/**
 * A token-bucket rate limiter shared by every request of an operation (lists, gets and updates
 * alike), as client-go's `--qps`/`--burst`. `qps <= 0` means unlimited. Waiters are served in
 * arrival order, so a burst of workers cannot starve one of them.
 */
export interface Clock {
  now(): number
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

export const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (ms <= 0 || signal?.aborted) return resolve()
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      signal?.addEventListener('abort', done, {once: true})
    }),
}

export class TokenBucket {
  private tokens: number
  private last: number
  private queue: Promise<void> = Promise.resolve()

  constructor(
    readonly qps: number,
    readonly burst: number,
    private readonly clock: Clock = systemClock,
  ) {
    this.tokens = Math.max(1, burst)
    this.last = clock.now()
  }

  /** Resolves when the caller may send one request. */
  take(signal?: AbortSignal): Promise<void> {
    if (this.qps <= 0) return Promise.resolve()
    const turn = this.queue.then(() => this.takeNow(signal))
    this.queue = turn.catch(() => {})
    return turn
  }

  private async takeNow(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = this.clock.now()
      this.tokens = Math.min(Math.max(1, this.burst), this.tokens + ((now - this.last) * this.qps) / 1000)
      this.last = now
      if (this.tokens >= 1 || signal?.aborted) {
        this.tokens -= 1
        return
      }
      await this.clock.sleep(((1 - this.tokens) * 1000) / this.qps, signal)
    }
  }
}
