import {describe, expect, it} from 'vitest'
import {parseDuration} from '../sandbox/apiserver/app.js'
import {parseFlags} from '../sandbox/apiserver/flags.js'
import {jsonPatch, mergePatch, strategicMergePatch} from '../sandbox/apiserver/http/patch.js'
import {errors} from '../sandbox/apiserver/http/status.js'
import {parseFieldSelector, parseLabelSelector} from '../sandbox/apiserver/storage/selectors.js'
import {decodeContinue, encodeContinue} from '../sandbox/apiserver/storage/store.js'

describe('stand-in flags', () => {
  it('reads kube-apiserver flags in both forms and ignores the others', () => {
    const f = parseFlags([
      '--advertise-address=10.0.0.1',
      '--secure-port', '6443',
      '--etcd-servers=https://10.0.0.1:2379,https://10.0.0.2:2379',
      '--encryption-provider-config-automatic-reload=true',
      '--authorization-mode=Node,RBAC',
      '--feature-gates=KMSv1=true,Other=false',
    ])
    expect(f).toMatchObject({advertiseAddress: '10.0.0.1', securePort: 6443, automaticReload: true, etcdPrefix: '/registry'})
    expect(f.etcdServers).toEqual(['https://10.0.0.1:2379', 'https://10.0.0.2:2379'])
    expect(f.featureGates).toEqual({KMSv1: true, Other: false})
    expect(() => parseFlags(['--encryption-provider-config-automatic-reload=maybe'])).toThrow(/strconv.ParseBool/)
  })

  it('parses Go durations for the reload interval', () => {
    expect(parseDuration('2s')).toBe(2000)
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration('1m')).toBe(60_000)
    expect(() => parseDuration('soon')).toThrow()
  })
})

describe('continue tokens', () => {
  it('are base64 JSON with version, revision and start key, as Kubernetes writes them', () => {
    const token = encodeContinue('default/b\u0000', 42)
    expect(JSON.parse(Buffer.from(token, 'base64').toString())).toEqual({v: 'meta.k8s.io/v1', rv: 42, start: 'default/b\u0000'})
    expect(decodeContinue(token)).toEqual({rv: 42, start: 'default/b\u0000'})
    expect(() => decodeContinue('not-a-token')).toThrow(/continue key is not valid/)
    expect(() => decodeContinue(Buffer.from(JSON.stringify({v: 'x', rv: 1, start: 'a'})).toString('base64'))).toThrow(/continue key is not valid/)
  })
})

describe('selectors', () => {
  const obj = (labels: Record<string, string>, name = 'n', nodeName = 'cp-1') => ({metadata: {name, namespace: 'ns', labels}, spec: {nodeName}})
  it('label selectors: equality, inequality, existence, set-based', () => {
    expect(parseLabelSelector('component=etcd,tier=control-plane')(obj({component: 'etcd', tier: 'control-plane'}))).toBe(true)
    expect(parseLabelSelector('component!=etcd')(obj({component: 'etcd'}))).toBe(false)
    expect(parseLabelSelector('!component')(obj({}))).toBe(true)
    expect(parseLabelSelector('component in (etcd, kube-apiserver)')(obj({component: 'kube-apiserver'}))).toBe(true)
    expect(parseLabelSelector('component notin (etcd)')(obj({component: 'etcd'}))).toBe(false)
  })
  it('field selectors support metadata.name/namespace and the resource\'s own fields only', () => {
    expect(parseFieldSelector('metadata.name=n', 'secrets', 'Secret', 'v1')(obj({}))).toBe(true)
    expect(parseFieldSelector('spec.nodeName=cp-2', 'pods', 'Pod', 'v1')(obj({}))).toBe(false)
    expect(() => parseFieldSelector('spec.nodeName=cp-2', 'secrets', 'Secret', 'v1')).toThrow(/field label not supported: spec.nodeName/)
  })
})

describe('patches', () => {
  it('merge patch replaces lists and deletes nulls; strategic merge merges by key', () => {
    const pod = {status: {conditions: [{type: 'Ready', status: 'False'}, {type: 'Initialized', status: 'True'}]}, metadata: {labels: {a: '1', b: '2'}}}
    expect(mergePatch(pod, {metadata: {labels: {a: null}}}).metadata.labels).toEqual({b: '2'})
    expect(mergePatch(pod, {status: {conditions: [{type: 'Ready', status: 'True'}]}}).status.conditions).toHaveLength(1)
    const smp = strategicMergePatch(pod, {status: {conditions: [{type: 'Ready', status: 'True'}]}})
    expect(smp.status.conditions).toEqual([{type: 'Ready', status: 'True'}, {type: 'Initialized', status: 'True'}])
  })
  it('json patch applies add/replace/remove/test and fails a test op with 422', () => {
    const doc = {metadata: {labels: {a: '1'}}, list: [1, 2]}
    const out = jsonPatch(doc, [
      {op: 'add', path: '/metadata/labels/b', value: '2'},
      {op: 'replace', path: '/metadata/labels/a', value: 'x'},
      {op: 'remove', path: '/list/0'},
      {op: 'add', path: '/list/-', value: 3},
    ])
    expect(out).toEqual({metadata: {labels: {a: 'x', b: '2'}}, list: [2, 3]})
    expect(() => jsonPatch(doc, [{op: 'test', path: '/metadata/labels/a', value: 'nope'}])).toThrow(/test failed/)
  })
})

describe('Status errors', () => {
  it('render kube-apiserver\'s Forbidden texts for namespaced and cluster scope', () => {
    expect(errors.forbidden('viewer', 'list', '', 'secrets', '', 'default').message).toBe(
      'secrets is forbidden: User "viewer" cannot list resource "secrets" in API group "" in the namespace "default"',
    )
    expect(errors.forbidden('viewer', 'get', '', 'secrets', '', '', 'x').message).toBe(
      'secrets "x" is forbidden: User "viewer" cannot get resource "secrets" in API group "" at the cluster scope',
    )
    expect(errors.notFound('awesome.bears.example', 'pandas', 'p').toStatus()).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pandas.awesome.bears.example "p" not found',
      reason: 'NotFound',
      details: {name: 'p', group: 'awesome.bears.example', kind: 'pandas'},
      code: 404,
    })
  })
})
