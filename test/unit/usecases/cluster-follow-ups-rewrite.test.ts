import {stageConfig} from '../../../src/encryption/config/load.js'
import {describe, expect, it} from 'vitest'

import {type EndpointProbe, KubeApiError, type KubeCluster} from '../../../src/kube/types.js'
import {clusterFollowUps} from '../../../src/usecases/follow-ups.js'
import {VALIDATING_WEBHOOKS} from '../../../src/usecases/rewrite/webhooks.js'
import type {SshConnector} from '../../../src/ssh/ssh-session.js'
import {CONFIGMAPS, FakeCluster, SECRETS} from '../helpers/fake-cluster.js'

const CONFIG = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aescbc: {keys: [{name: key2, secret: ${Buffer.alloc(32, 7).toString('base64')}}]}
      - identity: {}
`

/** The rewrite stage of rotate, decrypt-all (and enable) over a fake API: no etcd or SSH needed. */
function followUps(objects: FakeCluster, probe?: EndpointProbe) {
  const warnings: string[] = []
  const lines: string[] = []
  const cluster = {
    context: {contextName: 'fake', cluster: 'fake', user: 'u', server: 'https://fake', namespace: 'default', files: []},
    objects,
    discovery: {resources: async () => [SECRETS, CONFIGMAPS]},
    probe: probe ?? {get: async () => ({status: 404, body: '404 page not found'})},
  } as unknown as KubeCluster
  const f = clusterFollowUps(cluster, {
    etcd: {} as never,
    ssh: {} as SshConnector,
    onWarning: (m) => warnings.push(m),
    onNotice: (l) => lines.push(`${l} (writes so far: ${objects.calls.replace})`),
  })
  return {f, warnings, lines}
}

describe('clusterFollowUps.rewrite: webhooks and estimate before the writes', () => {
  it('warns about webhooks matching UPDATE, prints the estimate, and returns both in the summary', async () => {
    const c = new FakeCluster()
    for (let i = 0; i < 12; i++) c.seed(SECRETS, 'default', `s-${i}`, {v: String(i)})
    c.seedObject(VALIDATING_WEBHOOKS, {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: {name: 'policy'},
      webhooks: [
        {
          name: 'deny.example',
          failurePolicy: 'Ignore',
          rules: [{operations: ['*'], apiGroups: ['*'], apiVersions: ['*'], resources: ['*/*']}],
        },
      ],
    })
    const {f, warnings, lines} = followUps(c)
    const summary = await f.rewrite(stageConfig(CONFIG))
    expect(warnings).toEqual([
      expect.stringMatching(
        /^validating admission webhook deny.example \(ValidatingWebhookConfiguration policy\) matches UPDATE of secrets: .*failurePolicy Ignore/,
      ),
    ])
    // the estimate names plain rates (rotate and decrypt-all have no --qps flag), before any write
    // (12 objects fit in the rate limit's burst of 75, so the round trips may set the pace)
    expect(lines).toEqual([
      expect.stringMatching(
        /^Estimate: 12 objects in 1 resource, under 1 s at (300 requests\/s|32 requests in flight) \(writes so far: 0\)$/,
      ),
    ])
    expect(summary).toMatchObject({
      resources: ['secrets'],
      rewritten: 12,
      estimate: {resources: [{resource: 'secrets', objects: 12}], qps: 300, concurrency: 32},
      webhooks: [expect.objectContaining({webhook: 'deny.example', failurePolicy: 'Ignore', seesNoOpWrite: 'all'})],
    })
    expect(summary.webhooksListError).toBeUndefined()
  })

  it('the estimate of rotate and decrypt-all carries the stored bytes from /metrics (null without them)', async () => {
    const c = new FakeCluster()
    for (let i = 0; i < 12; i++) c.seed(SECRETS, 'default', `s-${i}`, {v: String(i)})
    const paths: string[] = []
    const probe: EndpointProbe = {
      get: async (path) => {
        paths.push(path)
        return {
          status: 200,
          body: 'apiserver_resource_objects{group="",resource="secrets"} 24\napiserver_resource_size_estimate_bytes{group="",resource="secrets"} 24000\n',
        }
      },
    }
    const {f, lines} = followUps(c, probe)
    const summary = await f.rewrite(stageConfig(CONFIG))
    expect(paths).toEqual(['/metrics'])
    expect(lines).toEqual([expect.stringMatching(/^Estimate: 12 objects \(about 12 kB stored\) in 1 resource, /)])
    expect(summary.estimate?.resources).toEqual([{resource: 'secrets', objects: 12, bytes: 12_000}])

    const plain = new FakeCluster()
    plain.seed(SECRETS, 'default', 's-1', {v: '1'})
    const without = followUps(plain)
    expect((await without.f.rewrite(stageConfig(CONFIG))).estimate?.resources).toEqual([
      {resource: 'secrets', objects: 1, bytes: null},
    ])
    expect(without.warnings).toEqual([])
  })

  it('a forbidden webhook listing is a warning and webhooksListError; the rewrite goes on', async () => {
    const c = new FakeCluster()
    c.seed(SECRETS, 'default', 's-1', {v: '1'})
    c.fault = ({resource}) => {
      if (resource.group === 'admissionregistration.k8s.io')
        throw new KubeApiError(403, 'Forbidden', 'forbidden: User "op" cannot list resource')
    }
    const {f, warnings} = followUps(c)
    const summary = await f.rewrite(stageConfig(CONFIG))
    expect(warnings).toEqual([
      expect.stringMatching(
        /^could not list admission webhook configurations \(403 Forbidden: forbidden: User "op" cannot list resource\)/,
      ),
    ])
    expect(summary).toMatchObject({
      rewritten: 1,
      webhooks: [],
      webhooksListError: '403 Forbidden: forbidden: User "op" cannot list resource',
    })
  })
})
