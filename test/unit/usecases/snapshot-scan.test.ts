/** `status --scan --snapshot`: the per provider:key counts and the config's verdict, over a fake SnapshotOpener. */
import {randomBytes} from 'node:crypto'

import {describe, expect, it} from 'vitest'

import type {EncryptionConfiguration, ProviderSpec} from '../../../src/encryption/config/model.js'
import {ResourceTransformer} from '../../../src/encryption/transform/resource-transformer.js'
import type {EtcdKeyValue, EtcdReader} from '../../../src/etcd/etcd-reader.js'
import type {OpenedSnapshot, SnapshotOpener} from '../../../src/etcd/snapshot-etcd.js'
import {preconditionError} from '../../../src/errors.js'
import {scanSnapshot} from '../../../src/usecases/scan/snapshot-scan.js'
import {b64, vectors} from '../encryption/vectors-helper.js'

const OBJECT = b64(vectors.find((v) => v.id === 'identity-secret-protobuf')!.plaintext!)
const secret = () => randomBytes(32).toString('base64')
const key1: ProviderSpec = {aescbc: {keys: [{name: 'key1', secret: secret()}]}}
const key2: ProviderSpec = {aescbc: {keys: [{name: 'key2', secret: secret()}]}}
const identity: ProviderSpec = {identity: {}}
const encrypt = (spec: ProviderSpec, key: string) =>
  ResourceTransformer.fromProviders([spec], undefined).write(OBJECT, key)
const config = (...providers: ProviderSpec[]): EncryptionConfiguration => ({
  apiVersion: 'apiserver.config.k8s.io/v1',
  kind: 'EncryptionConfiguration',
  resources: [{resources: ['secrets'], providers}],
})

/** A SnapshotOpener over an in-memory etcd; records what was opened and closed. */
function fakeOpener(entries: Array<[string, Buffer]>, options: {failRange?: boolean} = {}) {
  const log: string[] = []
  const kvs: EtcdKeyValue[] = entries
    .map(([key, value], i) => ({key, value, modRevision: i + 1}))
    .sort((a, b) => a.key.localeCompare(b.key))
  const reader: EtcdReader = {
    get: async () => undefined,
    async *range(prefix, o) {
      if (options.failRange) throw preconditionError('ETCD_UNREACHABLE', 'the temporary etcd went away')
      const matching = kvs.filter((e) => e.key.startsWith(prefix))
      for (let i = 0; i < matching.length; i += o?.pageSize ?? 500) yield matching.slice(i, i + (o?.pageSize ?? 500))
    },
    describe: () => ({transport: 'direct', endpoint: 'http://127.0.0.1:1', via: 'snapshot fake.db'}),
    close: async () => void log.push('reader closed'),
  }
  const opener: SnapshotOpener = {
    open: async (file): Promise<OpenedSnapshot> => {
      log.push(`open ${file}`)
      return {
        info: {file, bytes: 1, revision: 7, totalKeys: kvs.length, integrityChecked: true},
        reader,
        close: async () => void log.push('closed'),
      }
    },
  }
  return {opener, log}
}

const ENTRIES: Array<[string, Buffer]> = [
  ['/registry/secrets/a/k1-0', encrypt(key1, '/registry/secrets/a/k1-0')],
  ['/registry/secrets/a/k1-1', encrypt(key1, '/registry/secrets/a/k1-1')],
  ['/registry/secrets/a/k2-0', encrypt(key2, '/registry/secrets/a/k2-0')],
  ['/registry/secrets/a/plain', OBJECT],
  ['/registry/configmaps/a/c', Buffer.from('{"kind":"ConfigMap"}')],
  ['/registry/masterleases/10.0.0.1', Buffer.from('lease')], // not an API object: not counted
]

describe('scanSnapshot', () => {
  it('without a config: how every value is stored, the keys needed, the snapshot closed', async () => {
    const {opener, log} = fakeOpener(ENTRIES)
    const r = await scanSnapshot({file: 'fake.db', opener, pageSize: 2})
    expect(r.snapshot).toMatchObject({file: 'fake.db', revision: 7})
    expect(r.keys).toBe(6)
    expect(r.values).toBe(5)
    expect(r.needs).toEqual([
      {storedAs: 'aescbc:key1', values: 2},
      {storedAs: 'aescbc:key2', values: 1},
      {storedAs: 'identity', values: 2},
    ])
    expect(r.keysNeeded).toEqual(['aescbc:key1', 'aescbc:key2'])
    expect(r.resources).toEqual([
      {resource: 'configmaps', values: 1, storedAs: {identity: 1}},
      {resource: 'secrets', values: 4, storedAs: {'aescbc:key1': 2, 'aescbc:key2': 1, identity: 1}},
    ])
    expect(r.config).toBeUndefined()
    expect(log).toEqual(['open fake.db', 'closed'])
  })

  it('a config that opens everything: readable, nothing unreadable per provider:key', async () => {
    const {opener} = fakeOpener(ENTRIES)
    const r = await scanSnapshot({
      file: 'fake.db',
      opener,
      config: {file: 'all.yaml', hash: 'sha256:00', config: config(key2, key1, identity)},
    })
    expect(r.config).toMatchObject({readable: true, unreadable: 0, values: 5, file: 'all.yaml'})
    expect(r.needs.map((n) => [n.storedAs, n.values, n.unreadable])).toEqual([
      ['aescbc:key1', 2, 0],
      ['aescbc:key2', 1, 0],
      ['identity', 2, 0],
    ])
  })

  it('a config without key1: not readable, the values under key1 counted and given as examples', async () => {
    const {opener} = fakeOpener(ENTRIES)
    const r = await scanSnapshot({
      file: 'fake.db',
      opener,
      config: {file: 'new.yaml', hash: 'sha256:00', config: config(key2, identity)},
    })
    expect(r.config).toMatchObject({
      readable: false,
      unreadable: 2,
      examples: ['/registry/secrets/a/k1-0', '/registry/secrets/a/k1-1'],
    })
    expect(r.config!.resources.find((x) => x.resource === 'secrets')!.unreadableAs).toEqual({'aescbc:key1': 2})
    // the needs are the same with or without the config: how the values are stored
    expect(r.needs).toEqual([
      {storedAs: 'aescbc:key1', values: 2, unreadable: 2},
      {storedAs: 'aescbc:key2', values: 1, unreadable: 0},
      {storedAs: 'identity', values: 2, unreadable: 0},
    ])
    expect(r.keysNeeded).toEqual(['aescbc:key1', 'aescbc:key2'])
    expect(JSON.stringify(r)).not.toMatch(/secret":|[A-Za-z0-9+/]{43}=/)
  })

  it('a config without identity cannot read the plaintext Secret', async () => {
    const {opener} = fakeOpener(ENTRIES)
    const r = await scanSnapshot({
      file: 'fake.db',
      opener,
      config: {file: 'strict.yaml', hash: 'sha256:00', config: config(key2, key1)},
    })
    expect(r.config).toMatchObject({readable: false, unreadable: 1})
    expect(r.needs.find((n) => n.storedAs === 'identity')).toEqual({storedAs: 'identity', values: 2, unreadable: 1})
  })

  it('a read that fails mid-scan: the error passes through and the snapshot is still closed', async () => {
    const {opener, log} = fakeOpener(ENTRIES, {failRange: true})
    await expect(scanSnapshot({file: 'fake.db', opener})).rejects.toMatchObject({code: 'ETCD_UNREACHABLE'})
    expect(log).toEqual(['open fake.db', 'closed'])
  })

  it("an open that fails (bad file) is the opener's error; nothing to close", async () => {
    const opener: SnapshotOpener = {
      open: async () => Promise.reject(preconditionError('SNAPSHOT_INVALID', 'not a snapshot')),
    }
    await expect(scanSnapshot({file: 'bad.db', opener})).rejects.toMatchObject({code: 'SNAPSHOT_INVALID', exitCode: 3})
  })
})
