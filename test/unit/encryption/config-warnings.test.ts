/** One row per warning (docs/kubernetes-behaviour.md §7 step 6 and the seed's cautions); secrets never appear in warnings. */
import {readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'

import {parseEncryptionConfig} from '../../../src/encryption/config-decode.js'
import {validateEncryptionConfig} from '../../../src/encryption/validate-config.js'

const K32 = 'Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA='
const head = 'apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n'
const secretbox = `{secretbox: {keys: [{name: k1, secret: "${K32}"}]}}`

function warnings(body: string, minor = 36): string[] {
  const parsed = parseEncryptionConfig(head + body)
  if (!parsed.config) throw new Error(parsed.errors.map((e) => e.message).join())
  const result = validateEncryptionConfig(parsed.config, {targetVersion: {major: 1, minor}, featureGates: {KMSv1: true}})
  expect(result.errors).toEqual([])
  return result.warnings
}

describe('configuration warnings', () => {
  it.each([
    ['a resource string that matches nothing: secrets.v1', `- resources: [secrets.v1]\n  providers: [${secretbox}]\n`, 'resources[0].resources[0]: "secrets.v1" matches nothing: there is no API group "v1"'],
    ['a singular core resource', `- resources: [secret]\n  providers: [${secretbox}]\n`, 'resources[0].resources[0]: "secret" matches nothing: the core group has no stored resource "secret"'],
    ['the empty string', `- resources: [""]\n  providers: [${secretbox}]\n`, 'resources[0].resources[0]: "" matches nothing: the empty string matches no resource'],
    ['a resource name with a space', `- resources: ["my widgets.example.com"]\n  providers: [${secretbox}]\n`, 'resources[0].resources[0]: "my widgets.example.com" matches nothing: resource names cannot contain whitespace'],
    ['duplicate key names', `- resources: [secrets]\n  providers: [{secretbox: {keys: [{name: k, secret: "${K32}"}, {name: k, secret: "${K32}"}]}}]\n`, 'resources[0].providers[0].secretbox.keys[1].name: duplicate key name "k"'],
    ['the same key name in two providers of one type', `- resources: [secrets]\n  providers: [${secretbox}, ${secretbox}]\n`, 'resources[0].providers: key name "k1" is used by 2 secretbox providers'],
    ['a key name with ":"', `- resources: [secrets]\n  providers: [{secretbox: {keys: [{name: "a:b", secret: "${K32}"}]}}]\n`, 'resources[0].providers[0].secretbox.keys[0].name: key name "a:b" contains \':\''],
    ['aescbc in use', `- resources: [secrets]\n  providers: [{aescbc: {keys: [{name: k, secret: "${K32}"}]}}]\n`, 'resources[0].providers[0].aescbc: aescbc is weak'],
    ['aesgcm rotation', `- resources: [secrets]\n  providers: [{aesgcm: {keys: [{name: k, secret: "${K32}"}]}}]\n`, 'resources[0].providers[0].aesgcm: aesgcm keys must be rotated before about 200,000 writes'],
    ['identity first before encrypting providers', `- resources: [secrets]\n  providers: [{identity: {}}, ${secretbox}]\n`, 'resources[0].providers[0]: identity is first, so new writes of "secrets" are NOT encrypted'],
    ['identity only', `- resources: [secrets]\n  providers: [{identity: {}}]\n`, 'resources[0].providers: identity only: "secrets" are stored unencrypted'],
    ['a resource with its own entry and a later wildcard', `- resources: [events]\n  providers: [{identity: {}}]\n- resources: ["*.*"]\n  providers: [${secretbox}]\n`, 'resources[0].resources[0]: "events" has its own entry, so the providers of the later wildcard "*.*" in resources[1] never apply to it'],
    ['the same resource in two entries', `- resources: [secrets]\n  providers: [${secretbox}]\n- resources: [configmaps, secrets.]\n  providers: [{identity: {}}]\n`, 'resources[1].resources[1]: "secrets" also appears in resources[0]; the provider lists are concatenated'],
    ['raw keys on the host', `- resources: [secrets]\n  providers: [${secretbox}]\n`, 'keys are stored in this file on every control-plane host'],
    ['KMS v1 deprecated', `- resources: [secrets]\n  providers: [{kms: {name: a, endpoint: "unix:///k.sock"}}]\n`, 'resources[0].providers[0].kms: KMS v1 is deprecated'],
  ])('%s', (_name, body, text) => {
    const found = warnings(body)
    expect(found.some((w) => w.startsWith(text))).toBe(true)
    expect(found.join('\n')).not.toContain(K32)
  })

  it('a custom resource before 1.26 stays unencrypted (docs/kubernetes-behaviour.md §15)', () => {
    const body = `- resources: [widgets.example.com]\n  providers: [${secretbox}]\n`
    expect(warnings(body, 25)).toContain('resources[0].resources[0]: "widgets.example.com" looks like a custom resource; custom resources can be encrypted from Kubernetes 1.26 (target 1.25), so it stays unencrypted.')
    expect(warnings(body, 26).join('\n')).not.toContain('custom resource')
  })

  it('KMS v1 is deprecated from 1.28 only', () => {
    const body = `- resources: [secrets]\n  providers: [{kms: {name: a, endpoint: "unix:///k.sock"}}]\n`
    expect(warnings(body, 27)).toEqual([])
    expect(warnings(body, 28)).toEqual([expect.stringContaining('KMS v1 is deprecated')])
  })

  it('gives no warning for a kms v2 config of known resources', () => {
    expect(warnings(`- resources: [secrets, configmaps, "*.apps", widgets.example.com]\n  providers: [{kms: {apiVersion: v2, name: a, endpoint: "unix:///k.sock"}}]\n`)).toEqual([])
  })

  it('validates the golden vectors configuration', () => {
    const text = readFileSync(new URL('../../fixtures/vectors/encryption-config.yaml', import.meta.url), 'utf8')
    const parsed = parseEncryptionConfig(text)
    expect(parsed.errors).toEqual([])
    expect(validateEncryptionConfig(parsed.config!).errors).toEqual([])
  })
})
