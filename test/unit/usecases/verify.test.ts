import {readFileSync} from 'node:fs'

import {describe, expect, it} from 'vitest'

import {checkConfigBytes} from '../../../src/encryption/config/load.js'
import type {EtcdReader} from '../../../src/etcd/etcd-reader.js'
import {PluginError} from '../../../src/errors.js'
import {type ApiResource, KubeApiError, type KubeObject, type ObjectClient} from '../../../src/kube/types.js'
import {expectedWrite, verifyEncryption} from '../../../src/usecases/verify.js'
import {encodeEncryptedObject} from '../../../src/encryption/storage/kms-v2-object.js'
import type {NodeKmsKeys} from '../../../src/usecases/status/kms-keys.js'
import {createHash, randomBytes} from 'node:crypto'

const SECRETS: ApiResource = {group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true}
const CONFIGMAPS: ApiResource = {group: '', version: 'v1', resource: 'configmaps', kind: 'ConfigMap', namespaced: true}
const vectorsConfig = checkConfigBytes(
  readFileSync(new URL('../../fixtures/vectors/encryption-config.yaml', import.meta.url)),
  'vectors.yaml',
).config!

/** A fake cluster: objects in a map; etcd stores each created object under its key with a chosen prefix. */
function world(
  opts: {
    storedPrefix?: (key: string) => Buffer
    storedValue?: Buffer
    failGet?: boolean
    hangEtcd?: boolean
    failDelete?: boolean
    createAnswer?: Promise<void>
    createFails?: boolean
    createError?: KubeApiError
  } = {},
) {
  const objects = new Map<string, KubeObject>()
  const deleted: string[] = []
  const keyOf = (r: ApiResource, name: string, ns?: string) => `/registry/${r.resource}/${ns}/${name}`
  const client: ObjectClient = {
    list: async () => ({items: []}),
    async get(r, name, ns) {
      if (opts.failGet)
        throw new KubeApiError(500, 'InternalError', 'Internal error occurred: no matching prefix found')
      const o = objects.get(keyOf(r, name, ns))
      if (!o) throw new KubeApiError(404, 'NotFound', 'not found')
      return o
    },
    async create(r, o) {
      // Stored at once; the answer can be held back (a response still on the wire).
      if (opts.createError) throw opts.createError
      if (!opts.createFails) objects.set(keyOf(r, o.metadata.name, o.metadata.namespace), o)
      await opts.createAnswer
      if (opts.createFails) throw new KubeApiError(409, 'AlreadyExists', 'already exists')
      return o
    },
    replace: async (_r, o) => o,
    async delete(r, name, ns) {
      if (opts.failDelete) throw new KubeApiError(403, 'Forbidden', 'cannot delete')
      deleted.push(keyOf(r, name, ns))
      objects.delete(keyOf(r, name, ns))
    },
  }
  const reader: EtcdReader = {
    async get(key) {
      if (opts.hangEtcd) return new Promise(() => {})
      if (![...objects.keys()].includes(key)) return undefined
      const body = Buffer.from('opaque-ciphertext-bytes')
      return {
        key,
        value: opts.storedValue ?? Buffer.concat([opts.storedPrefix?.(key) ?? Buffer.alloc(0), body]),
        modRevision: 7,
      }
    },
    async *range() {},
    describe: () => ({transport: 'exec', endpoint: 'https://127.0.0.1:2379', via: 'kube-system/etcd-cp1'}),
    close: async () => {},
  }
  return {client, reader, objects, deleted}
}

const deps = (w: ReturnType<typeof world>, extra: Partial<Parameters<typeof verifyEncryption>[1]> = {}) => ({
  objects: w.client,
  openEtcd: async () => w.reader,
  config: {config: vectorsConfig, source: 'cp1:/etc/kubernetes/enc/config.yaml'},
  ...extra,
})

describe('verify', () => {
  it('expects the first provider and its first key for the resource', () => {
    expect(expectedWrite(vectorsConfig, {group: '', resource: 'secrets'})).toBe('aesgcm:key2')
    expect(expectedWrite(vectorsConfig, {group: 'example.com', resource: 'widgets'})).toBe('aescbc:key2')
    expect(expectedWrite(vectorsConfig, {group: '', resource: 'configmaps'})).toBe('identity')
  })

  it('passes when the value carries the expected prefix, deletes the object, and prints a hexdump', async () => {
    const w = world({storedPrefix: () => Buffer.from('k8s:enc:aesgcm:v1:key2:')})
    const result = await verifyEncryption({resource: SECRETS, namespace: 'default', hexdump: true}, deps(w))
    expect(result).toMatchObject({
      ok: true,
      roundTrip: 'ok',
      cleanup: 'deleted',
      expected: 'aesgcm:key2',
      stored: {encrypted: true, provider: 'aesgcm', keyName: 'key2'},
    })
    expect(result.etcdKey).toMatch(/^\/registry\/secrets\/default\/encryption-verify-[0-9a-f]{8}$/)
    expect(result.hexdump?.split('\n')[0]).toBe(
      '00000000  6b 38 73 3a 65 6e 63 3a  61 65 73 67 63 6d 3a 76  |k8s:enc:aesgcm:v|',
    )
    expect(w.objects.size).toBe(0)
    expect(w.deleted).toEqual([result.etcdKey])
  })

  it('fails (not ok) with a clear message on the wrong key or plaintext', async () => {
    const wrongKey = await verifyEncryption(
      {resource: SECRETS, namespace: 'default'},
      deps(world({storedPrefix: () => Buffer.from('k8s:enc:aescbc:v1:key1:')})),
    )
    expect(wrongKey.ok).toBe(false)
    expect(wrongKey.problems).toEqual([
      'secrets are stored with aescbc:key1, but the config (cp1:/etc/kubernetes/enc/config.yaml) says new writes use aesgcm:key2',
    ])
    const plain = await verifyEncryption(
      {resource: SECRETS, namespace: 'default'},
      deps(world({storedPrefix: () => Buffer.from([0x6b, 0x38, 0x73, 0x00])})),
    )
    expect(plain.problems[0]).toContain('secrets are stored in plaintext, but the config')
    expect(plain.cleanup).toBe('deleted')
  })

  it('identity as configured is OK and said plainly', async () => {
    const result = await verifyEncryption(
      {resource: CONFIGMAPS, namespace: 'default'},
      deps(world({storedPrefix: () => Buffer.from([0x6b, 0x38, 0x73, 0x00])})),
    )
    expect(result.ok).toBe(true)
    expect(result.notes).toEqual([
      "configmaps are NOT encrypted: the config's first provider is identity, and etcd holds the value in plaintext",
    ])
  })

  it('without a config only "encrypted or not" is checked', async () => {
    const result = await verifyEncryption(
      {resource: SECRETS, namespace: 'default'},
      deps(world({storedPrefix: () => Buffer.from('k8s:enc:secretbox:v1:k:')}), {config: undefined}),
    )
    expect(result.ok).toBe(true)
    expect(result.expected).toBeUndefined()
  })

  it('cleans up after a failure and says so in the hint', async () => {
    const w = world({storedPrefix: () => Buffer.from('k8s:enc:aesgcm:v1:key2:'), failGet: true})
    const error = (await verifyEncryption({resource: SECRETS, namespace: 'default'}, deps(w)).catch(
      (e: unknown) => e,
    )) as PluginError
    expect(error).toBeInstanceOf(PluginError)
    expect(error.message).toContain('no matching prefix found')
    expect(error.hint).toMatch(/The test object secrets default\/encryption-verify-[0-9a-f]{8} was deleted\./)
    expect(w.objects.size).toBe(0)
  })

  it('an abort (Ctrl-C) while etcd hangs still deletes the object', async () => {
    const w = world({hangEtcd: true})
    const controller = new AbortController()
    const running = verifyEncryption({resource: SECRETS, namespace: 'default'}, deps(w, {signal: controller.signal}))
    setTimeout(() => controller.abort(), 50)
    const error = (await running.catch((e: unknown) => e)) as PluginError
    expect(error.code).toBe('INTERRUPTED')
    expect(w.objects.size).toBe(0)
    expect(w.deleted).toHaveLength(1)
  })

  it('an abort while the create is on the wire waits for its answer, then deletes the object', async () => {
    let answer!: () => void
    const w = world({createAnswer: new Promise<void>((resolve) => (answer = resolve))})
    const controller = new AbortController()
    const running = verifyEncryption({resource: SECRETS, namespace: 'default'}, deps(w, {signal: controller.signal}))
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(w.objects.size).toBe(1)
    controller.abort()
    setTimeout(answer, 50)
    const error = (await running.catch((e: unknown) => e)) as PluginError
    expect(error.code).toBe('INTERRUPTED')
    expect(error.hint).toMatch(/was deleted\./)
    expect(w.objects.size).toBe(0)
    expect(w.deleted).toHaveLength(1)
  })

  it('an abort while a create is on the wire that then fails deletes nothing', async () => {
    let answer!: () => void
    const w = world({createAnswer: new Promise<void>((resolve) => (answer = resolve)), createFails: true})
    const controller = new AbortController()
    const running = verifyEncryption({resource: SECRETS, namespace: 'default'}, deps(w, {signal: controller.signal}))
    await new Promise((resolve) => setTimeout(resolve, 20))
    controller.abort()
    setTimeout(answer, 50)
    const error = (await running.catch((e: unknown) => e)) as PluginError
    expect(error.code).toBe('INTERRUPTED')
    expect(error.hint ?? '').not.toMatch(/deleted/)
    expect(w.deleted).toHaveLength(0)
  })

  it('--keep leaves the object; a failed delete is a problem naming the object', async () => {
    const kept = world({storedPrefix: () => Buffer.from('k8s:enc:aesgcm:v1:key2:')})
    expect((await verifyEncryption({resource: SECRETS, namespace: 'default', keep: true}, deps(kept))).cleanup).toBe(
      'kept',
    )
    expect(kept.objects.size).toBe(1)
    const stuck = await verifyEncryption(
      {resource: SECRETS, namespace: 'default'},
      deps(world({storedPrefix: () => Buffer.from('k8s:enc:aesgcm:v1:key2:'), failDelete: true})),
    )
    expect(stuck.ok).toBe(false)
    expect(stuck.cleanup).toBe('failed')
    expect(stuck.problems[0]).toMatch(/could not delete secrets default\/encryption-verify-/)
  })

  it('refuses a resource it cannot make without a manifest, before creating anything', async () => {
    const w = world()
    const pandas: ApiResource = {
      group: 'awesome.bears.example',
      version: 'v1',
      resource: 'pandas',
      kind: 'Panda',
      namespaced: true,
    }
    const error = (await verifyEncryption({resource: pandas, namespace: 'default'}, deps(w)).catch(
      (e: unknown) => e,
    )) as PluginError
    expect(error.exitCode).toBe(2)
    expect(w.objects.size).toBe(0)
  })
})

describe('verify with a KMS v2 write provider', () => {
  const kmsConfig = checkConfigBytes(
    Buffer.from(
      'apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - kms: {apiVersion: v2, name: vault, endpoint: unix:///k.sock}\n',
    ),
    'kms.yaml',
  ).config!
  const hash = (id: string) => `sha256:${createHash('sha256').update(id).digest('hex')}`
  const stored = (keyID: string) =>
    Buffer.concat([
      Buffer.from('k8s:enc:kms:v2:vault:'),
      encodeEncryptedObject({
        encryptedData: randomBytes(60),
        keyID,
        encryptedDEKSource: randomBytes(40),
        annotations: new Map(),
        encryptedDEKSourceType: 1,
      }),
    ])
  const reports = (...perNode: string[]): NodeKmsKeys[] =>
    perNode.map((id, i) => ({
      node: `cp${i + 1}`,
      keys: [{provider: 'vault', keyIdHash: hash(id), source: 'status', at: '2026-01-01T00:00:00.000Z'}],
    }))
  const run = (value: Buffer, sequence: NodeKmsKeys[][]) => {
    const w = world({storedValue: value})
    let call = 0
    return verifyEncryption(
      {resource: SECRETS, namespace: 'default'},
      {
        ...deps(w),
        config: {config: kmsConfig, source: 'kms.yaml'},
        kmsKeys: async () => sequence[Math.min(call++, sequence.length - 1)]!,
      },
    )
  }

  it('the stored key ID is the one every apiserver reports: ok', async () => {
    const r = await run(stored('kek-1'), [reports('kek-1', 'kek-1', 'kek-1')])
    expect(r.ok).toBe(true)
    expect(r.kms).toEqual({
      provider: 'vault',
      keyId: 'kek-1',
      keyIdHash: hash('kek-1'),
      currentKeyIdHash: hash('kek-1'),
      reportedBy: {[hash('kek-1')]: ['cp1', 'cp2', 'cp3']},
    })
  })

  it('a settled key ID that differs from the stored one is a problem (exit 5)', async () => {
    const r = await run(stored('kek-1'), [reports('kek-2', 'kek-2')])
    expect(r.ok).toBe(false)
    expect(r.problems).toEqual([
      expect.stringContaining(
        `stored under KMS key ID ${hash('kek-1')} (kek-1), but every apiserver reports ${hash('kek-2')} as current`,
      ),
    ])
  })

  it('a KMS provider unhealthy on one apiserver is a problem naming the node and what it reports (exit 5)', async () => {
    const sick = reports('kek-1', 'kek-1', 'kek-1').map((r) =>
      r.node === 'cp2'
        ? {
            ...r,
            ready: false,
            kms: [{name: 'kms-providers', ok: false, message: 'kms-provider-0: rpc error: dial unix'}],
          }
        : {...r, ready: true, kms: [{name: 'kms-providers', ok: true}]},
    )
    const r = await run(stored('kek-1'), [sick])
    expect(r.ok).toBe(false)
    expect(r.problems).toEqual([
      'cp2: KMS provider unhealthy: its apiserver reports kms-providers failed: kms-provider-0: rpc error: dial unix (the apiserver is not ready)',
    ])
  })

  it('a write the apiserver cannot encrypt with KMS: KMS_WRITE_FAILED, exit 5, one line with its reason', async () => {
    const reason =
      'Internal error occurred: encryptedDEKSource with keyID hash "sha256:ab" expired at 2026-01-01T00:00:00Z'
    const w = world({createError: new KubeApiError(500, 'InternalError', reason)})
    const sick = reports('kek-1', 'kek-1').map((r) => ({...r, kms: [{name: 'kms-providers', ok: false, message: 'x'}]}))
    const error = await verifyEncryption(
      {resource: SECRETS, namespace: 'default'},
      {...deps(w), config: {config: kmsConfig, source: 'kms.yaml'}, kmsKeys: async () => sick},
    ).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PluginError)
    expect((error as PluginError).code).toBe('KMS_WRITE_FAILED')
    expect((error as PluginError).exitCode).toBe(5)
    expect((error as PluginError).message).toBe(
      `the apiserver could not store a secrets object with kms:vault (KMS provider unhealthy on cp1, cp2): ${reason}`,
    )
  })

  it('apiservers that disagree, or a key ID that changes during the check, are not settled: a note, no verdict', async () => {
    const drift = await run(stored('kek-1'), [reports('kek-1', 'kek-2')])
    expect(drift.ok).toBe(true)
    expect(drift.notes.join('\n')).toContain('the apiservers report different current key IDs for KMS provider vault')
    const moved = await run(stored('kek-1'), [reports('kek-1', 'kek-1'), reports('kek-2', 'kek-2')])
    expect(moved.ok).toBe(true)
    expect(moved.notes.join('\n')).toContain('the current KMS key ID changed during the check')
  })
})
