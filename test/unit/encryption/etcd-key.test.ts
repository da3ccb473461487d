import {describe, expect, it} from 'vitest'

import {
  etcdKeyFor,
  etcdKeyProblem,
  groupResourceForKey,
  normalizeEtcdRoot,
  resourcePrefixFor,
} from '../../../src/encryption/storage/etcd-key.js'

describe('etcd keys (docs/kubernetes-behaviour.md §12)', () => {
  it.each([
    ['/registry/secrets/default/mysecret', {group: '', resource: 'secrets', namespace: 'default', name: 'mysecret'}],
    ['/registry/configmaps/kube-system/x', {group: '', resource: 'configmaps', namespace: 'kube-system', name: 'x'}],
    ['/registry/deployments/default/web', {group: 'apps', resource: 'deployments', namespace: 'default', name: 'web'}],
    ['/registry/namespaces/default', {group: '', resource: 'namespaces', name: 'default'}],
    ['/registry/clusterroles/admin', {group: 'rbac.authorization.k8s.io', resource: 'clusterroles', name: 'admin'}],
    ['/registry/minions/node-1', {group: '', resource: 'nodes', name: 'node-1'}],
    ['/registry/controllers/ns/rc', {group: '', resource: 'replicationcontrollers', namespace: 'ns', name: 'rc'}],
    [
      '/registry/services/specs/default/kubernetes',
      {group: '', resource: 'services', namespace: 'default', name: 'kubernetes'},
    ],
    [
      '/registry/services/endpoints/default/kubernetes',
      {group: '', resource: 'endpoints', namespace: 'default', name: 'kubernetes'},
    ],
    ['/registry/ingress/ns/web', {group: 'networking.k8s.io', resource: 'ingresses', namespace: 'ns', name: 'web'}],
    [
      '/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com',
      {group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions', name: 'widgets.example.com'},
    ],
    [
      '/registry/apiregistration.k8s.io/apiservices/v1.apps',
      {group: 'apiregistration.k8s.io', resource: 'apiservices', name: 'v1.apps'},
    ],
    [
      '/registry/example.com/widgets/default/w1',
      {group: 'example.com', resource: 'widgets', namespace: 'default', name: 'w1'},
    ],
    ['/registry/example.com/clusterwidgets/w1', {group: 'example.com', resource: 'clusterwidgets', name: 'w1'}],
    ['/registry/events/default/x.17a', {group: '', resource: 'events', namespace: 'default', name: 'x.17a'}],
  ])('%s maps back to its resource', (key, expected) => {
    const parsed = groupResourceForKey(key)
    expect(parsed).toMatchObject({...expected, known: true})
    expect(etcdKeyFor(parsed as typeof expected)).toBe(key)
  })

  it('honours --etcd-prefix normalization', () => {
    for (const prefix of ['registry', '/registry', '/registry/', '//registry//'])
      expect(normalizeEtcdRoot(prefix)).toBe('/registry')
    expect(etcdKeyFor({group: '', resource: 'secrets', namespace: 'a', name: 'b'}, {prefix: '/k8s/'})).toBe(
      '/k8s/secrets/a/b',
    )
    expect(groupResourceForKey('/k8s/secrets/a/b', {prefix: 'k8s'})).toMatchObject({
      resource: 'secrets',
      namespace: 'a',
      name: 'b',
    })
    expect(groupResourceForKey('/registry/secrets/a/b', {prefix: '/k8s'})).toMatchObject({resource: '', known: false})
  })

  it('maps resources to their etcd locations (docs/kubernetes-behaviour.md §12.2)', () => {
    expect(resourcePrefixFor({group: '', resource: 'secrets'})).toBe('secrets')
    expect(resourcePrefixFor({group: '', resource: 'nodes'})).toBe('minions')
    expect(resourcePrefixFor({group: 'apps', resource: 'deployments'})).toBe('deployments')
    expect(resourcePrefixFor({group: 'networking.k8s.io', resource: 'ingresses'})).toBe('ingress')
    expect(resourcePrefixFor({group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions'})).toBe(
      'apiextensions.k8s.io/customresourcedefinitions',
    )
    expect(resourcePrefixFor({group: 'apiregistration.k8s.io', resource: 'apiservices'})).toBe(
      'apiregistration.k8s.io/apiservices',
    )
    expect(resourcePrefixFor({group: 'awesome.bears.example', resource: 'pandas'})).toBe('awesome.bears.example/pandas')
    // a CRD whose group ends in .k8s.io is still a custom resource: <group>/<plural>
    expect(resourcePrefixFor({group: 'snapshot.storage.k8s.io', resource: 'volumesnapshots'})).toBe(
      'snapshot.storage.k8s.io/volumesnapshots',
    )
  })

  it('events.k8s.io events live with core events; unknown prefixes are flagged', () => {
    expect(resourcePrefixFor({group: 'events.k8s.io', resource: 'events'})).toBe('events')
    expect(groupResourceForKey('/registry/somethingnew/x')).toMatchObject({
      group: '',
      resource: 'somethingnew',
      known: false,
    })
    expect(groupResourceForKey('compact_rev_key')).toMatchObject({resource: '', known: false})
  })
})

describe("etcdKeyProblem: keys that cannot be an object's etcd key (docs/kubernetes-behaviour.md §12.1)", () => {
  it.each([
    ['/registry/secrets/default/mysecret', undefined],
    ['/registry/namespaces/default', undefined],
    ['/registry/example.com/widgets/default/w1', undefined],
    ['/registry/services/specs/default/kubernetes', undefined],
    // an allocator key (docs/kubernetes-behaviour.md §12.3) has a value but no object name
    ['/registry/ranges/serviceips', undefined],
    ['foo', /not under the apiserver's etcd prefix \/registry\//],
    ['', /not under the apiserver's etcd prefix/],
    ['/registry', /not under the apiserver's etcd prefix/],
    ['registry/secrets/default/x', /not under the apiserver's etcd prefix/],
    ['/registry-x/secrets/default/x', /not under the apiserver's etcd prefix/],
    ['/registry/', /empty path segment/],
    ['/registry//x', /empty path segment/],
    ['/registry/secrets/default/', /empty path segment/],
    ['/registry/secrets', /names no object, only \/registry\/secrets/],
    ['/registry/example.com/widgets', /names no object/],
    ['/registry/secrets/default/a/b', /more path segments/],
  ])('%s', (key, problem) => {
    if (problem === undefined) expect(etcdKeyProblem(key)).toBeUndefined()
    else expect(etcdKeyProblem(key)).toMatch(problem)
  })

  it('judges against --etcd-prefix', () => {
    expect(etcdKeyProblem('/k8s/secrets/a/b', {prefix: 'k8s'})).toBeUndefined()
    expect(etcdKeyProblem('/registry/secrets/a/b', {prefix: '/k8s/'})).toMatch(/etcd prefix \/k8s\//)
  })
})
