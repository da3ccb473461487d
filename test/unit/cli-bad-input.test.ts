/** Issue 13 items 11 and 13: bad words and endless or huge files, through bin/run.js. */
import {execFile} from 'node:child_process'
import {mkdtempSync, rmSync, truncateSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {afterAll, describe, expect, it} from 'vitest'

import {MAX_CONFIG_BYTES} from '../../src/encryption/config/load.js'

const run = promisify(execFile)
const bin = new URL('../../bin/run.js', import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), 'cli-bad-input-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

async function plugin(...args: string[]) {
  try {
    const {stdout, stderr} = await run(process.execPath, [bin, ...args], {timeout: 60_000})
    return {code: 0, stdout, stderr}
  } catch (error) {
    const e = error as {code: number; stdout: string; stderr: string}
    return {code: e.code, stdout: e.stdout, stderr: e.stderr}
  }
}

describe('bad words and files (issue 13)', {timeout: 120_000}, () => {
  it('__complete still takes the words to complete, as kubectl plugin completion passes them (no "--")', async () => {
    const r = await plugin('__complete', 'vers')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.split('\n')).toContain('version')
  })

  it('item 13: a word after a command that takes none is a usage error in the plugin\'s form (exit 2), not oclif\'s raw "command status:extra-arg not found"', async () => {
    for (const [args, pattern] of [
      [
        ['status', 'extra-arg'],
        /^error: unexpected argument "extra-arg": 'kubectl encryption status' takes no arguments\nhint: See 'kubectl encryption status --help'.\n$/,
      ],
      [['rewrite', '-A', 'x'], null],
      [['version', 'extra'], /^error: unexpected argument "extra"/],
      [['bogus'], /^error: unknown command "bogus"\nhint: /],
    ] as Array<[string[], RegExp | null]>) {
      const r = await plugin(...args)
      expect(r.code, r.stderr).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr).not.toContain('›')
      if (pattern) expect(r.stderr).toMatch(pattern)
      else expect(r.stderr).toMatch(/^error: /)
    }
    // commands with arguments and topics still work
    expect((await plugin('config', 'validate', join(dir, 'none.yaml'))).code).toBe(3)
    expect((await plugin('config', '--help')).code).toBe(0)
  })

  it('item 11: a config bigger than the cap, or not a regular file (/dev/zero), is refused at once naming the file (exit 3)', async () => {
    const huge = join(dir, 'huge.yaml')
    writeFileSync(huge, '')
    truncateSync(huge, MAX_CONFIG_BYTES + 1) // sparse: no disk used
    const big = await plugin('config', 'validate', huge)
    expect(big.code).toBe(3)
    expect(big.stdout).toContain(
      `encryption provider configuration file "${huge}" is ${MAX_CONFIG_BYTES + 1} bytes, more than the 3 MiB`,
    )
    const zero = await plugin('config', 'validate', '/dev/zero')
    expect(zero.code).toBe(3)
    expect(zero.stdout).toContain('"/dev/zero" is not a regular file')
    // --config of the commands that reach a cluster: refused before the cluster is contacted
    for (const command of [
      ['enable', '--yes'],
      ['rewrite', '-A', '--no-ssh'],
      ['status'],
      ['verify'],
      ['recover', '-A'],
    ]) {
      const r = await plugin(...command, '--config', '/dev/zero', '--kubeconfig', '/nonexistent')
      expect(r.code, `${command[0]}: ${r.stderr}`).toBe(3)
      expect(r.stderr).toMatch(/^error: --config \/dev\/zero is not a regular file; nothing was done$/m)
    }
    const manifest = await plugin('verify', '--from-file', '/dev/zero', '--kubeconfig', '/nonexistent')
    expect(manifest.code, manifest.stderr).toBe(3)
    expect(manifest.stderr).toMatch(/^error: --from-file \/dev\/zero is not a regular file; nothing was done$/m)
  })
})
