import {execFile} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {describe, expect, it} from 'vitest'

import {MemoryReleaser} from '../../../src/usecases/scan/release-memory.js'

const execFileAsync = promisify(execFile)

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

  it("holds V8's young generation at its size from the start (a control without the releaser grows it)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'young-generation-'))
    const script = join(dir, 'young.ts')
    writeFileSync(
      script,
      `import {getHeapSpaceStatistics} from 'node:v8'
import {MemoryReleaser} from ${JSON.stringify(join(process.cwd(), 'src/usecases/scan/release-memory.js'))}
const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size
if (process.argv[2] === 'hold') new MemoryReleaser()
const before = newSpace()
// Allocation with survivors, as a rewrite's in-flight requests: V8 grows the young generation for it.
let kept: object[] = []
for (let i = 0; i < 3_000_000; i++) {
  const o = {a: i, b: 'x' + i, c: [i]}
  if (i % 3 === 0) kept.push(o)
  if (kept.length > 200_000) kept = []
}
console.log(JSON.stringify({before, after: newSpace()}))
`,
    )
    try {
      const run = async (mode: string) =>
        JSON.parse((await execFileAsync(process.execPath, ['--import', 'tsx', script, mode])).stdout) as {
          before: number
          after: number
        }
      const control = await run('control')
      expect(control.after).toBeGreaterThan(control.before)
      const held = await run('hold')
      expect(held.after).toBe(held.before)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  }, 60_000)
})
