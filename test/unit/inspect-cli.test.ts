import {execFile, execFileSync} from 'node:child_process'
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, describe, expect, it} from 'vitest'
import {stringify} from 'yaml'

import {b64, configFor, vectors} from './encryption/vectors-helper.js'

const run = promisify(execFile)
const bin = new URL('../../bin/run.js', import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), 'inspect-cli-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

async function plugin(...args: string[]) {
  try {
    const {stdout, stderr} = await run(process.execPath, [bin, ...args], {encoding: 'buffer', maxBuffer: 1 << 24})
    return {code: 0, stdout: stdout.toString('latin1'), stderr: stderr.toString()}
  } catch (error) {
    const e = error as {code: number; stdout: Buffer; stderr: Buffer}
    return {code: e.code, stdout: e.stdout.toString('latin1'), stderr: e.stderr.toString()}
  }
}

function file(name: string, content: string | Buffer, mode = 0o600): string {
  const path = join(dir, name)
  writeFileSync(path, content)
  chmodSync(path, mode)
  return path
}

// Each case starts the CLI (about 0.5 s of CPU); the generous timeout is for a busy machine.
describe('kubectl encryption inspect --value-file: every golden vector through the CLI', {timeout: 60_000}, () => {
  for (const v of vectors) {
    it(v.id, async () => {
      const etcdKey = b64(v.etcdKey).toString('utf8')
      const value = file(`${v.id}.bin`, b64(v.stored))
      const config = file(`${v.id}.yaml`, stringify(configFor(v)))
      const args = ['inspect', '--value-file', value, '--etcd-key', etcdKey, '--config', config, '--decrypt', '-o', 'json']
      if (v.provider === 'kms') args.push('--kms-dek', file(`${v.id}.dek`, v.key! + '\n'))
      const r = await plugin(...args)
      const out = JSON.parse(r.stdout)
      expect(r.stdout).not.toContain(v.key ?? '\u0000')
      const badAnnotation = Object.keys(v.encryptedObject?.annotations ?? {}).find((k) => k.includes('/'))
      if (v.expect.startsWith('ok')) {
        expect(r.code, r.stderr).toBe(0)
        expect(out.decryption).toMatchObject({status: 'ok', provider: v.provider})
        // An annotation key the apiserver refuses (spec §3.6) does not stop the offline read: it is a warning.
        if (badAnnotation) {
          expect(out.decryption.warnings).toHaveLength(1)
          expect(out.decryption.warnings[0]).toMatch(
            new RegExp(`^the apiserver would refuse this value: failed to validate annotations: annotations: Invalid value: "${badAnnotation}": a lowercase RFC 1123 subdomain`),
          )
        } else expect(out.decryption.warnings).toBeUndefined()
        expect(out.decryption.plaintextLength).toBe(b64(v.plaintext!).length)
        const plaintext = b64(v.plaintext!)
        if (plaintext.subarray(0, 4).toString('latin1') === 'k8s\u0000') expect(out.object).toMatchObject({kind: 'Secret', data: {password: 'hunter2'}})
        else if (plaintext[0] === 0x7b) expect(out.object.json).toEqual(JSON.parse(plaintext.toString()))
        else expect(out.object.problem).toBe('not a serialized Kubernetes object')
      } else {
        expect(r.code).toBe(5)
        expect(out.decryption.status).toBe('failed')
        expect(v.expectError).toContain(out.decryption.error)
      }
    })
  }
})

describe('kubectl encryption inspect: output and bad input', {timeout: 60_000}, () => {
  it('shows the apiserver-would-refuse warning of a KMS v2 value with a bad annotation key in the table', async () => {
    const v = vectors.find((x) => x.id === 'kmsv2-kdf-secret')!
    const etcdKey = b64(v.etcdKey).toString('utf8')
    const r = await plugin(
      'inspect', '--value-file', file('kdf.bin', b64(v.stored)), '--etcd-key', etcdKey,
      '--config', file('kdf.yaml', stringify(configFor(v))), '--kms-dek', file('kdf.dek', v.key!), '--decrypt',
    )
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/Read:\s+ok with kms /)
    expect(r.stdout).toMatch(/Warning:\s+the apiserver would refuse this value: failed to validate annotations: annotations: Invalid value: "kms\.example\.com\/region"/)
    expect(r.stdout).toContain('hunter2')
    expect(r.stdout).not.toContain(v.key!)
  })

  const secret = vectors.find((v) => v.id === 'aesgcm-256-secret')!
  const key = '/registry/secrets/default/mysecret'

  it('prints a readable report, the decoded Secret with --decrypt, and the exact hexdump -C', async () => {
    const value = file('s.bin', b64(secret.stored))
    const config = file('s.yaml', stringify(configFor(secret)))
    const r = await plugin('inspect', '--value-file', value, '--etcd-key', key, '--config', config, '--decrypt', '--hexdump')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^Stored as:\s+aesgcm, key "key2"$/m)
    expect(r.stdout).toMatch(/^Read:\s+ok with aesgcm key "key2" \(rule secrets\)$/m)
    expect(r.stdout).toMatch(/^data password:\s+hunter2$/m)
    const dump = execFileSync('/usr/bin/hexdump', ['-C', value]).toString('latin1')
    expect(r.stdout.endsWith(dump)).toBe(true)
  })

  it('accepts `etcdctl get -w json` output, key included', async () => {
    const doc = {header: {revision: 5}, kvs: [{key: Buffer.from(key).toString('base64'), value: secret.stored, mod_revision: 5}], count: 1}
    const r = await plugin('inspect', '--value-file', file('s.json', JSON.stringify(doc)), '--config', file('s2.yaml', stringify(configFor(secret))), '-o', 'json')
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({etcdKey: key, decryption: {status: 'ok', keyName: 'key2'}})
  })

  it.each([
    ['a missing value file', 3, () => ['--value-file', join(dir, 'nope.bin')], /cannot read the value file .*nope\.bin: no such file/],
    ['an empty value file', 3, () => ['--value-file', file('empty.bin', '')], /the value file .*empty\.bin is empty/],
    ['no source at all', 2, () => [], /nothing to inspect/],
    ['--config without --etcd-key', 2, () => ['--value-file', file('x.bin', 'x'), '--config', file('c.yaml', 'x')], /--etcd-key is required/],
    ['--any-key without --config', 2, () => ['--value-file', file('x.bin', 'x'), '--any-key'], /--any-key needs --config/],
    ['a config that is not YAML', 3, () => ['--value-file', file('x.bin', 'x'), '--etcd-key', key, '--config', file('bad.yaml', 'resources: [\n')], /error decoding encryption provider configuration file/],
    ['a config of the wrong kind', 3, () => ['--value-file', file('x.bin', 'x'), '--etcd-key', key, '--config', file('kind.yaml', 'apiVersion: v1\nkind: Secret\n')], /error decoding encryption provider configuration file/],
    ['a config with a bad key', 3, () => ['--value-file', file('x.bin', 'x'), '--etcd-key', key, '--config', file('key.yaml', stringify({apiVersion: 'apiserver.config.k8s.io/v1', kind: 'EncryptionConfiguration', resources: [{resources: ['secrets'], providers: [{aescbc: {keys: [{name: 'k', secret: 'c2hvcnQ='}]}}]}]}))], /secret is not of the expected length, got 5/],
    ['a missing --kms-dek file', 3, () => ['--value-file', file('x.bin', 'x'), '--etcd-key', key, '--kms-dek', join(dir, 'nope.dek')], /cannot read the --kms-dek file/],
    ['a --kms-dek file that is not base64', 3, () => ['--value-file', file('x.bin', 'x'), '--etcd-key', key, '--kms-dek', file('dek', 'not base64!')], /does not hold standard base64/],
  ])('%s: clear error, exit %i, nothing on stdout', async (_name, code, args, message) => {
    const r = await plugin('inspect', ...args())
    expect(r.code).toBe(code)
    expect(r.stderr).toMatch(message)
    expect(r.stdout).toBe('')
  })

  it('--any-key opens a value saved without its etcd key, and the table leaves out staleness', async () => {
    const v = vectors.find((x) => x.id === 'aescbc-256-cr-json')!
    const config = file('any.yaml', stringify(configFor(v)))
    const r = await plugin('inspect', '--value-file', file('any.bin', b64(v.stored)), '--config', config, '--any-key')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^Read: +ok with aescbc key "key2"$/m)
    expect(r.stdout).not.toMatch(/^Stale:/m)
    expect(r.stdout).toContain('Note: --any-key: every provider and key')
  })

  it('classifies garbage as an unknown plaintext without failing', async () => {
    const r = await plugin('inspect', '--value-file', file('garbage.bin', Buffer.from([0, 1, 2, 250, 251])), '-o', 'json')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout).classification).toMatchObject({encrypted: false, plaintext: {format: 'unknown'}})
  })

  it('warns about a DEK file readable by others, and never prints the DEK', async () => {
    const v = vectors.find((x) => x.id === 'kmsv1-gcm-secret')!
    const r = await plugin('inspect', '--value-file', file('k.bin', b64(v.stored)), '--etcd-key', key, '--kms-dek', file('open.dek', v.key!, 0o644))
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain('readable by group or others')
    expect(r.stdout + r.stderr).not.toContain(v.key!)
    expect(r.stdout).toMatch(/^Read:\s+ok with kms "legacykms"$/m)
  })
})
