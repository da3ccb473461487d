import {readFileSync} from 'node:fs'
import {parse} from 'yaml'
import {describe, expect, it} from 'vitest'

import {
  addKey,
  dropAllKeys,
  maskSecrets,
  newConfig,
  nextKeyName,
  promoteKey,
  putIdentityFirst,
  removeKey,
} from '../../../src/encryption/config/edit.js'
import {keyFingerprint} from '../../../src/encryption/fingerprint.js'

const fixture = (path: string) => readFileSync(new URL(`../../fixtures/${path}`, import.meta.url), 'utf8')
const seed = fixture('configs/seed-with-comments.yaml')
const vectors = fixture('vectors/encryption-config.yaml')

type Provider = Record<string, {keys?: Array<{name: string; secret: string}>}>
interface Config {
  resources: Array<{resources: string[]; providers: Provider[]}>
}
const cfg = (text: string) => parse(text) as Config
const providerTypes = (text: string, entry: number) =>
  cfg(text).resources[entry]?.providers.map((p) => Object.keys(p)[0])
const keyNames = (text: string, entry: number, provider: number) =>
  Object.values(cfg(text).resources[entry]?.providers[provider] ?? {})[0]?.keys?.map((k) => k.name)
const secretsOf = (text: string) => [...text.matchAll(/secret:\s*(\S+)/g)].map((m) => m[1] ?? '')
const comments = [
  '# Cluster encryption config',
  '# generated 2025-01-10',
  '# this fallback allows reading unencrypted secrets;',
  '# for example, during initial migration',
  '# do not encrypt Events',
  '# wildcard match requires',
]

describe('EncryptionConfiguration edits on the YAML document', () => {
  it('adds a new key as the SECOND key of the write provider of every locally keyed entry, comments kept', () => {
    const edit = addKey(seed, {keyName: 'key3'})
    expect(edit.keys).toEqual([
      {name: 'key3', provider: 'aescbc', fingerprint: expect.stringMatching(/^sha256:[0-9a-f]{64}$/)},
    ])
    expect(keyNames(edit.text, 0, 0)).toEqual(['key1', 'key3'])
    expect(keyNames(edit.text, 2, 0)).toEqual(['key2', 'key3'])
    expect(providerTypes(edit.text, 1)).toEqual(['identity'])
    for (const c of comments) expect(edit.text).toContain(c)
    const secret = cfg(edit.text).resources[0]?.providers[0]?.aescbc?.keys?.[1]?.secret ?? ''
    expect(Buffer.from(secret, 'base64')).toHaveLength(32)
    expect(cfg(edit.text).resources[2]?.providers[0]?.aescbc?.keys?.[1]?.secret).toBe(secret)
    expect(edit.keys[0]?.fingerprint).toBe(keyFingerprint(secret))
    expect(JSON.stringify({changes: edit.changes, keys: edit.keys})).not.toContain(secret)
  })

  it('never regenerates a key the file already has: same name again is a no-op', () => {
    const first = addKey(seed, {keyName: 'key9'})
    const again = addKey(first.text, {keyName: 'key9'})
    expect(again.changed).toBe(false)
    expect(again.text).toBe(first.text)
    expect(again.keys).toEqual(first.keys)
  })

  it('limits edits to the named resources and refuses names the file lacks', () => {
    const edit = addKey(seed, {resources: ['*.apps'], keyName: 'key3'})
    expect(keyNames(edit.text, 0, 0)).toEqual(['key1'])
    expect(keyNames(edit.text, 2, 0)).toEqual(['key2', 'key3'])
    expect(() => addKey(seed, {resources: ['pandas']})).toThrow(
      expect.objectContaining({code: 'CONFIG_RESOURCE_NOT_FOUND', exitCode: 3}),
    )
  })

  it("promotes the new key to first, then removes the old one (the seed's rotation)", () => {
    const added = addKey(seed, {resources: ['secrets'], keyName: 'key3'})
    const promoted = promoteKey(added.text, {provider: 'aescbc', keyName: added.keyName})
    expect(promoted.changes).toEqual(['made key3 the first aescbc key for secrets,configmaps'])
    expect(keyNames(promoted.text, 0, 0)).toEqual(['key3', 'key1'])
    expect(promoteKey(promoted.text, {provider: 'aescbc', keyName: 'key3'}).changed).toBe(false)
    const removed = removeKey(promoted.text, {keyName: 'key1', provider: 'aescbc'})
    expect(keyNames(removed.text, 0, 0)).toEqual(['key3'])
    expect(removed.text).toContain('# this fallback allows reading unencrypted secrets;')
    expect(removeKey(removed.text, {keyName: 'key1'}).changed).toBe(false)
  })

  it('refuses to remove the write key or the last provider of an entry', () => {
    expect(() => removeKey(seed, {keyName: 'key1'})).toThrow(expect.objectContaining({code: 'CONFIG_KEY_IN_USE'}))
    expect(() => promoteKey(seed, {provider: 'aescbc', keyName: 'nope'})).toThrow(
      expect.objectContaining({code: 'CONFIG_KEY_NOT_FOUND'}),
    )
  })

  it('switches provider: new provider second (readable), then first, old one kept readable', () => {
    const added = addKey(seed, {resources: ['secrets'], provider: 'secretbox'})
    expect(providerTypes(added.text, 0)).toEqual(['aescbc', 'secretbox', 'identity'])
    const promoted = promoteKey(added.text, {provider: 'secretbox', keyName: added.keyName})
    expect(providerTypes(promoted.text, 0)).toEqual(['secretbox', 'aescbc', 'identity'])
    const removed = removeKey(promoted.text, {keyName: 'key1', provider: 'aescbc', resources: ['secrets']})
    expect(providerTypes(removed.text, 0)).toEqual(['secretbox', 'identity'])
    expect(removed.changes).toEqual(['removed aescbc provider (its only key was key1) for secrets,configmaps'])
  })

  it('puts identity first for decrypt-all, keeping every key readable', () => {
    const edit = putIdentityFirst(seed)
    expect(providerTypes(edit.text, 0)).toEqual(['identity', 'aescbc'])
    expect(providerTypes(edit.text, 2)).toEqual(['identity', 'aescbc'])
    expect(providerTypes(edit.text, 1)).toEqual(['identity'])
    expect(secretsOf(edit.text)).toEqual(secretsOf(seed))
    expect(edit.text).toContain('# do not encrypt Events')
    expect(putIdentityFirst(edit.text).changed).toBe(false)
  })

  it('drops all keys when encryption is removed: no key material left in the file', () => {
    const edit = dropAllKeys(putIdentityFirst(seed).text)
    expect(secretsOf(edit.text)).toEqual([])
    expect(cfg(edit.text).resources.map((r) => r.providers)).toEqual([
      [{identity: {}}],
      [{identity: {}}],
      [{identity: {}}],
    ])
  })

  it('works on the shared vectors config (several providers, repeated key names)', () => {
    const added = addKey(vectors, {keyName: 'key3'})
    expect(keyNames(added.text, 0, 0)).toEqual(['key2', 'key3', 'key1'])
    expect(providerTypes(added.text, 1)).toEqual(['aescbc', 'aesgcm', 'secretbox', 'identity'])
    expect(keyNames(added.text, 1, 0)).toEqual(['key2', 'key3'])
    expect(added.keys.map((k) => k.provider)).toEqual(['aesgcm', 'aescbc'])
    expect(added.keys[0]?.fingerprint).not.toBe(added.keys[1]?.fingerprint)
    const toGcm = addKey(vectors, {provider: 'aesgcm', keyName: 'key3'})
    expect(providerTypes(toGcm.text, 1)).toEqual(['aescbc', 'aesgcm', 'secretbox', 'identity'])
    expect(keyNames(toGcm.text, 1, 1)).toEqual(['key3', 'key2'])
    expect(keyNames(promoteKey(toGcm.text, {provider: 'aesgcm', keyName: 'key3'}).text, 1, 0)).toEqual(['key3', 'key2'])
  })

  it('generates a new config with a fresh 32-byte key (secretbox by default, as config generate) and identity as read fallback', () => {
    const a = newConfig({resources: ['secrets', '*.apps'], provider: 'secretbox'})
    const b = newConfig()
    expect(cfg(a.text).resources[0]).toMatchObject({
      resources: ['secrets', '*.apps'],
      providers: [{secretbox: {keys: [{name: expect.stringMatching(/^key-\d{8}T\d{6}Z$/)}]}}, {identity: {}}],
    })
    expect(a.key.fingerprint).not.toBe(b.key.fingerprint)
    expect(providerTypes(b.text, 0)).toEqual(['secretbox', 'identity'])
    expect(Buffer.from(secretsOf(b.text)[0] ?? '', 'base64')).toHaveLength(32)
  })

  it('names a new key key-<UTC time>, never reusing a name in the file (issue 13 item 12)', () => {
    const now = new Date('2026-12-04T16:05:07.123Z')
    // a counter would give key3 here, and key1 again after decrypt-all + enable
    expect(nextKeyName(vectors, now)).toBe('key-20261204T160507Z')
    const once = addKey(vectors, {keyName: nextKeyName(vectors, now)})
    expect(nextKeyName(once.text, now)).toBe('key-20261204T160507Z-2')
    expect(nextKeyName(addKey(once.text, {keyName: nextKeyName(once.text, now)}).text, now)).toBe(
      'key-20261204T160507Z-3',
    )
    expect(addKey(seed, {}).keyName).toMatch(/^key-\d{8}T\d{6}Z$/)
  })

  it('masks every secret with a fingerprint marker, in YAML and JSON', () => {
    const edit = addKey(seed, {})
    const masked = maskSecrets(edit.text)
    for (const secret of secretsOf(edit.text)) expect(masked).not.toContain(secret)
    expect(masked.match(/<redacted sha256:[0-9a-f]{12}>/g)).toHaveLength(4)
    expect(new Set(masked.match(/<redacted sha256:[0-9a-f]{12}>/g)).size).toBe(3)
    const json = JSON.stringify({
      resources: [
        {providers: [{aescbc: {keys: [{name: 'k', secret: 'dGhpcyBpcyBhIDMyIGJ5dGUga2V5IGZvciBzZWNyZXQ='}]}}]},
      ],
    })
    expect(maskSecrets(json)).not.toContain('dGhpcyBpcyBh')
    expect(maskSecrets('broken: [\n  secret: dGhpcyBpcyBhIDMyIGJ5dGUga2V5IGZvciBzZWNyZXQ=\n')).not.toContain(
      'dGhpcyBpcyBh',
    )
  })
})
