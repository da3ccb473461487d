import {chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'

import {parseEncryptionConfig} from '../../../src/encryption/config/decode.js'
import {keyFingerprint} from '../../../src/encryption/fingerprint.js'
import {
  defaultKeyName,
  generateConfig,
  generateKmsConfig,
  kmsEndpointProblem,
} from '../../../src/encryption/config/generate.js'
import {validateEncryptionConfig} from '../../../src/encryption/config/verdict.js'
import {writePrivateFile} from '../../../src/state/private-file.js'

describe('generateConfig', () => {
  it.each([
    ['secretbox', 32, ['secrets'], false],
    ['aesgcm', 16, ['secrets', 'configmaps'], true],
    ['aesgcm', 24, ['*.*'], false],
    ['aescbc', 32, ['*.', '*.apps', 'widgets.example.com'], true],
  ] as const)(
    '%s/%d for %j (identity fallback %s) passes the validator',
    (provider, size, resources, identityFallback) => {
      const key = Buffer.alloc(size, 0x5a)
      const out = generateConfig({provider, keyName: 'k1', key, resources: [...resources], identityFallback})
      const parsed = parseEncryptionConfig(out.text)
      expect(parsed.errors).toEqual([])
      expect(validateEncryptionConfig(parsed.config!).errors).toEqual([])
      expect(parsed.config?.resources[0]?.resources).toEqual(resources)
      expect(parsed.config?.resources[0]?.providers.map((p) => Object.keys(p)[0])).toEqual(
        identityFallback ? [provider, 'identity'] : [provider],
      )
      expect(out.fingerprint).toBe(keyFingerprint(key.toString('base64')))
    },
  )

  it('names keys key-<UTC timestamp> without ":"', () => {
    expect(defaultKeyName(new Date('2026-11-27T21:05:00.123Z'))).toBe('key-20261127T210500Z')
  })
})

describe('generateKmsConfig', () => {
  it('writes a v2 kms provider (name, endpoint, timeout) that passes the validator', () => {
    const out = generateKmsConfig({
      name: 'kms-plugin',
      endpoint: 'unix:///var/run/kmsplugin/socket.sock',
      timeout: '3s',
      apiVersion: 'v2',
      resources: ['secrets'],
      identityFallback: true,
    })
    const parsed = parseEncryptionConfig(out.text)
    expect(parsed.errors).toEqual([])
    expect(validateEncryptionConfig(parsed.config!).errors).toEqual([])
    expect(parsed.config?.resources[0]?.providers).toEqual([
      {kms: {apiVersion: 'v2', name: 'kms-plugin', endpoint: 'unix:///var/run/kmsplugin/socket.sock', timeout: '3s'}},
      {identity: {}},
    ])
  })

  it.each([
    ['unix:///var/run/kmsplugin/socket.sock', undefined],
    ['', 'is empty'],
    ['/var/run/kms.sock', 'must start with unix://'],
    ['tcp://127.0.0.1:1', 'must start with unix://'],
    ['unix://var/run/kms.sock', 'absolute socket path'],
    ['unix:///var/run/', 'not a directory'],
    ['unix:///var/run/a b.sock', 'must not contain spaces'],
  ])('endpoint %j: %s', (endpoint, problem) => {
    if (problem === undefined) expect(kmsEndpointProblem(endpoint)).toBeUndefined()
    else expect(kmsEndpointProblem(endpoint)).toContain(problem)
  })
})

describe('writePrivateFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'private-file-'))
  afterAll(() => rmSync(dir, {recursive: true, force: true}))

  it('creates 0600 even under a permissive umask, refuses to replace, replaces atomically with force', async () => {
    const path = join(dir, 'enc.yaml')
    const old = process.umask(0)
    try {
      await writePrivateFile(path, 'one')
    } finally {
      process.umask(old)
    }
    expect(statSync(path).mode & 0o777).toBe(0o600)
    await expect(writePrivateFile(path, 'two')).rejects.toMatchObject({code: 'OUTPUT_EXISTS', exitCode: 3})
    expect(readFileSync(path, 'utf8')).toBe('one')
    writeFileSync(path, 'loose')
    chmodSync(path, 0o644)
    await writePrivateFile(path, 'three', {force: true})
    expect(readFileSync(path, 'utf8')).toBe('three')
    expect(statSync(path).mode & 0o777).toBe(0o600)
  })

  it('names a missing directory', async () => {
    await expect(writePrivateFile(join(dir, 'nope', 'enc.yaml'), 'x')).rejects.toMatchObject({
      code: 'OUTPUT_DIR_MISSING',
      exitCode: 3,
    })
  })
})
