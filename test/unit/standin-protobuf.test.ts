import {readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'
import {decodeEnvelope, encodeEnvelope} from '../sandbox/apiserver/proto/codec.js'
import {goJson} from '../sandbox/apiserver/proto/go-json.js'

const vectors = JSON.parse(readFileSync('/work/shared/vectors/vectors.json', 'utf8'))

describe('stand-in protobuf storage encoding (spec §13.2)', () => {
  it('reproduces the vectors\' plaintext Secret bytes for the same object', () => {
    const expected = Buffer.from(vectors.plaintexts.secretProtobuf.b64, 'base64')
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'mysecret',
        namespace: 'default',
        uid: '6c1b7a7e-2f7d-4c4e-9d2a-1a2b3c4d5e6f',
        creationTimestamp: '2024-01-01T00:00:00Z',
      },
      // data keys deliberately out of order: storage sorts them
      data: {username: Buffer.from('admin').toString('base64'), password: Buffer.from('hunter2').toString('base64')},
      type: 'Opaque',
    }
    expect(encodeEnvelope(secret).toString('hex')).toBe(expected.toString('hex'))
  })

  it('decodes the vectors\' Secret back to its API form', () => {
    const obj = decodeEnvelope(Buffer.from(vectors.plaintexts.secretProtobuf.b64, 'base64'))
    expect(obj).toMatchObject({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {name: 'mysecret', namespace: 'default', uid: '6c1b7a7e-2f7d-4c4e-9d2a-1a2b3c4d5e6f'},
      data: {password: Buffer.from('hunter2').toString('base64'), username: Buffer.from('admin').toString('base64')},
      type: 'Opaque',
    })
    expect((obj.metadata as Record<string, unknown>).creationTimestamp).toBe('2024-01-01T00:00:00Z')
  })

  it('round-trips a mirror pod with labels, volumes, containers and status', () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'etcd-cp-1',
        namespace: 'kube-system',
        uid: 'u1',
        creationTimestamp: '2026-01-02T03:04:05Z',
        labels: {tier: 'control-plane', component: 'etcd'},
        annotations: {'kubernetes.io/config.hash': 'abc'},
        ownerReferences: [{apiVersion: 'v1', kind: 'Node', name: 'cp-1', uid: 'n1', controller: true}],
      },
      spec: {
        volumes: [{name: 'certs', hostPath: {path: '/etc/kubernetes/pki/etcd', type: 'DirectoryOrCreate'}}],
        containers: [
          {
            name: 'etcd',
            image: 'registry.k8s.io/etcd:3.5',
            command: ['etcd', '--name=cp-1'],
            env: [{name: 'A', value: 'b'}],
            resources: {requests: {cpu: '100m'}},
            volumeMounts: [{name: 'certs', mountPath: '/etc/kubernetes/pki/etcd', readOnly: true}],
          },
        ],
        nodeName: 'cp-1',
        hostNetwork: true,
        priorityClassName: 'system-node-critical',
      },
      status: {
        phase: 'Running',
        conditions: [{type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: '2026-01-02T03:04:06Z'}],
        hostIP: '127.0.0.1',
        podIP: '127.0.0.1',
        startTime: '2026-01-02T03:04:05Z',
        containerStatuses: [
          {name: 'etcd', state: {running: {startedAt: '2026-01-02T03:04:06Z'}}, lastState: {}, ready: true, restartCount: 0, image: 'x', imageID: '', started: true},
        ],
      },
    }
    const bytes = encodeEnvelope(pod)
    expect(bytes.subarray(0, 4).toString('hex')).toBe('6b387300')
    const back = decodeEnvelope(bytes)
    expect(back).toMatchObject(pod)
    expect(encodeEnvelope(back).equals(bytes)).toBe(true)
  })

  it('writes custom resources as Go-style JSON equal to the vectors\' plaintext', () => {
    const cr = {kind: 'Widget', spec: {token: 's3cr3t'}, metadata: {namespace: 'default', name: 'w1'}, apiVersion: 'example.com/v1'}
    expect(goJson(cr).toString('utf8')).toBe(vectors.plaintexts.crJson.text)
    expect(goJson({a: '<&>'}).toString('utf8')).toBe('{"a":"\\u003c\\u0026\\u003e"}\n')
  })
})
