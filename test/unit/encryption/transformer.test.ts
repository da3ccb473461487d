import {randomBytes} from 'node:crypto'

import {describe, expect, it} from 'vitest'

import type {EncryptionConfiguration, ProviderSpec} from '../../../src/encryption/config/model.js'
import {type KmsService, StaticDekKmsService} from '../../../src/encryption/transform/providers/kms-service.js'
import {
  EncryptionTransformers,
  ResourceTransformer,
  TransformerBuildError,
} from '../../../src/encryption/transform/resource-transformer.js'
import {TransformError} from '../../../src/encryption/transform/transform-error.js'
import {classifyValue} from '../../../src/encryption/storage/value-classifier.js'
import {b64, vectors, vectorsConfig} from './vectors-helper.js'

const KEY = '/registry/secrets/default/mysecret'
const SECRET = b64(vectors.find((v) => v.id === 'identity-secret-protobuf')!.plaintext!)
const key = (n: number) => randomBytes(n).toString('base64')

const aescbc = (...names: string[]): ProviderSpec => ({aescbc: {keys: names.map((name) => ({name, secret: key(32)}))}})
const aesgcm = (...names: string[]): ProviderSpec => ({aesgcm: {keys: names.map((name) => ({name, secret: key(16)}))}})
const secretbox = (...names: string[]): ProviderSpec => ({
  secretbox: {keys: names.map((name) => ({name, secret: key(32)}))},
})
const identity: ProviderSpec = {identity: {}}

/** A fake KMS: "encrypts" by XOR with a fixed pad and tags the key ID; tests only. */
class FakeKms implements KmsService {
  constructor(public keyId = 'kek-1') {}
  encrypt(plaintext: Buffer) {
    return {
      ciphertext: Buffer.from(plaintext.map((b) => b ^ 0x5a)),
      keyID: this.keyId,
      annotations: new Map([['kms.example.com', Buffer.from('x')]]),
    }
  }
  decrypt({encryptedDEKSource}: {encryptedDEKSource: Buffer}) {
    return Buffer.from(encryptedDEKSource.map((b) => b ^ 0x5a))
  }
  currentKeyId() {
    return this.keyId
  }
}

const chain = (providers: ProviderSpec[], kms?: Record<string, KmsService>) =>
  ResourceTransformer.fromProviders(providers, 'secrets', {kms})

describe('encrypt -> decrypt round trips per provider (docs/kubernetes-behaviour.md §2.3, §3)', () => {
  const cases: Array<[string, ProviderSpec, string]> = [
    ['aescbc', aescbc('k1'), 'k8s:enc:aescbc:v1:k1:'],
    ['aesgcm', aesgcm('k1'), 'k8s:enc:aesgcm:v1:k1:'],
    ['secretbox', secretbox('k1'), 'k8s:enc:secretbox:v1:k1:'],
    ['kms v1', {kms: {name: 'legacy:kms', endpoint: 'unix:///k.sock'}}, 'k8s:enc:kms:v1:legacy:kms:'],
    ['kms v2', {kms: {apiVersion: 'v2', name: 'k2', endpoint: 'unix:///k.sock'}}, 'k8s:enc:kms:v2:k2:'],
  ]
  for (const [name, spec, prefix] of cases) {
    it(`${name}: writes with the prefix, random IVs, and reads back fresh`, () => {
      const t = chain([spec], {'legacy:kms': new FakeKms(), k2: new FakeKms()})
      for (const plaintext of [SECRET, Buffer.from('{"a":1}\n'), Buffer.from('0123456789abcdef'), Buffer.from('x')]) {
        const stored = t.write(plaintext, KEY)
        expect(stored.subarray(0, prefix.length).toString()).toBe(prefix)
        expect(t.write(plaintext, KEY).equals(stored)).toBe(false)
        const read = t.read(stored, KEY)
        expect(read.plaintext.equals(plaintext)).toBe(true)
        expect(read.stale).toBe(false)
        expect(read.prefix).toBe(prefix)
        expect(classifyValue(stored).encrypted).toBe(true)
      }
    })
  }

  it('aescbc and aesgcm round-trip with 16, 24 and 32-byte keys (AES-128/192/256, docs/kubernetes-behaviour.md §3.2, §3.3)', () => {
    for (const size of [16, 24, 32]) {
      for (const type of ['aescbc', 'aesgcm'] as const) {
        const t = chain([{[type]: {keys: [{name: 'k', secret: key(size)}]}}])
        const stored = t.write(SECRET, KEY)
        // IV/nonce, then the body: CBC pads to whole blocks, GCM appends a 16-byte tag
        const body = stored.length - `k8s:enc:${type}:v1:k:`.length
        expect(body, `${type} ${size}`).toBe(
          type === 'aescbc' ? 16 + (Math.floor(SECRET.length / 16) + 1) * 16 : 12 + SECRET.length + 16,
        )
        expect(t.read(stored, KEY).plaintext.equals(SECRET), `${type} ${size}`).toBe(true)
      }
    }
  })

  it('writes as the apiserver does with the vectors config: the first provider and its first key for the resource', () => {
    const transformers = new EncryptionTransformers(vectorsConfig())
    for (const [etcdKey, prefix] of [
      ['/registry/secrets/default/mysecret', 'k8s:enc:aesgcm:v1:key2:'],
      ['/registry/example.com/widgets/default/w1', 'k8s:enc:aescbc:v1:key2:'],
      // not covered: identity check, written as is
      ['/registry/configmaps/default/c', ''],
    ]) {
      const t = transformers.forKey(etcdKey)
      const stored = t.write(SECRET, etcdKey)
      expect(stored.subarray(0, prefix.length).toString()).toBe(prefix)
      expect(t.read(stored, etcdKey)).toMatchObject({stale: false, prefix})
      expect(t.read(stored, etcdKey).plaintext.equals(SECRET)).toBe(true)
    }
  })

  it('identity first writes plaintext unchanged', () => {
    const t = chain([identity, aescbc('k1')])
    expect(t.write(SECRET, KEY)).toBe(SECRET)
  })

  it('kms v2 writes the HKDF seed type with the plugin key ID and annotations', () => {
    const t = chain([{kms: {apiVersion: 'v2', name: 'k2', endpoint: 'unix:///k.sock'}}], {k2: new FakeKms('kek-7')})
    const c = classifyValue(t.write(SECRET, KEY))
    expect(c.kmsV2).toMatchObject({
      keyID: 'kek-7',
      encryptedDEKSourceType: 1,
      encryptedDEKSourceLength: 32,
      annotations: {'kms.example.com': 'eA=='},
    })
    expect(c.kmsV2?.error).toBeUndefined()
  })
})

describe('AEAD binding (docs/kubernetes-behaviour.md §3.3, §3.6)', () => {
  it('aesgcm and kms values do not read under another etcd key; cbc and secretbox do', () => {
    const kms = {k2: new FakeKms(), k1: new FakeKms()}
    for (const spec of [
      aesgcm('k1'),
      {kms: {apiVersion: 'v2', name: 'k2', endpoint: 'unix:///x'}},
      {kms: {name: 'k1', endpoint: 'unix:///x'}},
    ] as ProviderSpec[]) {
      const t = chain([spec], kms)
      expect(() => t.read(t.write(SECRET, KEY), KEY + 'x')).toThrow('cipher: message authentication failed')
    }
    for (const spec of [aescbc('k1'), secretbox('k1')]) {
      const t = chain([spec])
      expect(t.read(t.write(SECRET, KEY), KEY + 'x').plaintext.equals(SECRET)).toBe(true)
    }
  })
})

describe('staleness (docs/kubernetes-behaviour.md §4.1)', () => {
  it.each([
    [
      'first provider, first key',
      () => {
        const t = chain([aesgcm('a', 'b'), identity])
        return [t, t.write(SECRET, KEY)] as const
      },
      false,
    ],
    [
      'first provider, second key',
      () => {
        const a = aesgcm('a', 'b')
        const onlyB = chain([{aesgcm: {keys: [a.aesgcm!.keys[1]]}}])
        return [chain([a]), onlyB.write(SECRET, KEY)] as const
      },
      true,
    ],
    [
      'second provider',
      () => {
        const cbc = aescbc('a')
        return [chain([aesgcm('g'), cbc]), chain([cbc]).write(SECRET, KEY)] as const
      },
      true,
    ],
    ['identity, not first', () => [chain([aesgcm('g'), identity]), SECRET] as const, true],
    ['identity, first', () => [chain([identity, aesgcm('g')]), SECRET] as const, false],
    ['uncovered resource, plaintext', () => [ResourceTransformer.uncovered(), SECRET] as const, false],
  ])('%s -> stale=%s', (_name, make, stale) => {
    const [t, stored] = make()
    expect(t.read(stored, KEY).stale).toBe(stale)
  })

  it('kms v2: a key ID that is no longer current is stale; another DEK under the same key ID is not', () => {
    const plugin = new FakeKms('kek-1')
    const spec: ProviderSpec = {kms: {apiVersion: 'v2', name: 'k2', endpoint: 'unix:///x'}}
    const first = chain([spec], {k2: plugin})
    const stored = first.write(SECRET, KEY)
    const other = chain([spec], {k2: plugin}).write(SECRET, KEY) // another replica: other seed, same key ID
    expect(first.read(other, KEY).stale).toBe(false)
    plugin.keyId = 'kek-2'
    expect(first.read(stored, KEY).stale).toBe(true)
  })

  it('kms v2: an AES_GCM_KEY value (source type 0) reads stale, as writes use the HKDF seed type; kms v1 legacy CBC reads stale (docs/kubernetes-behaviour.md §3.5, §3.6)', () => {
    for (const [id, stale] of [
      ['kmsv2-aesgcmkey-secret', true],
      ['kmsv2-kdf-secret', false],
      ['kmsv1-legacy-cbc-secret', true],
      ['kmsv1-gcm-secret', false],
    ] as const) {
      const v = vectors.find((x) => x.id === id)!
      const t = chain([{kms: {apiVersion: v.kmsApiVersion, name: v.kmsName!, endpoint: 'unix:///x'}}], {
        [v.kmsName!]: new StaticDekKmsService(b64(v.key!)),
      })
      const etcdKey = b64(v.etcdKey).toString()
      expect(t.read(b64(v.stored), etcdKey), id).toMatchObject({stale, provider: 'kms', kmsName: v.kmsName})
    }
  })

  it('a value written with a key that is now second reads stale, and rewriting makes it fresh (the rotation loop)', () => {
    const cfg = aescbc('new', 'old')
    const previous = chain([{aescbc: {keys: [cfg.aescbc!.keys[1]]}}]).write(SECRET, KEY)
    const now = chain([cfg])
    const read = now.read(previous, KEY)
    expect(read).toMatchObject({stale: true, keyName: 'old'})
    const rewritten = now.write(read.plaintext, KEY)
    expect(now.read(rewritten, KEY)).toMatchObject({stale: false, keyName: 'new'})
  })
})

describe('read failures (docs/kubernetes-behaviour.md §2.4, §4.3)', () => {
  it('an uncovered resource refuses encrypted data', () => {
    const stored = chain([aescbc('k1')]).write(SECRET, KEY)
    expect(() => ResourceTransformer.uncovered().read(stored, KEY)).toThrow(
      'identity transformer tried to read encrypted data',
    )
  })

  it('identity alone: encrypted data gives "no matching prefix found" (identity failures are not recorded)', () => {
    const stored = chain([aescbc('k1')]).write(SECRET, KEY)
    expect(() => chain([identity]).read(stored, KEY)).toThrow(new TransformError('no matching prefix found'))
  })

  it('no provider prefix matches', () => {
    const stored = chain([secretbox('k1')]).write(SECRET, KEY)
    expect(() => chain([aescbc('k1'), aesgcm('k1')]).read(stored, KEY)).toThrow(/^no matching prefix found$/)
  })

  it('provider matches but no key name matches', () => {
    expect(() => chain([aescbc('k1')]).read(chain([aescbc('k2')]).write(SECRET, KEY), KEY)).toThrow(
      /^no matching key was found for the provided AES transformer$/,
    )
    expect(() => chain([secretbox('k1')]).read(chain([secretbox('k2')]).write(SECRET, KEY), KEY)).toThrow(
      /^no matching key was found for the provided Secretbox transformer$/,
    )
  })

  it('key names with ":" are matched by their whole "<name>:" prefix in order, as the apiserver does (docs/kubernetes-behaviour.md §2.5)', () => {
    const spec = aesgcm('a', 'a:b')
    const t = chain([spec])
    const written = chain([{aesgcm: {keys: [spec.aesgcm!.keys[1]]}}]).write(SECRET, KEY)
    expect(written.subarray(0, 'k8s:enc:aesgcm:v1:a:b:'.length).toString()).toBe('k8s:enc:aesgcm:v1:a:b:')
    // "a:" is a prefix of "a:b:…" too: key a is tried first and fails, then a:b opens it (second key: stale)
    expect(t.read(written, KEY)).toMatchObject({keyName: 'a:b', stale: true, prefix: 'k8s:enc:aesgcm:v1:a:b:'})
    // the classifier's name is only the text up to the next ":" (a heuristic)
    expect(classifyValue(written).keyName).toBe('a')
    // without a:b in the config the error is key a's failure, not "no matching key"
    expect(() => chain([aesgcm('a')]).read(written, KEY)).toThrow(/^cipher: message authentication failed$/)
  })

  it('a matched prefix that fails does not stop the search: a later entry with the same prefix succeeds', () => {
    const right = aesgcm('k1')
    const stored = chain([right]).write(SECRET, KEY)
    const t = chain([aesgcm('k1'), right])
    expect(t.read(stored, KEY)).toMatchObject({stale: true, provider: 'aesgcm', keyName: 'k1'})
    // and at the key level: two keys with the same name
    const sameName = {aesgcm: {keys: [aesgcm('k1').aesgcm!.keys[0], right.aesgcm!.keys[0]]}}
    expect(chain([sameName]).read(stored, KEY)).toMatchObject({stale: true, keyName: 'k1'})
  })

  it('several failures are joined as [a, b] with duplicates removed; one distinct message stays bare', () => {
    const stored = chain([aesgcm('k1')]).write(SECRET, KEY)
    const twoWrong = chain([aesgcm('k1'), aesgcm('k1')])
    expect(() => twoWrong.read(stored, KEY)).toThrow(/^cipher: message authentication failed$/)
    const mixed = chain([aesgcm('k1'), aesgcm('k2'), identity])
    let error: TransformError | undefined
    try {
      mixed.read(stored, KEY)
    } catch (e) {
      error = e as TransformError
    }
    expect(error?.message).toBe(
      '[cipher: message authentication failed, no matching key was found for the provided AES transformer]',
    )
    expect(error?.messages).toHaveLength(2)
  })

  it('aescbc check order: short body, block multiple, padding (docs/kubernetes-behaviour.md §3.2)', () => {
    const t = chain([{aescbc: {keys: [{name: 'k', secret: key(16)}]}}])
    const p = Buffer.from('k8s:enc:aescbc:v1:k:')
    expect(() => t.read(Buffer.concat([p, randomBytes(15)]), KEY)).toThrow(
      /^the stored data was shorter than the required size$/,
    )
    expect(() => t.read(Buffer.concat([p, randomBytes(16 + 17)]), KEY)).toThrow(
      /^the stored data is not a multiple of the block size$/,
    )
    expect(() => t.read(Buffer.concat([p, randomBytes(16)]), KEY)).toThrow(
      /^invalid PKCS7 data \(empty or not padded\)$/,
    )
    // random ciphertext: almost always bad padding; the guard catches the rare accidental pass
    const errors = new Set<string>()
    for (let i = 0; i < 300; i++) {
      try {
        t.read(Buffer.concat([p, randomBytes(16 + 64)]), KEY)
      } catch (e) {
        errors.add((e as Error).message)
      }
    }
    expect(
      [...errors].every((m) => /invalid padding on input|invalid PKCS7 data|not a serialized object/.test(m)),
    ).toBe(true)
    expect(errors.has('invalid padding on input')).toBe(true)
  })

  it('aesgcm and secretbox short bodies', () => {
    expect(() => chain([aesgcm('k')]).read(Buffer.from('k8s:enc:aesgcm:v1:k:12345678901'), KEY)).toThrow(
      /^the stored data was shorter than the required size$/,
    )
    expect(() => chain([aesgcm('k')]).read(Buffer.from('k8s:enc:aesgcm:v1:k:1234567890123'), KEY)).toThrow(
      /^cipher: message authentication failed$/,
    )
    expect(() =>
      chain([secretbox('k')]).read(Buffer.concat([Buffer.from('k8s:enc:secretbox:v1:k:'), randomBytes(39)]), KEY),
    ).toThrow(/^the stored data was shorter than the required size$/)
  })

  it('kms without a DEK or plugin reports what is missing; kms v1 with a short header', () => {
    const t = chain([{kms: {apiVersion: 'v2', name: 'k2', endpoint: 'unix:///x'}}], {k2: new FakeKms()})
    const stored = t.write(SECRET, KEY)
    expect(() => chain([{kms: {apiVersion: 'v2', name: 'k2', endpoint: 'unix:///x'}}]).read(stored, KEY)).toThrow(
      /^failed to decrypt DEK, error: /,
    )
    expect(() =>
      chain([{kms: {name: 'k1', endpoint: 'unix:///x'}}]).read(Buffer.from('k8s:enc:kms:v1:k1:\u0000\u0009abc'), KEY),
    ).toThrow('invalid data encountered by envelope transformer: failed to read uint16 length prefixed data')
  })

  it("a KMS plugin's Decrypt failure: v2 wraps it as 'failed to decrypt DEK, error: %v', v1 returns it as is", () => {
    class FailingKms extends FakeKms {
      override decrypt(): never {
        throw new Error('rpc error: code = Unavailable desc = connection refused')
      }
    }
    for (const [spec, expected] of [
      [
        {kms: {apiVersion: 'v2', name: 'k', endpoint: 'unix:///x'}},
        /^failed to decrypt DEK, error: rpc error: code = Unavailable desc = connection refused$/,
      ],
      [{kms: {name: 'k', endpoint: 'unix:///x'}}, /^rpc error: code = Unavailable desc = connection refused$/],
    ] as const) {
      const stored = chain([spec], {k: new FakeKms()}).write(SECRET, KEY)
      expect(() => chain([spec], {k: new FailingKms()}).read(stored, KEY)).toThrow(expected)
    }
  })

  for (const envelopeValidation of ['report', 'strict'] as const)
    it(`kms v2 envelope validation on read (docs/kubernetes-behaviour.md §3.6): unusable envelopes fail in ${envelopeValidation} mode`, () => {
      const spec: ProviderSpec = {kms: {apiVersion: 'v2', name: 'k2', endpoint: 'unix:///x'}}
      const t = ResourceTransformer.fromProviders([spec], 'secrets', {kms: {k2: new FakeKms()}, envelopeValidation})
      const p = Buffer.from('k8s:enc:kms:v2:k2:')
      const read = (body: number[]) => () => t.read(Buffer.concat([p, Buffer.from(body)]), KEY)
      expect(read([0x28, 0x02])).toThrow(/^unknown encryptedDEKSourceType: 2$/)
      expect(read([0x12, 0x01, 0x6b])).toThrow(/^encrypted data is empty$/)
      expect(read([0x0a, 0x01, 0x00])).toThrow(
        /^failed to validate encrypted DEK source: encrypted DEK source is empty$/,
      )
      expect(read([0x0a, 0x01, 0x00, 0x1a, 0x01, 0x00])).toThrow(/^failed to validate key id: keyID is empty$/)
      const big = Buffer.concat([Buffer.from([0x0a, 0x01, 0x00, 0x1a, 0x81, 0x08]), Buffer.alloc(1025)])
      expect(read([...big])).toThrow(
        /^failed to validate encrypted DEK source: encrypted DEK source is 1025 bytes, which exceeds the max size of 1024$/,
      )
    })
})

describe('kms v2 annotation keys the apiserver refuses (docs/kubernetes-behaviour.md §3.6)', () => {
  const spec: ProviderSpec = {kms: {apiVersion: 'v2', name: 'k2', endpoint: 'unix:///x'}}
  class BadAnnotationKms extends FakeKms {
    override encrypt(plaintext: Buffer) {
      return {
        ...super.encrypt(plaintext),
        annotations: new Map([
          ['kms.example.com/zone', Buffer.from('a')],
          ['Upper.Example.com', Buffer.from('b')],
        ]),
      }
    }
  }
  const kms = {k2: new BadAnnotationKms()}
  const stored = chain([spec], kms).write(SECRET, KEY)

  it('strict (the stand-in) refuses with the apiserver text; report (the default) decrypts and warns with it', () => {
    const strict = ResourceTransformer.fromProviders([spec], 'secrets', {kms, envelopeValidation: 'strict'})
    let refused = ''
    try {
      strict.read(stored, KEY)
    } catch (error) {
      expect(error).toBeInstanceOf(TransformError)
      refused = (error as Error).message
    }
    // both keys are reported, in the aggregate's bracketed form
    expect(refused).toMatch(
      /^failed to validate annotations: \[annotations: Invalid value: "Upper.Example.com": a lowercase RFC 1123 subdomain.*, annotations: Invalid value: "kms.example.com\/zone": a lowercase RFC 1123 subdomain.*\]$/,
    )
    const read = chain([spec], kms).read(stored, KEY)
    expect(read.plaintext.equals(SECRET)).toBe(true)
    expect(read.warnings).toEqual([`the apiserver would refuse this value: ${refused}`])
  })

  it('a valid envelope reads without warnings, and a bad one still fails on a wrong AAD', () => {
    const good = chain([spec], {k2: new FakeKms()})
    expect(good.read(good.write(SECRET, KEY), KEY).warnings).toBeUndefined()
    expect(() => chain([spec], kms).read(stored, '/registry/secrets/default/other')).toThrow(
      /^cipher: message authentication failed$/,
    )
  })
})

describe('building from a configuration (docs/kubernetes-behaviour.md §8)', () => {
  const config: EncryptionConfiguration = {
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'EncryptionConfiguration',
    resources: [
      {resources: ['secrets'], providers: [aesgcm('s')]},
      {resources: ['*.apps'], providers: [secretbox('a')]},
      {resources: ['*.*'], providers: [aescbc('all')]},
    ],
  }

  it('picks the list by exact resource, then *.group, then *.*, else the identity check; no fallthrough', () => {
    const all = new EncryptionTransformers(config)
    expect(all.forKey('/registry/secrets/ns/x').writeProvider).toMatchObject({provider: 'aesgcm', keyName: 's'})
    expect(all.forKey('/registry/deployments/ns/x').writeProvider).toMatchObject({provider: 'secretbox'})
    expect(all.forKey('/registry/example.com/widgets/ns/x').writeProvider).toMatchObject({provider: 'aescbc'})
    const onlySecrets = new EncryptionTransformers({...config, resources: [config.resources[0]]})
    expect(onlySecrets.forKey('/registry/configmaps/ns/x').covered).toBe(false)
    // A secret written under *.* (aescbc) does not read through the secrets list.
    const cbcValue = all.forKey('/registry/configmaps/ns/x').write(SECRET, '/registry/secrets/ns/x')
    expect(() => all.forKey('/registry/secrets/ns/x').read(cbcValue, '/registry/secrets/ns/x')).toThrow(
      'no matching prefix found',
    )
  })

  it('refuses a key that is not Go base64 or has the wrong length, without echoing it', () => {
    const bad = (secret: string) => () =>
      new EncryptionTransformers({
        ...config,
        resources: [{resources: ['secrets'], providers: [{aescbc: {keys: [{name: 'k', secret}]}}]}],
      })
    expect(bad('AAECAwQFBgcICQoLDA0ODw')).toThrow(TransformerBuildError)
    expect(bad('AAECAwQFBgcICQoLDA0ODw')).toThrow(
      'resources[0].providers[0].aescbc.keys[0].secret: Invalid value: "REDACTED": secrets must be base64 encoded',
    )
    expect(bad('AAECAwQFBgcICQoLDA0O')).toThrow('got 15, expected one of [16 24 32]')
  })
})
