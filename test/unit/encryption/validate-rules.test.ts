/**
 * Validation rules that the validation catalogue (test/fixtures/config-catalogue.ts, run by
 * config-catalogue.test.ts and checked against the real kube-apiserver in test/crosscheck/) does not hold:
 * the rules of older releases (--target-version, docs/kubernetes-behaviour.md §15), defaults, and the
 * error objects behind the messages. One row per rule of docs/kubernetes-behaviour.md §6 and §5.2 lives in the catalogue.
 */
import {describe, expect, it} from 'vitest'

import {apiserverMessage} from '../../../src/encryption/config/errors.js'
import {parseEncryptionConfig} from '../../../src/encryption/config/decode.js'
import {validateEncryptionConfig, type ValidateOptions} from '../../../src/encryption/config/verdict.js'

const K32 = 'Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA='
const head = 'apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n'

/** Decodes and validates; returns every error message (decode errors included) and the warnings. */
function check(yaml: string, options: ValidateOptions = {}) {
  const parsed = parseEncryptionConfig(yaml, '/etc/kubernetes/enc/config.yaml')
  if (!parsed.config)
    return {messages: parsed.errors.map((e) => e.message), errors: parsed.errors, warnings: [] as string[]}
  const result = validateEncryptionConfig(parsed.config, options)
  return {messages: result.errors.map((e) => e.message), errors: result.errors, warnings: result.warnings}
}

/** One entry: a resource list and a providers block (YAML flow or block text indented by 4). */
const entry = (resources: string[], providers: string) =>
  `${head}resources:\n- resources: ${JSON.stringify(resources)}\n  providers:\n${providers}`
const aescbc = (secret: string, name = 'key1') =>
  `  - aescbc:\n      keys:\n      - name: ${JSON.stringify(name)}\n        secret: ${JSON.stringify(secret)}\n`
const kms = (fields: string) => `  - kms: {${fields}}\n`

const DUP = 'the same resource cannot be specified multiple times'

describe('kms (docs/kubernetes-behaviour.md §6.5)', () => {
  const ok = 'endpoint: "unix:///run/kms.sock"'
  it('applies defaults before validation: v1 gets cachesize 1000, every kms a 3s timeout (docs/kubernetes-behaviour.md §5.4)', () => {
    const parsed = parseEncryptionConfig(entry(['secrets'], kms(`name: a, ${ok}`)))
    expect(parsed.config?.resources[0]?.providers[0]?.kms).toEqual({
      name: 'a',
      endpoint: 'unix:///run/kms.sock',
      apiVersion: 'v1',
      cachesize: 1000,
      timeout: '3s',
    })
    const v2 = parseEncryptionConfig(entry(['secrets'], kms(`apiVersion: v2, name: a, ${ok}`)))
    expect(v2.config?.resources[0]?.providers[0]?.kms?.cachesize).toBeUndefined()
  })
})

describe('build checks (docs/kubernetes-behaviour.md §6.6)', () => {
  const v1 = entry(['secrets'], kms('name: a, endpoint: "unix:///k.sock"'))
  const gate =
    'KMSv1 is deprecated and will only receive security updates going forward. Use KMSv2 instead.  Set --feature-gates=KMSv1=true to use the deprecated KMSv1 feature.'
  it.each([
    ['1.29', {targetVersion: {major: 1, minor: 29}}, [gate]],
    ['1.28', {targetVersion: {major: 1, minor: 28}}, []],
    ['1.36 with KMSv1=true', {featureGates: {KMSv1: true}}, []],
  ] as Array<[string, ValidateOptions, string[]]>)('KMS v1 at %s', (_name, options, messages) => {
    expect(check(v1, options).messages).toEqual(messages)
  })

  it('a build error is a Build error, under "error while building transformers"', () => {
    const {errors} = check(
      `${head}resources:\n- resources: ["*."]\n  providers: [{identity: {}}]\n- resources: [secrets]\n  providers: [{identity: {}}]\n`,
    )
    expect(errors).toEqual([
      {
        field: '',
        type: 'Build',
        detail: 'resource "secrets" is masked by earlier rule "*."',
        message: 'resource "secrets" is masked by earlier rule "*."',
      },
    ])
    expect(apiserverMessage(errors)).toBe(
      'error while building transformers: resource "secrets" is masked by earlier rule "*."',
    )
  })
})

describe('release gates for --target-version (docs/kubernetes-behaviour.md §15)', () => {
  const at = (minor: number): ValidateOptions => ({
    targetVersion: {major: 1, minor},
    featureGates: {KMSv1: true, KMSv2: true},
  })

  it('the resource-list and resource-string rules came with wildcards in 1.27', () => {
    const yaml = entry(['Secrets', 'configmaps', 'configmaps.', 'apiserveripinfo', 'foo.extensions'], aescbc(K32))
    expect(check(yaml, at(26)).messages).toEqual([])
    expect(check(yaml, at(27)).messages).toEqual([
      `resources[0].resources: Invalid value: ${JSON.stringify(['Secrets', 'configmaps', 'configmaps.', 'apiserveripinfo', 'foo.extensions'])}: ${DUP}`,
      'resources[0].resources[0]: Invalid value: "Secrets": resource name should not contain capital letters',
      'resources[0].resources[3]: Invalid value: "apiserveripinfo": resources which do not have REST API/s cannot be encrypted',
      `resources[0].resources[4]: Invalid value: "foo.extensions": 'extensions' group has been removed and cannot be used for encryption`,
    ])
    // 1.26 does not refuse the capital letters, but nothing matches them.
    expect(check(yaml, at(26)).warnings.join('\n')).toContain('"Secrets" matches nothing')
  })

  it('masking is checked from 1.27; before, the wildcard itself is the problem', () => {
    const yaml = `${head}resources:\n- resources: ["*."]\n  providers: [{identity: {}}]\n- resources: [secrets]\n  providers: [{identity: {}}]\n`
    expect(check(yaml, at(27)).messages).toEqual(['resource "secrets" is masked by earlier rule "*."'])
    expect(check(yaml, at(26)).messages).toEqual([
      expect.stringContaining('wildcard "*." needs Kubernetes 1.27 or newer'),
    ])
  })

  it('unique KMS v2 names are enforced from 1.26', () => {
    const yaml = entry(
      ['secrets'],
      `${kms('apiVersion: v2, name: a, endpoint: "unix:///k"')}${kms('apiVersion: v2, name: a, endpoint: "unix:///k"')}`,
    )
    expect(check(yaml, at(25)).messages).toEqual([])
    expect(check(yaml, at(26)).messages).toEqual([expect.stringContaining('duplicate KMS provider name a')])
  })

  it('a build error and a release gate are both in the message', () => {
    const yaml = `${head}resources:\n- resources: [secrets]\n  providers: [{kms: {name: a, endpoint: "unix:///k"}}]\n`
    const {errors} = check(yaml, {
      targetVersion: {major: 1, minor: 25},
      automaticReload: true,
      featureGates: {KMSv1: false},
    })
    expect(errors.map((e) => e.type)).toEqual(['Build', 'Unsupported'])
    expect(apiserverMessage(errors)).toMatch(
      /^error while building transformers: KMSv1 is deprecated.*; --encryption-provider-config-automatic-reload needs Kubernetes 1\.26/,
    )
  })

  it('wildcards need 1.27', () => {
    const yaml = entry(['*.*'], aescbc(K32))
    expect(check(yaml, {targetVersion: {major: 1, minor: 27}}).messages).toEqual([])
    const detail =
      'wildcard "*.*" needs Kubernetes 1.27 or newer; Kubernetes 1.26 treats it as a resource named "*" and encrypts nothing with it'
    // Like a field error: the path is the field, the detail does not repeat it, the message leads with it.
    expect(check(yaml, {targetVersion: {major: 1, minor: 26}}).errors).toEqual([
      {
        field: 'resources[0].resources[0]',
        type: 'Unsupported',
        detail,
        message: `resources[0].resources[0]: ${detail}`,
      },
    ])
  })

  it('KMS v2 needs 1.25, and its alpha gate before 1.27', () => {
    const yaml = entry(['secrets'], kms('apiVersion: v2, name: a, endpoint: "unix:///k.sock"'))
    expect(check(yaml, {targetVersion: {major: 1, minor: 24}}).messages).toEqual([
      expect.stringContaining('KMS v2 needs Kubernetes 1.25'),
    ])
    expect(check(yaml, {targetVersion: {major: 1, minor: 26}}).messages).toEqual([
      expect.stringContaining('--feature-gates=KMSv2=true'),
    ])
    expect(check(yaml, {targetVersion: {major: 1, minor: 26}, featureGates: {KMSv2: true}}).messages).toEqual([])
    expect(check(yaml, {targetVersion: {major: 1, minor: 27}}).messages).toEqual([])
    expect(check(yaml, {targetVersion: {major: 1, minor: 28}, featureGates: {KMSv2: false}}).messages).toEqual([
      'resources[0].providers[0].kms.apiVersion: KMS v2 is turned off by --feature-gates KMSv2=false (target: Kubernetes 1.28)',
    ])
    // The gate is gone from 1.32 (KMS v2 always on).
    expect(check(yaml, {featureGates: {KMSv2: false}}).messages).toEqual([])
  })

  it('automatic reload needs 1.26', () => {
    const yaml = entry(['secrets'], aescbc(K32))
    expect(check(yaml, {targetVersion: {major: 1, minor: 25}, automaticReload: true}).messages).toEqual([
      expect.stringContaining('automatic-reload needs Kubernetes 1.26'),
    ])
  })

  it('custom resources before 1.26 are a warning (the group might be built in)', () => {
    const yaml = entry(['pandas.awesome.bears.example'], aescbc(K32))
    expect(check(yaml, {targetVersion: {major: 1, minor: 25}}).warnings.join('\n')).toContain(
      'custom resources can be encrypted from Kubernetes 1.26',
    )
    expect(check(yaml, {targetVersion: {major: 1, minor: 26}}).warnings.join('\n')).not.toContain('custom resources')
  })
})

describe('messages (docs/kubernetes-behaviour.md §5.2, §6.1)', () => {
  it('never echoes the file content when JSON is broken', () => {
    const broken = check(`{"kind": "EncryptionConfiguration", "secret": "${K32}" oops}`).messages.join()
    expect(broken).toContain("couldn't get version/kind; json parse error")
    expect(broken).not.toContain(K32)
  })

  it('makes no message when there is no error (not "[]")', () => {
    expect(apiserverMessage([])).toBe('')
  })
})
