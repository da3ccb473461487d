import {describe, expect, it} from 'vitest'

import type {EncryptionConfiguration, ProviderSpec} from '../../../src/encryption/config/model.js'
import {
  formatGroupResource,
  lookupProviders,
  parseResourceString,
  providersFor,
} from '../../../src/encryption/config/resource-match.js'

const aescbc: ProviderSpec = {aescbc: {keys: [{name: 'k1', secret: 'AAECAwQFBgcICQoLDA0ODw=='}]}}
const aesgcm: ProviderSpec = {aesgcm: {keys: [{name: 'k2', secret: 'AAECAwQFBgcICQoLDA0ODw=='}]}}
const identity: ProviderSpec = {identity: {}}

const config = (...entries: Array<[string[], ProviderSpec[]]>): EncryptionConfiguration => ({
  apiVersion: 'apiserver.config.k8s.io/v1',
  kind: 'EncryptionConfiguration',
  resources: entries.map(([resources, providers]) => ({resources, providers})),
})

describe('parseResourceString (docs/kubernetes-behaviour.md §6.3 step 2)', () => {
  it.each([
    ['secrets', '', 'secrets'],
    ['secrets.', '', 'secrets'],
    ['*.', '', '*'],
    ['*.*', '*', '*'],
    ['deployments.apps', 'apps', 'deployments'],
    ['pandas.awesome.bears.example', 'awesome.bears.example', 'pandas'],
    ['', '', ''],
  ])('%j -> group %j, resource %j', (text, group, resource) => {
    expect(parseResourceString(text)).toEqual({group, resource})
  })

  it.each([
    [{group: '', resource: 'secrets'}, 'secrets'],
    [{group: '', resource: '*'}, '*.'],
    [{group: '*', resource: '*'}, '*.*'],
    [{group: 'apps', resource: '*'}, '*.apps'],
    [{group: 'apps', resource: 'deployments'}, 'deployments.apps'],
  ])('renders %j as %j', (gr, text) => {
    expect(formatGroupResource(gr)).toBe(text)
  })
})

describe('providersFor (docs/kubernetes-behaviour.md §8.2–8.3)', () => {
  it('prefers the exact resource over *.<group> over *.*, with no fallthrough', () => {
    const c = config([['events'], [identity]], [['*.apps'], [aesgcm]], [['*.*'], [aescbc]])
    expect(providersFor(c, {group: '', resource: 'events'})).toEqual([identity])
    expect(providersFor(c, {group: 'apps', resource: 'deployments'})).toEqual([aesgcm])
    expect(providersFor(c, {group: '', resource: 'secrets'})).toEqual([aescbc])
    expect(providersFor(c, {group: 'example.com', resource: 'widgets'})).toEqual([aescbc])
  })

  it('uses *. for the core group only', () => {
    const c = config([['*.'], [aesgcm]])
    expect(providersFor(c, {group: '', resource: 'configmaps'})).toEqual([aesgcm])
    expect(providersFor(c, {group: 'apps', resource: 'deployments'})).toBeUndefined()
  })

  it('returns undefined for a resource the config does not cover', () => {
    expect(providersFor(config([['secrets'], [aescbc]]), {group: '', resource: 'configmaps'})).toBeUndefined()
  })

  it('concatenates the lists of the same exact resource across entries, in file order', () => {
    const c = config(
      [['secrets'], [aesgcm]],
      [
        ['configmaps', 'secrets.'],
        [aescbc, identity],
      ],
    )
    const found = lookupProviders(c, {group: '', resource: 'secrets'})
    expect(found?.providers).toEqual([aesgcm, aescbc, identity])
    expect(found?.entries).toEqual([0, 1])
    expect(found?.rule).toBe('secrets')
  })

  it('names the wildcard rule that matched', () => {
    const c = config([['*.*'], [aescbc]])
    expect(lookupProviders(c, {group: 'apps', resource: 'deployments'})?.rule).toBe('*.*')
  })
})
