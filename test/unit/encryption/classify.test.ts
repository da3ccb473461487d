import {createHash} from 'node:crypto'

import {describe, expect, it} from 'vitest'

import {viewObject} from '../../../src/encryption/storage/object-view.js'
import {classifyPlaintext} from '../../../src/encryption/storage/plaintext-format.js'
import {classifyValue} from '../../../src/encryption/storage/value-classifier.js'
import {b64, vectors} from './vectors-helper.js'

const secret = b64(vectors.find((v) => v.id === 'identity-secret-protobuf')!.plaintext!)
const crJson = b64(vectors.find((v) => v.id === 'identity-cr-json')!.plaintext!)

describe('classifyValue (docs/kubernetes-behaviour.md §13.4)', () => {
  it('reads apiVersion and kind from the protobuf envelope, also base64-wrapped', () => {
    expect(classifyValue(secret)).toMatchObject({
      encrypted: false,
      provider: 'identity',
      plaintext: {format: 'protobuf', apiVersion: 'v1', kind: 'Secret'},
    })
    expect(classifyValue(Buffer.from(secret.toString('base64')))).toMatchObject({
      plaintext: {format: 'base64-protobuf', apiVersion: 'v1', kind: 'Secret'},
    })
  })

  it('tells JSON, CBOR, YAML and unknown apart', () => {
    expect(classifyPlaintext(crJson)).toEqual({format: 'json', apiVersion: 'example.com/v1', kind: 'Widget'})
    expect(classifyPlaintext(Buffer.from([0xd9, 0xd9, 0xf7, 0xa1]))).toEqual({format: 'cbor'})
    expect(classifyPlaintext(Buffer.from('apiVersion: v1\nkind: Secret\n'))).toEqual({
      format: 'yaml',
      apiVersion: 'v1',
      kind: 'Secret',
    })
    expect(classifyPlaintext(Buffer.from('12345'))).toEqual({format: 'unknown'})
    expect(classifyPlaintext(Buffer.from([0x6b, 0x38, 0x73, 0x00, 0x0a, 0x7f]))).toMatchObject({
      format: 'protobuf',
      problem: expect.stringContaining('malformed'),
    })
  })

  it('k8s:enc: with an unknown provider', () => {
    expect(classifyValue(Buffer.from('k8s:enc:rot13:v1:x:abc'))).toMatchObject({
      encrypted: true,
      provider: 'unknown-encrypted',
      prefix: 'k8s:enc:rot13:',
    })
  })

  it('a KMS v1 name with ":" is found where the length prefix fits', () => {
    const body = Buffer.concat([Buffer.from([0, 4]), Buffer.from('edek'), Buffer.alloc(40)])
    const value = Buffer.concat([Buffer.from('k8s:enc:kms:v1:team:a:'), body])
    expect(classifyValue(value)).toMatchObject({kmsName: 'team:a', kmsV1: {encryptedDEKLength: 4, payloadLength: 40}})
  })

  it('a KMS v2 value reports key ID, its hash, source type and annotations', () => {
    const v = vectors.find((x) => x.id === 'kmsv2-kdf-secret')!
    const c = classifyValue(b64(v.stored))
    expect(c.kmsV2).toMatchObject({
      keyID: 'kek-2024-01',
      keyIDHash: 'sha256:' + createHash('sha256').update('kek-2024-01').digest('hex'),
      encryptedDEKSourceType: 1,
      encryptedDEKSourceTypeName: 'HKDF_SHA256_XNONCE_AES_GCM_SEED',
      annotations: {'kms.example.com/region': Buffer.from('us-east-1').toString('base64')},
    })
    // the vector's annotation key is not a domain name: the apiserver refuses it (docs/kubernetes-behaviour.md §3.6)
    expect(c.kmsV2?.error).toMatch(/^failed to validate annotations: /)
    expect(classifyValue(Buffer.from('k8s:enc:kms:v2:x:\u00ff')).kmsV2?.error).toBeDefined()
    // an empty key ID hashes to an empty label, as in the metrics (docs/kubernetes-behaviour.md §11), and is refused
    const noKeyId = classifyValue(
      Buffer.concat([Buffer.from('k8s:enc:kms:v2:x:'), Buffer.from([0x0a, 1, 0x61, 0x1a, 1, 0x62])]),
    )
    expect(noKeyId.kmsV2).toMatchObject({keyID: '', keyIDHash: '', error: 'failed to validate key id: keyID is empty'})
  })
})

describe('viewObject', () => {
  it('decodes a Secret: metadata, type and data', () => {
    expect(viewObject(secret)).toMatchObject({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {name: 'mysecret', namespace: 'default', uid: '6c1b7a7e-2f7d-4c4e-9d2a-1a2b3c4d5e6f'},
      data: {password: 'hunter2', username: 'admin'},
    })
  })

  it('shows JSON as parsed and explains what it cannot decode', () => {
    expect(viewObject(crJson).json).toMatchObject({kind: 'Widget', spec: {token: 's3cr3t'}})
    expect(viewObject(Buffer.from([1, 2, 3])).problem).toBe('not a serialized Kubernetes object')
  })
})
