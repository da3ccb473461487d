import {createTwoFilesPatch} from 'diff'

/**
 * A unified diff (as `diff -u`) of one file for `--dry-run` plans. The caller masks key secrets
 * first (maskSecrets in src/encryption/config/edit.ts); this module only renders text.
 * '' when the texts are equal.
 */
export function unifiedDiff(
  path: string,
  before: string | undefined,
  after: string,
  label: {before?: string; after?: string} = {},
): string {
  if (before === after) return ''
  const patch = createTwoFilesPatch(
    before === undefined ? '/dev/null' : `a${path}`,
    `b${path}`,
    before ?? '',
    after,
    label.before ?? '',
    label.after ?? '',
    {context: 3},
  )
  // Drop the "Index:"/"====" header lines jsdiff may add; keep ---/+++ and hunks.
  return patch
    .split('\n')
    .filter((line) => !line.startsWith('Index:') && !/^=+$/.test(line))
    .join('\n')
    .replace(/^(---|\+\+\+) (\S+)\t$/gm, '$1 $2')
}
