/**
 * Tracks work handed out in key order and completed in any order, so a checkpoint only ever
 * advances past a key once that key and every key before it are done (issue 5: resumable under
 * concurrency). Objects finished ahead of the low-water mark are reported as `doneAhead`, so a
 * resume skips them too and nothing is written twice needlessly. Memory is bounded by the number
 * of entries in the window, which the caller caps.
 */
export interface WindowEntry {
  readonly key: string
  done: boolean
}

export class CompletionWindow {
  private entries: WindowEntry[] = []
  private head = 0

  /** @param after the key every earlier object is done up to (from a checkpoint), if any */
  constructor(private lowWater: string | undefined = undefined) {}

  /** The last key such that it and all keys before it are done. */
  get after(): string | undefined {
    return this.lowWater
  }

  /** Entries handed out and not yet below the low-water mark. */
  get size(): number {
    return this.entries.length - this.head
  }

  add(key: string): WindowEntry {
    const entry = {key, done: false}
    this.entries.push(entry)
    return entry
  }

  complete(entry: WindowEntry): void {
    entry.done = true
    while (this.head < this.entries.length && this.entries[this.head]!.done) {
      this.lowWater = this.entries[this.head]!.key
      this.head++
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head)
      this.head = 0
    }
  }

  /** Keys completed out of order, above the low-water mark. */
  doneAhead(): string[] {
    const keys: string[] = []
    for (let i = this.head; i < this.entries.length; i++) if (this.entries[i]!.done) keys.push(this.entries[i]!.key)
    return keys
  }
}

/**
 * The order the API lists objects in: etcd key order, i.e. `<namespace>/<name>` compared as
 * bytes (docs/kubernetes-behaviour.md §12.1). Names and namespaces are ASCII DNS names, so JS string order is byte order.
 */
export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name
}
