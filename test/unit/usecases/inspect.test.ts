import {describe, expect, it} from 'vitest'

import {
  EtcdctlJsonShapeError,
  inspectValue,
  parseEtcdctlJson,
  parseEtcdctlSimple,
} from '../../../src/usecases/inspect.js'
import {b64, configFor, vectors} from '../encryption/vectors-helper.js'

const byId = (id: string) => vectors.find((v) => v.id === id)!
const KEY = '/registry/secrets/default/mysecret'

describe('inspectValue', () => {
  it('reads an aesgcm value with the config and reports provider, key, rule and staleness; no user data without decrypt', () => {
    const v = byId('aesgcm-128-secret')
    const r = inspectValue({value: b64(v.stored), source: 'test', etcdKey: KEY, config: configFor(v)})
    expect(r.classification).toMatchObject({provider: 'aesgcm', keyName: 'key1'})
    expect(r.resource).toMatchObject({group: '', resource: 'secrets', namespace: 'default', name: 'mysecret'})
    // key1 is the second aesgcm key in the vectors config: the next update rewrites it with key2
    expect(r.decryption).toMatchObject({
      status: 'ok',
      provider: 'aesgcm',
      keyName: 'key1',
      rule: 'secrets',
      stale: true,
      plaintext: {format: 'protobuf', kind: 'Secret'},
    })
    expect(r.object).toBeUndefined()
    expect(JSON.stringify(r)).not.toContain('hunter2')
  })

  it('shows the decoded object only with decrypt', () => {
    const v = byId('aesgcm-256-secret')
    const r = inspectValue({value: b64(v.stored), source: 'test', etcdKey: KEY, config: configFor(v), decrypt: true})
    expect(r.decryption).toMatchObject({status: 'ok', keyName: 'key2', stale: false})
    expect(r.object).toMatchObject({kind: 'Secret', data: {password: 'hunter2'}})
  })

  it('reports the apiserver error when nothing decrypts', () => {
    const v = byId('aesgcm-256-wrong-etcdkey-NEGATIVE')
    const r = inspectValue({
      value: b64(v.stored),
      source: 'test',
      etcdKey: b64(v.etcdKey).toString(),
      config: configFor(v),
    })
    expect(r.decryption).toMatchObject({
      status: 'failed',
      error: 'cipher: message authentication failed',
      rule: 'secrets',
    })
  })

  it('a resource the config does not cover refuses encrypted data', () => {
    const v = byId('aescbc-256-secret')
    const r = inspectValue({
      value: b64(v.stored),
      source: 'test',
      etcdKey: '/registry/configmaps/default/x',
      config: configFor(v),
    })
    expect(r.decryption).toMatchObject({
      status: 'failed',
      covered: false,
      error: 'identity transformer tried to read encrypted data',
    })
  })

  it('a KMS value opens with a user DEK even without a config, and not without one', () => {
    const v = byId('kmsv1-gcm-secret')
    const value = b64(v.stored)
    expect(inspectValue({value, source: 't', etcdKey: KEY}).decryption).toMatchObject({
      status: 'not-attempted',
      error: expect.stringContaining('--kms-dek'),
    })
    const r = inspectValue({value, source: 't', etcdKey: KEY, kmsDek: b64(v.key!), decrypt: true})
    expect(r.decryption).toMatchObject({status: 'ok', provider: 'kms', kmsName: 'legacykms'})
    expect(r.object).toMatchObject({kind: 'Secret'})
    expect(JSON.stringify(r)).not.toContain(v.key!)
  })

  it('a KMS v2 seed value refused with a derived DEK or a wrong seed says --kms-dek is the seed, never echoing it', () => {
    const v = byId('kmsv2-kdf-secret') as (typeof vectors)[number] & {derivedKey: string}
    const value = b64(v.stored)
    const derived = b64(v.derivedKey)
    const r = inspectValue({value, source: 't', etcdKey: KEY, kmsDek: derived})
    expect(r.decryption).toMatchObject({status: 'failed', error: 'cipher: message authentication failed'})
    expect(r.notes.join('\n')).toMatch(/--kms-dek was used as the seed .*not a derived DEK/)
    for (const secret of [v.derivedKey, derived.toString('hex'), v.key!, b64(v.key!).toString('hex')])
      expect(JSON.stringify(r)).not.toContain(secret)
    // the seed itself opens it, and no such note is added
    const ok = inspectValue({value, source: 't', etcdKey: KEY, kmsDek: b64(v.key!)})
    expect(ok.decryption.status).toBe('ok')
    expect(ok.notes.join('\n')).not.toContain('--kms-dek was used')
  })

  it('a KMS v1 or v2 AES_GCM_KEY value refused with a wrong DEK says --kms-dek is the DEK', () => {
    for (const id of ['kmsv1-gcm-secret', 'kmsv2-aesgcmkey-secret']) {
      const r = inspectValue({value: b64(byId(id).stored), source: 't', etcdKey: KEY, kmsDek: Buffer.alloc(32, 9)})
      expect(r.decryption.status, id).toBe('failed')
      expect(r.notes.join('\n'), id).toMatch(/--kms-dek was used as the DEK the KMS plugin returns/)
    }
  })

  it('a KMS value under a config with its KMS provider but no --kms-dek is not judged (exit 0), its structure reported', () => {
    const v = byId('kmsv2-aesgcmkey-secret')
    const r = inspectValue({value: b64(v.stored), source: 't', etcdKey: KEY, config: configFor(v)})
    expect(r.decryption).toMatchObject({
      status: 'not-attempted',
      rule: 'secrets',
      error: expect.stringMatching(/^a KMS value opens only with .* pass --kms-dek FILE$/),
    })
    expect(r.classification.kmsV2).toMatchObject({keyID: 'kek-2023-06', encryptedDEKSourceTypeName: 'AES_GCM_KEY'})
    // with the DEK it reads, and the apiserver's verdict is given
    expect(
      inspectValue({value: b64(v.stored), source: 't', etcdKey: KEY, config: configFor(v), kmsDek: b64(v.key!)})
        .decryption,
    ).toMatchObject({status: 'ok', stale: true})
  })

  it('drops an etcdctl trailing newline only when the value does not read as stored', () => {
    const v = byId('aesgcm-256-secret')
    const value = Buffer.concat([b64(v.stored), Buffer.from('\n')])
    const strict = inspectValue({value, source: 't', etcdKey: KEY, config: configFor(v)})
    expect(strict.decryption.status).toBe('failed')
    const lenient = inspectValue({
      value,
      source: 't',
      etcdKey: KEY,
      config: configFor(v),
      trailingNewlineMayBeArtifact: true,
    })
    expect(lenient.decryption.status).toBe('ok')
    expect(lenient.notes[0]).toContain('dropped the final newline')
  })

  it('with anyKey tries every key in the file, whatever resource it is for (docs/kubernetes-behaviour.md §14.2), and judges no staleness', () => {
    const v = byId('secretbox-cr-json')
    const value = b64(v.stored)
    const wrongResource = '/registry/configmaps/default/x'
    // Read as the apiserver would for a configmap: not covered, so encrypted data is refused.
    expect(inspectValue({value, source: 't', etcdKey: wrongResource, config: configFor(v)}).decryption).toMatchObject({
      status: 'failed',
      covered: false,
    })
    const r = inspectValue({value, source: 't', etcdKey: wrongResource, config: configFor(v), anyKey: true})
    expect(r.decryption).toMatchObject({
      status: 'ok',
      provider: 'secretbox',
      keyName: 'key1',
      plaintext: {format: 'json'},
    })
    expect(r.decryption).not.toHaveProperty('stale')
    expect(r.decryption.rule).toBeUndefined()
    // No etcd key at all: secretbox binds no AAD, so it still opens.
    expect(inspectValue({value, source: 't', config: configFor(v), anyKey: true}).decryption).toMatchObject({
      status: 'ok',
      keyName: 'key1',
    })
  })

  it('with anyKey and no etcd key, an aesgcm value cannot be authenticated, and says why', () => {
    const v = byId('aesgcm-128-secret')
    const r = inspectValue({value: b64(v.stored), source: 't', config: configFor(v), anyKey: true})
    expect(r.decryption.status).toBe('failed')
    expect(r.decryption.error).toContain('cipher: message authentication failed')
    expect(r.notes.join('\n')).toContain('without the etcd key, aesgcm and KMS values cannot be authenticated')
    expect(
      inspectValue({value: b64(v.stored), source: 't', etcdKey: KEY, config: configFor(v), anyKey: true}).decryption,
    ).toMatchObject({status: 'ok', keyName: 'key1'})
  })

  it('includes the hexdump on request', () => {
    const r = inspectValue({value: Buffer.from('abc'), source: 't', hexdump: true})
    expect(r.hexdump).toBe('00000000  61 62 63                                          |abc|\n00000003\n')
    expect(r.classification).toMatchObject({encrypted: false, plaintext: {format: 'unknown'}})
  })

  it('binary garbage read by identity is reported as not a serialized object (docs/kubernetes-behaviour.md §13.4 row 11); real objects are not', () => {
    const garbage = Buffer.from([0, 1, 2, 0xfa, 0xfb, 0x0a])
    const v = byId('aesgcm-256-secret')
    const r = inspectValue({value: garbage, source: 't', etcdKey: KEY, config: configFor(v)})
    // the secrets list ends in identity: the transformer passes the bytes (stale), the decoder would not
    expect(r.decryption).toMatchObject({
      status: 'ok',
      provider: 'identity',
      stale: true,
      plaintext: {format: 'unknown'},
    })
    expect(r.notes).toContain(
      'the plaintext is not a serialized Kubernetes object (not protobuf, JSON, CBOR or YAML): the apiserver could not decode it',
    )
    expect(inspectValue({value: garbage, source: 't'}).notes.join()).toContain('not a serialized Kubernetes object')
    for (const id of ['aesgcm-256-secret', 'identity-cr-json', 'identity-secret-protobuf']) {
      const ok = inspectValue({
        value: b64(byId(id).stored),
        source: 't',
        etcdKey: b64(byId(id).etcdKey).toString(),
        config: configFor(byId(id)),
      })
      expect(ok.notes.join(), id).not.toContain('not a serialized Kubernetes object')
    }
  })
})

describe('parseEtcdctlJson', () => {
  it('takes key and value from `etcdctl get -w json`, and tells a missing key from a JSON object', () => {
    const doc = {
      header: {cluster_id: 1, revision: 9},
      kvs: [{key: Buffer.from(KEY).toString('base64'), value: Buffer.from('xyz').toString('base64'), mod_revision: 7}],
      count: 1,
    }
    expect(parseEtcdctlJson(Buffer.from(JSON.stringify(doc)))).toEqual({
      key: KEY,
      value: Buffer.from('xyz'),
      modRevision: 7,
    })
    expect(parseEtcdctlJson(Buffer.from(JSON.stringify({header: {revision: 9}})))).toBeNull()
    expect(parseEtcdctlJson(Buffer.from('{"apiVersion":"v1","kind":"Widget"}\n'))).toBeUndefined()
    expect(parseEtcdctlJson(Buffer.from('k8s\u0000'))).toBeUndefined()
    expect(parseEtcdctlJson(Buffer.from('{"header":{"revision":9},"kvs":[]}'))).toBeNull()
    // etcdctl leaves "value" off for an empty value
    expect(
      parseEtcdctlJson(Buffer.from(JSON.stringify({header: {}, kvs: [{key: Buffer.from(KEY).toString('base64')}]}))),
    ).toMatchObject({key: KEY, value: Buffer.alloc(0)})
  })

  const key64 = Buffer.from(KEY).toString('base64')
  it.each([
    ['kvs not a list', {header: {}, kvs: 'x'}, /"kvs" is not a list/],
    [
      'several pairs (etcdctl get --prefix)',
      {
        header: {},
        kvs: [
          {key: key64, value: 'AA=='},
          {key: key64, value: 'AA=='},
        ],
        count: 2,
      },
      /holds 2 key\/value pairs/,
    ],
    ['an entry that is not an object', {header: {}, kvs: [7]}, /entry is not a key\/value object/],
    ['a numeric key', {header: {}, kvs: [{key: 5, value: 'AA=='}]}, /"key" is not/],
    ['a key that is not base64', {header: {}, kvs: [{key: '!!!', value: 'AA=='}]}, /"key" is not/],
    ['an empty key', {header: {}, kvs: [{key: '', value: 'AA=='}]}, /"key" is not/],
    ['a numeric value', {header: {}, kvs: [{key: key64, value: 12}]}, /"value" is not/],
    [
      'a value with misplaced padding (Go base64 refuses it)',
      {header: {}, kvs: [{key: key64, value: 'AA=A'}]},
      /"value" is not/,
    ],
    ['a value without padding', {header: {}, kvs: [{key: key64, value: 'AAA'}]}, /"value" is not/],
  ])('etcdctl JSON of the wrong shape: %s', (_name, doc, message) => {
    const parse = () => parseEtcdctlJson(Buffer.from(JSON.stringify(doc)))
    expect(parse).toThrow(EtcdctlJsonShapeError)
    expect(parse).toThrow(message)
  })
})

describe('parseEtcdctlSimple (`etcdctl get KEY`: the key line, the value, a newline)', () => {
  const stored = b64(byId('aesgcm-256-secret').stored)
  it('takes the key from the first line and drops the newline etcdctl adds after the value', () => {
    expect(parseEtcdctlSimple(Buffer.concat([Buffer.from(KEY + '\n'), stored, Buffer.from('\n')]))).toEqual({
      key: KEY,
      value: stored,
    })
    expect(parseEtcdctlSimple(Buffer.from('/k8s/secrets/a/b\nxyz\n'), '/k8s')).toEqual({
      key: '/k8s/secrets/a/b',
      value: Buffer.from('xyz'),
    })
  })

  it('leaves stored values alone: no stored value starts with "<root>/" (docs/kubernetes-behaviour.md §13.4)', () => {
    for (const v of vectors) expect(parseEtcdctlSimple(b64(v.stored)), v.id).toBeUndefined()
    expect(parseEtcdctlSimple(Buffer.from('/registry/secrets\nxyz\n'))).toBeUndefined()
    expect(parseEtcdctlSimple(Buffer.from(KEY))).toBeUndefined()
    expect(parseEtcdctlSimple(Buffer.from(KEY + '\nxyz\n'), '/k8s')).toBeUndefined()
  })
})
