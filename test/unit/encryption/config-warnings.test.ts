/** One row per warning (docs/kubernetes-behaviour.md §7 step 6 and the seed's cautions); secrets never appear in warnings. */
import {readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'

import {catalogue} from '../../fixtures/config-catalogue.js'
import {parseEncryptionConfig} from '../../../src/encryption/config/decode.js'
import {validateEncryptionConfig} from '../../../src/encryption/config/verdict.js'

const K32 = 'Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA='
const head = 'apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n'
const secretbox = `{secretbox: {keys: [{name: k1, secret: "${K32}"}]}}`

function warnings(body: string, minor = 36): string[] {
  const parsed = parseEncryptionConfig(head + body)
  if (!parsed.config) throw new Error(parsed.errors.map((e) => e.message).join())
  const result = validateEncryptionConfig(parsed.config, {
    targetVersion: {major: 1, minor},
    featureGates: {KMSv1: true},
  })
  expect(result.errors).toEqual([])
  return result.warnings
}

describe('configuration warnings', () => {
  // One row per warning, in the validation catalogue (the real apiserver accepts each of these files).
  it.each(catalogue.filter((c) => c.family === 'warnings' && c.warnings?.length).map((c) => [c.name, c] as const))(
    '%s',
    (_name, c) => {
      const parsed = parseEncryptionConfig(Buffer.from(c.file))
      if (!parsed.config) throw new Error(parsed.errors.map((e) => e.message).join())
      const result = validateEncryptionConfig(parsed.config, {
        targetVersion: {major: 1, minor: 36},
        featureGates: c.apiserver?.featureGates,
      })
      expect(result.errors).toEqual([])
      for (const text of c.warnings ?? []) expect(result.warnings.some((w) => w.startsWith(text))).toBe(true)
      expect(result.warnings.join('\n')).not.toContain(K32)
    },
  )

  it('a custom resource before 1.26 stays unencrypted (docs/kubernetes-behaviour.md §15)', () => {
    const body = `- resources: [widgets.example.com]\n  providers: [${secretbox}]\n`
    expect(warnings(body, 25)).toContain(
      'resources[0].resources[0]: "widgets.example.com" looks like a custom resource; custom resources can be encrypted from Kubernetes 1.26 (target 1.25), so it stays unencrypted.',
    )
    expect(warnings(body, 26).join('\n')).not.toContain('custom resource')
  })

  it('KMS v1 is deprecated from 1.28 only', () => {
    const body = `- resources: [secrets]\n  providers: [{kms: {name: a, endpoint: "unix:///k.sock"}}]\n`
    expect(warnings(body, 27)).toEqual([])
    expect(warnings(body, 28)).toEqual([expect.stringContaining('KMS v1 is deprecated')])
  })

  it('gives no warning for a kms v2 config of known resources', () => {
    expect(
      warnings(
        `- resources: [secrets, configmaps, "*.apps", widgets.example.com]\n  providers: [{kms: {apiVersion: v2, name: a, endpoint: "unix:///k.sock"}}]\n`,
      ),
    ).toEqual([])
  })

  it('validates the golden vectors configuration', () => {
    const text = readFileSync(new URL('../../fixtures/vectors/encryption-config.yaml', import.meta.url), 'utf8')
    const parsed = parseEncryptionConfig(text)
    expect(parsed.errors).toEqual([])
    expect(validateEncryptionConfig(parsed.config!).errors).toEqual([])
  })
})
