import {createHash, randomBytes} from 'node:crypto'

import {describe, expect, it} from 'vitest'

import type {EncryptionConfiguration, ProviderSpec} from '../../../src/encryption/config/model.js'
import {encodeEncryptedObject} from '../../../src/encryption/storage/kms-v2-object.js'
import {ResourceTransformer} from '../../../src/encryption/transform/resource-transformer.js'
import {type ScanEntry, scanValues} from '../../../src/usecases/scan/scan-engine.js'
import {b64, vectors} from '../encryption/vectors-helper.js'

const SECRET = b64(vectors.find((v) => v.id === 'identity-secret-protobuf')!.plaintext!)
const key = (n: number) => randomBytes(n).toString('base64')
const newKey: ProviderSpec = {aescbc: {keys: [{name: 'new', secret: key(32)}]}}
const oldKey: ProviderSpec = {aescbc: {keys: [{name: 'old', secret: key(32)}]}}
const gcm: ProviderSpec = {aesgcm: {keys: [{name: 'g1', secret: key(32)}]}}

const config: EncryptionConfiguration = {
  apiVersion: 'apiserver.config.k8s.io/v1',
  kind: 'EncryptionConfiguration',
  resources: [
    {
      resources: ['secrets'],
      providers: [{aescbc: {keys: [...newKey.aescbc!.keys, ...oldKey.aescbc!.keys]}}, {identity: {}}],
    },
    {resources: ['configmaps'], providers: [gcm]},
  ],
}

async function* pages(entries: ScanEntry[], size = 7): AsyncIterable<ScanEntry[]> {
  for (let i = 0; i < entries.length; i += size) yield entries.slice(i, i + size)
}

const write = (spec: ProviderSpec, k: string) => ResourceTransformer.fromProviders([spec], undefined).write(SECRET, k)

/** A generated etcd: known counts of each kind of value. */
function generate() {
  const entries: ScanEntry[] = []
  let rev = 1
  const add = (k: string, value: Buffer) => entries.push({key: k, value, modRevision: rev++})
  for (let i = 0; i < 10; i++)
    add(`/registry/secrets/ns1/fresh-${i}`, write(newKey, `/registry/secrets/ns1/fresh-${i}`))
  for (let i = 0; i < 4; i++) add(`/registry/secrets/ns1/old-${i}`, write(oldKey, `/registry/secrets/ns1/old-${i}`))
  for (let i = 0; i < 3; i++) add(`/registry/secrets/ns1/plain-${i}`, SECRET)
  for (let i = 0; i < 2; i++) add(`/registry/secrets/gone/s-${i}`, write(newKey, `/registry/secrets/gone/s-${i}`))
  // written under another key name: "no matching key"; and a gcm value copied to another key: AAD failure
  add('/registry/secrets/ns1/lost', write({aescbc: {keys: [{name: 'lost', secret: key(32)}]}}, 'x'))
  add('/registry/configmaps/ns1/moved', write(gcm, '/registry/configmaps/ns1/original'))
  add('/registry/configmaps/ns1/ok', write(gcm, '/registry/configmaps/ns1/ok'))
  add('/registry/configmaps/ns1/plain', SECRET) // gcm only, no identity: unreadable
  add('/registry/deployments/ns1/web', SECRET) // not covered
  add('/registry/namespaces/ns1', SECRET)
  add('/registry/ranges/serviceips', randomBytes(20))
  add('/registry/secrets/ns1/kms', Buffer.from('k8s:enc:kms:v2:vault:\u000a\u0001x'))
  return entries.sort((a, b) => a.key.localeCompare(b.key))
}

describe('scanValues', () => {
  it('counts per resource: provider:key, plaintext, stale, undecryptable with the apiserver texts, orphans', async () => {
    const entries = generate()
    const progress: number[] = []
    const r = await scanValues({
      pages: pages(entries),
      config,
      namespaces: new Set(['ns1', 'default']),
      onProgress: (e) => progress.push(e.scanned),
    })
    expect(r.keys).toBe(entries.length)
    expect(r.skipped).toBe(1)
    expect(progress.at(-1)).toBe(entries.length)
    const secrets = r.resources.find((x) => x.resource === 'secrets')!
    expect(secrets).toMatchObject({
      total: 10 + 4 + 3 + 2 + 1 + 1,
      byProvider: {'aescbc:new': 12, 'aescbc:old': 4, identity: 3},
      plaintext: 3,
      stale: 4 + 3,
      undecryptable: 2,
      orphans: 2,
      writes: 'aescbc:new',
      rule: 'secrets',
    })
    expect(secrets.errors).toEqual({
      'no matching key was found for the provided AES transformer': 1,
      'no matching prefix found': 1,
    })
    expect(secrets.undecryptableAs).toEqual({'aescbc:lost': 1, 'kms:vault': 1})
    expect(secrets.samples.orphans).toEqual(['/registry/secrets/gone/s-0', '/registry/secrets/gone/s-1'])
    const configmaps = r.resources.find((x) => x.resource === 'configmaps')!
    expect(configmaps).toMatchObject({total: 3, byProvider: {'aesgcm:g1': 1}, undecryptable: 2})
    expect(configmaps.errors).toEqual({'cipher: message authentication failed': 1, 'no matching prefix found': 1})
    expect(configmaps.undecryptableAs).toEqual({'aesgcm:g1': 1, identity: 1})
    expect(r.resources.find((x) => x.resource === 'deployments.apps')).toMatchObject({
      total: 1,
      plaintext: 1,
      writes: 'identity',
      rule: undefined,
    })
    expect(r.totals).toMatchObject({undecryptable: 4, orphans: 2, plaintext: 3 + 1 + 1})
  })

  it('counts KMS values whose DEK is not available offline as unverified, by name', async () => {
    const withKms: EncryptionConfiguration = {
      ...config,
      resources: [
        {
          resources: ['secrets'],
          providers: [{kms: {apiVersion: 'v2', name: 'vault', endpoint: 'unix:///k'}}, {identity: {}}],
        },
      ],
    }
    const obj = Buffer.from([0x0a, 0x01, 0x01, 0x12, 0x01, 0x6b, 0x1a, 0x01, 0x02])
    const value = Buffer.concat([Buffer.from('k8s:enc:kms:v2:vault:'), obj])
    const r = await scanValues({pages: pages([{key: '/registry/secrets/a/b', value, modRevision: 1}]), config: withKms})
    expect(r.resources[0]).toMatchObject({unverified: 1, undecryptable: 0, byProvider: {'kms:vault': 1}})
  })

  it('counts KMS v2 values per provider and key ID from the EncryptedObject; stale = not the key ID the apiservers report', async () => {
    const withKms: EncryptionConfiguration = {
      ...config,
      resources: [
        {
          resources: ['secrets'],
          providers: [{kms: {apiVersion: 'v2', name: 'vault', endpoint: 'unix:///k'}}, {identity: {}}],
        },
      ],
    }
    const dekSource = randomBytes(48)
    const kmsValue = (keyID: string) =>
      Buffer.concat([
        Buffer.from('k8s:enc:kms:v2:vault:'),
        encodeEncryptedObject({
          encryptedData: randomBytes(60),
          keyID,
          encryptedDEKSource: dekSource,
          annotations: new Map(),
          encryptedDEKSourceType: 1,
        }),
      ])
    const entries: ScanEntry[] = [
      ...Array.from({length: 3}, (_, i) => ({
        key: `/registry/secrets/a/old-${i}`,
        value: kmsValue('kek-old'),
        modRevision: 1,
      })),
      ...Array.from({length: 2}, (_, i) => ({
        key: `/registry/secrets/a/new-${i}`,
        value: kmsValue('kek-new'),
        modRevision: 1,
      })),
    ]
    const hash = (id: string) => `sha256:${createHash('sha256').update(id).digest('hex')}`
    const judged = await scanValues({
      pages: pages(entries),
      config: withKms,
      kmsCurrentKeyIdHashes: {vault: hash('kek-new')},
    })
    expect(judged.resources[0]).toMatchObject({total: 5, unverified: 5, stale: 3, byProvider: {'kms:vault': 5}})
    expect(judged.resources[0]!.kmsKeys).toEqual([
      {provider: 'vault', keyId: 'kek-old', keyIdHash: hash('kek-old'), count: 3, current: false},
      {provider: 'vault', keyId: 'kek-new', keyIdHash: hash('kek-new'), count: 2, current: true},
    ])
    expect(judged.resources[0]!.samples.stale).toEqual([
      '/registry/secrets/a/old-0',
      '/registry/secrets/a/old-1',
      '/registry/secrets/a/old-2',
    ])
    // the DEK source (encrypted or not) never appears in the result
    expect(JSON.stringify(judged)).not.toContain(dekSource.toString('base64'))
    // without the apiservers' current key ID: counted per key ID, not judged
    const unjudged = await scanValues({pages: pages(entries), config: withKms})
    expect(unjudged.resources[0]).toMatchObject({stale: 0})
    expect(unjudged.resources[0]!.kmsKeys!.map((k) => [k.keyId, k.count, k.current])).toEqual([
      ['kek-old', 3, undefined],
      ['kek-new', 2, undefined],
    ])
  })

  it('without a configuration it classifies only', async () => {
    const r = await scanValues({pages: pages(generate())})
    expect(r.configured).toBe(false)
    expect(r.orphansCounted).toBe(false)
    const secrets = r.resources.find((x) => x.resource === 'secrets')!
    expect(secrets.byProvider).toMatchObject({
      'aescbc:new': 12,
      'aescbc:old': 4,
      'aescbc:lost': 1,
      identity: 3,
      'kms:vault': 1,
    })
    expect(secrets).toMatchObject({stale: 0, undecryptable: 0, orphans: 0})
  })

  it('streams: memory stays flat over many pages of large values', async () => {
    const big = Buffer.alloc(64 * 1024, 1)
    async function* many() {
      for (let p = 0; p < 400; p++) {
        yield Array.from({length: 10}, (_, i) => ({
          key: `/registry/configmaps/ns/c-${p}-${i}`,
          value: Buffer.from(big),
          modRevision: p,
        }))
      }
    }
    const before = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers
    const r = await scanValues({pages: many()})
    const after = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers
    expect(r.keys).toBe(4000)
    expect(r.bytes).toBe(4000 * big.length) // 262 MB passed through
    expect(after - before).toBeLessThan(100 * 1024 * 1024)
  })

  it('stops between pages when aborted', async () => {
    const controller = new AbortController()
    controller.abort(new Error('stop'))
    await expect(scanValues({pages: pages(generate()), signal: controller.signal})).rejects.toThrow('stop')
  })
})
