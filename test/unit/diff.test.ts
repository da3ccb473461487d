import {describe, expect, it} from 'vitest'

import {unifiedDiff} from '../../src/output/diff.js'

describe('unified diff for dry-run plans', () => {
  it('renders a diff -u style hunk with a/ b/ paths', () => {
    const before = 'a\nb\nc\nd\ne\nf\ng\n'
    const after = 'a\nb\nc\nD\ne\nf\ng\n'
    const diff = unifiedDiff('/etc/kubernetes/enc/enc.yaml', before, after)
    expect(diff.split('\n').slice(0, 3)).toEqual([
      '--- a/etc/kubernetes/enc/enc.yaml',
      '+++ b/etc/kubernetes/enc/enc.yaml',
      '@@ -1,7 +1,7 @@',
    ])
    expect(diff).toContain('\n-d\n+D\n')
  })

  it('is empty for equal texts and diffs a new file against /dev/null', () => {
    expect(unifiedDiff('/x', 'same\n', 'same\n')).toBe('')
    const created = unifiedDiff('/etc/kubernetes/enc/enc.yaml', undefined, 'one\ntwo\n')
    expect(created).toMatch(
      /^--- \/dev\/null\n\+\+\+ b\/etc\/kubernetes\/enc\/enc.yaml\n@@ -0,0 \+1,2 @@\n\+one\n\+two/,
    )
  })
})
