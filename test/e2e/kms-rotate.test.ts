// KMS rotations on the sandbox's real control plane (issue 15 items 2 and 6): an aescbc-encrypted
// cluster with 2,000 Secrets moves to the sandbox's KMS v2 plugin with the staged `rotate --provider
// kms`; then the plugin's KEK is rotated and `rotate` follows it (wait for every apiserver's new key
// ID, rewrite what is under the old one, prove none left), killed once mid-rewrite and resumed;
// finally decrypt-all --remove-encryption takes the KMS socket mount out again.
import {createHash, randomBytes} from 'node:crypto'
import {dirname, join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {connectCluster} from '../../src/kube/connect.js'
import type {ApiResource, KubeCluster} from '../../src/kube/types.js'
import {
  kubeadmClusterConfiguration,
  restoreControlPlane,
  type SavedControlPlane,
  saveControlPlane,
} from './helpers/control-plane-state.js'
import {ENC_CONFIG, MANIFEST} from './helpers/encryption-setup.js'
import {type KmsPlugin, startKmsPlugin} from './helpers/kms-plugin.js'
import {json, plugin, pluginOutputs, spawnPlugin, sshArgs} from './helpers/plugin.js'
import {kubectl, ok, readNodeFile, sandbox, sshOk, waitFor} from './helpers/sandbox.js'

const SECRETS: ApiResource = {group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true}
const NAMESPACES: ApiResource = {group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false}
const COUNT = 2000
const ns = `kmsrot-${randomBytes(3).toString('hex')}`
const SOCKET = '/etc/kubernetes/kms/kms.sock'
const KMS_NAME = 'sandbox-kms'
let saved: SavedControlPlane | undefined
let savedRotateState: string | undefined
let cluster: KubeCluster
const plugins = new Map<string, KmsPlugin>()
const keks: Buffer[] = []

const nodes = () => sandbox().nodes
const hostSocket = (node: string) =>
  join(sandbox().stateDir, 'nodes', node, 'etc-kubernetes', SOCKET.replace('/etc/kubernetes/', ''))
const hashOf = (keyId: string) => `sha256:${createHash('sha256').update(keyId).digest('hex')}`

interface ScanDoc {
  scan: {
    resources: Array<{
      resource: string
      total: number
      stale: number
      byProvider: Record<string, number>
      kmsKeys?: Array<{provider: string; keyId: string; count: number; current?: boolean}>
    }>
  }
  problems: string[]
}
const secretsScan = async () => {
  const r = await plugin(['status', ...sshArgs(), '-o', 'json', '--scan', '--resource', 'secrets'])
  const doc = json<ScanDoc>(r)
  return {code: r.code, doc, secrets: doc.scan.resources.find((x) => x.resource === 'secrets')!}
}

/** Our namespace's values in etcd (the real etcdctl) carrying `keyId` in their KMS v2 EncryptedObject. */
async function underKeyId(keyId: string): Promise<number> {
  const out = JSON.parse(await ok('etcdctl', ['get', '--prefix', `/registry/secrets/${ns}/`, '-w', 'json'])) as {
    kvs?: Array<{value: string}>
  }
  const id = Buffer.from(keyId)
  return (out.kvs ?? []).filter((kv) => Buffer.from(kv.value, 'base64').includes(id)).length
}

/** Whether one of our Secrets (by index) is stored under `keyId`: one small etcdctl read, cheap enough to poll. */
async function isUnderKeyId(index: number, keyId: string): Promise<boolean> {
  const key = `/registry/secrets/${ns}/s-${String(index).padStart(5, '0')}`
  const out = JSON.parse(await ok('etcdctl', ['get', key, '-w', 'json'])) as {kvs?: Array<{value: string}>}
  return Buffer.from(out.kvs?.[0]?.value ?? '', 'base64').includes(Buffer.from(keyId))
}

async function pool<T>(items: T[], width: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({length: width}, async () => {
      while (next < items.length) await work(items[next++]!)
    }),
  )
}

const stateRecord = async () =>
  (
    JSON.parse(
      (await kubectl(['get', 'configmap', '-n', 'kube-system', 'kubectl-encryption-state', '-o', 'json'])).stdout ||
        '{}',
    ) as {data?: Record<string, string>}
  ).data?.rotate

beforeAll(async () => {
  saved = await saveControlPlane()
  savedRotateState = await stateRecord()
  cluster = await connectCluster({kubeconfig: sandbox().env.KUBECONFIG})
  for (const node of nodes()) {
    await sshOk(node, `sudo -n mkdir -p ${dirname(SOCKET)}`)
    plugins.set(node, await startKmsPlugin(hostSocket(node), {keks}))
  }
  const r = await plugin(
    ['enable', '--provider', 'aescbc', '--no-kubeadm-config', '--yes', '-o', 'json', ...sshArgs()],
    {
      timeoutMs: 600_000,
    },
  )
  expect(r.code, r.stdout + r.stderr).toBe(0)
  await cluster.objects.create(NAMESPACES, {apiVersion: 'v1', kind: 'Namespace', metadata: {name: ns}})
  await pool(
    Array.from({length: COUNT}, (_, i) => i),
    16,
    (i) =>
      cluster.objects.create(SECRETS, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {name: `s-${String(i).padStart(5, '0')}`, namespace: ns},
        data: {v: Buffer.from(`v-${i}`).toString('base64')},
      }),
  )
}, 1_200_000)

afterAll(async () => {
  try {
    for (const p of plugins.values()) p.sync()
    // Deleted while every plugin can still decrypt them.
    await kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=300s'], {timeoutMs: 330_000})
    await restoreControlPlane(saved)
    // The rotation record this file left: back to what it was.
    const patch =
      savedRotateState === undefined
        ? [{op: 'remove', path: '/data/rotate'}]
        : [{op: 'replace', path: '/data/rotate', value: savedRotateState}]
    await kubectl([
      'patch',
      'configmap',
      '-n',
      'kube-system',
      'kubectl-encryption-state',
      '--type',
      'json',
      '-p',
      JSON.stringify(patch),
    ])
  } finally {
    for (const p of plugins.values()) await p.stop()
    for (const node of nodes()) await sshOk(node, `sudo -n rm -rf ${dirname(SOCKET)}`).catch(() => undefined)
    cluster?.close()
  }
}, 1_200_000)

describe('KMS rotations on every node', {timeout: 1_200_000}, () => {
  it('rotate --provider kms: staged from aescbc to the KMS plugin; all Secrets under KMS and the current key ID, aescbc gone, verify ok', async () => {
    // Stage add-key alone: KMS second, its socket mounted, aescbc still writes.
    const add = await plugin(
      [
        'rotate',
        '--provider',
        'kms',
        '--kms-endpoint',
        `unix://${SOCKET}`,
        '--kms-name',
        KMS_NAME,
        '--stage',
        'add-key',
        // whatever an earlier file left recorded, this is a new rotation
        '--restart',
        '--yes',
        '-o',
        'json',
        ...sshArgs(),
      ],
      {timeoutMs: 900_000},
    )
    expect(add.code, add.stdout + add.stderr).toBe(0)
    expect(json<{provider: string; newKey: string}>(add)).toMatchObject({provider: 'kms', newKey: KMS_NAME})
    for (const node of nodes()) {
      const config = await readNodeFile(node, ENC_CONFIG)
      expect(config.indexOf('aescbc:')).toBeLessThan(config.indexOf('kms:'))
      const manifest = await readNodeFile(node, MANIFEST)
      expect(manifest).toMatch(/- mountPath: \/etc\/kubernetes\/kms\n\s+name: kms-socket/)
    }
    const kubeadm = await kubeadmClusterConfiguration()
    if (kubeadm !== undefined) expect(kubeadm).toContain('name: kms-socket')

    // The rest, resumed from the recorded state without the KMS flags.
    const rest = await plugin(['rotate', '--yes', '--backup-confirmed', '-o', 'json', ...sshArgs()], {
      timeoutMs: 1_100_000,
    })
    expect(rest.code, rest.stdout + rest.stderr).toBe(0)
    const doc = json<{stages: Array<{stage: string; status: string}>; state: {status: string}}>(rest)
    expect(doc.stages.map((s) => `${s.stage}:${s.status}`)).toEqual([
      'add-key:already-done',
      'wait-add:done',
      'promote:done',
      'wait-promote:done',
      'rewrite:done',
      'remove-old:done',
    ])
    expect(doc.state.status).toBe('done')
    for (const node of nodes()) {
      const config = await readNodeFile(node, ENC_CONFIG)
      expect(config).not.toContain('aescbc')
      expect(config).toContain(`name: ${KMS_NAME}`)
    }
    const keyId = plugins.get(nodes()[0]!)!.keyId()
    const {secrets} = await secretsScan()
    expect(Object.keys(secrets.byProvider).filter((p) => !p.startsWith('kms'))).toEqual([])
    expect(secrets.stale).toBe(0)
    const ours = secrets.kmsKeys!.find((k) => k.keyId === keyId)!
    expect(ours).toMatchObject({provider: KMS_NAME, current: true})
    expect(ours.count).toBeGreaterThanOrEqual(COUNT)
    expect(await underKeyId(keyId)).toBe(COUNT)
    const verify = await plugin(['verify', ...sshArgs(), '-o', 'json'])
    expect(verify.code, verify.stdout + verify.stderr).toBe(0)
    expect(json<{ok: boolean}>(verify).ok).toBe(true)
  })

  it('KEK rotation: rotate waits for the new key ID everywhere, is killed mid-rewrite, resumes, and the scan shows 0 stale', async () => {
    const [first, ...others] = [...plugins.values()]
    const oldId = first!.keyId()
    const newId = first!.rotate()
    for (const p of others) p.sync()
    const started = Date.now()
    const run = spawnPlugin(['rotate', '--yes', '--kms-key-id', newId, '--timeout', '300', '-o', 'json', ...sshArgs()])
    // Killed once the rewrite is under way (the wait-key-id stage comes first: about a minute). It
    // writes in key order: once the first Secret is rewritten the run is stopped (SIGSTOP) at once,
    // and killed if the last one is not rewritten yet. The window is the whole rewrite (2,000
    // writes at 300 QPS, 6 s or more), against one small etcdctl read per poll; counting all
    // 2,000 per poll, or waiting for a Secret three quarters in, missed it on a loaded machine.
    await waitFor(
      'the KEK rotation to be rewriting',
      async () => {
        if (run.child.exitCode !== null) throw new Error(`rotate exited early: ${(await run.done).stderr}`)
        if (!(await isUnderKeyId(0, newId))) return false
        run.child.kill('SIGSTOP')
        const done = await isUnderKeyId(COUNT - 1, newId)
        run.child.kill('SIGKILL') // also when the check fails: a stopped run would be left behind
        if (done) throw new Error(`the rewrite was done before the kill (${await underKeyId(newId)} of ${COUNT})`)
        return true
      },
      600_000,
      200,
    )
    await run.done
    const atKill = await underKeyId(newId)
    expect(atKill).toBeLessThan(COUNT)
    expect(JSON.parse((await stateRecord())!)).toMatchObject({
      kind: 'kek',
      status: 'in-progress',
      stage: 'rewrite-stale',
      completedStages: ['wait-key-id'],
      toKeyIdHash: {[KMS_NAME]: hashOf(newId)},
    })

    const resumed = await plugin(['rotate', '--yes', '-o', 'json', ...sshArgs()], {timeoutMs: 600_000})
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0)
    // the dead run's lock was taken over
    expect(resumed.stderr).toContain("took over the cluster's lock")
    const doc = json<{
      kind: string
      stages: Array<{stage: string; status: string}>
      fromKeyIdHash: Record<string, string>
      toKeyIdHash: Record<string, string>
      rewrite: {rewritten: number}
      scan: {stale: number}
    }>(resumed)
    expect(doc.kind).toBe('kek')
    expect(doc.stages.map((s) => `${s.stage}:${s.status}`)).toEqual([
      'wait-key-id:already-done',
      'rewrite-stale:done',
      'scan:done',
    ])
    // the key ID the apiservers agreed on when the run began: the old one, none when some had asked
    // the plugin since the KEK changed and some not (they disagreed), or the new one when all three
    // had (each asks about once a minute: on a loaded machine the run can start that late)
    expect([hashOf(oldId), undefined, hashOf(newId)]).toContain(doc.fromKeyIdHash[KMS_NAME])
    expect(doc.toKeyIdHash[KMS_NAME]).toBe(hashOf(newId))
    // only what the killed run had not rewritten (plus other stale Secrets of the cluster)
    expect(doc.rewrite.rewritten).toBeGreaterThanOrEqual(COUNT - atKill)
    expect(doc.rewrite.rewritten).toBeLessThan(COUNT)
    expect(doc.scan.stale).toBe(0)

    const {code, doc: status, secrets} = await secretsScan()
    expect(secrets.stale).toBe(0)
    expect(secrets.kmsKeys!.find((k) => k.keyId === oldId)).toBeUndefined()
    expect(secrets.kmsKeys!.find((k) => k.keyId === newId)).toMatchObject({current: true})
    expect(code, status.problems.join('\n')).toBe(0)
    expect(await underKeyId(newId)).toBe(COUNT)
    console.log(
      `KEK rotation of ${COUNT} Secrets: killed at ${atKill} rewritten, resumed run rewrote ${doc.rewrite.rewritten}; ${Math.round((Date.now() - started) / 1000)} s in all`,
    )
  })

  it('decrypt-all --remove-encryption takes the KMS socket mount out again (and the kubeadm-config volume)', async () => {
    const r = await plugin(['decrypt-all', '--remove-encryption', '--yes', '-o', 'json', ...sshArgs()], {
      timeoutMs: 1_100_000,
    })
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(json<{removed: boolean}>(r).removed).toBe(true)
    for (const node of nodes()) {
      const manifest = await readNodeFile(node, MANIFEST)
      expect(manifest).not.toContain('--encryption-provider-config')
      expect(manifest).not.toContain('kms-socket')
      expect(manifest).not.toContain('/etc/kubernetes/kms')
    }
    const kubeadm = await kubeadmClusterConfiguration()
    if (kubeadm !== undefined) expect(kubeadm).not.toContain('kms-socket')
  })

  it('no KEK and no aescbc key in any output of the plugin', async () => {
    const out = pluginOutputs.join('\n')
    expect(out.length).toBeGreaterThan(0)
    for (const k of keks) {
      expect(out).not.toContain(k.toString('base64'))
      expect(out).not.toContain(k.toString('hex'))
    }
  })
})
