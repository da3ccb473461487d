/**
 * Our validator against the validation catalogue (test/fixtures/config-catalogue.ts), the list the
 * real kube-apiserver also judges in test/crosscheck/: same verdict, same whole message, for the
 * releases the sandbox builds (1.36 and 1.37).
 */
import {describe, expect, it} from 'vitest'

import {catalogue, catalogueSecrets, expectedMessage, K32} from '../../fixtures/config-catalogue.js'
import {checkConfigBytes} from '../../../src/encryption/config/load.js'

const path = '/etc/kubernetes/enc/config.yaml'

describe.each([36, 37])('the validation catalogue at Kubernetes 1.%i', (minor) => {
  it.each(catalogue.map((c) => [`${c.family}: ${c.name}`, c] as const))('%s', (_title, c) => {
    const check = checkConfigBytes(Buffer.from(c.file), path, {
      targetVersion: {major: 1, minor},
      featureGates: c.apiserver?.featureGates,
      automaticReload: c.apiserver?.automaticReload,
    })
    const expected = expectedMessage(c, path)
    const upTo = c.knownDifference
      ? (expected ?? '').indexOf(c.knownDifference.upTo) + c.knownDifference.upTo.length
      : undefined
    expect(check.message.slice(0, upTo)).toBe((expected ?? '').slice(0, upTo))
    expect(check.errors.length === 0).toBe(expected === null)
    if (c.warnings?.length === 0) expect(check.warnings).toEqual([])
    for (const warning of c.warnings ?? [])
      expect(
        check.warnings.some((w) => w.startsWith(warning)),
        `${warning}\nin ${check.warnings.join('\n')}`,
      ).toBe(true)
    const printed = [check.message, ...check.errors.map((e) => e.message), ...check.warnings].join('\n')
    expect(catalogueSecrets.filter((s) => printed.includes(s))).toEqual([])
    // Nor a piece of one (Go's and V8's JSON errors quote a few characters of the input).
    expect(
      Array.from({length: K32.length - 7}, (_, i) => K32.slice(i, i + 8)).filter((piece) => printed.includes(piece)),
    ).toEqual([])
  })
})

it('the catalogue covers every rule family, with unique names', () => {
  const names = catalogue.map((c) => c.name)
  expect(new Set(names).size).toBe(names.length)
  expect(new Set(catalogue.map((c) => c.family))).toEqual(
    new Set([
      'top-level',
      'resource-lists',
      'resource-strings',
      'provider-types',
      'keys',
      'kms',
      'kms-names',
      'build',
      'decode',
      'read',
      'warnings',
    ]),
  )
})
