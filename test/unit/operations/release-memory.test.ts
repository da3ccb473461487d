import {describe, expect, it} from 'vitest'

import {MemoryReleaser} from '../../../src/operations/release-memory.js'

/** Registers a dropped object and reports whether a GC has collected it once `act` ran. */
async function collectedAfter(act: () => void): Promise<boolean> {
  let collected = false
  const registry = new FinalizationRegistry(() => {
    collected = true
  })
  ;(() => registry.register({payload: Buffer.alloc(1024)}, 'page'))()
  act()
  for (let i = 0; i < 20 && !collected; i++) await new Promise((r) => setTimeout(r, 5))
  return collected
}

describe('MemoryReleaser', () => {
  it('runs a full GC once `every` values were processed, which frees dropped pages', async () => {
    const memory = new MemoryReleaser(3)
    expect(await collectedAfter(() => memory.processed(3))).toBe(true)
  })
})
