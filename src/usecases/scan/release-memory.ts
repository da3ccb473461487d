/**
 * Streaming commands drop every page once it is processed, but V8 frees the memory behind a Buffer
 * only when a GC collects its JS wrapper. A page lives long enough to be promoted to the old
 * generation, so only a full GC frees it, and V8 lets up to 64 MiB of such external memory build up
 * before it runs one. On a long scan that shows as peak RSS growing with the object count although
 * nothing is retained.
 *
 * The bound: after each page, look at how much ArrayBuffer memory (Buffers) there is, and run a full
 * GC only once it has grown by `budget` bytes over what the last collection left (or the first
 * page put there). A full GC costs tens of milliseconds whatever it frees (it marks the whole heap,
 * client-node included), so it runs when there is garbage to free, not after a fixed number of
 * values: when V8's own scavenges or collections already freed the dropped pages, none is forced.
 */
import {setFlagsFromString} from 'node:v8'
import {runInNewContext} from 'node:vm'

let collect: (() => void) | undefined

function fullGc(): void {
  if (!collect) {
    setFlagsFromString('--expose-gc')
    collect = runInNewContext('gc') as () => void
  }
  collect()
}

/**
 * V8 doubles its young generation (two semi-spaces) while a program allocates fast, up to 16 MiB
 * each: on a long rewrite that alone made peak RSS ~30 MiB higher at 20,000 Secrets than at 2,000,
 * at no gain in speed (bench/README.md, 2026-12-07: 154 against 122 MiB with node's
 * --max-semi-space-size=4). Loading client-node has already grown it to 4 MiB per semi-space; a long
 * streaming operation keeps it at the size it has from its start on. V8 reads the growth factor at
 * each growth, unlike --max-semi-space-size, which is fixed once the process runs.
 */
export function holdYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=1')
}

/** Growth of Buffer memory that triggers a full GC: a few pages of ~1 KiB values (pages grow to 2,000). */
export const RELEASE_BUDGET_BYTES = 8 * 1024 * 1024

export interface MemoryReleaserOptions {
  budget?: number
  /** Bytes in ArrayBuffers now (default: process.memoryUsage().arrayBuffers). */
  arrayBuffers?: () => number
  /** Runs a full GC (default: V8's gc()). */
  collect?: () => void
}

export class MemoryReleaser {
  private readonly budget: number
  private readonly arrayBuffers: () => number
  private readonly collect: () => void
  private floor?: number
  /** Full GCs run so far. */
  collections = 0

  constructor(options: MemoryReleaserOptions = {}) {
    this.budget = options.budget ?? RELEASE_BUDGET_BYTES
    this.arrayBuffers = options.arrayBuffers ?? (() => process.memoryUsage().arrayBuffers)
    this.collect = options.collect ?? fullGc
    if (!options.collect) holdYoungGeneration()
  }

  /** Call after each processed page, once the page is no longer referenced. */
  pageDone(): void {
    const now = this.arrayBuffers()
    if (this.floor === undefined || now < this.floor) {
      // V8 collected on its own (or this is the first page): measure growth from here.
      this.floor = now
      return
    }
    if (now - this.floor < this.budget) return
    this.collect()
    this.collections++
    this.floor = this.arrayBuffers()
  }
}
