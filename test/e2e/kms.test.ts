// KMS v2 end to end on the sandbox's real control plane (issue 15): the sandbox's KMS v2 plugin
// (Kubernetes' own k8s.io/kms service) on every node, sharing one set of KEKs as one KMS behind
// three nodes would; status, verify and status --scan against it; a KEK rotation that every
// apiserver picks up, then `rewrite --only-stale`; a plugin unhealthy or stopped on one node.
import {createHash} from 'node:crypto'
import {dirname, join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {restoreControlPlane, type SavedControlPlane, saveControlPlane} from './helpers/control-plane-state.js'
import {ENC_CONFIG, MANIFEST} from './helpers/encryption-setup.js'
import {startKmsPlugin, type KmsPlugin} from './helpers/kms-plugin.js'
import {json, plugin, pluginOutputs, sshArgs} from './helpers/plugin.js'
import {kubectl, ok, readNodeFile, sandbox, sshOk, waitFor} from './helpers/sandbox.js'

const ns = `kms-${Date.now().toString(36)}`
let saved: SavedControlPlane | undefined
const plugins = new Map<string, KmsPlugin>()
const keks: Buffer[] = []
const SECRETS = 20
let enabled: {writeKeys: Array<{provider: string}>; verify?: {ok: boolean}; nodes: Array<{status: string}>} | undefined

/** The socket as the apiserver sees it: inside the node's /etc/kubernetes, in a directory enable mounts. */
const SOCKET = '/etc/kubernetes/kms/kms.sock'

interface StatusJson {
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

const nodes = () => sandbox().nodes
const nodeEtc = (node: string) => join(sandbox().stateDir, 'nodes', node, 'etc-kubernetes')
/** Where the node's SOCKET is on the host running the tests. */
const hostSocket = (node: string) => join(nodeEtc(node), SOCKET.replace('/etc/kubernetes/', ''))
const hashOf = (keyId: string) => `sha256:${createHash('sha256').update(keyId).digest('hex')}`
const status = async (...extra: string[]) => {
  const r = await plugin(['status', ...sshArgs(), '-o', 'json', ...extra])
  return {code: r.code, doc: json<StatusJson>(r), stderr: r.stderr}
}
const secretsScan = async () => {
  const s = await status('--scan', '--resource', 'secrets')
  return {...s, secrets: s.doc.scan!.resources.find((r) => r.resource === 'secrets')!}
}
/** Waits until every apiserver reports `keyId` (its hash) as the current key ID and KMS is healthy everywhere. */
const everyApiserverReports = (keyId: string) =>
  waitFor(
    `every apiserver to report KMS key ID ${keyId}`,
    async () => {
      const s = await status()
      return s.code === 0 &&
        s.doc.nodes.every((n) => n.kmsKeys.some((k) => k.provider === 'sandbox-kms' && k.keyIdHash === hashOf(keyId)))
        ? s
        : undefined
    },
    240_000,
    2000,
  )

beforeAll(async () => {
  saved = await saveControlPlane()
  for (const node of nodes()) {
    await sshOk(node, `sudo -n mkdir -p ${dirname(SOCKET)}`)
    plugins.set(node, await startKmsPlugin(hostSocket(node), {keks}))
  }
  // The plugin's own enable: a KMS v2 config, and the socket's directory mounted into each apiserver.
  const r = await plugin(
    [
      'enable',
      '--provider',
      'kms',
      '--kms-endpoint',
      `unix://${SOCKET}`,
      '--kms-name',
      'sandbox-kms',
      '--no-kubeadm-config',
      '--yes',
      '-o',
      'json',
      ...sshArgs(),
    ],
    {timeoutMs: 600_000},
  )
  expect(r.code, r.stdout + r.stderr).toBe(0)
  enabled = json<{writeKeys: Array<{provider: string}>; verify?: {ok: boolean}; nodes: Array<{status: string}>}>(r)
  await ok('kubectl', ['create', 'namespace', ns])
  for (let i = 0; i < SECRETS; i++)
    await ok('kubectl', ['create', 'secret', 'generic', `s-${i}`, '-n', ns, '--from-literal=k=v'])
}, 900_000)

afterAll(async () => {
  try {
    for (const p of plugins.values()) {
      p.setUnhealthy(undefined)
      p.sync()
    }
    // Delete the KMS-encrypted Secrets while every plugin can still decrypt them.
    await kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=300s'])
    // Manifests, the config dir, enable's backups under /etc/kubernetes/tmp and kubeadm-config, as before.
    await restoreControlPlane(saved)
  } finally {
    for (const p of plugins.values()) await p.stop()
    for (const node of nodes()) await sshOk(node, `sudo -n rm -rf ${dirname(SOCKET)}`).catch(() => undefined)
  }
}, 900_000)

describe('KMS v2 on every node', {timeout: 600_000}, () => {
  it('enable --provider kms: every node changed, the socket directory mounted, verified', async () => {
    expect(enabled!.nodes.map((n) => n.status)).toEqual(nodes().map(() => 'changed'))
    expect(enabled!.writeKeys.map((k) => k.provider)).toEqual(['kms'])
    expect(enabled!.verify?.ok).toBe(true)
    for (const node of nodes()) {
      const manifest = await readNodeFile(node, MANIFEST)
      expect(manifest).toContain(`- --encryption-provider-config=${ENC_CONFIG}`)
      expect(manifest).toMatch(
        /- hostPath:\n\s+path: \/etc\/kubernetes\/kms\n\s+type: DirectoryOrCreate\n\s+name: kms-socket/,
      )
      expect(manifest).toMatch(/- mountPath: \/etc\/kubernetes\/kms\n\s+name: kms-socket/)
      expect(await readNodeFile(node, ENC_CONFIG)).toContain(`endpoint: unix://${SOCKET}`)
    }
  })

  it('status: KMS healthy on every node, the same key ID everywhere (exit 0)', async () => {
    const keyId = plugins.get(nodes()[0]!)!.keyId()
    const s = await everyApiserverReports(keyId)
    expect(s.doc.problems).toEqual([])
    for (const n of s.doc.nodes) {
      expect(n.kms).toEqual([{name: 'kms-providers', ok: true}])
      expect(n.kmsKeys).toEqual([
        expect.objectContaining({provider: 'sandbox-kms', keyIdHash: hashOf(keyId), source: 'status'}),
      ])
    }
    const table = await plugin(['status', ...sshArgs()])
    expect(table.code, table.stderr).toBe(0)
    expect(table.stdout).toMatch(new RegExp(`^${nodes()[0]}\\s.*\\sok sandbox-kms=sha256:[0-9a-f]{8}…`, 'm'))
  })

  it('verify: the test object is stored under the key ID the apiserver reports (exit 0)', async () => {
    const r = await plugin(['verify', ...sshArgs(), '-o', 'json'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const doc = json<{
      ok: boolean
      stored: {provider: string; kmsName?: string}
      kms?: {keyIdHash: string; currentKeyIdHash?: string}
    }>(r)
    expect(doc.ok).toBe(true)
    expect(doc.stored).toMatchObject({provider: 'kms', kmsName: 'sandbox-kms'})
    expect(doc.kms?.keyIdHash).toBe(hashOf(plugins.get(nodes()[0]!)!.keyId()))
    expect(doc.kms?.currentKeyIdHash).toBe(doc.kms?.keyIdHash)
  })

  it('status --scan: counts per KMS provider and key ID, read from etcd; none stale', async () => {
    const keyId = plugins.get(nodes()[0]!)!.keyId()
    const {code, secrets} = await secretsScan()
    expect(code).toBe(0)
    const ours = secrets.kmsKeys!.find((k) => k.keyId === keyId)
    expect(ours).toMatchObject({provider: 'sandbox-kms', keyIdHash: hashOf(keyId), current: true})
    expect(ours!.count).toBeGreaterThanOrEqual(SECRETS)
    expect(secrets.stale).toBe(0)
  })

  it('KEK rotation: once every apiserver reports the new key ID, the older values are stale; rewrite --only-stale makes stale 0', async () => {
    const [first, ...others] = [...plugins.values()]
    const oldId = first!.keyId()
    const newId = first!.rotate()
    for (const p of others) p.sync()
    expect(newId).not.toBe(oldId)
    await everyApiserverReports(newId)

    const before = await secretsScan()
    expect(before.code).toBe(5)
    expect(before.secrets.kmsKeys!.find((k) => k.keyId === oldId)).toMatchObject({current: false})
    expect(before.secrets.stale).toBeGreaterThanOrEqual(SECRETS)
    expect(before.doc.problems.join('\n')).toContain(
      `value(s) not under the current write key kms:sandbox-kms key ID ${hashOf(newId)}`,
    )

    const r = await plugin(['rewrite', '-A', '--only-stale', ...sshArgs(), '-o', 'json'], {timeoutMs: 600_000})
    expect(r.code, r.stdout + r.stderr).toBe(0)

    const after = await secretsScan()
    expect(after.secrets.stale).toBe(0)
    expect(after.secrets.kmsKeys!.find((k) => k.keyId === oldId)).toBeUndefined()
    expect(after.secrets.kmsKeys!.find((k) => k.keyId === newId)!.count).toBeGreaterThanOrEqual(SECRETS)
    expect(after.code, after.doc.problems.join('\n')).toBe(0)
  })

  it('a plugin unhealthy on one node: status exit 5 names the node and what its apiserver reports', async () => {
    const node = nodes()[1]!
    plugins.get(node)!.setUnhealthy('disk on fire')
    try {
      const s = await waitFor(
        `status to report the KMS plugin on ${node} unhealthy`,
        async () => {
          const x = await status()
          return x.code === 5 && x.doc.problems.some((p) => p.startsWith(`${node}: KMS provider unhealthy`))
            ? x
            : undefined
        },
        120_000,
        2000,
      )
      const problem = s.doc.problems.find((p) => p.startsWith(`${node}: KMS provider unhealthy`))!
      expect(problem).toContain('got unexpected healthz status: disk on fire')
      expect(s.doc.problems.filter((p) => p.includes('KMS provider unhealthy'))).toHaveLength(1)
    } finally {
      plugins.get(node)!.setUnhealthy(undefined)
    }
    await everyApiserverReports(plugins.get(node)!.keyId())
  })

  it('a plugin stopped on one node: status exit 5 names the node', async () => {
    const node = nodes()[2]!
    const p = plugins.get(node)!
    await p.stop()
    try {
      const s = await waitFor(
        `status to report the KMS plugin on ${node} down`,
        async () => {
          const x = await status()
          return x.code === 5 && x.doc.problems.some((q) => q.startsWith(`${node}: KMS provider unhealthy`))
            ? x
            : undefined
        },
        120_000,
        2000,
      )
      expect(s.doc.problems.find((q) => q.startsWith(`${node}: KMS provider unhealthy`))).toMatch(
        /kms-providers failed: kms-provider-0: .*dial unix \/etc\/kubernetes\/kms\/kms\.sock/,
      )
    } finally {
      plugins.set(node, await startKmsPlugin(hostSocket(node), {keks}))
    }
    await everyApiserverReports(plugins.get(node)!.keyId())
  })

  it('no KEK in any output of the plugin', async () => {
    const out = pluginOutputs.join('\n')
    expect(out.length).toBeGreaterThan(0)
    for (const k of keks) {
      expect(out).not.toContain(k.toString('base64'))
      expect(out).not.toContain(k.toString('hex'))
    }
  })
})
