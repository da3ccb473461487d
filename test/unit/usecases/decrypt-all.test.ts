import {parse} from 'yaml'
import type {StageConfig} from '../../../src/encryption/config/load.js'
import {describe, expect, it} from 'vitest'

import {decryptAll, keysForOlderBackups} from '../../../src/usecases/decrypt-all.js'
import {enableEncryption} from '../../../src/usecases/enable.js'
import type {ScanSummary} from '../../../src/usecases/status/scan-targets.js'
import {fakeControlPlane, fixture} from './fake-control-plane.js'
import {fakeReadCheck} from './read-check-fake.js'

/** Key names are `key-<UTC time>` (issue 13 item 12); the fake control plane's clock is fixed. */
const K1 = 'key-20261127T210000Z'

const MANIFEST = '/etc/kubernetes/manifests/kube-apiserver.yaml'
const ENC = '/etc/kubernetes/enc/enc.yaml'
const BACKUPS = '/etc/kubernetes/tmp/kubectl-encryption-20261127T210000Z'
const secretsIn = (text: string) => [...text.matchAll(/secret:\s*(\S+)/g)].map((m) => m[1] ?? '')

function scanWith(encrypted: number): ScanSummary {
  const resource = {
    resource: 'secrets',
    total: 10,
    byProvider: {identity: 10 - encrypted, ...(encrypted ? {[`aescbc:${K1}`]: encrypted} : {})},
    plaintext: 10 - encrypted,
    stale: encrypted,
    undecryptable: 0,
    unverified: 0,
    orphans: 0,
    samples: encrypted ? {stale: ['/registry/secrets/default/a']} : {},
  }
  return {
    etcd: {transport: 'direct', endpoint: 'https://etcd:2379'} as ScanSummary['etcd'],
    keys: 10,
    resources: [resource],
    totals: {total: 10, plaintext: 10 - encrypted, stale: encrypted, undecryptable: 0, unverified: 0, orphans: 0},
  }
}

/** A cluster with encryption enabled by `enable`, and follow-ups that record what they were given. */
async function encryptedCluster(leftAfterRewrite = 0) {
  const cp = fakeControlPlane()
  await enableEncryption({provider: 'aescbc'}, cp.deps)
  for (const f of cp.files.values()) f.log.length = 0
  cp.waiter.waits.length = 0
  const calls: string[] = []
  const followUps = {
    rewrite: async ({text: config}: StageConfig) => {
      calls.push(`rewrite identity-first=${parse(config).resources[0].providers[0].identity !== undefined}`)
      return {resources: ['secrets'], rewritten: 7, alreadyCurrent: 3, failed: 0, incomplete: [], failures: []}
    },
    scan: async () => {
      calls.push('scan')
      return scanWith(leftAfterRewrite)
    },
  }
  return {cp, calls, deps: {...cp.deps, followUps}}
}

describe('keysForOlderBackups: the keys per resource of the config being removed (names only)', () => {
  const secret = (n: number) => Buffer.alloc(32, n).toString('base64')
  const CONFIG = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets, configmaps]
    providers:
      - identity: {}
      - aesgcm: {keys: [{name: k3, secret: ${Buffer.alloc(16, 3).toString('base64')}}]}
      - aescbc: {keys: [{name: k2, secret: ${secret(2)}}, {name: k1, secret: ${secret(1)}}]}
  - resources: [events]
    providers:
      - identity: {}
  - resources: ['*.apps']
    providers:
      - identity: {}
      - kms: {apiVersion: v2, name: vault, endpoint: 'unix:///var/run/kms.sock'}
      - secretbox: {keys: [{name: sb1, secret: ${secret(9)}}]}
`

  it('provider:key as status --scan --snapshot names them, in config order; identity-only resources need none', () => {
    const keys = keysForOlderBackups([CONFIG])
    expect(keys).toEqual([
      {resource: 'secrets', keys: ['aesgcm:k3', 'aescbc:k2', 'aescbc:k1']},
      {resource: 'configmaps', keys: ['aesgcm:k3', 'aescbc:k2', 'aescbc:k1']},
      {resource: '*.apps', keys: ['kms:vault', 'secretbox:sb1']},
    ])
    for (const material of [secret(1), secret(2), secret(9), Buffer.alloc(16, 3).toString('base64')])
      expect(JSON.stringify(keys)).not.toContain(material)
  })

  it('nodes whose configs differ: every key any of them holds, each once', () => {
    const other = CONFIG.replace('name: k1,', 'name: k0,')
    expect(keysForOlderBackups([CONFIG, other, CONFIG])[0]).toEqual({
      resource: 'secrets',
      keys: ['aesgcm:k3', 'aescbc:k2', 'aescbc:k1', 'aescbc:k0'],
    })
    expect(keysForOlderBackups([])).toEqual([])
  })
})

describe('decrypt-all (safe order over fakes)', {timeout: 90_000}, () => {
  it('identity first on every node with the old key kept, then rewrite, then a scan that finds nothing encrypted', async () => {
    const {cp, calls, deps} = await encryptedCluster()
    const before = cp.files.get('cp-1')?.fs.get(ENC)?.content ?? ''
    const [secret] = secretsIn(before)
    const result = await decryptAll({}, deps)
    expect(result.stages.map((s) => `${s.stage}:${s.status}`)).toEqual([
      'identity-first:done',
      'rewrite:done',
      'scan:done',
      'remove-encryption:skipped',
    ])
    for (const f of cp.files.values()) {
      const config = parse(f.fs.get(ENC)?.content ?? '')
      expect(Object.keys(config.resources[0].providers[0])).toEqual(['identity'])
      expect(config.resources[0].providers[1].aescbc.keys[0]).toEqual({name: K1, secret})
      // enable's comment on the fallback ("identity last") does not travel to the front with it
      expect(f.fs.get(ENC)?.content).not.toContain('identity last')
      // the flag stays; the manifest changed only to restart the apiserver with the new config
      expect(f.fs.get(MANIFEST)?.content).toContain(`--encryption-provider-config=${ENC}`)
      expect(f.log.indexOf(`write ${ENC}`)).toBeLessThan(f.log.indexOf(`write ${MANIFEST}`))
      expect(f.log[0]).toBe(`backup ${ENC} -> ${BACKUPS}/enc.yaml`)
    }
    expect(cp.waiter.waits).toEqual(['restart cp-1', 'restart cp-2', 'restart cp-3'])
    expect(calls).toEqual(['rewrite identity-first=true', 'scan'])
    expect(result.decrypted).toBe(true)
    expect(result.removed).toBe(false)
    expect(result.readableKeys).toEqual([{provider: 'aescbc', key: K1, fingerprint: expect.stringMatching(/^sha256:/)}])
    expect(result.next).toEqual([expect.stringContaining('decrypt-all --remove-encryption')])
    // nothing removed, nothing to keep for older backups yet
    expect(result.keysForOlderBackups).toBeUndefined()
    expect(JSON.stringify(result)).not.toContain(secret)
  })

  it('stops before removal when the scan still finds encrypted values (the caller exits 5)', async () => {
    const {cp, calls, deps} = await encryptedCluster(2)
    const result = await decryptAll({removeEncryption: true}, deps)
    expect(calls).toEqual(['rewrite identity-first=true', 'scan'])
    expect(result.decrypted).toBe(false)
    expect(result.scan).toMatchObject({total: 2, byResource: {secrets: 2}, examples: ['/registry/secrets/default/a']})
    expect(result.stages.at(-1)).toMatchObject({stage: 'remove-encryption', status: 'skipped'})
    expect(result.keysForOlderBackups).toBeUndefined()
    for (const f of cp.files.values()) expect(f.fs.get(MANIFEST)?.content).toContain('--encryption-provider-config')
  })

  it('--remove-encryption after a clean scan: flag, mount and volume out, kubeadm-config too, the config moved to the backup dir', async () => {
    const {cp, deps} = await encryptedCluster()
    const original = fixture('manifests/kubeadm-comments.yaml')
    const result = await decryptAll({removeEncryption: true}, deps)
    expect(result.removed).toBe(true)
    for (const f of cp.files.values()) {
      const manifest = f.fs.get(MANIFEST)?.content ?? ''
      expect(manifest).not.toContain('encryption-provider-config')
      expect(manifest).not.toContain('/etc/kubernetes/enc')
      expect(manifest).not.toContain('kubectl-encryption/config-hash')
      expect(manifest).toBe(original)
      expect(f.fs.has(ENC)).toBe(false)
      expect(f.fs.get(`${BACKUPS}/enc.yaml.1`)?.mode).toBe(0o600)
    }
    expect(result.configBackups.map((b) => `${b.node} ${b.path}`)).toEqual(
      ['cp-1', 'cp-2', 'cp-3'].map((n) => `${n} ${BACKUPS}/enc.yaml.1`),
    )
    // the keys older etcd backups need, by name only (the moved files hold them)
    expect(result.keysForOlderBackups).toEqual([{resource: 'secrets', keys: [`aescbc:${K1}`]}])
    for (const secret of secretsIn(cp.files.get('cp-1')?.fs.get(`${BACKUPS}/enc.yaml.1`)?.content ?? ''))
      expect(JSON.stringify(result)).not.toContain(secret)
    expect(result.kubeadmConfig?.status).toBe('updated')
    const cc = String(
      (cp.objects.store.get('configmaps/kube-system/kubeadm-config')!.data as Record<string, string>)
        .ClusterConfiguration,
    )
    expect(cc).not.toContain('encryption-provider-config')
    // a second run: nothing to do
    const again = await decryptAll({removeEncryption: true}, deps)
    expect(again.alreadyOff).toBe(true)
  })

  it('--remove-encryption of a KMS config: the socket mount enable added goes too (manifests and kubeadm-config)', async () => {
    const cp = fakeControlPlane()
    await enableEncryption(
      {provider: 'kms', kms: {name: 'vault', endpoint: 'unix:///var/run/kmsplugin/socket.sock', timeout: '3s'}},
      cp.deps,
    )
    const kubeadm = () =>
      String(
        (cp.objects.store.get('configmaps/kube-system/kubeadm-config')!.data as Record<string, string>)
          .ClusterConfiguration,
      )
    for (const f of cp.files.values()) expect(f.fs.get(MANIFEST)?.content).toContain('/var/run/kmsplugin')
    expect(kubeadm()).toContain('/var/run/kmsplugin')
    const followUps = {
      rewrite: async () => ({
        resources: ['secrets'],
        rewritten: 1,
        alreadyCurrent: 0,
        failed: 0,
        incomplete: [],
        failures: [],
      }),
      scan: async () => scanWith(0),
    }
    const dry = await decryptAll({dryRun: true, removeEncryption: true}, {...cp.deps, followUps})
    expect(dry.diffs.some((d) => d.diff.includes('-    name: kms-socket'))).toBe(true)
    const result = await decryptAll({removeEncryption: true}, {...cp.deps, followUps})
    expect(result.removed).toBe(true)
    const removal = result.stages.find((s) => s.stage === 'remove-encryption')!
    expect(removal.nodes?.[0]?.files.find((f) => f.kind === 'manifest')?.changes).toContain(
      'removed volumeMount kms-socket at /var/run/kmsplugin for the KMS plugin socket',
    )
    for (const f of cp.files.values()) {
      expect(f.fs.get(MANIFEST)?.content).not.toContain('kmsplugin')
      expect(f.fs.get(MANIFEST)?.content).toBe(fixture('manifests/kubeadm-comments.yaml'))
    }
    expect(kubeadm()).not.toContain('kmsplugin')
    expect(result.kubeadmConfig?.changes).toContain('removed apiServer.extraVolumes kms-socket (/var/run/kmsplugin)')
  })

  it('dry run: the identity-first diff (secrets masked) and the removal diff, nothing written, nothing rewritten', async () => {
    const {cp, calls, deps} = await encryptedCluster()
    const result = await decryptAll({dryRun: true, removeEncryption: true}, deps)
    expect(calls).toEqual([])
    for (const f of cp.files.values()) expect(f.log).toEqual([])
    expect(result.stages.map((s) => `${s.stage}:${s.status}`)).toEqual([
      'identity-first:planned',
      'rewrite:pending',
      'scan:pending',
      'remove-encryption:planned',
    ])
    const enc = result.diffs.find((d) => d.node === 'cp-1' && d.path === ENC)?.diff ?? ''
    expect(enc).toContain('+      - identity: {}')
    expect(enc).toMatch(/secret: <redacted sha256:[0-9a-f]{12}>/)
    expect(
      result.diffs.find((d) => d.node === 'cp-2' && d.path === `${MANIFEST} (after a clean scan)`)?.diff,
    ).toContain(`-    - --encryption-provider-config=${ENC}`)
    expect(result.keysForOlderBackups).toEqual([{resource: 'secrets', keys: [`aescbc:${K1}`]}])
    for (const secret of secretsIn(cp.files.get('cp-1')?.fs.get(ENC)?.content ?? ''))
      expect(JSON.stringify(result)).not.toContain(secret)
  })

  it('continues an interrupted run: nodes already identity-first are left alone, the rest rolled on', async () => {
    const {cp, deps} = await encryptedCluster()
    cp.waiter.broken.add('cp-2') // cp-2 will not come back with any config change
    await expect(decryptAll({}, deps)).rejects.toMatchObject({
      code: 'NODE_ROLLED_BACK',
      exitCode: 6,
      message: expect.stringContaining('Nodes not touched: cp-3'),
    })
    expect(cp.files.get('cp-3')?.log).toEqual([])
    expect(parse(cp.files.get('cp-1')?.fs.get(ENC)?.content ?? '').resources[0].providers[0]).toEqual({identity: {}})
    expect(parse(cp.files.get('cp-2')?.fs.get(ENC)?.content ?? '').resources[0].providers[0]).toHaveProperty('aescbc')
    cp.waiter.broken.delete('cp-2')
    for (const f of cp.files.values()) f.log.length = 0
    const result = await decryptAll({}, deps)
    expect(result.stages[0]?.nodes?.map((n) => `${n.node}:${n.status}`)).toEqual([
      'cp-1:unchanged',
      'cp-2:changed',
      'cp-3:changed',
    ])
    expect(cp.files.get('cp-1')?.log).toEqual([])
    expect(result.decrypted).toBe(true)
  })

  it('refuses nodes that disagree unless --force, and a node whose config file is missing; nothing changed', async () => {
    const {cp, deps} = await encryptedCluster()
    cp.files
      .get('cp-3')
      ?.fs.set(ENC, {content: fixture('configs/seed-with-comments.yaml'), mode: 0o600, uid: 0, gid: 0})
    await expect(decryptAll({}, deps)).rejects.toMatchObject({code: 'NODES_DISAGREE', exitCode: 3})
    cp.files.get('cp-3')?.fs.delete(ENC)
    await expect(decryptAll({}, deps)).rejects.toMatchObject({
      code: 'CONFIG_MISSING',
      exitCode: 3,
      message: expect.stringContaining('cp-3'),
    })
    for (const f of cp.files.values()) expect(f.log).toEqual([])
  })

  it('aborts with nothing changed when the confirmation is declined; encryption off everywhere is nothing to do', async () => {
    const {cp, deps} = await encryptedCluster()
    await expect(decryptAll({}, {...deps, confirm: async () => false})).rejects.toMatchObject({
      code: 'ABORTED',
      exitCode: 3,
    })
    for (const f of cp.files.values()) expect(f.log).toEqual([])
    const off = fakeControlPlane()
    const result = await decryptAll({removeEncryption: true}, off.deps)
    expect(result).toMatchObject({alreadyOff: true, stages: []})
    for (const f of off.files.values()) expect(f.log).toEqual([])
  })

  describe('read check before identity-first and before removal', () => {
    it('identity-first keeps the key (readable); removal that would leave values nothing can read is refused (exit 3): flag and config stay', async () => {
      const {cp, deps} = await encryptedCluster()
      // values under K1 outside what the config covers: the scan stage does not see them, the check does
      const check = fakeReadCheck({needs: K1, storedAs: `aescbc:${K1}`, unreadable: 2})
      const error = await decryptAll(
        {removeEncryption: true},
        {...deps, followUps: {...deps.followUps, checkConfig: check.checkConfig}},
      ).catch((e: unknown) => e)
      expect(error).toMatchObject({
        code: 'CONFIG_CANNOT_READ',
        exitCode: 3,
        message: expect.stringContaining(`secrets (aescbc:${K1}=2)`),
      })
      expect((error as Error).message).toContain('Stage remove-encryption changed nothing.')
      expect(check.seen).toHaveLength(2)
      expect(parse(check.seen[0] ?? '').resources[0].providers[0]).toEqual({identity: {}})
      expect(check.seen[1]).toContain("'*.*'")
      for (const f of cp.files.values()) {
        expect(f.fs.get(MANIFEST)?.content).toContain(`--encryption-provider-config=${ENC}`)
        expect(f.fs.has(ENC)).toBe(true)
      }
      const partial = (error as {partialResult?: {stages: Array<{stage: string; status: string; readCheck?: unknown}>}})
        .partialResult
      expect(partial?.stages.map((s) => `${s.stage}:${s.status}`)).toEqual([
        'identity-first:done',
        'rewrite:done',
        'scan:done',
        'remove-encryption:failed',
      ])
      expect(partial?.stages[0]?.readCheck).toMatchObject({status: 'readable'})
      // --force (the context name, checked by the command) takes encryption off anyway
      const forced = await decryptAll(
        {removeEncryption: true, force: true},
        {...deps, followUps: {...deps.followUps, checkConfig: check.checkConfig}},
      )
      expect(forced.removed).toBe(true)
      expect(forced.stages.at(-1)).toMatchObject({
        stage: 'remove-encryption',
        status: 'done',
        readCheck: {status: 'unreadable', forced: true},
      })
    })

    it('values the current keys cannot open already: identity-first is refused before any change', async () => {
      const {cp, deps} = await encryptedCluster()
      const check = fakeReadCheck({needs: 'key-lost', storedAs: 'aescbc:key-lost', unreadable: 1})
      await expect(
        decryptAll({}, {...deps, followUps: {...deps.followUps, checkConfig: check.checkConfig}}),
      ).rejects.toMatchObject({code: 'CONFIG_CANNOT_READ', exitCode: 3})
      for (const f of cp.files.values()) expect(f.log).toEqual([])
      const plan = await decryptAll(
        {dryRun: true},
        {...deps, followUps: {...deps.followUps, checkConfig: check.checkConfig}},
      )
      expect(plan.stages[0]).toMatchObject({
        stage: 'identity-first',
        status: 'planned',
        readCheck: {status: 'unreadable', unreadable: 1},
      })
    })

    it('etcd that cannot be read: a warning per check, reported as not run, and the run goes on', async () => {
      const {cp, deps} = await encryptedCluster()
      const check = fakeReadCheck({fail: 'etcd down'})
      const result = await decryptAll(
        {removeEncryption: true},
        {...deps, followUps: {...deps.followUps, checkConfig: check.checkConfig}},
      )
      expect(result.removed).toBe(true)
      expect(result.stages.filter((s) => s.readCheck).map((s) => `${s.stage}:${s.readCheck?.status}`)).toEqual([
        'identity-first:not-run',
        'remove-encryption:not-run',
      ])
      expect(cp.events).toContainEqual({
        type: 'warning',
        message: expect.stringContaining(
          'read check not run before decrypt-all stage remove-encryption (etcd could not be read: etcd down)',
        ),
      })
    })
  })
})
