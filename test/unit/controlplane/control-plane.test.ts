import {describe, expect, it} from 'vitest'

import {parseCommandFlags} from '../../../src/controlplane/command-flags.js'
import {discoverControlPlane, etcdctlTargetForPod} from '../../../src/controlplane/control-plane.js'
import {kmsChecks, parseHealthReport} from '../../../src/controlplane/health.js'
import {currentKmsKeys, encryptionMetrics, parsePrometheusText} from '../../../src/controlplane/metrics.js'
import {PluginError} from '../../../src/errors.js'
import {etcdOptionsFromFlags} from '../../../src/flags/etcd.js'
import type {ApiResource, KubeObject, ListOptions, ObjectClient} from '../../../src/kube/types.js'
import {openEtcdReader} from '../../../src/etcd/etcd-access.js'

function apiserverPod(
  node: string,
  ip: string,
  opts: {config?: string; reload?: boolean; mount?: string; name?: string; hash?: string} = {},
): KubeObject {
  const command = [
    'kube-apiserver',
    `--advertise-address=${ip}`,
    '--secure-port=6443',
    '--etcd-servers=https://127.0.0.1:2379',
  ]
  if (opts.config) command.push(`--encryption-provider-config=${opts.config}`)
  if (opts.reload !== undefined) command.push(`--encryption-provider-config-automatic-reload=${opts.reload}`)
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: opts.name ?? `kube-apiserver-${node}`,
      namespace: 'kube-system',
      labels: {component: 'kube-apiserver', tier: 'control-plane'},
      annotations: {
        'kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint': `${ip}:6443`,
        'kubernetes.io/config.hash': opts.hash ?? `hash-${node}`,
      },
    },
    spec: {
      nodeName: node,
      containers: [
        {
          name: 'kube-apiserver',
          command,
          volumeMounts: [
            {name: 'k8s-certs', mountPath: '/etc/kubernetes/pki'},
            ...(opts.mount ? [{name: 'enc', mountPath: opts.mount}] : []),
          ],
        },
      ],
    },
    status: {phase: 'Running', conditions: [{type: 'Ready', status: 'True'}]},
  }
}

function etcdPod(node: string, ip: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `etcd-${node}`,
      namespace: 'kube-system',
      labels: {component: 'etcd'},
      annotations: {'kubeadm.kubernetes.io/etcd.advertise-client-urls': `https://${ip}:2379`},
    },
    spec: {
      nodeName: node,
      containers: [
        {
          name: 'etcd',
          command: [
            'etcd',
            `--advertise-client-urls=https://${ip}:2379`,
            `--listen-client-urls=https://127.0.0.1:2379,https://${ip}:2379`,
          ],
        },
      ],
    },
    status: {phase: 'Running', conditions: [{type: 'Ready', status: 'True'}]},
  }
}

function node(name: string, ip: string, ready = true): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {name, labels: {'node-role.kubernetes.io/control-plane': ''}},
    status: {
      addresses: [{type: 'InternalIP', address: ip}],
      conditions: [{type: 'Ready', status: ready ? 'True' : 'False'}],
    },
  }
}

/** A fake ObjectClient that filters by the label selectors discovery uses, in pages of 1. */
function fakeObjects(objects: KubeObject[]): ObjectClient & {lists: ListOptions[]} {
  const lists: ListOptions[] = []
  const matches = (o: KubeObject, selector?: string) => {
    if (!selector) return true
    const [k, v] = selector.split('=')
    return o.metadata.labels?.[k] !== undefined && (v === undefined || o.metadata.labels[k] === v)
  }
  return {
    lists,
    async list(resource: ApiResource, options: ListOptions) {
      lists.push(options)
      const all = objects.filter(
        (o) =>
          o.kind === resource.kind &&
          matches(o, options.labelSelector) &&
          (!options.namespace || o.metadata.namespace === options.namespace),
      )
      const start = Number(options.continueToken ?? 0)
      return {items: all.slice(start, start + 1), continueToken: start + 1 < all.length ? String(start + 1) : undefined}
    },
    get: async () => {
      throw new Error('unused')
    },
    create: async (_r, o) => o,
    replace: async (_r, o) => o,
    delete: async () => {},
  }
}

describe('control-plane discovery from the API', () => {
  const cluster = [
    node('cp2', '10.0.0.2'),
    node('cp1', '10.0.0.1', false),
    node('worker', '10.0.0.9'),
    apiserverPod('cp1', '10.0.0.1', {
      config: '/etc/kubernetes/enc/config.yaml',
      reload: true,
      mount: '/etc/kubernetes/enc',
    }),
    apiserverPod('cp2', '10.0.0.2', {config: '/etc/kubernetes/enc/config.yaml'}),
    apiserverPod('cp2', '10.0.0.2', {name: 'kube-apiserver-cp2-bak'}),
    etcdPod('cp1', '10.0.0.1'),
    etcdPod('cp2', '10.0.0.2'),
  ]
  // "worker" carries no control-plane label in its metadata:
  cluster[2].metadata.labels = {}

  it('joins nodes, apiserver and etcd mirror pods, and reads the encryption flags', async () => {
    const nodes = await discoverControlPlane(fakeObjects(cluster))
    expect(nodes.map((n) => n.name)).toEqual(['cp1', 'cp2'])
    const [cp1, cp2] = nodes
    expect(cp1).toMatchObject({internalIP: '10.0.0.1', ready: false})
    expect(cp1.apiservers[0]).toMatchObject({
      endpoint: '10.0.0.1:6443',
      configHash: 'hash-cp1',
      encryption: {configPath: '/etc/kubernetes/enc/config.yaml', automaticReload: true, configPathMounted: true},
    })
    expect(cp2.apiservers.map((a) => a.name)).toEqual(['kube-apiserver-cp2', 'kube-apiserver-cp2-bak'])
    expect(cp2.apiservers[0].encryption).toEqual({
      configPath: '/etc/kubernetes/enc/config.yaml',
      automaticReload: false,
      configPathMounted: false,
    })
    expect(cp2.apiservers[1].encryption.configPath).toBeUndefined()
    expect(cp1.etcd).toMatchObject({name: 'etcd-cp1', container: 'etcd', endpoint: 'https://127.0.0.1:2379'})
    expect(etcdctlTargetForPod(cp1.etcd!)).toEqual({
      endpoint: 'https://127.0.0.1:2379',
      cacert: '/etc/kubernetes/pki/etcd/ca.crt',
      cert: '/etc/kubernetes/pki/etcd/healthcheck-client.crt',
      key: '/etc/kubernetes/pki/etcd/healthcheck-client.key',
      binary: undefined,
      commandTimeoutSeconds: undefined,
    })
  })

  it('picks the etcd transport: exec on the first ready node by default, a named node on request, clear errors otherwise', async () => {
    const objects = fakeObjects(cluster)
    const deps = {
      controlPlane: () => discoverControlPlane(objects),
      exec: {exec: async () => ({stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), code: 0})},
    }
    expect((await openEtcdReader(etcdOptionsFromFlags({}), deps)).describe()).toEqual({
      transport: 'exec',
      endpoint: 'https://127.0.0.1:2379',
      via: 'kube-system/etcd-cp2',
    })
    expect((await openEtcdReader(etcdOptionsFromFlags({'etcd-node': 'cp1'}), deps)).describe().via).toBe(
      'kube-system/etcd-cp1',
    )
    expect(
      (
        await openEtcdReader(
          etcdOptionsFromFlags({'etcd-endpoints': '10.0.0.1:2379,10.0.0.2:2379', 'etcd-cacert': '/ca'}),
          deps,
        )
      ).describe(),
    ).toEqual({
      transport: 'direct',
      endpoint: 'https://10.0.0.1:2379,https://10.0.0.2:2379',
    })
    const noPods = {
      ...deps,
      controlPlane: () => discoverControlPlane(fakeObjects(cluster.filter((o) => !o.metadata.name.startsWith('etcd')))),
    }
    const error = (await openEtcdReader(etcdOptionsFromFlags({}), noPods).catch((e: unknown) => e)) as PluginError
    expect(error).toBeInstanceOf(PluginError)
    expect(error.exitCode).toBe(3)
    expect(error.hint).toContain('--etcd-endpoints')
    const badNode = (await openEtcdReader(etcdOptionsFromFlags({'etcd-node': 'nope'}), deps).catch(
      (e: unknown) => e,
    )) as PluginError
    expect(badNode.exitCode).toBe(2)
    expect(() => etcdOptionsFromFlags({'etcd-via': 'direct'})).toThrow(/needs --etcd-endpoints/)
    expect(() => etcdOptionsFromFlags({'etcd-cert': '/c'})).toThrow(/go together/)
  })
})

describe('command flags', () => {
  it('reads --name=value, --name value and bare booleans; last one wins', () => {
    const flags = parseCommandFlags(['kube-apiserver', '--a=1', '--b', 'two', '--c', '--a=3', '--d=x=y'])
    expect(Object.fromEntries(flags)).toEqual({a: '3', b: 'two', c: 'true', d: 'x=y'})
  })
})

describe('metrics', () => {
  const text = `# HELP apiserver_encryption_config_controller_last_config_info [ALPHA] Information about the last applied encryption configuration.
# TYPE apiserver_encryption_config_controller_last_config_info gauge
apiserver_encryption_config_controller_last_config_info{apiserver_id_hash="sha256:aaa",hash="sha256:0123abcd"} 1
apiserver_encryption_config_controller_automatic_reloads_total{apiserver_id_hash="sha256:aaa",status="failure"} 2
apiserver_encryption_config_controller_automatic_reloads_total{apiserver_id_hash="sha256:aaa",status="success"} 5
apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds{apiserver_id_hash="sha256:aaa",status="success"} 1.7e+09
apiserver_storage_transformation_operations_total{resource="secrets",status="OK",transformation_type="to_storage",transformer_prefix="k8s:enc:aescbc:v1:"} 12
apiserver_storage_transformation_operations_total{resource="secrets",status="OK",transformation_type="from_storage",transformer_prefix="identity"} 3 1700000000000
weird_metric{label="with \\"quotes\\", a } and a\\nnewline"} NaN
plain_metric +Inf
`
  it('parses labels (escapes, braces in values), special values and timestamps', () => {
    const samples = parsePrometheusText(text)
    expect(samples.find((s) => s.name === 'weird_metric')?.labels.label).toBe('with "quotes", a } and a\nnewline')
    expect(samples.find((s) => s.name === 'plain_metric')?.value).toBe(Infinity)
    expect(
      samples.filter((s) => s.name === 'apiserver_storage_transformation_operations_total').map((s) => s.value),
    ).toEqual([12, 3])
  })

  it('extracts the config hash, reload counters and transformations (docs/kubernetes-behaviour.md §11)', () => {
    const metrics = encryptionMetrics(parsePrometheusText(text))
    expect(metrics).toMatchObject({
      lastConfigHash: 'sha256:0123abcd',
      apiserverIdHash: 'sha256:aaa',
      reloads: {success: 5, failure: 2},
      lastReloadSeconds: {success: 1.7e9},
    })
    expect(metrics.transformations[0]).toEqual({
      resource: 'secrets',
      type: 'to_storage',
      prefix: 'k8s:enc:aescbc:v1:',
      status: 'OK',
      count: 12,
    })
  })

  it('falls back to the pre-1.30 success/failure counters; no hash before 1.34', () => {
    const old = encryptionMetrics(
      parsePrometheusText(
        'apiserver_encryption_config_controller_automatic_reload_success_total 4\napiserver_encryption_config_controller_automatic_reload_failures_total 1\n',
      ),
    )
    expect(old.reloads).toEqual({success: 4, failure: 1})
    expect(old.lastConfigHash).toBeUndefined()
  })
})

describe('KMS v2 key ID metrics', () => {
  const kmsText = `apiserver_envelope_encryption_key_id_hash_status_last_timestamp_seconds{apiserver_id_hash="sha256:a",key_id_hash="sha256:old",provider_name="kms-plugin"} 1.7e+09
apiserver_envelope_encryption_key_id_hash_status_last_timestamp_seconds{apiserver_id_hash="sha256:a",key_id_hash="sha256:new",provider_name="kms-plugin"} 1.70000006e+09
apiserver_envelope_encryption_key_id_hash_last_timestamp_seconds{apiserver_id_hash="sha256:a",key_id_hash="sha256:old",provider_name="kms-plugin",transformation_type="to_storage"} 1.70000009e+09
apiserver_envelope_encryption_key_id_hash_last_timestamp_seconds{apiserver_id_hash="sha256:a",key_id_hash="sha256:w",provider_name="other",transformation_type="to_storage"} 1.7e+09
apiserver_envelope_encryption_key_id_hash_last_timestamp_seconds{apiserver_id_hash="sha256:a",key_id_hash="sha256:r",provider_name="other",transformation_type="from_storage"} 1.8e+09
`
  it('the current key ID per provider is the newest Status answer, else the newest write (never a read)', () => {
    const metrics = encryptionMetrics(parsePrometheusText(kmsText))
    expect(metrics.kmsKeyIds).toHaveLength(5)
    expect(currentKmsKeys(metrics.kmsKeyIds)).toEqual([
      {provider: 'kms-plugin', keyIdHash: 'sha256:new', source: 'status', at: new Date(1.70000006e12).toISOString()},
      {provider: 'other', keyIdHash: 'sha256:w', source: 'to_storage', at: new Date(1.7e12).toISOString()},
    ])
  })
})

describe('health endpoints', () => {
  it('reads [+]/[-] lines and finds the KMS checks (docs/kubernetes-behaviour.md §10)', () => {
    const report = parseHealthReport(
      500,
      '[+]ping ok\n[+]etcd ok\n[-]kms-providers failed: reason withheld\n[+]kms-provider-0 ok\nreadyz check failed\n',
    )
    expect(report.ok).toBe(false)
    expect(report.checks).toHaveLength(4)
    expect(kmsChecks(report)).toEqual([
      {name: 'kms-providers', ok: false, message: 'reason withheld'},
      {name: 'kms-provider-0', ok: true, message: undefined},
    ])
  })
})
