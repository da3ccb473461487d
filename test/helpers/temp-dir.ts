// Temporary directories for a test's files. Many hold key material (TLS keys, copies of the admin
// kubeconfig, ssh keys): mkdtemp makes them 0700, and they are removed when the test is done, not
// left in the machine's /tmp.
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, onTestFinished} from 'vitest'

function makeDir(prefix: string): {dir: string; remove: () => void} {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`))
  return {dir, remove: () => rmSync(dir, {recursive: true, force: true})}
}

/** A new directory removed when the running test finishes, passed or failed. Call it inside a test. */
export function testTempDir(prefix: string): string {
  const {dir, remove} = makeDir(prefix)
  onTestFinished(remove)
  return dir
}

/** A new directory removed after the file's tests. Call it at the top level of a test file or a describe. */
export function fileTempDir(prefix: string): string {
  const {dir, remove} = makeDir(prefix)
  afterAll(remove)
  return dir
}
