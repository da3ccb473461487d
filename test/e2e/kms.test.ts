// KMS v2 end to end on the sandbox's real control plane (issue 15): the sandbox's KMS v2 plugin
// (Kubernetes' own k8s.io/kms service) on every node, sharing one set of KEKs as one KMS behind
// three nodes would; status, verify and status --scan against it; a KEK rotation that every
// apiserver picks up, then `rewrite --only-stale`; a plugin unhealthy or stopped on one node.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {ENC_CONFIG, MANIFEST} from './helpers/encryption-setup.js'
import {
  everyApiserverReports,
  hashOf,
  KMS_SOCKET as SOCKET,
  type KmsCluster,
  kmsNodes as nodes,
  secretsScan,
  setUpKms,
  statusReportsUnhealthy,
  tearDownKms,
} from './helpers/kms-cluster.js'
import {json, plugin, pluginOutputs, sshArgs} from './helpers/plugin.js'
import {ok, readNodeFile} from './helpers/sandbox.js'

const ns = `kms-${Date.now().toString(36)}`
let kms: KmsCluster | undefined
const SECRETS = 20

beforeAll(async () => {
  kms = await setUpKms()
  await ok('kubectl', ['create', 'namespace', ns])
  for (let i = 0; i < SECRETS; i++)
    await ok('kubectl', ['create', 'secret', 'generic', `s-${i}`, '-n', ns, '--from-literal=k=v'])
}, 900_000)

afterAll(() => tearDownKms(kms, [ns]), 900_000)

describe('KMS v2 on every node', {timeout: 600_000}, () => {
  it('enable --provider kms: every node changed, the socket directory mounted, verified', async () => {
    expect(kms!.enabled.nodes.map((n) => n.status)).toEqual(nodes().map(() => 'changed'))
    expect(kms!.enabled.writeKeys.map((k) => k.provider)).toEqual(['kms'])
    expect(kms!.enabled.verify?.ok).toBe(true)
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
    const keyId = kms!.plugins.get(nodes()[0]!)!.keyId()
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
    expect(doc.kms?.keyIdHash).toBe(hashOf(kms!.plugins.get(nodes()[0]!)!.keyId()))
    expect(doc.kms?.currentKeyIdHash).toBe(doc.kms?.keyIdHash)
  })

  it('status --scan: counts per KMS provider and key ID, read from etcd; none stale', async () => {
    const keyId = kms!.plugins.get(nodes()[0]!)!.keyId()
    const {code, secrets} = await secretsScan()
    expect(code).toBe(0)
    const ours = secrets.kmsKeys!.find((k) => k.keyId === keyId)
    expect(ours).toMatchObject({provider: 'sandbox-kms', keyIdHash: hashOf(keyId), current: true})
    expect(ours!.count).toBeGreaterThanOrEqual(SECRETS)
    expect(secrets.stale).toBe(0)
  })

  it('KEK rotation: once every apiserver reports the new key ID, the older values are stale; rewrite --only-stale makes stale 0', async () => {
    const [first, ...others] = [...kms!.plugins.values()]
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
    kms!.plugins.get(node)!.setUnhealthy('disk on fire')
    try {
      const s = await statusReportsUnhealthy(node)
      const problem = s.doc.problems.find((p) => p.startsWith(`${node}: KMS provider unhealthy`))!
      expect(problem).toContain('got unexpected healthz status: disk on fire')
      expect(s.doc.problems.filter((p) => p.includes('KMS provider unhealthy'))).toHaveLength(1)
    } finally {
      kms!.plugins.get(node)!.setUnhealthy(undefined)
    }
    await everyApiserverReports(kms!.plugins.get(node)!.keyId())
  })

  it('a plugin stopped on one node: status exit 5 names the node', async () => {
    const node = nodes()[2]!
    const p = kms!.plugins.get(node)!
    await p.stop()
    try {
      const s = await statusReportsUnhealthy(node)
      expect(s.doc.problems.find((q) => q.startsWith(`${node}: KMS provider unhealthy`))).toMatch(
        /kms-providers failed: kms-provider-0: .*dial unix \/etc\/kubernetes\/kms\/kms\.sock/,
      )
    } finally {
      await kms!.restart(node)
    }
    await everyApiserverReports(kms!.plugins.get(node)!.keyId())
  })

  it('no KEK in any output of the plugin', async () => {
    const out = pluginOutputs.join('\n')
    expect(out.length).toBeGreaterThan(0)
    for (const k of kms!.keks) {
      expect(out).not.toContain(k.toString('base64'))
      expect(out).not.toContain(k.toString('hex'))
    }
  })
})
