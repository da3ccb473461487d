import {execFile, execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, describe, expect, it} from 'vitest'
import {stringify} from 'yaml'

import {apiserverErrorsFor, b64, configFor, keyMaterialOf, vectors} from './encryption/vectors-helper.js'

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
      const args = [
        'inspect',
        '--value-file',
        value,
        '--key-path',
        etcdKey,
        '--config',
        config,
        '--decrypt',
        '--hexdump',
        '-o',
        'json',
      ]
      if (v.provider === 'kms') args.push('--kms-dek', file(`${v.id}.dek`, v.key! + '\n'))
      const r = await plugin(...args)
      const out = JSON.parse(r.stdout)
      // No key, seed or derived DEK of the vector or its config, in base64 or hex, anywhere.
      for (const secret of keyMaterialOf(v)) expect(r.stdout + r.stderr).not.toContain(secret)
      expect(out.hexdump).toBe(execFileSync('/usr/bin/hexdump', ['-C', value]).toString('latin1'))
      const badAnnotation = Object.keys(v.encryptedObject?.annotations ?? {}).find((k) => k.includes('/'))
      if (v.expect.startsWith('ok')) {
        expect(r.code, r.stderr).toBe(0)
        expect(out.decryption).toMatchObject({status: 'ok', provider: v.provider})
        // An annotation key the apiserver refuses (docs/kubernetes-behaviour.md §3.6) does not stop the offline read: it is a warning.
        if (badAnnotation) {
          expect(out.decryption.warnings).toHaveLength(1)
          expect(out.decryption.warnings[0]).toMatch(
            new RegExp(
              `^the apiserver would refuse this value: failed to validate annotations: annotations: Invalid value: "${badAnnotation}": a lowercase RFC 1123 subdomain`,
            ),
          )
        } else expect(out.decryption.warnings).toBeUndefined()
        expect(out.decryption.plaintextLength).toBe(b64(v.plaintext!).length)
        expect(out.decryption.prefix).toBe(v.prefix ?? '')
        if (v.keyName) expect(out.decryption.keyName).toBe(v.keyName)
        if (v.kmsName) expect(out.decryption.kmsName).toBe(v.kmsName)
        // legacy KMS v1 CBC reads stale (docs/kubernetes-behaviour.md §3.5, §4.1)
        if (v.expect.includes('stale=true')) expect(out.decryption.stale).toBe(true)
        const plaintext = b64(v.plaintext!)
        if (plaintext.subarray(0, 4).toString('latin1') === 'k8s\u0000')
          expect(out.object).toMatchObject({kind: 'Secret', data: {password: 'hunter2'}})
        else if (plaintext[0] === 0x7b) expect(out.object.json).toEqual(JSON.parse(plaintext.toString()))
        else expect(out.object.problem).toBe('not a serialized Kubernetes object')
      } else {
        expect(r.code).toBe(5)
        expect(out.decryption.status).toBe('failed')
        expect(apiserverErrorsFor(v)).toContain(out.decryption.error)
      }
    })
  }
})

describe('kubectl encryption inspect: output and bad input', {timeout: 60_000}, () => {
  it('shows the apiserver-would-refuse warning of a KMS v2 value with a bad annotation key in the table', async () => {
    const v = vectors.find((x) => x.id === 'kmsv2-kdf-secret')!
    const etcdKey = b64(v.etcdKey).toString('utf8')
    const r = await plugin(
      'inspect',
      '--value-file',
      file('kdf.bin', b64(v.stored)),
      '--key-path',
      etcdKey,
      '--config',
      file('kdf.yaml', stringify(configFor(v))),
      '--kms-dek',
      file('kdf.dek', v.key!),
      '--decrypt',
    )
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/Read:\s+ok with kms /)
    expect(r.stdout).toMatch(
      /Warning:\s+the apiserver would refuse this value: failed to validate annotations: annotations: Invalid value: "kms\.example\.com\/region"/,
    )
    expect(r.stdout).toContain('hunter2')
    expect(r.stdout).not.toContain(v.key!)
  })

  const secret = vectors.find((v) => v.id === 'aesgcm-256-secret')!
  const key = '/registry/secrets/default/mysecret'
  const key64 = Buffer.from(key).toString('base64')

  it('prints a readable report, the decoded Secret with --decrypt, and the exact hexdump -C', async () => {
    const value = file('s.bin', b64(secret.stored))
    const config = file('s.yaml', stringify(configFor(secret)))
    const r = await plugin(
      'inspect',
      '--value-file',
      value,
      '--key-path',
      key,
      '--config',
      config,
      '--decrypt',
      '--hexdump',
    )
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^Stored as:\s+aesgcm, key "key2"$/m)
    expect(r.stdout).toMatch(/^Read:\s+ok with aesgcm key "key2" \(rule secrets\)$/m)
    expect(r.stdout).toMatch(/^data password:\s+hunter2$/m)
    const dump = execFileSync('/usr/bin/hexdump', ['-C', value]).toString('latin1')
    expect(r.stdout.endsWith(dump)).toBe(true)
  })

  it('accepts `etcdctl get -w json` output, key included', async () => {
    const doc = {
      header: {revision: 5},
      kvs: [{key: Buffer.from(key).toString('base64'), value: secret.stored, mod_revision: 5}],
      count: 1,
    }
    const r = await plugin(
      'inspect',
      '--value-file',
      file('s.json', JSON.stringify(doc)),
      '--config',
      file('s2.yaml', stringify(configFor(secret))),
      '-o',
      'json',
    )
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({etcdKey: key, decryption: {status: 'ok', keyName: 'key2'}})
  })

  // Captured from a real etcdctl against a scratch etcd holding the aesgcm-256-secret vector.
  const fixtures = new URL('../fixtures/etcdctl/', import.meta.url).pathname
  it.each([
    ['etcdctl get -w json', 'aesgcm-256-secret.json', [], 'etcdctl -w json', undefined],
    [
      'etcdctl get (key line, value, newline)',
      'aesgcm-256-secret.simple',
      [],
      'etcdctl get',
      /the file is `etcdctl get` output/,
    ],
    [
      'etcdctl get --print-value-only',
      'aesgcm-256-secret.pvo',
      ['--key-path', key],
      undefined,
      /dropped the final newline/,
    ],
  ])(
    'reads real %s output: the same 200 stored bytes, key2, and its exact hexdump',
    async (_name, name, extra, format, note) => {
      const config = file('real.yaml', stringify(configFor(secret)))
      const r = await plugin(
        'inspect',
        '--value-file',
        join(fixtures, name),
        ...extra,
        '--config',
        config,
        '--hexdump',
        '-o',
        'json',
      )
      expect(r.code, r.stderr).toBe(0)
      const out = JSON.parse(r.stdout)
      expect(out).toMatchObject({etcdKey: key, length: 200, decryption: {status: 'ok', keyName: 'key2', stale: false}})
      expect(out.source).toBe(`file:${join(fixtures, name)}${format ? ` (${format})` : ''}`)
      if (note) expect(out.notes.join('\n')).toMatch(note)
      const value = file('real.bin', b64(secret.stored))
      expect(out.hexdump).toBe(execFileSync('/usr/bin/hexdump', ['-C', value]).toString('latin1'))
    },
  )

  it.each([
    [
      'a missing value file',
      3,
      () => ['--value-file', join(dir, 'nope.bin')],
      /cannot read the value file .*nope\.bin: no such file/,
    ],
    ['an empty value file', 3, () => ['--value-file', file('empty.bin', '')], /the value file .*empty\.bin is empty/],
    // issue 13: both ways to name what to inspect are said
    [
      'no source at all',
      2,
      () => [],
      /nothing to inspect: name an object \(TYPE\/NAME, e\.g\. secret\/db-pass, or an etcd key \/registry\/\.\.\.\) or pass --value-file FILE/,
    ],
    [
      '--config without --key-path',
      2,
      () => ['--value-file', file('x.bin', 'x'), '--config', file('c.yaml', 'x')],
      /--key-path is required/,
    ],
    [
      '--any-key without --config',
      2,
      () => ['--value-file', file('x.bin', 'x'), '--any-key'],
      /--any-key needs --config/,
    ],
    [
      'a config that is not YAML',
      3,
      () => ['--value-file', file('x.bin', 'x'), '--key-path', key, '--config', file('bad.yaml', 'resources: [\n')],
      /error decoding encryption provider configuration file/,
    ],
    [
      'a config of the wrong kind',
      3,
      () => [
        '--value-file',
        file('x.bin', 'x'),
        '--key-path',
        key,
        '--config',
        file('kind.yaml', 'apiVersion: v1\nkind: Secret\n'),
      ],
      /error decoding encryption provider configuration file/,
    ],
    [
      'a config with a bad key',
      3,
      () => [
        '--value-file',
        file('x.bin', 'x'),
        '--key-path',
        key,
        '--config',
        file(
          'key.yaml',
          stringify({
            apiVersion: 'apiserver.config.k8s.io/v1',
            kind: 'EncryptionConfiguration',
            resources: [{resources: ['secrets'], providers: [{aescbc: {keys: [{name: 'k', secret: 'c2hvcnQ='}]}}]}],
          }),
        ),
      ],
      /secret is not of the expected length, got 5/,
    ],
    [
      'a missing --kms-dek file',
      3,
      () => ['--value-file', file('x.bin', 'x'), '--key-path', key, '--kms-dek', join(dir, 'nope.dek')],
      /cannot read the --kms-dek file/,
    ],
    [
      'a --kms-dek file that is not base64',
      3,
      () => ['--value-file', file('x.bin', 'x'), '--key-path', key, '--kms-dek', file('dek', 'not base64!')],
      /does not hold standard base64/,
    ],
    [
      'a value file that is a directory',
      3,
      () => ['--value-file', dir],
      /cannot read the value file .*: it is a directory/,
    ],
    [
      'a missing config',
      3,
      () => ['--value-file', file('x.bin', 'x'), '--key-path', key, '--config', join(dir, 'nope.yaml')],
      /error reading encryption provider configuration file .*nope\.yaml/,
    ],
    [
      'an empty config',
      3,
      () => ['--value-file', file('x.bin', 'x'), '--key-path', key, '--config', file('empty.yaml', '')],
      /encryption provider configuration file .*empty\.yaml" is empty/,
    ],
    [
      'a config of binary garbage',
      3,
      () => [
        '--value-file',
        file('x.bin', 'x'),
        '--key-path',
        key,
        '--config',
        file('garbage.yaml', Buffer.from([0, 1, 0xff, 0xfe, 7])),
      ],
      /error decoding encryption provider configuration file/,
    ],
    [
      'a config the apiserver refuses (no providers)',
      3,
      () => [
        '--value-file',
        file('x.bin', 'x'),
        '--key-path',
        key,
        '--config',
        file(
          'noprov.yaml',
          stringify({
            apiVersion: 'apiserver.config.k8s.io/v1',
            kind: 'EncryptionConfiguration',
            resources: [{resources: ['secrets'], providers: []}],
          }),
        ),
      ],
      /providers: Required value/,
    ],
    // etcdctl -w json of the wrong shape
    [
      'etcdctl JSON with several pairs',
      3,
      () => [
        '--value-file',
        file(
          'many.json',
          JSON.stringify({
            header: {},
            kvs: [
              {key: key64, value: 'AA=='},
              {key: key64, value: 'AA=='},
            ],
            count: 2,
          }),
        ),
      ],
      /looks like `etcdctl get -w json` output, but it holds 2 key\/value pairs/,
    ],
    [
      'etcdctl JSON whose value is not base64',
      3,
      () => ['--value-file', file('num.json', JSON.stringify({header: {}, kvs: [{key: key64, value: 12}]}))],
      /but its "value" is not a standard base64 string/,
    ],
    [
      'etcdctl JSON whose key is not base64',
      3,
      () => ['--value-file', file('badkey.json', JSON.stringify({header: {}, kvs: [{key: '!!', value: 'AA=='}]}))],
      /but its "key" is not/,
    ],
    [
      'etcdctl JSON with an empty value',
      3,
      () => ['--value-file', file('nov.json', JSON.stringify({header: {}, kvs: [{key: key64}]}))],
      /the value of \/registry\/secrets\/default\/mysecret in .* is empty/,
    ],
    // issue 13: not read as a plaintext JSON value
    [
      'etcdctl JSON without its header',
      3,
      () => ['--value-file', file('kvs.json', '{"kvs":"x"}')],
      /looks like `etcdctl get -w json` output, but it has no etcdctl "header"/,
    ],
    [
      'etcdctl JSON with no pair',
      3,
      () => ['--value-file', file('none.json', JSON.stringify({header: {revision: 3}}))],
      /holds no key\/value pair/,
    ],
    // bad etcd keys
    [
      'a --key-path outside /registry',
      2,
      () => ['--value-file', file('x.bin', 'x'), '--key-path', 'secrets/default/x'],
      /--key-path "secrets\/default\/x" is not an object's etcd key: it is not under the apiserver's etcd prefix \/registry\//,
    ],
    // issue 14: --etcd-key is the etcd client key file everywhere; the old inspect meaning is refused
    [
      "the old --etcd-key for the value's key",
      2,
      () => ['--value-file', file('x.bin', 'x'), '--etcd-key', key],
      /--etcd-key \/registry\/secrets\/default\/mysecret looks like a value's etcd key: --etcd-key is the etcd client key file[\s\S]*hint: Name the value's etcd key with --key-path \/registry\/secrets\/default\/mysecret/,
    ],
    [
      'the inspect-only --etcd-client-key, now --etcd-key',
      2,
      () => ['/registry/secrets/default/x', '--etcd-client-key', 'client.key'],
      /--etcd-client-key/,
    ],
    [
      'a --key-path naming no object',
      2,
      () => ['--value-file', file('x.bin', 'x'), '--key-path', '/registry/secrets'],
      /it names no object/,
    ],
    [
      'a --key-path under another --etcd-prefix',
      2,
      () => ['--value-file', file('x.bin', 'x'), '--key-path', key, '--etcd-prefix', '/k8s'],
      /not under the apiserver's etcd prefix \/k8s\//,
    ],
    [
      'an etcdctl key outside /registry',
      2,
      () => [
        '--value-file',
        file(
          'outside.json',
          JSON.stringify({header: {}, kvs: [{key: Buffer.from('compact_rev_key').toString('base64'), value: 'AA=='}]}),
        ),
      ],
      /the key in .*outside\.json "compact_rev_key" is not an object's etcd key/,
    ],
    [
      'an object argument that is a bad etcd key',
      2,
      () => ['/registry//x'],
      /the etcd key "\/registry\/\/x" is not an object's etcd key: it has an empty path segment/,
    ],
  ])('%s: clear error, exit %i, nothing on stdout, nothing written', async (_name, code, args, message) => {
    const argv = args()
    const before = readdirSync(dir).sort()
    const r = await plugin('inspect', ...argv)
    expect(r.code).toBe(code)
    expect(r.stderr).toMatch(message)
    expect(r.stdout).toBe('')
    expect(readdirSync(dir).sort()).toEqual(before)
  })

  it('a config the apiserver refuses never has its secrets printed (table or -o json), exit 3', async () => {
    const secrets = [
      'c2hvcnRzZWNyZXQ=',
      'not base64 SECRETVALUE',
      'AAECAwQFBgcICQoLDA0ODw==',
      'Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=',
    ]
    const config = stringify({
      apiVersion: 'apiserver.config.k8s.io/v1',
      kind: 'EncryptionConfiguration',
      resources: [
        {
          resources: ['secrets'],
          providers: [
            {aescbc: {keys: [{name: 'k1', secret: secrets[0]}]}},
            {secretbox: {keys: [{name: 'k2', secret: secrets[1]}]}},
          ],
        },
        // two providers in one element: the apiserver's own message would print the keys (docs/kubernetes-behaviour.md §6.1)
        {
          resources: ['configmaps'],
          providers: [
            {aescbc: {keys: [{name: 'k3', secret: secrets[2]}]}, secretbox: {keys: [{name: 'k4', secret: secrets[3]}]}},
          ],
        },
      ],
    })
    const path = file('secrets.yaml', config)
    for (const output of ['table', 'json']) {
      const r = await plugin(
        'inspect',
        '--value-file',
        file('x.bin', 'x'),
        '--key-path',
        key,
        '--config',
        path,
        '-o',
        output,
      )
      expect(r.code).toBe(3)
      expect(r.stderr).toContain('REDACTED')
      for (const secret of secrets) expect(r.stdout + r.stderr).not.toContain(secret)
    }
  })

  const kmsV2 = vectors.find((v) => v.id === 'kmsv2-kdf-secret')!
  it.each([
    ['16 bytes', randomBytes(16).toString('base64'), /holds 16 bytes; a KMS DEK or seed is 32 bytes/],
    [
      'hex instead of base64 (48 bytes)',
      randomBytes(32).toString('hex'),
      /holds 48 bytes; a KMS DEK or seed is 32 bytes/,
    ],
    ['64 bytes', randomBytes(64).toString('base64'), /holds 64 bytes/],
    ['unpadded base64', randomBytes(32).toString('base64').replace(/=+$/, ''), /does not hold standard base64/],
    ['URL-safe base64', Buffer.alloc(32, 0xfb).toString('base64url') + '=', /does not hold standard base64/],
    ['an empty file', '', /does not hold standard base64/],
  ])('a --kms-dek file with %s: exit 3, the file content never printed', async (_name, content, message) => {
    const dek = file('wrong.dek', content)
    for (const output of ['table', 'json']) {
      const r = await plugin(
        'inspect',
        '--value-file',
        file('k2.bin', b64(kmsV2.stored)),
        '--key-path',
        key,
        '--kms-dek',
        dek,
        '-o',
        output,
      )
      expect(r.code).toBe(3)
      expect(r.stderr).toMatch(message)
      if (content) expect(r.stdout + r.stderr).not.toContain(content)
      if (output === 'json') expect(JSON.parse(r.stdout).error).toMatchObject({code: 'KMS_DEK_INVALID', exitCode: 3})
      else expect(r.stdout).toBe('')
    }
  })

  it('a KMS value under its KMS provider without --kms-dek: structure reported, the read not judged, exit 0', async () => {
    const r = await plugin(
      'inspect',
      '--value-file',
      file('k2n.bin', b64(kmsV2.stored)),
      '--key-path',
      key,
      '--config',
      file('k2n.yaml', stringify(configFor(kmsV2))),
    )
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^KMS key ID:\s+kek-2024-01$/m)
    expect(r.stdout).toMatch(/^Key ID hash:\s+sha256:[0-9a-f]{64}$/m)
    expect(r.stdout).toMatch(
      /^Read:\s+not attempted: a KMS value opens only with the plaintext DEK or seed .*--kms-dek FILE$/m,
    )
  })

  it('a KMS v2 seed value given the derived DEK fails with the apiserver text and says --kms-dek is the seed; no key material printed', async () => {
    const r = await plugin(
      'inspect',
      '--value-file',
      file('k2.bin', b64(kmsV2.stored)),
      '--key-path',
      key,
      '--kms-dek',
      file('derived.dek', kmsV2.derivedKey!),
      '-o',
      'json',
    )
    expect(r.code).toBe(5)
    const out = JSON.parse(r.stdout)
    expect(out.decryption).toMatchObject({status: 'failed', error: 'cipher: message authentication failed'})
    expect(out.notes.join('\n')).toContain('--kms-dek was used as the seed')
    for (const secret of keyMaterialOf(kmsV2)) expect(r.stdout + r.stderr).not.toContain(secret)
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
    const r = await plugin(
      'inspect',
      '--value-file',
      file('garbage.bin', Buffer.from([0, 1, 2, 250, 251])),
      '-o',
      'json',
    )
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout).classification).toMatchObject({encrypted: false, plaintext: {format: 'unknown'}})
    expect(JSON.parse(r.stdout).notes.join('\n')).toContain('not a serialized Kubernetes object')
  })

  it('warns about a DEK file readable by others, and never prints the DEK', async () => {
    const v = vectors.find((x) => x.id === 'kmsv1-gcm-secret')!
    const r = await plugin(
      'inspect',
      '--value-file',
      file('k.bin', b64(v.stored)),
      '--key-path',
      key,
      '--kms-dek',
      file('open.dek', v.key!, 0o644),
    )
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain('readable by group or others')
    expect(r.stdout + r.stderr).not.toContain(v.key!)
    expect(r.stdout).toMatch(/^Read:\s+ok with kms "legacykms"$/m)
  })
})
