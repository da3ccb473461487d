import {describe, expect, it, vi} from 'vitest'

import {skipEjsWithoutTags} from '../../../src/output/help.js'

describe('skipEjsWithoutTags', () => {
  it('gives a string with no EJS delimiter back as it is, without compiling a template', () => {
    const ejs = vi.fn((input: string) => `rendered ${input}`)
    const render = skipEjsWithoutTags(ejs)
    expect(render('Switch on encryption at rest (100% of Secrets)')).toBe(
      'Switch on encryption at rest (100% of Secrets)',
    )
    expect(render('')).toBe('')
    expect(ejs).not.toHaveBeenCalled()
  })

  it('still renders every string with a tag or a closing delimiter through EJS', () => {
    const ejs = vi.fn((input: string) => `rendered ${input}`)
    const render = skipEjsWithoutTags(ejs)
    for (const input of ['$ <%= config.bin %> status', '<%% literal', 'a -%> b', 'a %> b'])
      expect(render(input)).toBe(`rendered ${input}`)
    expect(ejs).toHaveBeenCalledTimes(4)
  })
})
