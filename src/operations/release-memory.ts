/**
 * Streaming commands drop every page once it is processed, but V8 frees the memory behind a Buffer
 * only when a full GC collects its JS wrapper, and lets up to 64 MiB of such external memory build
 * up before it runs one. On a long scan that shows as peak RSS growing with the object count although
 * nothing is retained. A full GC every few thousand values keeps the peak where the first pages put it.
 */
import {setFlagsFromString} from 'node:v8'
import {runInNewContext} from 'node:vm'

let collect: (() => void) | undefined

function fullGc(): () => void {
  if (!collect) {
    setFlagsFromString('--expose-gc')
    collect = runInNewContext('gc') as () => void
  }
  return collect
}

/** Counts processed values and runs a full GC after every `every` of them (default 4,000). */
export class MemoryReleaser {
  private sinceLast = 0

  constructor(private readonly every = 4_000) {}

  processed(count: number): void {
    this.sinceLast += count
    if (this.sinceLast < this.every) return
    this.sinceLast = 0
    fullGc()()
  }
}
