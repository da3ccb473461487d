import {describe, expect, it} from 'vitest'

import type {KubeObject, ObjectClient} from '../../../src/kube/types.js'
import {KubeApiserverWaiter} from '../../../src/changes/apiserver-waiter.js'

const HASH = `sha256:${'a'.repeat(64)}`
const OTHER = `sha256:${'b'.repeat(64)}`

/** One node's mirror pod and its /metrics, as the waiter reads them; time only moves when it sleeps. */
function world(opts: {metricsHash?: string; annotation?: string}) {
  const pod: KubeObject = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'kube-apiserver-cp-1',
      namespace: 'kube-system',
      annotations: {
        'kubernetes.io/config.hash': 'm1',
        ...(opts.annotation ? {'kubectl-encryption/config-hash': opts.annotation} : {}),
      },
    },
    spec: {
      nodeName: 'cp-1',
      containers: [{name: 'kube-apiserver', command: ['kube-apiserver', '--advertise-address=10.0.0.1']}],
    },
    status: {phase: 'Running', conditions: [{type: 'Ready', status: 'True'}]},
  }
  const objects = {get: async () => pod} as unknown as ObjectClient
  const probe = {
    get: async (path: string) =>
      path === '/readyz'
        ? {status: 200, body: 'ok'}
        : {
            status: 200,
            body: opts.metricsHash
              ? `apiserver_encryption_config_controller_last_config_info{apiserver_id_hash="sha256:x",hash="${opts.metricsHash}"} 1\n`
              : 'apiserver_storage_objects{resource="secrets"} 3\n',
          },
  }
  let now = 0
  const clock = {now: () => now, sleep: async (ms: number) => void (now += ms)}
  return new KubeApiserverWaiter(objects, probe, clock, 1000)
}

describe('KubeApiserverWaiter.waitConfigLoaded', () => {
  it('accepts the hash the apiserver reports as loaded (last_config_info, docs/kubernetes-behaviour.md §11.3)', async () => {
    await expect(world({metricsHash: HASH}).waitConfigLoaded('cp-1', HASH, 5000)).resolves.toBeUndefined()
  })

  it('times out, naming what it saw, while the apiserver reports another config, whatever the manifest says', async () => {
    await expect(
      world({metricsHash: OTHER, annotation: HASH}).waitConfigLoaded('cp-1', HASH, 5000),
    ).rejects.toMatchObject({
      code: 'WAIT_TIMEOUT',
      message: expect.stringContaining(`loaded config ${OTHER}`),
    })
  })

  it('before 1.34 (no last_config_info): a pod started from a manifest annotated with the hash counts', async () => {
    await expect(world({annotation: HASH}).waitConfigLoaded('cp-1', HASH, 5000)).resolves.toBeUndefined()
    await expect(world({annotation: OTHER}).waitConfigLoaded('cp-1', HASH, 5000)).rejects.toMatchObject({
      code: 'WAIT_TIMEOUT',
    })
    await expect(world({}).waitConfigLoaded('cp-1', HASH, 5000)).rejects.toMatchObject({code: 'WAIT_TIMEOUT'})
  })
})
