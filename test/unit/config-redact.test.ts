/** Issue 13 item 7: `config validate` never prints a key, also when one is pasted where a name goes. */
import {execFile} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {afterAll, describe, expect, it} from 'vitest'

import {checkConfigBytes, redactKeyMaterial} from '../../src/encryption/config/load.js'

const run = promisify(execFile)
const bin = new URL('../../bin/run.js', import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), 'config-redact-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

async function plugin(...args: string[]) {
  try {
    const {stdout, stderr} = await run(process.execPath, [bin, ...args])
    return {code: 0, stdout, stderr}
  } catch (error) {
    const e = error as {code: number; stdout: string; stderr: string}
    return {code: e.code, stdout: e.stdout, stderr: e.stderr}
  }
}

const key = randomBytes(32).toString('base64')
const other = randomBytes(32).toString('base64')

/** A key pasted under `resources:` (an editor slip), next to a configured one. */
const pasted = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - secrets
      - "${other}"
      - "${key}"
    providers:
      - aescbc:
          keys:
            - name: key1
              secret: ${key}
      - identity: {}
`

describe('config validate keeps keys out of every message (issue 13 item 7)', {timeout: 60_000}, () => {
  it('checkConfigBytes: errors, message and warnings carry REDACTED, never the pasted or the configured key', () => {
    const check = checkConfigBytes(Buffer.from(pasted), 'enc.yaml')
    expect(check.errors.length).toBeGreaterThan(0)
    const everything = JSON.stringify({errors: check.errors, message: check.message, warnings: check.warnings})
    expect(everything).not.toContain(key)
    expect(everything).not.toContain(other)
    expect(check.message).toMatch(/Invalid value: "REDACTED"/)
  })

  it('redactKeyMaterial leaves names and short values alone', () => {
    expect(
      redactKeyMaterial(
        'resources[0].resources[1]: Invalid value: "Secrets": resource name should not contain capital letters',
      ),
    ).toContain('"Secrets"')
    expect(redactKeyMaterial('unknown field "resources[0].providres"')).toContain('providres')
    expect(redactKeyMaterial(`x ${key} y`, [key])).toBe('x REDACTED y')
  })

  it('the CLI, as table and as JSON (message included), prints REDACTED and exits 3', async () => {
    const path = join(dir, 'pasted.yaml')
    writeFileSync(path, pasted)
    for (const output of ['table', 'json']) {
      const r = await plugin('config', 'validate', path, '-o', output)
      expect(r.code).toBe(3)
      expect(r.stdout + r.stderr).not.toContain(key)
      expect(r.stdout + r.stderr).not.toContain(other)
      expect(r.stdout).toContain('REDACTED')
      if (output === 'json') expect(JSON.parse(r.stdout).message).toMatch(/Invalid value: "REDACTED"/)
    }
  })
})
