/**
 * `status --scan --snapshot` with the real etcd, etcdutl and etcdctl the sandbox builds from source
 * (no mock): a local etcd holding golden-vector values (aescbc key1, secretbox key1, plaintext),
 * `etcdctl snapshot save`, then the snapshot opened with etcdutl and a temporary etcd and scanned.
 * Bad files (truncated, random bytes, empty, a directory, a damaged sha256, missing) and missing
 * binaries give one clear error, exit 3; no temporary data dir or etcd is left behind, also after
 * Ctrl-C.
 */
import {execFile, spawn} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {stringify} from 'yaml'

import {EtcdutlSnapshotOpener, findBinary} from '../../../src/etcd/snapshot-etcd.js'
import {scanSnapshot} from '../../../src/usecases/scan/snapshot-scan.js'
import {type LocalEtcd, startEtcd} from '../../helpers/local-etcd.js'
import {ensureKubeBinaries, type KubeBinaries} from '../../sandbox/kube-binaries.js'
import {b64, keyMaterialOf, vectors, VECTORS_DIR, vectorsConfig} from '../encryption/vectors-helper.js'

const run = promisify(execFile)
const cli = new URL('../../../bin/run.js', import.meta.url).pathname

// Every temporary dir of this file (the opener's data dirs included) goes under one private TMPDIR,
// so "nothing left behind" is checked without seeing other test files' dirs.
const root = mkdtempSync(join(tmpdir(), 'snapshot-etcd-test-'))
const tmp = join(root, 'tmp')
mkdirSync(tmp)
process.env.TMPDIR = tmp
const leftovers = () => readdirSync(tmp).filter((f) => f.startsWith('kubectl-encryption-snapshot-'))

const vector = (id: string) => vectors.find((v) => v.id === id)!
const VALUES: Array<[string, Buffer]> = [
  ['/registry/secrets/default/mysecret', b64(vector('aescbc-128-secret').stored)], // aescbc:key1
  ['/registry/example.com/widgets/default/w1', b64(vector('secretbox-cr-json').stored)], // secretbox:key1
  ['/registry/secrets/default/plain', b64(vector('identity-secret-protobuf').stored)], // identity
  ['/registry/configmaps/default/c', Buffer.from('{"kind":"ConfigMap"}')], // identity
]

let bin: KubeBinaries
let etcd: LocalEtcd
let snapshot: string
const config = join(VECTORS_DIR, 'encryption-config.yaml')
let withoutAescbcKey1: string

async function cliRun(
  args: string[],
  env: Record<string, string> = {},
): Promise<{code: number | null; stdout: string; stderr: string}> {
  const child = spawn(process.execPath, [cli, ...args], {
    env: {
      ...process.env,
      CI: '1',
      KUBECONFIG: join(root, 'no-kubeconfig'),
      KUBECTL_ENCRYPTION_ETCDUTL: bin.etcdutl,
      KUBECTL_ENCRYPTION_ETCD: bin.etcd,
      ...env,
    },
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  return new Promise((resolve) => child.on('close', (code) => resolve({code, stdout, stderr})))
}

const opener = () => new EtcdutlSnapshotOpener({etcdutl: bin.etcdutl, etcd: bin.etcd, handleSignals: false})

beforeAll(async () => {
  bin = await ensureKubeBinaries()
  etcd = await startEtcd()
  for (const [key, value] of VALUES) await etcd.put(key, value)
  snapshot = join(root, 'snap.db')
  await run(bin.etcdctl, [...etcd.flags, 'snapshot', 'save', snapshot])
  // The vectors' config without aescbc key1 (aesgcm key1 has the same secret: it cannot open aescbc values).
  const cfg = vectorsConfig()
  const aescbc = cfg.resources[0]!.providers.find((p) => p.aescbc)!.aescbc!
  aescbc.keys = aescbc.keys.filter((k) => k.name !== 'key1')
  withoutAescbcKey1 = join(root, 'without-aescbc-key1.yaml')
  writeFileSync(withoutAescbcKey1, stringify(cfg), {mode: 0o600})
}, 120_000)

afterAll(async () => {
  await etcd?.stop()
  rmSync(root, {recursive: true, force: true})
})

// Each case starts a temporary etcd through the CLI: the 20 s unit default is too short on a loaded machine.
describe('snapshot scan with the real etcdutl and etcd', {timeout: 180_000}, () => {
  it('reports how every value is stored, per provider:key; nothing left behind', async () => {
    const result = await scanSnapshot({file: snapshot, opener: opener()})
    expect(result.snapshot).toMatchObject({file: snapshot, integrityChecked: true})
    expect(result.snapshot.revision).toBeGreaterThanOrEqual(VALUES.length)
    expect(result.needs).toEqual([
      {storedAs: 'aescbc:key1', values: 1},
      {storedAs: 'identity', values: 2},
      {storedAs: 'secretbox:key1', values: 1},
    ])
    expect(result.keysNeeded).toEqual(['aescbc:key1', 'secretbox:key1'])
    expect(result.values).toBe(4)
    expect(result.config).toBeUndefined()
    expect(leftovers()).toEqual([])
  })

  it('with the config that made the values: opens all of them', async () => {
    const r = await cliRun(['status', '--scan', '--snapshot', snapshot, '--config', config, '-o', 'json'])
    expect(r.code, r.stderr).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc.config).toMatchObject({readable: true, unreadable: 0, values: 4})
    expect(doc.needs.every((n: {unreadable: number}) => n.unreadable === 0)).toBe(true)
  })

  it('with a config that lacks aescbc key1: exit 5, the value under it counted, key1 named', async () => {
    const r = await cliRun(['status', '--scan', '--snapshot', snapshot, '--config', withoutAescbcKey1, '-o', 'json'])
    expect(r.code, r.stderr).toBe(5)
    const doc = JSON.parse(r.stdout)
    expect(doc.config).toMatchObject({readable: false, unreadable: 1, examples: ['/registry/secrets/default/mysecret']})
    expect(doc.needs).toContainEqual({storedAs: 'aescbc:key1', values: 1, unreadable: 1})
    const table = await cliRun(['status', '--scan', '--snapshot', snapshot, '--config', withoutAescbcKey1])
    expect(table.code).toBe(5)
    expect(table.stdout).toMatch(/^aescbc:key1\s+1\s+1$/m)
    expect(table.stdout).toMatch(/^secretbox:key1\s+1\s+0$/m)
    expect(table.stdout).toContain('it cannot read the values stored as aescbc:key1.')
    // no key material in anything printed
    const printed = r.stdout + r.stderr + table.stdout + table.stderr
    for (const v of vectors.filter((x) => x.provider !== 'kms'))
      for (const secret of keyMaterialOf(v)) expect(printed.includes(secret)).toBe(false)
    expect(leftovers()).toEqual([])
  })

  it('a copy of member/snap/db (no sha256 appended) is read, marked as not integrity-checked', async () => {
    const raw = join(root, 'raw.db')
    const bytes = readFileSync(snapshot)
    writeFileSync(raw, bytes.subarray(0, bytes.length - 32))
    const result = await scanSnapshot({file: raw, opener: opener()})
    expect(result.snapshot.integrityChecked).toBe(false)
    expect(result.keysNeeded).toEqual(['aescbc:key1', 'secretbox:key1'])
  })

  it('bad snapshot files: exit 3, one error line (and a hint), nothing on stdout, nothing left behind', async () => {
    const bytes = readFileSync(snapshot)
    const file = (name: string, content: Buffer) => {
      writeFileSync(join(root, name), content)
      return join(root, name)
    }
    const damaged = Buffer.from(bytes)
    damaged[damaged.length - 40] ^= 0xff
    mkdirSync(join(root, 'a-dir'), {recursive: true})
    const cases: Array<[string, string, RegExp]> = [
      [
        'truncated',
        file('truncated.db', bytes.subarray(0, Math.floor(bytes.length / 2))),
        /is not a readable etcd snapshot \(truncated, damaged, or not a snapshot\): /,
      ],
      [
        'truncated by a few bytes',
        file('short.db', bytes.subarray(0, bytes.length - 5)),
        /is not a readable etcd snapshot/,
      ],
      [
        'random bytes',
        file('random.db', Buffer.from(Array.from({length: 64 * 1024}, (_, i) => (i * 7919 + 13) & 0xff))),
        /is not a readable etcd snapshot .*: invalid database$/m,
      ],
      ['empty', file('empty.db', Buffer.alloc(0)), /is not a readable etcd snapshot .*: the file is empty$/m],
      [
        'damaged',
        file('damaged.db', damaged),
        /is not a readable etcd snapshot .*: its sha256 does not match its contents$/m,
      ],
      ['a directory', join(root, 'a-dir'), /--snapshot .*a-dir is not a regular file$/m],
      ['missing', join(root, 'missing.db'), /^error: cannot read --snapshot .*missing\.db: no such file$/m],
    ]
    for (const [what, path, message] of cases) {
      const r = await cliRun(['status', '--scan', '--snapshot', path, '--config', config])
      expect(r.code, `${what}: ${r.stderr}`).toBe(3)
      expect(r.stdout, what).toBe('')
      const lines = r.stderr.trimEnd().split('\n')
      expect(lines[0], what).toMatch(/^error: /)
      expect(lines[0], what).toMatch(message)
      expect(
        lines.slice(1).every((l) => l.startsWith('hint: ')),
        `${what}: ${r.stderr}`,
      ).toBe(true)
    }
    expect(leftovers()).toEqual([])
  })

  it('missing binaries: exit 3 naming the binary and the flag', async () => {
    const noPath = await cliRun(['status', '--scan', '--snapshot', snapshot], {
      KUBECTL_ENCRYPTION_ETCDUTL: '',
      KUBECTL_ENCRYPTION_ETCD: '',
      PATH: join(root, 'empty-path'),
    })
    expect(noPath.code, noPath.stderr).toBe(3)
    expect(noPath.stderr).toMatch(
      /^error: etcdutl was not found on PATH; reading a snapshot needs etcd's etcdutl\nhint: .*--etcdutl PATH/,
    )
    const flag = await cliRun(['status', '--scan', '--snapshot', snapshot, '--etcdutl', join(root, 'nope')])
    expect(flag.code).toBe(3)
    expect(flag.stderr).toMatch(/^error: --etcdutl \S+nope is not an executable file$/m)
    const notExec = join(root, 'not-executable')
    writeFileSync(notExec, '#!/bin/sh\n')
    chmodSync(notExec, 0o644)
    const env = await cliRun(['status', '--scan', '--snapshot', snapshot], {KUBECTL_ENCRYPTION_ETCD: notExec})
    expect(env.code).toBe(3)
    expect(env.stderr).toMatch(/^error: KUBECTL_ENCRYPTION_ETCD=\S+ is not an executable file$/m)
    await expect(
      findBinary('etcd', '--etcd-binary', undefined, {PATH: join(root, 'empty-path')}),
    ).rejects.toMatchObject({code: 'ETCD_BINARY_NOT_FOUND', exitCode: 3})
    await expect(findBinary('etcdutl', '--etcdutl', undefined, {PATH: `/nonexistent:${bin.binDir}`})).resolves.toBe(
      join(bin.binDir, 'etcdutl'),
    )
  })

  it('Ctrl-C while the temporary etcd starts: it is stopped and its data dir removed', async () => {
    const child = spawn(process.execPath, [cli, 'status', '--scan', '--snapshot', snapshot, '--verbose'], {
      env: {
        ...process.env,
        CI: '1',
        KUBECONFIG: join(root, 'no-kubeconfig'),
        KUBECTL_ENCRYPTION_ETCDUTL: bin.etcdutl,
        KUBECTL_ENCRYPTION_ETCD: bin.etcd,
      },
    })
    let stderr = ''
    let sent = false
    const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      if (!sent && stderr.includes('Starting a temporary etcd')) sent = child.kill('SIGINT')
    })
    const code = await closed
    expect(stderr).toContain('Starting a temporary etcd')
    expect(code).toBe(130)
    expect(leftovers()).toEqual([])
    // no etcd serving a dir of ours is left running
    const {stdout} = await run('ps', ['-eo', 'args'])
    expect(stdout.split('\n').filter((l) => l.includes(join(tmp, 'kubectl-encryption-snapshot-')))).toEqual([])
    expect(existsSync(snapshot)).toBe(true)
  })
})
