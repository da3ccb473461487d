import {describe, expect, it} from 'vitest'

import {agreedOutput} from '../../scripts/agreed-output.js'

/** A step that returns these outputs in turn, and counts its runs. */
function step(...outputs: string[]) {
  const runs: number[] = []
  const make = (run: number) => {
    runs.push(run)
    const output = outputs[run - 1]
    if (output === undefined) throw new Error(`run ${run} was not expected`)
    return Buffer.from(output)
  }
  return {make, runs}
}

describe('agreedOutput', () => {
  it('takes the output of two runs that agree, and stops there', () => {
    const {make, runs} = step('a', 'a')
    expect(agreedOutput(make, 5)).toEqual({agreed: Buffer.from('a'), runs: 2, odd: 0})
    expect(runs).toEqual([1, 2])
  })

  it('runs again when the first two differ, and takes the one a later run agrees with', () => {
    expect(agreedOutput(step('a', 'b', 'a').make, 5)).toEqual({agreed: Buffer.from('a'), runs: 3, odd: 1})
    expect(agreedOutput(step('odd', 'a', 'a').make, 5)).toEqual({agreed: Buffer.from('a'), runs: 3, odd: 1})
    expect(agreedOutput(step('a', 'b', 'c', 'b').make, 5)).toEqual({agreed: Buffer.from('b'), runs: 4, odd: 2})
  })

  it('gives up after the most runs it may make, with every output, when no two agree', () => {
    const {make, runs} = step('a', 'b', 'c', 'd', 'e', 'e')
    expect(agreedOutput(make, 3)).toEqual({agreed: undefined, outputs: ['a', 'b', 'c'].map((s) => Buffer.from(s))})
    expect(runs).toEqual([1, 2, 3])
  })

  it('compares the bytes, not the buffers: a one-byte difference is a difference', () => {
    const result = agreedOutput(step('abcd', 'abce', 'abcd').make, 5)
    expect(result.agreed?.toString()).toBe('abcd')
  })
})
