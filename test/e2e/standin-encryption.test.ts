/**
 * The stand-in's values go through the transformers of its --encryption-provider-config, built by
 * the plugin's own codec: what it writes decrypts with the vectors' config, what the vectors store
 * it serves, stale values are rewritten on no-op updates (spec §4.2), and reload, metrics, KMS
 * health checks and config errors behave as spec §5, §9–§11 say.
 */
import {createHash} from 'node:crypto'
import {copyFileSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {parse} from 'yaml'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {EncryptionTransformers} from '../../src/encryption/resource-transformer.js'
import {decodeEnvelope} from '../sandbox/apiserver/proto/codec.js'
import {EtcdFixture, StandinFixture} from './standin-fixture.js'

const VECTORS_DIR = '/work/shared/vectors'
const vectors = JSON.parse(readFileSync(join(VECTORS_DIR, 'vectors.json'), 'utf8'))
interface Vector {
  id: string
  provider: string
  expect: string
  etcdKey: string
  stored: string
  plaintext: string
  expectError?: string
}
const allVectors: Vector[] = vectors.vectors
const vectorsConfig = parse(readFileSync(join(VECTORS_DIR, 'encryption-config.yaml'), 'utf8'))
const codec = new EncryptionTransformers(vectorsConfig, {cbcPlausibilityCheck: false})
const b64 = (s: string) => Buffer.from(s).toString('base64')

let etcd: EtcdFixture
let standin: StandinFixture
let configPath: string

const widgetCrd = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: {name: 'widgets.example.com'},
  spec: {
    group: 'example.com',
    names: {plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList'},
    scope: 'Namespaced',
    versions: [{name: 'v1', served: true, storage: true, schema: {openAPIV3Schema: {type: 'object', 'x-kubernetes-preserve-unknown-fields': true}}}],
  },
}

beforeAll(async () => {
  etcd = new EtcdFixture()
  await etcd.start()
  standin = new StandinFixture(etcd)
  configPath = standin.file('encryption-config.yaml')
  copyFileSync(join(VECTORS_DIR, 'encryption-config.yaml'), configPath)
  await standin.start({encryptionConfig: configPath})
  expect((await standin.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', widgetCrd)).status).toBe(201)
})

afterAll(async () => {
  await standin?.dispose()
  await etcd?.stop()
})

describe('values the stand-in writes', () => {
  it('a Secret is stored with the first provider and key and decrypts with the vectors\' config', async () => {
    const r = await standin.request('POST', '/api/v1/namespaces/default/secrets', {apiVersion: 'v1', kind: 'Secret', metadata: {name: 'enc1'}, data: {k: b64('v')}})
    expect(r.status).toBe(201)
    const key = '/registry/secrets/default/enc1'
    const raw = etcd.getRaw(key)!
    expect(raw.subarray(0, 'k8s:enc:aesgcm:v1:key2:'.length).toString()).toBe('k8s:enc:aesgcm:v1:key2:')
    const {plaintext, stale} = codec.forKey(key).read(raw, key)
    expect(stale).toBe(false)
    expect(decodeEnvelope(plaintext)).toMatchObject({kind: 'Secret', metadata: {name: 'enc1', uid: r.body.metadata.uid}, data: {k: b64('v')}})
  })

  it('a custom resource is stored as encrypted Go-style JSON and decrypts with the vectors\' config', async () => {
    const r = await standin.request('POST', '/apis/example.com/v1/namespaces/default/widgets', {apiVersion: 'example.com/v1', kind: 'Widget', metadata: {name: 'wx'}, spec: {token: 't'}})
    expect(r.status).toBe(201)
    const key = '/registry/example.com/widgets/default/wx'
    const raw = etcd.getRaw(key)!
    expect(raw.subarray(0, 23).toString()).toBe('k8s:enc:aescbc:v1:key2:')
    const text = codec.forKey(key).read(raw, key).plaintext.toString()
    expect(text.endsWith('\n')).toBe(true)
    expect(JSON.parse(text)).toMatchObject({apiVersion: 'example.com/v1', kind: 'Widget', metadata: {name: 'wx', namespace: 'default'}, spec: {token: 't'}})
  })
})

describe('values from the vectors put into etcd directly', () => {
  // Not served as objects: KMS values need a KMS plugin; the 192-bit keys are not in the vectors'
  // config; the aligned vector's plaintext is not an API object (the apiserver fails to decode it).
  const positives = allVectors.filter((v) => v.expect === 'ok' && !v.provider.startsWith('kms') && !/-192-|aligned/.test(v.id))
  it.each(positives.map((v): [string, Vector] => [v.id, v]))('%s is served through the API', async (_id, v) => {
    const key = Buffer.from(v.etcdKey, 'base64').toString()
    etcd.putRaw(key, Buffer.from(v.stored, 'base64'))
    const path = key.startsWith('/registry/secrets/')
      ? '/api/v1/namespaces/default/secrets/mysecret'
      : '/apis/example.com/v1/namespaces/default/widgets/w1'
    const r = await standin.request('GET', path)
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    if (key.startsWith('/registry/secrets/')) expect(r.body.data).toEqual({password: b64('hunter2'), username: b64('admin')})
    else expect(r.body.spec).toEqual({token: 's3cr3t'})
  })

  // the wrong-key vector needs a config whose key1 differs (tested below)
  const negatives = allVectors.filter((v) => v.expect === 'error' && !v.provider.startsWith('kms') && !/wrong-key/.test(v.id))
  it.each(negatives.map((v): [string, Vector] => [v.id, v]))('%s gives 500 with the transformer error', async (_id, v) => {
    const key = Buffer.from(v.etcdKey, 'base64').toString()
    etcd.putRaw(key, Buffer.from(v.stored, 'base64'))
    const name = key.split('/').pop()
    const r = await standin.request('GET', `/api/v1/namespaces/default/secrets/${name}`)
    expect(r.status).toBe(500)
    expect(r.body.reason).toBe('InternalError')
    expect(r.body.message.startsWith('Internal error occurred: ')).toBe(true)
    if (v.expectError) expect(r.body.message).toContain(String(v.expectError).replace(/^.*?: /, '').slice(0, 20))
    const list = await standin.request('GET', '/api/v1/namespaces/default/secrets')
    expect(list.status).toBe(500)
    expect(list.body.message).toContain(`unable to transform key "${key}": `)
    etcd.etcdctl(['del', key])
  })
})

describe('no-op updates (spec §4.2)', () => {
  it('skip the write when the stored value is current, rewrite it with the first key when it is stale', async () => {
    const fresh = (await standin.request('GET', '/api/v1/namespaces/default/secrets/enc1')).body
    const same = await standin.request('PUT', '/api/v1/namespaces/default/secrets/enc1', fresh)
    expect(same.body.metadata.resourceVersion).toBe(fresh.metadata.resourceVersion)

    // the aescbc vector is readable but stale (aescbc is the second provider)
    const v = vectors.vectors.find((x: any) => x.id === 'aescbc-128-secret')
    const key = '/registry/secrets/default/mysecret'
    etcd.putRaw(key, Buffer.from(v.stored, 'base64'))
    const stale = (await standin.request('GET', '/api/v1/namespaces/default/secrets/mysecret')).body
    const rewritten = await standin.request('PUT', '/api/v1/namespaces/default/secrets/mysecret', stale)
    expect(rewritten.status).toBe(200)
    expect(Number(rewritten.body.metadata.resourceVersion)).toBeGreaterThan(Number(stale.metadata.resourceVersion))
    const raw = etcd.getRaw(key)!
    expect(raw.subarray(0, 23).toString()).toBe('k8s:enc:aesgcm:v1:key2:')
    expect(codec.forKey(key).read(raw, key).plaintext.equals(Buffer.from(v.plaintext, 'base64'))).toBe(true)
    // now current: the next no-op update is skipped
    const again = await standin.request('PUT', '/api/v1/namespaces/default/secrets/mysecret', rewritten.body)
    expect(again.body.metadata.resourceVersion).toBe(rewritten.body.metadata.resourceVersion)
  })
})

describe('metrics (spec §11)', () => {
  it('counts transformations per provider and key prefix and reports the config hash', async () => {
    const text = (await standin.request('GET', '/metrics')).text
    const hash = `sha256:${createHash('sha256').update(readFileSync(configPath)).digest('hex')}`
    expect(text).toMatch(new RegExp(`apiserver_encryption_config_controller_last_config_info\\{apiserver_id_hash="sha256:[0-9a-f]{64}",hash="${hash}"\\} 1`))
    const sample = (labels: string) => {
      const m = text.match(new RegExp(`apiserver_storage_transformation_operations_total\\{${labels}\\} (\\d+)`))
      return m ? Number(m[1]) : 0
    }
    expect(sample('resource="secrets",status="OK",transformation_type="to_storage",transformer_prefix="k8s:enc:aesgcm:v1:"')).toBeGreaterThan(0)
    expect(sample('resource="secrets",status="OK",transformation_type="to_storage",transformer_prefix="key2:"')).toBeGreaterThan(0)
    expect(sample('resource="secrets",status="OK",transformation_type="from_storage",transformer_prefix="k8s:enc:aescbc:v1:"')).toBeGreaterThan(0)
    expect(sample('resource="widgets.example.com",status="OK",transformation_type="to_storage",transformer_prefix="k8s:enc:aescbc:v1:"')).toBeGreaterThan(0)
    expect(sample('resource="secrets",status="unknown-non-grpc",transformation_type="from_storage",transformer_prefix="k8s:enc:aesgcm:v1:"')).toBeGreaterThan(0)
    expect(sample('resource="secrets",status="unknown-non-grpc",transformation_type="from_storage",transformer_prefix="key2:"')).toBeGreaterThan(0)
    // resources the config does not cover produce no samples
    expect(text).not.toContain('resource="namespaces"')
  })
})

describe('configuration errors and reload', () => {
  it('an invalid config at start prints the apiserver\'s error and exits 1', async () => {
    const bad = new StandinFixture(etcd)
    try {
      const missing = await bad.startExpectingFailure({encryptionConfig: '/nonexistent/enc.yaml'})
      expect(missing.code).toBe(1)
      expect(missing.stderr).toContain(
        'error while loading file: error reading encryption provider configuration file "/nonexistent/enc.yaml": open /nonexistent/enc.yaml: no such file or directory',
      )
      const path = bad.file('bad.yaml')
      writeFileSync(path, readFileSync(configPath, 'utf8').replace('name: key1', 'nmae: key1'))
      const invalid = await bad.startExpectingFailure({encryptionConfig: path})
      expect(invalid.code).toBe(1)
      expect(invalid.stderr).toContain(`error while parsing file: `)
      expect(invalid.stderr).toContain('unknown field')
      expect(invalid.stderr).not.toContain('AAECAwQFBgcICQoLDA0ODw==')
    } finally {
      await bad.dispose()
    }
  })

  it('automatic reload swaps transformers on a changed file and keeps the old ones on a broken file', async () => {
    const node = new StandinFixture(etcd)
    const path = node.file('enc.yaml')
    writeFileSync(path, 'apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [configmaps]\n  providers:\n  - identity: {}\n')
    try {
      await node.start({encryptionConfig: path, extraFlags: ['--encryption-provider-config-automatic-reload=true'], env: {SANDBOX_ENCRYPTION_RELOAD_INTERVAL: '300ms'}})
      const reloads = async () => (await node.request('GET', '/metrics')).text
      expect(await reloads()).not.toContain('automatic_reloads_total{')
      const key1 = 'AAECAwQFBgcICQoLDA0ODw=='
      writeFileSync(path, `apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [configmaps]\n  providers:\n  - aescbc:\n      keys:\n      - name: k1\n        secret: ${key1}\n  - identity: {}\n`)
      const newHash = `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`
      await expect.poll(reloads, {timeout: 10_000}).toContain(`hash="${newHash}"`)
      expect(await reloads()).toMatch(/automatic_reloads_total\{apiserver_id_hash="sha256:[0-9a-f]+",status="success"\} 1/)
      await node.request('POST', '/api/v1/namespaces/default/configmaps', {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'after-reload'}})
      expect(etcd.getRaw('/registry/configmaps/default/after-reload')!.subarray(0, 21).toString()).toBe('k8s:enc:aescbc:v1:k1:')

      writeFileSync(path, 'apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources: []\n')
      await expect.poll(reloads, {timeout: 10_000}).toMatch(/automatic_reloads_total\{apiserver_id_hash="sha256:[0-9a-f]+",status="failure"\} [1-9]/)
      expect(await reloads()).toContain(`hash="${newHash}"`)
      await node.request('POST', '/api/v1/namespaces/default/configmaps', {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'after-broken'}})
      expect(etcd.getRaw('/registry/configmaps/default/after-broken')!.subarray(0, 21).toString()).toBe('k8s:enc:aescbc:v1:k1:')
      expect((await node.request('GET', '/readyz?verbose', undefined, {anonymous: true})).text).toContain('[+]kms-providers ok')
    } finally {
      await node.dispose()
      etcd.etcdctl(['del', '/registry/configmaps/default/', '--prefix'])
    }
  })

  it('a KMS provider whose socket does not exist fails the kms-providers check with a clear message', async () => {
    const node = new StandinFixture(etcd)
    const path = node.file('kms.yaml')
    writeFileSync(
      path,
      'apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [configmaps]\n  providers:\n  - kms:\n      apiVersion: v2\n      name: mykms\n      endpoint: unix:///nonexistent/kms.sock\n  - identity: {}\n',
    )
    try {
      // a failing KMS check keeps /readyz from passing: wait for the server, not for readiness
      await node.start({encryptionConfig: path, waitFor: '/livez'})
      const verbose = await node.request('GET', '/readyz?verbose', undefined, {anonymous: true})
      expect(verbose.status).toBe(500)
      expect(verbose.text).toContain('[-]kms-providers failed: reason withheld')
      const single = await node.request('GET', '/readyz/kms-providers', undefined, {anonymous: true})
      expect(single.status).toBe(500)
      expect(single.text).toContain('kmsv2 Provider mykms is not healthy')
      expect(single.text).toContain('/nonexistent/kms.sock: connect: no such file or directory')
      expect((await node.request('GET', '/livez', undefined, {anonymous: true})).status).toBe(200)
    } finally {
      await node.dispose()
    }
  })

  it('HA caution: a new first key on one node is readable on another only while that one lists it', async () => {
    const oldKey = Buffer.alloc(32, 1).toString('base64')
    const newKey = Buffer.alloc(32, 2).toString('base64')
    const cfg = (keys: [string, string][]) =>
      `apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [configmaps]\n  providers:\n  - aescbc:\n      keys:\n${keys.map(([n, k]) => `      - name: ${n}\n        secret: ${k}\n`).join('')}`
    const a = new StandinFixture(etcd)
    const b = new StandinFixture(etcd)
    writeFileSync(a.file('enc.yaml'), cfg([['new', newKey], ['old', oldKey]]))
    writeFileSync(b.file('enc.yaml'), cfg([['old', oldKey], ['new', newKey]]))
    try {
      await a.start({encryptionConfig: a.file('enc.yaml')})
      await b.start({encryptionConfig: b.file('enc.yaml'), extraFlags: ['--encryption-provider-config-automatic-reload=true'], env: {SANDBOX_ENCRYPTION_RELOAD_INTERVAL: '300ms'}})
      await a.request('POST', '/api/v1/namespaces/default/configmaps', {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'ha'}, data: {k: 'v'}})
      expect(etcd.getRaw('/registry/configmaps/default/ha')!.subarray(0, 22).toString()).toBe('k8s:enc:aescbc:v1:new:')
      expect((await b.request('GET', '/api/v1/namespaces/default/configmaps/ha')).body.data).toEqual({k: 'v'})
      writeFileSync(b.file('enc.yaml'), cfg([['old', oldKey]]))
      await expect
        .poll(async () => (await b.request('GET', '/api/v1/namespaces/default/configmaps/ha')).body.message, {timeout: 10_000})
        .toBe('Internal error occurred: no matching key was found for the provided AES transformer')
    } finally {
      await a.dispose()
      await b.dispose()
      etcd.etcdctl(['del', '/registry/configmaps/default/', '--prefix'])
    }
  })

  it('the wrong-key vector fails to decrypt when key1 is another key', async () => {
    const node = new StandinFixture(etcd)
    const path = node.file('wrong.yaml')
    writeFileSync(path, `apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: key1\n        secret: ${Buffer.alloc(16, 7).toString('base64')}\n`)
    const v = vectors.vectors.find((x: any) => x.id === 'aescbc-128-wrong-key-NEGATIVE')
    etcd.putRaw('/registry/secrets/default/mysecret', Buffer.from(v.stored, 'base64'))
    try {
      await node.start({encryptionConfig: path})
      const r = await node.request('GET', '/api/v1/namespaces/default/secrets/mysecret')
      expect(r.status).toBe(500)
      expect(r.body.message).toMatch(/^Internal error occurred: (invalid padding on input|invalid PKCS7 data \(empty or not padded\))$/)
    } finally {
      await node.dispose()
      etcd.etcdctl(['del', '/registry/secrets/default/mysecret'])
    }
  })
})
