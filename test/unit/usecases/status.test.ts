import {readFileSync} from 'node:fs'

import {describe, expect, it} from 'vitest'

import type {ApiServerPod, ControlPlaneNode} from '../../../src/controlplane/control-plane.js'
import {configHash} from '../../../src/encryption/fingerprint.js'
import {KubeApiError, type EndpointProbe} from '../../../src/kube/types.js'
import {leaseStatus, OperationLease, readLease} from '../../../src/state/operation-lease.js'
import {ROTATE_STAGES, type RotationState, rotationStatus} from '../../../src/usecases/rotate.js'
import {apiserverKmsKeys} from '../../../src/usecases/status/kms-keys.js'
import type {ScanSummary} from '../../../src/usecases/status/scan-targets.js'
import {encryptionStatus, type StatusDeps} from '../../../src/usecases/status/status.js'
import type {RemoteFiles} from '../../../src/ssh/remote-files.js'
import {FakeObjects} from './fake-control-plane.js'

const vectorsConfig = readFileSync(new URL('../../fixtures/vectors/encryption-config.yaml', import.meta.url))
const CONFIG_PATH = '/etc/kubernetes/enc/config.yaml'
const identityFirst = Buffer.from(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - identity: {}
      - aescbc:
          keys:
            - name: key1
              secret: AAECAwQFBgcICQoLDA0ODw==
`)

function apiserver(node: string, opts: Partial<ApiServerPod['encryption']> & {name?: string} = {}): ApiServerPod {
  return {
    name: opts.name ?? `kube-apiserver-${node}`,
    namespace: 'kube-system',
    node,
    phase: 'Running',
    ready: true,
    endpoint: `${node}:6443`,
    encryption: {
      configPath: 'configPath' in opts ? opts.configPath : CONFIG_PATH,
      automaticReload: opts.automaticReload ?? false,
      configPathMounted: opts.configPathMounted ?? true,
    },
    flags: {},
  }
}

function cpNode(name: string, apiservers = [apiserver(name)]): ControlPlaneNode {
  return {name, ready: true, apiservers}
}

interface World {
  nodes: ControlPlaneNode[]
  configs: Record<string, Buffer | undefined>
  manifests?: Record<string, string[]>
  down?: string[]
  metricsHash?: Record<string, string>
  ssh?: boolean
  /** Per node: the KMS check's failure text (undefined: healthy) and the key ID hash from Status. */
  kms?: Record<string, {failing?: string; keyIdHash?: string}>
}

function deps(world: World): StatusDeps {
  const probe: EndpointProbe = {
    async get(path, options) {
      const node = options?.endpoint?.split(':')[0] ?? ''
      if (world.down?.includes(node))
        throw new KubeApiError(
          0,
          'Unreachable',
          `cannot reach the API server at ${options?.endpoint}: connection refused`,
          undefined,
          undefined,
          {server: options?.endpoint},
        )
      const kms = world.kms?.[node]
      if (path === '/readyz/kms-providers')
        return kms?.failing ? {status: 500, body: `internal server error: ${kms.failing}\n`} : {status: 200, body: 'ok'}
      if (path.startsWith('/readyz')) {
        if (!kms) return {status: 200, body: '[+]ping ok\n[+]etcd ok\nreadyz check passed\n'}
        return kms.failing
          ? {
              status: 500,
              body: '[+]ping ok\n[+]etcd ok\n[-]kms-providers failed: reason withheld\nreadyz check failed\n',
            }
          : {status: 200, body: '[+]ping ok\n[+]etcd ok\n[+]kms-providers ok\nreadyz check passed\n'}
      }
      const hash = world.metricsHash?.[node]
      const key = kms?.keyIdHash
        ? `apiserver_envelope_encryption_key_id_hash_status_last_timestamp_seconds{apiserver_id_hash="sha256:x",key_id_hash="${kms.keyIdHash}",provider_name="kms-plugin"} 1.7e+09\n`
        : ''
      return {
        status: 200,
        body:
          (hash
            ? `apiserver_encryption_config_controller_last_config_info{apiserver_id_hash="sha256:x",hash="${hash}"} 1\n`
            : '') + key,
      }
    },
  }
  const files = (node: ControlPlaneNode): RemoteFiles =>
    ({
      node: node.name,
      async read(path: string) {
        return path === CONFIG_PATH ? world.configs[node.name] : undefined
      },
      async list() {
        return [
          'kube-apiserver.yaml',
          'etcd.yaml',
          '.kube-apiserver.yaml.swp',
          ...(world.manifests?.[node.name] ?? []),
        ].map((name) => ({name, type: 'file' as const, size: 1}))
      },
    }) as unknown as RemoteFiles
  return {
    context: {contextName: 'test', server: 'https://lb:6443'},
    controlPlane: async () => world.nodes,
    probe,
    files: world.ssh === false ? undefined : files,
  }
}

const three = () => [cpNode('cp1'), cpNode('cp2'), cpNode('cp3')]

const kmsConfig = Buffer.from(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms:
          apiVersion: v2
          name: kms-plugin
          endpoint: unix:///var/run/kmsplugin/socket.sock
      - identity: {}
`)
const kmsEverywhere = {cp1: kmsConfig, cp2: kmsConfig, cp3: kmsConfig}
const A = `sha256:${'a'.repeat(64)}`
const B = `sha256:${'b'.repeat(64)}`

describe('encryptionStatus with KMS v2', () => {
  it('healthy everywhere with the same key ID: kmsKeys per node, no problems', async () => {
    const result = await encryptionStatus(
      deps({
        nodes: three(),
        configs: kmsEverywhere,
        kms: {cp1: {keyIdHash: A}, cp2: {keyIdHash: A}, cp3: {keyIdHash: A}},
      }),
    )
    expect(result.problems).toEqual([])
    expect(result.nodes.map((n) => n.kmsKeys)).toEqual(
      Array(3).fill([{provider: 'kms-plugin', keyIdHash: A, source: 'status', at: new Date(1.7e12).toISOString()}]),
    )
    expect(result.nodes.map((n) => n.kms)).toEqual(Array(3).fill([{name: 'kms-providers', ok: true}]))
    expect(result.resources).toEqual([
      {resource: 'secrets', write: 'kms:kms-plugin', readOnly: ['identity'], identityFallback: true},
    ])
  })

  it('key ID drift between apiservers is a problem naming the nodes and the hash each reports', async () => {
    const result = await encryptionStatus(
      deps({
        nodes: three(),
        configs: kmsEverywhere,
        kms: {cp1: {keyIdHash: A}, cp2: {keyIdHash: B}, cp3: {keyIdHash: A}},
      }),
    )
    expect(result.problems).toEqual([
      `KMS key ID drift for provider kms-plugin: cp1, cp3 report ${A}; cp2 reports ${B}; every apiserver must report the same key ID before a rewrite`,
    ])
  })

  it('an unhealthy KMS provider names the node and what its apiserver reports (from /readyz/kms-providers), once', async () => {
    const failing =
      'kms-provider-0: kmsv2 Provider kms-plugin is not healthy, error: got unexpected healthz status: disk on fire'
    const result = await encryptionStatus(
      deps({
        nodes: three(),
        configs: kmsEverywhere,
        kms: {cp1: {keyIdHash: A}, cp2: {keyIdHash: A, failing}, cp3: {keyIdHash: A}},
      }),
    )
    expect(result.problems).toEqual([
      `cp2: KMS provider unhealthy: its apiserver reports kms-providers failed: ${failing} (the apiserver is not ready)`,
    ])
    expect(result.nodes[1]!.apiserver).toMatchObject({ready: false, failingChecks: ['kms-providers']})
    // its metrics are still read: the key ID it last had
    expect(result.nodes[1]!.kmsKeys.map((k) => k.keyIdHash)).toEqual([A])
  })

  it("apiserverKmsKeys (what verify and rewrite read): key IDs with each apiserver's KMS health and readiness", async () => {
    const failing = 'kms-provider-0: rpc error: dial unix /etc/kubernetes/kms/kms.sock: connect: no such file'
    const world = {nodes: three(), configs: kmsEverywhere, kms: {cp1: {keyIdHash: A}, cp2: {keyIdHash: A, failing}}}
    const reports = await apiserverKmsKeys(world.nodes, deps(world).probe)
    expect(reports.map((r) => [r.node, r.ready, r.kms, r.keys.map((k) => k.keyIdHash)])).toEqual([
      ['cp1', true, [{name: 'kms-providers', ok: true}], [A]],
      ['cp2', false, [{name: 'kms-providers', ok: false, message: failing}], [A]],
      ['cp3', true, [], []],
    ])
  })

  it('key IDs of providers the config no longer names are left out', async () => {
    const result = await encryptionStatus(
      deps({nodes: [cpNode('cp1')], configs: {cp1: vectorsConfig}, kms: {cp1: {keyIdHash: A}}}),
    )
    expect(result.nodes[0]!.kmsKeys).toEqual([])
  })
})

describe('encryptionStatus', () => {
  it('three nodes with the same valid config: no problems, per-resource providers listed', async () => {
    const result = await encryptionStatus(
      deps({nodes: three(), configs: {cp1: vectorsConfig, cp2: vectorsConfig, cp3: vectorsConfig}}),
    )
    expect(result.problems).toEqual([])
    expect(result.agreement).toEqual({agree: true, hashes: {[configHash(vectorsConfig)]: ['cp1', 'cp2', 'cp3']}})
    expect(result.nodes.map((n) => [n.node, n.apiserver.ready, n.encryption.enabled, n.config.source])).toEqual([
      ['cp1', true, true, 'ssh'],
      ['cp2', true, true, 'ssh'],
      ['cp3', true, true, 'ssh'],
    ])
    expect(result.resources.find((r) => r.resource === 'secrets')).toEqual({
      resource: 'secrets',
      write: 'aesgcm:key2',
      readOnly: ['aesgcm:key1', 'aescbc:key2', 'aescbc:key1', 'secretbox:key1', 'identity'],
      identityFallback: true,
    })
    expect(JSON.stringify(result)).not.toContain('AAECAwQFBgcICQoLDA0ODw==')
  })

  it('a node with a different config is named with both hashes', async () => {
    const result = await encryptionStatus(
      deps({nodes: three(), configs: {cp1: vectorsConfig, cp2: identityFirst, cp3: vectorsConfig}}),
    )
    expect(result.agreement.agree).toBe(false)
    const problem = result.problems.find((p) => p.includes('different encryption configs'))
    expect(problem).toContain(`cp1, cp3: ${configHash(vectorsConfig)}`)
    expect(problem).toContain(`cp2: ${configHash(identityFirst)}`)
  })

  it('an apiserver that does not answer is not ready, and said so', async () => {
    const result = await encryptionStatus(
      deps({nodes: three(), configs: {cp1: vectorsConfig, cp2: vectorsConfig, cp3: vectorsConfig}, down: ['cp2']}),
    )
    expect(result.nodes[1].apiserver.ready).toBe(false)
    expect(result.problems).toEqual([
      expect.stringMatching(
        /^cp2: apiserver kube-apiserver-cp2 is not ready \(cannot reach the API server at cp2:6443: connection refused\)/,
      ),
    ])
  })

  it('encryption off everywhere is a problem; off on one node names the nodes', async () => {
    const off = [
      cpNode('cp1', [apiserver('cp1', {configPath: undefined})]),
      cpNode('cp2', [apiserver('cp2', {configPath: undefined})]),
    ]
    const none = await encryptionStatus(deps({nodes: off, configs: {}}))
    expect(none.problems).toEqual(['encryption at rest is off: no apiserver has --encryption-provider-config'])
    const mixed = await encryptionStatus(deps({nodes: [cpNode('cp1'), off[1]], configs: {cp1: vectorsConfig}}))
    expect(mixed.problems).toContain('encryption is on for cp1 but off for cp2')
    expect(mixed.agreement.agree).toBe(false)
  })

  it('identity first, a stray manifest backup and a second apiserver mirror pod are problems', async () => {
    const nodes = [cpNode('cp1', [apiserver('cp1'), apiserver('cp1', {name: 'kube-apiserver-cp1-bak'})])]
    const result = await encryptionStatus(
      deps({nodes, configs: {cp1: identityFirst}, manifests: {cp1: ['kube-apiserver.yaml.bak']}}),
    )
    expect(result.problems).toEqual(
      expect.arrayContaining([
        'secrets: new writes are stored unencrypted (identity is the first provider)',
        expect.stringContaining('cp1: /etc/kubernetes/manifests/kube-apiserver.yaml.bak is in the manifests dir'),
        expect.stringContaining('more than one kube-apiserver mirror pod (kube-apiserver-cp1-bak)'),
      ]),
    )
    expect(result.problems.join('\n')).not.toContain('.swp')
  })

  it('without SSH the hash comes from last_config_info, and the resources are unknown (a warning)', async () => {
    const hash = configHash(vectorsConfig)
    const result = await encryptionStatus(
      deps({nodes: three(), configs: {}, ssh: false, metricsHash: {cp1: hash, cp2: hash, cp3: 'sha256:other'}}),
    )
    expect(result.nodes.map((n) => n.config.source)).toEqual(['metrics', 'metrics', 'metrics'])
    expect(result.agreement.agree).toBe(false)
    expect(result.resources).toEqual([])
    expect(result.warnings.join('\n')).toContain('could not be read over SSH')
  })

  it('a file on disk that differs from what the apiserver loaded is reported', async () => {
    const result = await encryptionStatus(
      deps({nodes: [cpNode('cp1')], configs: {cp1: vectorsConfig}, metricsHash: {cp1: 'sha256:old'}}),
    )
    expect(result.problems).toEqual([
      expect.stringContaining('cp1: the apiserver runs config sha256:old, the file on disk is sha256:'),
    ])
  })

  it('a config path outside every volumeMount is a problem (the apiserver cannot read it)', async () => {
    const result = await encryptionStatus(
      deps({nodes: [cpNode('cp1', [apiserver('cp1', {configPathMounted: false})])], configs: {cp1: vectorsConfig}}),
    )
    expect(result.problems).toEqual([expect.stringContaining('is not inside any volumeMount')])
  })

  it('shows the recorded key rotation and what to run next; a rotation that is not done is a warning, not a problem', async () => {
    const state: RotationState = {
      operation: 'rotate',
      startedAt: '2026-01-01T00:00:00Z',
      updatedAt: '2026-01-01T00:01:00Z',
      status: 'failed',
      stage: 'remove-old',
      completedStages: ['add-key', 'wait-add', 'promote', 'wait-promote', 'rewrite'],
      provider: 'secretbox',
      newKey: 'key2',
      oldKey: {provider: 'aescbc', name: 'key1'},
      error: 'no backup confirmed',
    }
    const result = await encryptionStatus({
      ...deps({nodes: three(), configs: {cp1: vectorsConfig, cp2: vectorsConfig, cp3: vectorsConfig}}),
      rotation: async () => rotationStatus(state),
    })
    expect(result.rotation).toMatchObject({
      status: 'failed',
      stage: 'remove-old',
      newKey: 'key2',
      oldKey: {provider: 'aescbc', name: 'key1'},
      next: 'kubectl encryption rotate --backup-confirmed',
    })
    expect(result.warnings).toContain(
      "a key rotation aescbc/key1 -> secretbox/key2 is stopped at stage remove-old; continue it with 'kubectl encryption rotate --backup-confirmed'",
    )
    expect(result.problems).toEqual([])
    const midway = rotationStatus({
      ...state,
      status: 'in-progress',
      stage: 'promote',
      completedStages: ['add-key', 'wait-add'],
    })
    expect(midway.next).toBe('kubectl encryption rotate')
    expect(rotationStatus({...state, status: 'done', completedStages: [...ROTATE_STAGES]}).next).toBeUndefined()
  })

  it('a finished rotation from an earlier enable cycle (its key no longer in the config) is not shown (issue 13)', async () => {
    const state: RotationState = {
      operation: 'rotate',
      startedAt: '2026-01-01T00:00:00Z',
      updatedAt: '2026-01-01T00:01:00Z',
      status: 'done',
      stage: 'remove-old',
      completedStages: [...ROTATE_STAGES],
      provider: 'secretbox',
      newKey: 'key-20260101T000000Z',
      oldKey: {provider: 'aescbc', name: 'key1'},
    }
    const base = deps({nodes: three(), configs: {cp1: vectorsConfig, cp2: vectorsConfig, cp3: vectorsConfig}})
    expect((await encryptionStatus({...base, rotation: async () => rotationStatus(state)})).rotation).toBeUndefined()
    // the rotation that made the config's write key is still shown
    const current = await encryptionStatus({
      ...base,
      rotation: async () => rotationStatus({...state, provider: 'aesgcm', newKey: 'key2'}),
    })
    expect(current.rotation).toMatchObject({status: 'done', newKey: 'key2'})
  })

  it('SSH failing on every node is a problem (exit 5 for a cron job), not "no problems" (issue 13)', async () => {
    const base = deps({nodes: three(), configs: {cp1: vectorsConfig, cp2: vectorsConfig, cp3: vectorsConfig}})
    const failing = (): RemoteFiles =>
      ({
        async read() {
          throw new Error('Cannot connect to node over SSH: Permission denied (publickey)')
        },
        async list() {
          throw new Error('Cannot connect to node over SSH: Permission denied (publickey)')
        },
      }) as unknown as RemoteFiles
    const all = await encryptionStatus({...base, files: failing})
    expect(all.problems).toEqual([
      expect.stringMatching(
        /^no node: manifest and encryption config not checked, SSH failed \(.*Permission denied \(publickey\)\)$/,
      ),
    ])
    const one = await encryptionStatus({
      ...base,
      files: (node) => (node.name === 'cp2' ? failing() : base.files!(node)),
    })
    expect(one.problems).toEqual([
      expect.stringMatching(/^cp2: manifest and encryption config not checked, SSH failed/),
    ])
  })

  it('a rotation state that cannot be read (e.g. RBAC) is a warning; no state means no rotation field', async () => {
    const base = deps({nodes: [cpNode('cp1')], configs: {cp1: vectorsConfig}})
    const denied = await encryptionStatus({
      ...base,
      rotation: async () =>
        Promise.reject(new KubeApiError(403, 'Forbidden', 'configmaps "kubectl-encryption-state" is forbidden')),
    })
    expect(denied.rotation).toBeUndefined()
    expect(denied.warnings.join('\n')).toContain(
      'cannot read the rotation state (kube-system/kubectl-encryption-state)',
    )
    const none = await encryptionStatus({...base, rotation: async () => undefined})
    expect(none.rotation).toBeUndefined()
    expect(none.warnings).toEqual(denied.warnings.filter((w) => !w.includes('rotation state')))
  })

  it('shows a held lock (holder, operation, since) beside the rotation; stale once its TTL ran out', async () => {
    const objects = new FakeObjects()
    await OperationLease.acquire(
      objects,
      {holder: {user: 'alice', host: 'box', pid: 42}, operation: 'rotate'},
      {now: () => new Date('2026-11-28T03:00:00Z')},
    )
    const base = deps({nodes: [cpNode('cp1')], configs: {cp1: vectorsConfig}})
    const lockAt = (now: string) => async () => {
      const lease = await readLease(objects)
      return lease && leaseStatus(lease, {now: () => new Date(now)})
    }
    const held = await encryptionStatus({...base, lock: lockAt('2026-11-28T03:00:30Z')})
    expect(held.lock).toEqual({
      holder: 'alice@box pid 42',
      operation: 'rotate',
      since: '2026-11-28T03:00:00.000Z',
      renewedAt: '2026-11-28T03:00:00.000Z',
      expiresAt: '2026-11-28T03:01:00.000Z',
      stale: false,
    })
    expect(held.problems).toEqual([])
    expect((await encryptionStatus({...base, lock: lockAt('2026-11-28T03:01:01Z')})).lock?.stale).toBe(true)
    expect((await encryptionStatus({...base, lock: async () => undefined})).lock).toBeUndefined()
  })
})

describe('encryptionStatus --scan: when the scan starts', () => {
  const summary = (): ScanSummary => ({
    etcd: {transport: 'direct', endpoint: 'https://127.0.0.1:2379'},
    keys: 0,
    resources: [],
    totals: {total: 0, plaintext: 0, stale: 0, undecryptable: 0, unverified: 0, orphans: 0},
  })
  /** Node discovery that waits until `release()`, to see what runs before it. */
  const heldDiscovery = (nodes: ControlPlaneNode[]) => {
    let release = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    return {release, controlPlane: () => held.then(() => nodes)}
  }

  it('with --config and no KMS provider, the scan runs while the nodes are checked, with that config', async () => {
    const hold = heldDiscovery(three())
    const calls: Array<{resources: number; kms: Record<string, string>}> = []
    const result = await encryptionStatus({
      ...deps({nodes: three(), configs: {cp1: vectorsConfig, cp2: vectorsConfig, cp3: vectorsConfig}}),
      controlPlane: hold.controlPlane,
      localConfig: {path: 'local.yaml', bytes: vectorsConfig},
      scan: async (config, kms) => {
        calls.push({resources: config?.resources.length ?? 0, kms})
        hold.release() // the nodes are checked only once the scan has started
        return summary()
      },
    })
    expect(calls).toEqual([{resources: 2, kms: {}}])
    expect(result.scan?.etcd.transport).toBe('direct')
    expect(result.nodes).toHaveLength(3)
  })

  it('with a KMS provider the scan waits for the key IDs the apiservers agree on', async () => {
    const kms = {cp1: {keyIdHash: A}, cp2: {keyIdHash: A}, cp3: {keyIdHash: A}}
    const calls: Array<Record<string, string>> = []
    await encryptionStatus({
      ...deps({nodes: three(), configs: kmsEverywhere, kms}),
      localConfig: {path: 'local.yaml', bytes: kmsConfig},
      scan: async (_config, keys) => {
        calls.push(keys)
        return summary()
      },
    })
    expect(calls).toEqual([{'kms-plugin': A}])
  })

  it('a failed early scan is the error; a failed discovery waits for the early scan to end first', async () => {
    const local = {path: 'local.yaml', bytes: vectorsConfig}
    await expect(
      encryptionStatus({
        ...deps({nodes: three(), configs: {}}),
        localConfig: local,
        scan: async () => {
          throw new Error('etcd: no answer within 5s (--request-timeout)')
        },
      }),
    ).rejects.toThrow('no answer within 5s')

    let scanEnded = false
    await expect(
      encryptionStatus({
        ...deps({nodes: three(), configs: {}}),
        controlPlane: async () => {
          throw new Error('nodes is forbidden')
        },
        localConfig: local,
        scan: async () => {
          await new Promise((resolve) => setTimeout(resolve, 20))
          scanEnded = true
          return summary()
        },
      }),
    ).rejects.toThrow('nodes is forbidden')
    expect(scanEnded).toBe(true)
  })
})
