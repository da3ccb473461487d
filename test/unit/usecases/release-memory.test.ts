import {describe, expect, it} from 'vitest'

import {MemoryReleaser} from '../../../src/usecases/scan/release-memory.js'

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

/** A releaser over a scripted ArrayBuffer gauge; a collection brings the gauge to `afterGc`. */
function scripted(budget: number, afterGc: number) {
  let bytes = 0
  const memory = new MemoryReleaser({
    budget,
    arrayBuffers: () => bytes,
    collect: () => {
      bytes = afterGc
    },
  })
  return {
    memory,
    page(now: number) {
      bytes = now
      memory.pageDone()
      return memory.collections
    },
  }
}

describe('MemoryReleaser', () => {
  it('runs a full GC only once Buffer memory has grown by the budget since the first page', () => {
    const m = scripted(100, 30)
    expect(m.page(20)).toBe(0) // first page: the floor
    expect(m.page(60)).toBe(0)
    expect(m.page(119)).toBe(0)
    expect(m.page(120)).toBe(1) // grew by 100
  })

  it('measures growth from what the collection left', () => {
    const m = scripted(100, 30)
    m.page(20)
    expect(m.page(120)).toBe(1) // now at 30
    expect(m.page(129)).toBe(1)
    expect(m.page(130)).toBe(2)
  })

  it('forces nothing when V8 frees the pages on its own', () => {
    const m = scripted(100, 0)
    m.page(50)
    expect(m.page(140)).toBe(0)
    expect(m.page(10)).toBe(0) // V8 collected: the floor moves down
    expect(m.page(100)).toBe(0)
    expect(m.page(110)).toBe(1)
  })

  it('runs a real full GC that frees dropped pages', async () => {
    const memory = new MemoryReleaser({budget: 0})
    memory.pageDone()
    expect(await collectedAfter(() => memory.pageDone())).toBe(true)
    expect(memory.collections).toBe(1)
  })
})
