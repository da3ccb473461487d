// What the KMS v2 end-to-end files share (kms.test.ts, kms-outage.test.ts): the sandbox's KMS plugin on
// every node, sharing one set of KEKs as one KMS behind three nodes would, enabled with the plugin's own
// `enable --provider kms`; status and scan as JSON; waiting until every apiserver reports a key ID; and
// putting everything back.
import {createHash} from 'node:crypto'
import {dirname, join} from 'node:path'

import {restoreControlPlane, type SavedControlPlane, saveControlPlane} from './control-plane-state.js'
import {type KmsPlugin, startKmsPlugin} from './kms-plugin.js'
import {json, plugin, sshArgs} from './plugin.js'
import {kubectl, sandbox, sshOk, waitFor} from './sandbox.js'

/** The socket as the apiserver sees it: inside the node's /etc/kubernetes, in a directory enable mounts. */
export const KMS_SOCKET = '/etc/kubernetes/kms/kms.sock'
export const KMS_NAME = 'sandbox-kms'

export interface KmsStatusJson {
  nodes: Array<{
    node: string
    apiserver: {ready: boolean}
    kms: Array<{name: string; ok: boolean; message?: string}>
    kmsKeys: Array<{provider: string; keyIdHash: string}>
  }>
  scan?: {
    resources: Array<{
      resource: string
      total: number
      stale: number
      unverified: number
      kmsKeys?: Array<{provider: string; keyId: string; keyIdHash: string; count: number; current?: boolean}>
    }>
  }
  problems: string[]
}

export interface KmsEnableJson {
  writeKeys: Array<{provider: string}>
  verify?: {ok: boolean}
  nodes: Array<{status: string}>
}

export const kmsNodes = () => sandbox().nodes
/** Where a node's KMS_SOCKET is on the host running the tests (a node's /etc/kubernetes is a host directory). */
export const hostSocket = (node: string) =>
  join(sandbox().stateDir, 'nodes', node, 'etc-kubernetes', KMS_SOCKET.replace('/etc/kubernetes/', ''))
/** The key ID hash as the apiservers' metrics and the plugin's status show it. */
export const hashOf = (keyId: string) => `sha256:${createHash('sha256').update(keyId).digest('hex')}`

export const kmsStatus = async (...extra: string[]) => {
  const r = await plugin(['status', ...sshArgs(), '-o', 'json', ...extra])
  return {code: r.code, doc: json<KmsStatusJson>(r), stderr: r.stderr}
}

export const secretsScan = async () => {
  const s = await kmsStatus('--scan', '--resource', 'secrets')
  return {...s, secrets: s.doc.scan!.resources.find((r) => r.resource === 'secrets')!}
}

/** Waits until every apiserver reports `keyId` (its hash) as the current key ID and status is clean (exit 0). */
export const everyApiserverReports = (keyId: string) =>
  waitFor(
    `every apiserver to report KMS key ID ${keyId}`,
    async () => {
      const s = await kmsStatus()
      return s.code === 0 &&
        s.doc.nodes.every((n) => n.kmsKeys.some((k) => k.provider === KMS_NAME && k.keyIdHash === hashOf(keyId)))
        ? s
        : undefined
    },
    240_000,
    2000,
  )

/** Waits until `status` exits 5 with a "KMS provider unhealthy" problem for `node`; returns that run. */
export const statusReportsUnhealthy = (node: string) =>
  waitFor(
    `status to report the KMS plugin on ${node} unhealthy`,
    async () => {
      const x = await kmsStatus()
      return x.code === 5 && x.doc.problems.some((p) => p.startsWith(`${node}: KMS provider unhealthy`)) ? x : undefined
    },
    120_000,
    2000,
  )

export interface KmsCluster {
  saved: SavedControlPlane | undefined
  /** one plugin per node; replaced by restart() */
  plugins: Map<string, KmsPlugin>
  /** the KEKs every plugin holds, current first */
  keks: Buffer[]
  /** the JSON document of `enable --provider kms` */
  enabled: KmsEnableJson
  /** (Re)starts the plugin of `node` with the shared KEKs. */
  restart(node: string): Promise<KmsPlugin>
}

/**
 * Saves the control plane, starts the plugin on every node and runs `enable --provider kms`; fails
 * the calling beforeAll when enable does not exit 0.
 */
export async function setUpKms(): Promise<KmsCluster> {
  const saved = await saveControlPlane()
  const plugins = new Map<string, KmsPlugin>()
  const keks: Buffer[] = []
  const restart = async (node: string) => {
    const p = await startKmsPlugin(hostSocket(node), {keks})
    plugins.set(node, p)
    return p
  }
  const cluster: KmsCluster = {saved, plugins, keks, enabled: undefined as unknown as KmsEnableJson, restart}
  for (const node of kmsNodes()) {
    await sshOk(node, `sudo -n mkdir -p ${dirname(KMS_SOCKET)}`)
    await restart(node)
  }
  // The plugin's own enable: a KMS v2 config, and the socket's directory mounted into each apiserver.
  const r = await plugin(
    [
      'enable',
      '--provider',
      'kms',
      '--kms-endpoint',
      `unix://${KMS_SOCKET}`,
      '--kms-name',
      KMS_NAME,
      '--no-kubeadm-config',
      '--yes',
      '-o',
      'json',
      ...sshArgs(),
    ],
    {timeoutMs: 600_000},
  )
  if (r.code !== 0) throw new Error(`enable --provider kms exited ${r.code}: ${r.stdout}${r.stderr}`)
  cluster.enabled = json<KmsEnableJson>(r)
  return cluster
}

/**
 * Heals and starts every plugin, deletes `namespaces` (their KMS-encrypted Secrets while every plugin
 * can still decrypt them), puts the control plane back and stops the plugins.
 */
export async function tearDownKms(cluster: KmsCluster | undefined, namespaces: string[]): Promise<void> {
  if (!cluster) return
  try {
    for (const [node, p] of cluster.plugins) {
      p.setUnhealthy(undefined)
      p.sync()
      if (!p.running()) await cluster.restart(node)
    }
    for (const ns of namespaces) await kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=300s'])
    // Manifests, the config dir, enable's backups under /etc/kubernetes/tmp and kubeadm-config, as before.
    await restoreControlPlane(cluster.saved)
  } finally {
    for (const p of cluster.plugins.values()) await p.stop()
    for (const node of kmsNodes()) await sshOk(node, `sudo -n rm -rf ${dirname(KMS_SOCKET)}`).catch(() => undefined)
  }
}
