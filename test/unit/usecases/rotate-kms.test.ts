import {parse} from 'yaml'
import {describe, expect, it} from 'vitest'

import {addKmsProvider, promoteKmsProvider} from '../../../src/encryption/config/edit.js'
import {enableEncryption} from '../../../src/usecases/enable.js'
import {
  isKekRotation,
  KEK_STAGES,
  type KekDeps,
  keyIdHash,
  keyIdSettled,
  kmsWriteProviders,
  rotateKek,
} from '../../../src/usecases/rotate-kek.js'
import {ROTATE_STAGES, type RotateDeps, rotateKeys, rotationStatus} from '../../../src/usecases/rotate.js'
import type {ScanSummary} from '../../../src/usecases/status/scan-targets.js'
import type {NodeKmsKeys} from '../../../src/usecases/status/kms-keys.js'
import {fakeControlPlane} from './fake-control-plane.js'

const K1 = 'key-20261127T210000Z'
const ENC = '/etc/kubernetes/enc/enc.yaml'
const MANIFEST = '/etc/kubernetes/manifests/kube-apiserver.yaml'
const KMS = {name: 'vault', endpoint: 'unix:///var/run/kmsplugin/socket.sock', timeout: '3s'}

type Cfg = {resources: Array<{providers: Array<Record<string, {keys?: Array<{name: string}>; name?: string}>>}>}
const providersOf = (text: string) =>
  (parse(text) as Cfg).resources[0]?.providers.map((p) => {
    const [type, body] = Object.entries(p)[0]!
    return type === 'kms' ? `kms:${body.name}` : `${type}:${(body.keys ?? []).map((k) => k.name).join(',')}`
  })

const stateOf = (cp: ReturnType<typeof fakeControlPlane>) =>
  JSON.parse(
    String(
      (cp.objects.store.get('configmaps/kube-system/kubectl-encryption-state')?.data as Record<string, string>)
        ?.rotate ?? 'null',
    ),
  )

describe('config edits for moving to KMS', () => {
  const base = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aescbc:
          keys:
            - name: k1
              secret: c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/
      - identity: {}
`
  it('adds the KMS v2 provider second, then promotes it first; a second add changes nothing', () => {
    const added = addKmsProvider(base, {kms: KMS})
    expect(providersOf(added.text)).toEqual(['aescbc:k1', 'kms:vault', 'identity:'])
    expect(parse(added.text).resources[0].providers[1].kms).toEqual({apiVersion: 'v2', ...KMS})
    expect(addKmsProvider(added.text, {kms: KMS}).changed).toBe(false)
    expect(() => addKmsProvider(added.text, {kms: {...KMS, endpoint: 'unix:///other.sock'}})).toThrow(
      expect.objectContaining({code: 'CONFIG_KMS_NAME_TAKEN', exitCode: 3}),
    )
    const promoted = promoteKmsProvider(added.text, {name: 'vault'})
    expect(providersOf(promoted.text)).toEqual(['kms:vault', 'aescbc:k1', 'identity:'])
    expect(promoteKmsProvider(promoted.text, {name: 'vault'}).changed).toBe(false)
    expect(() => promoteKmsProvider(base, {name: 'vault'})).toThrow(
      expect.objectContaining({code: 'CONFIG_KEY_NOT_FOUND'}),
    )
    expect(kmsWriteProviders(base)).toBeUndefined()
    expect(kmsWriteProviders(promoted.text)).toEqual(['vault'])
  })
})

async function aescbcCluster() {
  const cp = fakeControlPlane()
  await enableEncryption({provider: 'aescbc'}, cp.deps)
  let underOld = 0
  const rewrites: string[] = []
  const deps: RotateDeps = {
    ...cp.deps,
    followUps: {
      rewrite: async ({text: configText}) => {
        rewrites.push(providersOf(configText)!.join(' '))
        return {resources: ['secrets'], rewritten: 3, alreadyCurrent: 0, failed: 0, incomplete: [], failures: []}
      },
      countUnderKey: async () => underOld,
    },
  }
  const config = (node = 'cp-1') => cp.files.get(node)?.fs.get(ENC)?.content ?? ''
  return {cp, deps, config, rewrites, setUnderOld: (n: number) => (underOld = n)}
}

describe('rotate --provider kms (six stages over fakes)', {timeout: 90_000}, () => {
  it('adds the KMS provider second with the socket mounted on every node, promotes it, rewrites, drops aescbc', async () => {
    const t = await aescbcCluster()
    const dry = await rotateKeys({provider: 'kms', kms: KMS, dryRun: true}, t.deps)
    expect(dry.stages[0]).toMatchObject({stage: 'add-key', status: 'planned'})
    expect(dry.diffs.some((d) => d.path === MANIFEST && d.diff.includes('+    name: kms-socket'))).toBe(true)
    expect(providersOf(t.config())).toEqual([`aescbc:${K1}`, 'identity:'])

    // stage by stage: add-key first
    const add = await rotateKeys({provider: 'kms', kms: KMS, stage: 'add-key'}, t.deps)
    expect(add).toMatchObject({provider: 'kms', newKey: 'vault', kmsEndpoint: KMS.endpoint})
    expect(add.newKeyFingerprint).toBeUndefined()
    for (const node of ['cp-1', 'cp-2', 'cp-3']) {
      expect(providersOf(t.config(node))).toEqual([`aescbc:${K1}`, 'kms:vault', 'identity:'])
      const manifest = t.cp.files.get(node)!.fs.get(MANIFEST)!.content
      expect(manifest).toMatch(/- mountPath: \/var\/run\/kmsplugin\n\s+name: kms-socket/)
      expect(manifest).toMatch(/path: \/var\/run\/kmsplugin\n\s+type: DirectoryOrCreate/)
    }
    expect(add.kubeadmConfig?.changes).toContain('added apiServer.extraVolumes kms-socket (/var/run/kmsplugin)')
    expect(stateOf(t.cp)).toMatchObject({provider: 'kms', newKey: 'vault', kms: KMS, completedStages: ['add-key']})

    // another --kms-name while this one is in progress: refused
    await expect(rotateKeys({provider: 'kms', kms: {...KMS, name: 'other'}}, t.deps)).rejects.toMatchObject({
      code: 'ROTATION_IN_PROGRESS',
      exitCode: 2,
    })
    // resumed without flags: the rest
    const rest = await rotateKeys({backupConfirmed: true}, t.deps)
    expect(rest.stages.map((s) => `${s.stage}:${s.status}`)).toEqual(
      ROTATE_STAGES.map((s) => `${s}:${s === 'add-key' ? 'already-done' : 'done'}`),
    )
    expect(t.rewrites).toEqual([`kms:vault aescbc:${K1} identity:`])
    for (const node of ['cp-1', 'cp-2', 'cp-3']) {
      expect(providersOf(t.config(node))).toEqual(['kms:vault', 'identity:'])
      expect(t.config(node)).not.toContain('aescbc')
    }
    expect(stateOf(t.cp)).toMatchObject({status: 'done'})
    // the next plain `rotate` on this cluster is a KMS key rotation
    expect(await isKekRotation({}, t.deps)).toBe(true)
  })

  it('refuses to drop aescbc while values are still under it', async () => {
    const t = await aescbcCluster()
    t.setUnderOld(4)
    await expect(rotateKeys({provider: 'kms', kms: KMS, backupConfirmed: true}, t.deps)).rejects.toMatchObject({
      code: 'OLD_KEY_STILL_USED',
    })
    expect(providersOf(t.config())).toEqual(['kms:vault', `aescbc:${K1}`, 'identity:'])
  })
})

/** A KMS cluster whose apiservers' metrics the test drives. */
async function kmsCluster() {
  const cp = fakeControlPlane()
  await enableEncryption({provider: 'kms', kms: KMS}, cp.deps)
  const nodes = ['cp-1', 'cp-2', 'cp-3']
  const reported = new Map(nodes.map((n) => [n, {hash: keyIdHash('kek-1'), at: '2026-11-27T20:59:00.000Z'}]))
  let stale = 5
  const calls: string[] = []
  let interruptAfter: number | undefined
  const abort = new AbortController()
  const deps: KekDeps = {
    ...cp.deps,
    signal: abort.signal,
    sleep: async () => undefined,
    followUps: {
      kmsKeys: async (): Promise<NodeKmsKeys[]> =>
        nodes.map((node) => ({
          node,
          keys: [
            {provider: 'vault', keyIdHash: reported.get(node)!.hash, source: 'status', at: reported.get(node)!.at},
          ],
        })),
      rewriteStale: async () => {
        calls.push('rewrite-stale')
        if (interruptAfter !== undefined) {
          stale -= interruptAfter
          const done = interruptAfter
          interruptAfter = undefined
          abort.abort()
          return {...summary(done), interrupted: true}
        }
        const done = stale
        stale = 0
        return {...summary(done), interrupted: false}
      },
      scan: async (_config, current) => {
        calls.push(`scan ${JSON.stringify(current)}`)
        return scanWith(stale)
      },
    },
  }
  return {
    cp,
    deps,
    calls,
    reported,
    abort,
    setStale: (n: number) => (stale = n),
    interruptAfter: (n: number) => (interruptAfter = n),
  }
}

const summary = (rewritten: number) => ({
  resources: ['secrets'],
  rewritten,
  alreadyCurrent: 0,
  failed: 0,
  incomplete: [],
  failures: [],
})

function scanWith(stale: number): ScanSummary {
  return {
    etcd: {transport: 'direct', endpoint: 'https://etcd:2379'} as ScanSummary['etcd'],
    keys: 10,
    resources: [
      {
        resource: 'secrets',
        total: 10,
        byProvider: {'kms:vault': 10},
        plaintext: 0,
        stale,
        undecryptable: 0,
        unverified: 0,
        orphans: 0,
        samples: {},
      },
    ],
    totals: {total: 10, plaintext: 0, stale, undecryptable: 0, unverified: 0, orphans: 0},
  }
}

describe('rotate on a KMS cluster: the KEK rotation (wait-key-id, rewrite-stale, scan)', {timeout: 90_000}, () => {
  it('keyIdSettled: an answer after the start on every node, all agreeing (and the expected key ID if given)', () => {
    const report = (node: string, hash: string, at: string): NodeKmsKeys => ({
      node,
      keys: [{provider: 'vault', keyIdHash: hash, source: 'status', at}],
    })
    const state = {kmsProviders: ['vault'], baseline: {a: {vault: '2026-01-01T00:00:00Z'}}}
    const old = report('a', 'sha256:old', '2026-01-01T00:00:00Z')
    expect(keyIdSettled([old], state)).toMatchObject({settled: false})
    const fresh = report('a', 'sha256:new', '2026-01-01T00:01:00Z')
    expect(keyIdSettled([fresh, report('b', 'sha256:old', '2026-01-01T00:01:00Z')], state)).toMatchObject({
      settled: false,
      waitingFor: [expect.stringContaining('different key IDs')],
    })
    expect(keyIdSettled([fresh, report('b', 'sha256:new', '2026-01-01T00:01:00Z')], state)).toEqual({
      settled: true,
      keyIdHash: {vault: 'sha256:new'},
    })
    expect(keyIdSettled([fresh], {...state, expectKeyIdHash: 'sha256:other'})).toMatchObject({settled: false})
    expect(keyIdSettled([{node: 'a', keys: [], error: 'HTTP 403'}], state)).toMatchObject({
      waitingFor: ['a: metrics not readable (HTTP 403)'],
    })
  })

  it('waits for every apiserver, rewrites the stale values, proves none left; interrupted mid-rewrite and resumed', async () => {
    const t = await kmsCluster()
    const before = JSON.stringify([...t.cp.files.values()].map((f) => [...f.fs.entries()]))
    expect(await isKekRotation({}, t.deps)).toBe(true)
    // the plugin's key changes; the apiservers pick it up one poll at a time
    let polls = 0
    t.deps.sleep = async () => {
      polls++
      const node = `cp-${polls}`
      if (t.reported.has(node)) t.reported.set(node, {hash: keyIdHash('kek-2'), at: '2026-11-27T21:00:30.000Z'})
    }
    t.interruptAfter(2)
    await expect(rotateKek({kmsKeyId: 'kek-2'}, t.deps)).rejects.toMatchObject({code: 'INTERRUPTED', exitCode: 4})
    expect(polls).toBe(3)
    expect(stateOf(t.cp)).toMatchObject({
      kind: 'kek',
      status: 'in-progress',
      stage: 'rewrite-stale',
      completedStages: ['wait-key-id'],
      fromKeyIdHash: {vault: keyIdHash('kek-1')},
      toKeyIdHash: {vault: keyIdHash('kek-2')},
    })
    expect(rotationStatus(stateOf(t.cp))).toMatchObject({next: 'kubectl encryption rotate'})

    // resumed (a new run, a new signal): continues with the rewrite, then the proof
    const resumed = await rotateKek({}, {...t.deps, signal: new AbortController().signal})
    expect(resumed.stages.map((s) => `${s.stage}:${s.status}`)).toEqual([
      'wait-key-id:already-done',
      'rewrite-stale:done',
      'scan:done',
    ])
    expect(resumed.rewrite?.rewritten).toBe(3)
    expect(resumed.scan).toEqual({scanned: 10, stale: 0, byResource: {}})
    expect(t.calls).toEqual(['rewrite-stale', 'rewrite-stale', `scan {"vault":"${keyIdHash('kek-2')}"}`])
    expect(stateOf(t.cp)).toMatchObject({status: 'done', completedStages: [...KEK_STAGES]})
    // no node file was touched
    expect(JSON.stringify([...t.cp.files.values()].map((f) => [...f.fs.entries()]))).toBe(before)
  })

  it('times out when an apiserver never answers with the new key ID (exit 3), nothing changed; stale left after the rewrite is exit 5', async () => {
    const t = await kmsCluster()
    await expect(rotateKek({timeoutMs: 0}, t.deps)).rejects.toMatchObject({
      code: 'KMS_KEY_ID_NOT_SETTLED',
      exitCode: 3,
      message: expect.stringContaining('cp-1: no Status answer for vault since the rotation started'),
    })
    expect(stateOf(t.cp)).toMatchObject({status: 'failed', stage: 'wait-key-id', completedStages: []})
    expect(t.calls).toEqual([])
    for (const n of ['cp-1', 'cp-2', 'cp-3']) t.reported.set(n, {hash: keyIdHash('kek-2'), at: '2026-11-27T21:05:00Z'})
    // a value the rewrite could not move (the fake's scan keeps one stale)
    t.deps.followUps!.rewriteStale = async () => ({...summary(4), interrupted: false})
    t.setStale(1)
    await expect(rotateKek({}, t.deps)).rejects.toMatchObject({code: 'KMS_STALE_LEFT', exitCode: 5})
    // the rewrite runs again next time, not only the scan
    expect(stateOf(t.cp)).toMatchObject({status: 'failed', stage: 'scan', completedStages: ['wait-key-id']})
  })

  it('--provider on a KMS rotation in progress is a usage error; a dry run records nothing', async () => {
    const t = await kmsCluster()
    const dry = await rotateKek({dryRun: true}, t.deps)
    expect(dry.state.status).toBe('not-started')
    expect(dry.stages.map((s) => s.status)).toEqual(['pending', 'pending', 'pending'])
    expect(stateOf(t.cp)).toBeNull()
    await expect(rotateKek({provider: 'aescbc'}, t.deps)).rejects.toMatchObject({code: 'ROTATION_IN_PROGRESS'})
  })
})
