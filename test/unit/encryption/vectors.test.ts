import {describe, expect, it} from 'vitest'

import {StaticDekKmsService} from '../../../src/encryption/transform/providers/kms-service.js'
import {deriveKmsV2Key} from '../../../src/encryption/transform/providers/kms-v2.js'
import {EncryptionTransformers} from '../../../src/encryption/transform/resource-transformer.js'
import {TransformError} from '../../../src/encryption/transform/transform-error.js'
import {classifyValue} from '../../../src/encryption/storage/value-classifier.js'
import {apiserverErrorsFor, b64, configFor, vectors} from './vectors-helper.js'

describe('golden vectors through the library (docs/kubernetes-behaviour.md §16)', () => {
  it('has the 20 vectors of docs/kubernetes-behaviour.md §16', () => {
    expect(vectors).toHaveLength(20)
  })

  it('kms v2 KDF: the DEK is HKDF-Expand(SHA-256, seed, info = the first 32 bytes of encryptedData) (docs/kubernetes-behaviour.md §3.6)', () => {
    const kdf = vectors.filter((v) => v.seed)
    expect(kdf.length).toBeGreaterThan(0)
    for (const v of kdf) {
      expect(v.key, 'the key a plugin returns is the seed').toBe(v.seed)
      const info = b64(v.info!)
      expect(deriveKmsV2Key(b64(v.seed!), info).equals(b64(v.derivedKey!))).toBe(true)
      // the info is what the envelope carries in front of nonce || ciphertext || tag
      const encryptedData = b64((v.encryptedObject as unknown as {encryptedData: string}).encryptedData)
      expect(encryptedData.subarray(0, 32).equals(info)).toBe(true)
    }
  })

  for (const v of vectors) {
    it(`${v.id}: ${v.expect.startsWith('ok') ? 'decrypts' : 'is refused'}`, () => {
      const etcdKey = b64(v.etcdKey).toString('utf8')
      const kms = v.provider === 'kms' ? {[v.kmsName!]: new StaticDekKmsService(b64(v.key!))} : undefined
      const transformers = new EncryptionTransformers(configFor(v), {kms})
      const stored = b64(v.stored)
      const read = () => transformers.forKey(etcdKey).read(stored, etcdKey)
      const badAnnotation = Object.keys(v.encryptedObject?.annotations ?? {}).find((k) => k.includes('/'))
      if (badAnnotation) {
        // The apiserver validates KMS v2 annotation keys as fully qualified domain names (docs/kubernetes-behaviour.md §3.6)
        // and "a.b/c" is not one: strict mode (the stand-in) refuses the value with its text...
        const strict = new EncryptionTransformers(configFor(v), {kms, envelopeValidation: 'strict'})
        const refused = `failed to validate annotations: annotations: Invalid value: "${badAnnotation}": a lowercase RFC 1123 subdomain`
        expect(() => strict.forKey(etcdKey).read(stored, etcdKey)).toThrow(TransformError)
        let text = ''
        try {
          strict.forKey(etcdKey).read(stored, etcdKey)
        } catch (error) {
          text = (error as Error).message
        }
        expect(text.startsWith(refused)).toBe(true)
        // ...while the offline reader (the default) decrypts it (annotations are not covered by the
        // AAD) and reports, word for word, what the apiserver would answer.
        const result = read()
        expect(result.plaintext.equals(b64(v.plaintext!))).toBe(true)
        expect(result).toMatchObject({provider: 'kms', kmsName: v.kmsName, prefix: v.prefix})
        expect(result.warnings).toEqual([`the apiserver would refuse this value: ${text}`])
        return
      }
      if (v.expect.startsWith('ok')) {
        const result = read()
        expect(result.plaintext.equals(b64(v.plaintext!))).toBe(true)
        expect(result.provider).toBe(v.provider)
        expect(result.prefix).toBe(v.prefix ?? '')
        if (v.keyName) expect(result.keyName).toBe(v.keyName)
        if (v.kmsName) expect(result.kmsName).toBe(v.kmsName)
        // The vector notes that legacy KMS v1 CBC reads back stale (docs/kubernetes-behaviour.md §3.5).
        if (v.expect.includes('stale=true')) expect(result.stale).toBe(true)
        expect(result.warnings).toBeUndefined()
      } else {
        expect(read).toThrow(TransformError)
        try {
          read()
        } catch (error) {
          expect(apiserverErrorsFor(v)).toContain((error as Error).message)
        }
      }
    })

    it(`${v.id}: classifies without a config`, () => {
      const c = classifyValue(b64(v.stored))
      expect(c.provider).toBe(v.provider)
      if (v.provider === 'identity') {
        expect(c.encrypted).toBe(false)
        expect(c.plaintext?.format).toMatch(/protobuf|json/)
      } else {
        expect(c.encrypted).toBe(true)
        expect(c.prefix).toBe(v.prefix)
        if (v.keyName) expect(c.keyName).toBe(v.keyName)
        if (v.kmsName) expect(c.kmsName).toBe(v.kmsName)
      }
    })
  }
})
