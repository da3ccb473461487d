/**
 * The API server stand-in against a private etcd: storage as kube-apiserver keeps it, Status shapes,
 * paging with 410 after compaction, authorization, and the real kubectl (create, get, replace, exec).
 */
import {readFileSync} from 'node:fs'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {decodeEnvelope} from '../sandbox/apiserver/proto/codec.js'
import {EtcdFixture, StandinFixture} from './standin-fixture.js'

const vectors = JSON.parse(readFileSync('/work/shared/vectors/vectors.json', 'utf8'))
const b64 = (s: string) => Buffer.from(s).toString('base64')

let etcd: EtcdFixture
let standin: StandinFixture

beforeAll(async () => {
  etcd = new EtcdFixture()
  await etcd.start()
  standin = new StandinFixture(etcd)
  await standin.start()
})

afterAll(async () => {
  await standin?.dispose()
  await etcd?.stop()
})

describe('storage as kube-apiserver keeps it', () => {
  it('kubectl create secret stores a protobuf envelope at /registry/secrets/<ns>/<name>, rv = mod revision', () => {
    const created = standin.kubectl(['create', 'secret', 'generic', 'secret1', '-n', 'default', '--from-literal=mykey=mydata'])
    expect(created.code, created.stderr).toBe(0)
    const raw = etcd.getRaw('/registry/secrets/default/secret1')!
    expect(raw.subarray(0, 4).toString('hex')).toBe('6b387300')
    const stored = decodeEnvelope(raw)
    expect(stored).toMatchObject({apiVersion: 'v1', kind: 'Secret', data: {mykey: b64('mydata')}, type: 'Opaque'})
    // resourceVersion and selfLink are not stored
    expect(stored.metadata).not.toHaveProperty('resourceVersion')
    const got = standin.kubectl(['get', 'secret', 'secret1', '-n', 'default', '-o', 'json'])
    const obj = JSON.parse(got.stdout)
    expect(obj.data.mykey).toBe('bXlkYXRh')
    const modRevision = JSON.parse(etcd.etcdctl(['get', '/registry/secrets/default/secret1', '-w', 'json']).toString()).kvs[0].mod_revision
    expect(obj.metadata.resourceVersion).toBe(String(modRevision))
    expect(obj.metadata.uid).toMatch(/^[0-9a-f-]{36}$/)
    expect(standin.kubectl(['get', 'secret', 'secret1', '-n', 'default', '-o', 'yaml']).stdout).toContain('mykey: bXlkYXRh')
  })

  it('serves the vectors\' plaintext Secret put into etcd directly', async () => {
    etcd.putRaw(vectors.plaintexts.secretProtobuf.etcdKey, Buffer.from(vectors.plaintexts.secretProtobuf.b64, 'base64'))
    const r = await standin.request('GET', '/api/v1/namespaces/default/secrets/mysecret')
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({
      kind: 'Secret',
      metadata: {name: 'mysecret', uid: '6c1b7a7e-2f7d-4c4e-9d2a-1a2b3c4d5e6f', creationTimestamp: '2024-01-01T00:00:00Z'},
      data: {username: b64('admin'), password: b64('hunter2')},
    })
    await standin.request('DELETE', '/api/v1/namespaces/default/secrets/mysecret')
  })

  it('stores nodes under /registry/minions and custom resources as Go-style JSON under /registry/<group>/<plural>', async () => {
    const node = await standin.request('POST', '/api/v1/nodes', {apiVersion: 'v1', kind: 'Node', metadata: {name: 'cp-9', labels: {'kubernetes.io/hostname': 'cp-9'}}}, {identity: 'node'})
    expect(node.status).toBe(201)
    expect(etcd.getRaw('/registry/minions/cp-9')!.subarray(0, 4).toString('hex')).toBe('6b387300')
    await standin.request('DELETE', '/api/v1/nodes/cp-9', undefined, {identity: 'node'})

    const crd = await standin.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', pandaCrd())
    expect(crd.status).toBe(201)
    expect(etcd.getRaw('/registry/apiextensions.k8s.io/customresourcedefinitions/pandas.awesome.bears.example')!.toString()).toMatch(/^\{"apiVersion":"apiextensions.k8s.io\/v1"/)
    const panda = await standin.request('POST', '/apis/awesome.bears.example/v1/namespaces/default/pandas', {
      apiVersion: 'awesome.bears.example/v1',
      kind: 'Panda',
      metadata: {name: 'po'},
      spec: {food: 'bamboo <fresh>'},
    })
    expect(panda.status).toBe(201)
    const raw = etcd.getRaw('/registry/awesome.bears.example/pandas/default/po')!.toString()
    expect(raw.endsWith('}\n')).toBe(true)
    expect(raw).toContain('"spec":{"food":"bamboo \\u003cfresh\\u003e"}')
    expect(Object.keys(JSON.parse(raw))).toEqual(['apiVersion', 'kind', 'metadata', 'spec'])
    const listed = standin.kubectl(['get', 'pandas', '-n', 'default', '-o', 'jsonpath={.items[*].metadata.name}'])
    expect(listed.stdout).toBe('po')
  })
})

function pandaCrd() {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {name: 'pandas.awesome.bears.example'},
    spec: {
      group: 'awesome.bears.example',
      names: {plural: 'pandas', singular: 'panda', kind: 'Panda', listKind: 'PandaList'},
      scope: 'Namespaced',
      versions: [{name: 'v1', served: true, storage: true, schema: {openAPIV3Schema: {type: 'object', 'x-kubernetes-preserve-unknown-fields': true}}}],
    },
  }
}

describe('updates (spec §4.2) and Status errors', () => {
  it('a no-op update keeps the resourceVersion; a real change gets the new mod revision', async () => {
    const before = (await standin.request('GET', '/api/v1/namespaces/default/secrets/secret1')).body
    const same = await standin.request('PUT', '/api/v1/namespaces/default/secrets/secret1', before)
    expect(same.status).toBe(200)
    expect(same.body.metadata.resourceVersion).toBe(before.metadata.resourceVersion)
    const changed = await standin.request('PUT', '/api/v1/namespaces/default/secrets/secret1', {...before, data: {mykey: b64('other')}})
    expect(Number(changed.body.metadata.resourceVersion)).toBeGreaterThan(Number(before.metadata.resourceVersion))
    // back to the original data for the kubectl tests
    await standin.request('PUT', '/api/v1/namespaces/default/secrets/secret1', {...changed.body, data: {mykey: b64('mydata')}})
  })

  it('409 AlreadyExists and 409 Conflict with kube-apiserver\'s texts', async () => {
    const dup = await standin.request('POST', '/api/v1/namespaces/default/secrets', {apiVersion: 'v1', kind: 'Secret', metadata: {name: 'secret1'}})
    expect(dup.status).toBe(409)
    expect(dup.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'secrets "secret1" already exists',
      reason: 'AlreadyExists',
      details: {name: 'secret1', kind: 'secrets'},
      code: 409,
    })
    const current = (await standin.request('GET', '/api/v1/namespaces/default/secrets/secret1')).body
    const stale = {...current, metadata: {...current.metadata, resourceVersion: '1'}, data: {x: b64('y')}}
    const conflict = await standin.request('PUT', '/api/v1/namespaces/default/secrets/secret1', stale)
    expect(conflict.status).toBe(409)
    expect(conflict.body).toMatchObject({
      reason: 'Conflict',
      message: 'Operation cannot be fulfilled on secrets "secret1": the object has been modified; please apply your changes to the latest version and try again',
      details: {name: 'secret1', kind: 'secrets'},
    })
  })

  it('404 NotFound, 403 Forbidden for the viewer, 401 for a bad token', async () => {
    const missing = await standin.request('GET', '/api/v1/namespaces/default/secrets/nope')
    expect(missing.body).toMatchObject({code: 404, reason: 'NotFound', message: 'secrets "nope" not found', details: {name: 'nope', kind: 'secrets'}})
    const forbidden = await standin.request('GET', '/api/v1/namespaces/default/secrets', undefined, {token: standin.viewerToken})
    expect(forbidden.status).toBe(403)
    expect(forbidden.body).toMatchObject({
      kind: 'Status',
      reason: 'Forbidden',
      message: 'secrets is forbidden: User "viewer" cannot list resource "secrets" in API group "" in the namespace "default"',
      details: {kind: 'secrets'},
      code: 403,
    })
    const viewerKubectl = standin.kubectl(['get', 'secrets', '-n', 'default'], undefined, 'viewer')
    expect(viewerKubectl.code).toBe(1)
    expect(viewerKubectl.stderr).toContain('Error from server (Forbidden): secrets is forbidden: User "viewer" cannot list resource "secrets"')
    expect((await standin.request('GET', '/api/v1/namespaces', undefined, {token: standin.viewerToken})).status).toBe(200)
    expect((await standin.request('GET', '/api/v1/namespaces', undefined, {token: 'wrong'})).body).toMatchObject({code: 401, reason: 'Unauthorized'})
  })

  it('500 with the transformer error when a value cannot be read; the list names the key', async () => {
    // no encryption config: the bare identity check refuses encrypted values (spec §1, §4.3)
    const aescbc = vectors.vectors.find((v: {id: string}) => v.id === 'aescbc-128-secret')
    etcd.putRaw('/registry/secrets/broken/mysecret', Buffer.from(aescbc.stored, 'base64'))
    const get = await standin.request('GET', '/api/v1/namespaces/broken/secrets/mysecret')
    expect(get.status).toBe(500)
    expect(get.body).toMatchObject({
      reason: 'InternalError',
      message: 'Internal error occurred: identity transformer tried to read encrypted data',
      details: {causes: [{message: 'identity transformer tried to read encrypted data'}]},
    })
    const list = await standin.request('GET', '/api/v1/secrets')
    expect(list.status).toBe(500)
    expect(list.body.message).toBe(
      'Internal error occurred: unable to transform key "/registry/secrets/broken/mysecret": identity transformer tried to read encrypted data',
    )
    etcd.etcdctl(['del', '/registry/secrets/broken/mysecret'])
  })
})

describe('paging', () => {
  it('limit + continue walks a list; after compaction the token gets 410 Expired with a fresh token', async () => {
    await standin.request('POST', '/api/v1/namespaces', {apiVersion: 'v1', kind: 'Namespace', metadata: {name: 'paging'}})
    for (let i = 0; i < 5; i++)
      await standin.request('POST', '/api/v1/namespaces/paging/configmaps', {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: `cm${i}`}, data: {i: String(i)}})
    const names: string[] = []
    let token = ''
    let pages = 0
    do {
      const r = await standin.request('GET', `/api/v1/namespaces/paging/configmaps?limit=2${token ? `&continue=${encodeURIComponent(token)}` : ''}`)
      expect(r.status).toBe(200)
      names.push(...r.body.items.map((i: {metadata: {name: string}}) => i.metadata.name))
      token = r.body.metadata.continue ?? ''
      pages++
    } while (token)
    expect(names).toEqual(['cm0', 'cm1', 'cm2', 'cm3', 'cm4'])
    expect(pages).toBe(3)

    const first = await standin.request('GET', '/api/v1/namespaces/paging/configmaps?limit=2')
    expect(first.body.metadata.remainingItemCount).toBe(3)
    await standin.request('PUT', '/api/v1/namespaces/paging/configmaps/cm4', {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'cm4'}, data: {i: 'changed'}})
    const rev = JSON.parse(etcd.etcdctl(['get', 'x', '-w', 'json']).toString()).header.revision
    etcd.etcdctl(['compaction', String(rev)])
    const gone = await standin.request('GET', `/api/v1/namespaces/paging/configmaps?limit=2&continue=${encodeURIComponent(first.body.metadata.continue)}`)
    expect(gone.status).toBe(410)
    expect(gone.body).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'Expired',
      code: 410,
      message:
        'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue value from this response.',
    })
    const fresh = gone.body.metadata.continue
    expect(fresh).toBeTruthy()
    const rest = await standin.request('GET', `/api/v1/namespaces/paging/configmaps?limit=10&continue=${encodeURIComponent(fresh)}`)
    expect(rest.status).toBe(200)
    expect(rest.body.items.map((i: {metadata: {name: string}}) => i.metadata.name)).toEqual(['cm2', 'cm3', 'cm4'])
    expect(rest.body.items[2].data.i).toBe('changed')
  })

  it('label and field selectors filter lists', async () => {
    await standin.request('POST', '/api/v1/namespaces/paging/configmaps', {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'labelled', labels: {app: 'x'}}})
    const byLabel = await standin.request('GET', '/api/v1/configmaps?labelSelector=app%3Dx')
    expect(byLabel.body.items.map((i: {metadata: {name: string}}) => i.metadata.name)).toEqual(['labelled'])
    const byField = await standin.request('GET', '/api/v1/namespaces/paging/configmaps?fieldSelector=metadata.name%3Dcm1')
    expect(byField.body.items.map((i: {metadata: {name: string}}) => i.metadata.name)).toEqual(['cm1'])
  })
})

describe('the real kubectl', () => {
  it('get all secrets as JSON | replace -f - (the seed\'s rewrite) succeeds', () => {
    const all = standin.kubectl(['get', 'secrets', '--all-namespaces', '-o', 'json'])
    expect(all.code, all.stderr).toBe(0)
    const replaced = standin.kubectl(['replace', '-f', '-'], all.stdout)
    expect(replaced.code, replaced.stderr).toBe(0)
    expect(replaced.stdout).toContain('secret/secret1 replaced')
  })

  it('exec into the etcd mirror pod runs etcdctl here; a failing command gives its exit code', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {name: 'etcd-cp-1', namespace: 'kube-system', labels: {component: 'etcd', tier: 'control-plane'}},
      spec: {nodeName: 'cp-1', containers: [{name: 'etcd', image: 'registry.k8s.io/etcd:3.5.21-0', command: ['etcd']}]},
    }
    expect((await standin.request('POST', '/api/v1/namespaces/kube-system/pods', pod, {identity: 'node'})).status).toBe(201)
    const r = standin.kubectl(['exec', '-n', 'kube-system', 'etcd-cp-1', '--', 'etcdctl', '--endpoints', etcd.endpoint, 'get', '/registry/secrets/default/secret1', '-w', 'json'])
    expect(r.code, r.stderr).toBe(0)
    const value = Buffer.from(JSON.parse(r.stdout).kvs[0].value, 'base64')
    expect(value.subarray(0, 4).toString('hex')).toBe('6b387300')
    const failing = standin.kubectl(['exec', '-n', 'kube-system', 'etcd-cp-1', '--', 'sh', '-c', 'echo oops >&2; exit 3'])
    expect(failing.code).toBe(3)
    expect(failing.stderr).toContain('oops')
    expect(failing.stderr).toContain('command terminated with exit code 3')
    const viewer = standin.kubectl(['exec', '-n', 'kube-system', 'etcd-cp-1', '--', 'true'], undefined, 'viewer')
    expect(viewer.code).not.toBe(0)
  })
})

describe('health and metrics', () => {
  it('answers /readyz?verbose anonymously and /metrics with last_config_info only when a config is loaded', async () => {
    const ready = await standin.request('GET', '/readyz?verbose', undefined, {anonymous: true})
    expect(ready.status).toBe(200)
    expect(ready.text).toContain('[+]etcd ok')
    expect(ready.text).toContain('readyz check passed')
    const metrics = await standin.request('GET', '/metrics')
    expect(metrics.status).toBe(200)
    expect(metrics.text).not.toContain('apiserver_encryption_config_controller_last_config_info{')
    expect((await standin.request('GET', '/metrics', undefined, {token: standin.viewerToken})).status).toBe(403)
  })
})
