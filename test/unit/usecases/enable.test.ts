import {parse} from 'yaml'
import type {StageConfig} from '../../../src/encryption/config/load.js'
import {describe, expect, it} from 'vitest'

import {partialResultOf} from '../../../src/errors.js'
import {enableEncryption} from '../../../src/usecases/enable.js'
import {fakeControlPlane, fixture} from './fake-control-plane.js'
import {fakeReadCheck} from './read-check-fake.js'

/** Key names are `key-<UTC time>` (issue 13 item 12); the fake control plane's clock is fixed. */
const K1 = 'key-20261127T210000Z'

const MANIFEST = '/etc/kubernetes/manifests/kube-apiserver.yaml'
const ENC = '/etc/kubernetes/enc/enc.yaml'
const BACKUPS = '/etc/kubernetes/tmp/kubectl-encryption-20261127T210000Z'
const providersIn = (text: string) =>
  (parse(text) as {resources: Array<{providers: Array<Record<string, unknown>>}>}).resources[0]?.providers.map(
    (p) => Object.keys(p)[0],
  )
const secretsIn = (text: string) => [...text.matchAll(/secret:\s*(\S+)/g)].map((m) => m[1] ?? '')

describe('enable (safe order over fakes)', {timeout: 90_000}, () => {
  it('writes one generated config (secretbox by default) to every node (root 0600), patches each manifest, syncs kubeadm-config', async () => {
    const cp = fakeControlPlane()
    const result = await enableEncryption({}, cp.deps)
    expect(result.configSource).toBe('generated')
    expect(result.nodes.map((n) => [n.node, n.status])).toEqual([
      ['cp-1', 'changed'],
      ['cp-2', 'changed'],
      ['cp-3', 'changed'],
    ])
    const configs = [...cp.files.values()].map((f) => f.fs.get(ENC))
    expect(new Set(configs.map((c) => c?.content)).size).toBe(1)
    expect(configs.every((c) => c?.mode === 0o600 && c.uid === 0 && c.gid === 0)).toBe(true)
    for (const f of cp.files.values()) {
      const manifest = f.fs.get(MANIFEST)?.content ?? ''
      expect(manifest).toContain(`--encryption-provider-config=${ENC}`)
      expect(manifest).toContain('# stacked etcd on this node')
      // backup outside the manifests dir, taken before the first write
      expect(f.log.indexOf(`backup ${MANIFEST} -> ${BACKUPS}/kube-apiserver.yaml`)).toBeLessThan(
        f.log.indexOf(`write ${MANIFEST}`),
      )
      expect([...f.fs.keys()].filter((p) => p.startsWith('/etc/kubernetes/manifests/'))).toEqual([MANIFEST])
      // config before manifest
      expect(f.log.indexOf(`write ${ENC}`)).toBeLessThan(f.log.indexOf(`write ${MANIFEST}`))
    }
    expect(cp.waiter.waits).toEqual(['restart cp-1', 'restart cp-2', 'restart cp-3'])
    expect(result.backupDir).toBe(BACKUPS)
    expect(result.kubeadmConfig.status).toBe('updated')
    const cc = parse(
      String(
        (cp.objects.store.get('configmaps/kube-system/kubeadm-config')!.data as Record<string, string>)
          .ClusterConfiguration,
      ),
    )
    expect(cc.apiServer.extraArgs).toContainEqual({name: 'encryption-provider-config', value: ENC})
    expect(result.writeKeys).toEqual([
      {resources: ['secrets'], provider: 'secretbox', key: K1, fingerprint: expect.stringMatching(/^sha256:/)},
    ])
    expect(providersIn(configs[0]?.content ?? '')).toEqual(['secretbox', 'identity'])
    const secret = secretsIn(configs[0]?.content ?? '')[0] ?? ''
    expect(JSON.stringify(result)).not.toContain(secret)
    expect(JSON.stringify(cp.events)).not.toContain(secret)
  })

  it('--provider kms: a KMS v2 config (no key in it) and the socket directory mounted into every apiserver', async () => {
    const cp = fakeControlPlane()
    const result = await enableEncryption(
      {provider: 'kms', kms: {name: 'kms-plugin', endpoint: 'unix:///var/run/kmsplugin/socket.sock', timeout: '3s'}},
      cp.deps,
    )
    expect(result.configSource).toBe('generated')
    expect(result.writeKeys).toEqual([
      {resources: ['secrets'], provider: 'kms', key: undefined, fingerprint: undefined},
    ])
    for (const f of cp.files.values()) {
      const config = f.fs.get(ENC)?.content ?? ''
      expect(providersIn(config)).toEqual(['kms', 'identity'])
      expect(config).toContain('endpoint: unix:///var/run/kmsplugin/socket.sock')
      expect(secretsIn(config)).toEqual([])
      const manifest = parse(f.fs.get(MANIFEST)?.content ?? '') as {
        spec: {volumes: unknown[]; containers: Array<{volumeMounts: unknown[]}>}
      }
      expect(manifest.spec.volumes).toContainEqual({
        hostPath: {path: '/var/run/kmsplugin', type: 'DirectoryOrCreate'},
        name: 'kms-socket',
      })
      expect(manifest.spec.containers[0]!.volumeMounts).toContainEqual({
        mountPath: '/var/run/kmsplugin',
        name: 'kms-socket',
      })
    }
    // kubeadm-config keeps the socket mount too, so 'kubeadm upgrade' does not drop it
    const cc = parse(
      String(
        (cp.objects.store.get('configmaps/kube-system/kubeadm-config')!.data as Record<string, string>)
          .ClusterConfiguration,
      ),
    )
    expect(cc.apiServer.extraVolumes).toContainEqual({
      name: 'kms-socket',
      hostPath: '/var/run/kmsplugin',
      mountPath: '/var/run/kmsplugin',
      pathType: 'DirectoryOrCreate',
    })
  })

  it('is idempotent: a second run changes nothing and keeps the key', async () => {
    const cp = fakeControlPlane()
    await enableEncryption({}, cp.deps)
    const before = cp.files.get('cp-2')?.fs.get(ENC)?.content
    cp.waiter.waits.length = 0
    const again = await enableEncryption({}, cp.deps)
    expect(again.unchanged).toBe(true)
    expect(again.configSource).toBe('existing')
    expect(again.nodes.every((n) => n.status === 'unchanged')).toBe(true)
    expect(again.kubeadmConfig.status).toBe('unchanged')
    expect(cp.waiter.waits).toEqual([])
    expect(cp.files.get('cp-2')?.fs.get(ENC)?.content).toBe(before)
  })

  it('dry run: plans and masked unified diffs per node and file, nothing written', async () => {
    const cp = fakeControlPlane()
    const plan = await enableEncryption({dryRun: true}, cp.deps)
    expect(plan.nodes.map((n) => n.status)).toEqual(['planned', 'planned', 'planned'])
    expect(plan.diffs.map((d) => `${d.node} ${d.path}`)).toEqual([
      `cp-1 ${ENC}`,
      `cp-1 ${MANIFEST}`,
      `cp-2 ${ENC}`,
      `cp-2 ${MANIFEST}`,
      `cp-3 ${ENC}`,
      `cp-3 ${MANIFEST}`,
      '(cluster) kube-system/configmap/kubeadm-config',
    ])
    expect(plan.diffs[1]?.diff).toContain(`+    - --encryption-provider-config=${ENC}`)
    // a generated key is thrown away with the dry run: masked without a fingerprint (issue 13 item 13)
    expect(plan.diffs[0]?.diff).toMatch(/secret: <redacted: a new key, made when run>/)
    for (const f of cp.files.values()) expect(f.log).toEqual([])
    expect(cp.objects.store.get('configmaps/kube-system/kubeadm-config')?.metadata.resourceVersion).toBe('1')
  })

  it('rolls back a node whose apiserver does not come back, exit 6, later nodes untouched', async () => {
    const cp = fakeControlPlane()
    cp.waiter.broken.add('cp-2')
    const original = fixture('manifests/kubeadm-comments.yaml')
    await expect(enableEncryption({}, cp.deps)).rejects.toMatchObject({
      code: 'NODE_ROLLED_BACK',
      exitCode: 6,
      message: expect.stringMatching(new RegExp(`cp-2.*${BACKUPS}/kube-apiserver.yaml.*Nodes not touched: cp-3`)),
    })
    expect(cp.files.get('cp-1')?.fs.get(MANIFEST)?.content).toContain('--encryption-provider-config')
    expect(cp.files.get('cp-2')?.fs.get(MANIFEST)?.content).toBe(original)
    expect(cp.files.get('cp-2')?.fs.has(ENC)).toBe(false)
    expect(cp.files.get('cp-3')?.log).toEqual([])
    expect(cp.objects.store.get('configmaps/kube-system/kubeadm-config')?.metadata.resourceVersion).toBe('1')
  })

  it('running enable again after a rollback continues on the remaining nodes with the key the first node already has', async () => {
    const cp = fakeControlPlane()
    cp.waiter.broken.add('cp-2')
    await expect(enableEncryption({}, cp.deps)).rejects.toMatchObject({exitCode: 6})
    const key = cp.files.get('cp-1')?.fs.get(ENC)?.content
    cp.waiter.broken.delete('cp-2')
    const again = await enableEncryption({}, cp.deps)
    expect(again.configSource).toBe('existing')
    expect(again.nodes.map((n) => `${n.node}:${n.status}`)).toEqual(['cp-1:unchanged', 'cp-2:changed', 'cp-3:changed'])
    for (const f of cp.files.values()) expect(f.fs.get(ENC)?.content).toBe(key)
  })

  it('exit 7 when the rollback cannot be confirmed either, naming the backup', async () => {
    const cp = fakeControlPlane()
    cp.waiter.dead.add('cp-1')
    await expect(enableEncryption({}, cp.deps)).rejects.toMatchObject({
      code: 'NODE_ROLLBACK_FAILED',
      exitCode: 7,
      message: expect.stringContaining(`${BACKUPS}/kube-apiserver.yaml`),
    })
    expect(cp.files.get('cp-2')?.log).toEqual([])
  })

  it('refuses nodes that disagree unless --force; never touches anything when refusing', async () => {
    const cp = fakeControlPlane()
    await enableEncryption({}, cp.deps)
    const f3 = cp.files.get('cp-3')
    f3?.fs.set(ENC, {content: fixture('configs/seed-with-comments.yaml'), mode: 0o600, uid: 0, gid: 0})
    for (const f of cp.files.values()) f.log.length = 0
    await expect(enableEncryption({}, cp.deps)).rejects.toMatchObject({
      code: 'NODES_DISAGREE',
      exitCode: 3,
      message: expect.stringMatching(/cp-1.*cp-3/),
    })
    for (const f of cp.files.values()) expect(f.log).toEqual([])
  })

  it("takes the user's --config, validated first; a bad one changes nothing", async () => {
    const cp = fakeControlPlane()
    const bad = fixture('configs/seed-with-comments.yaml').replace('aescbc:', 'aescbcx:')
    await expect(enableEncryption({configText: bad}, cp.deps)).rejects.toMatchObject({exitCode: 3})
    for (const f of cp.files.values()) expect(f.log).toEqual([])
    const good = await enableEncryption(
      {configText: fixture('configs/seed-with-comments.yaml'), automaticReload: true},
      cp.deps,
    )
    expect(good.configSource).toBe('file')
    expect(cp.files.get('cp-1')?.fs.get(ENC)?.content).toBe(fixture('configs/seed-with-comments.yaml'))
    expect(cp.files.get('cp-1')?.fs.get(MANIFEST)?.content).toContain(
      '--encryption-provider-config-automatic-reload=true',
    )
    expect(good.writeKeys.map((k) => `${k.resources.join(',')}:${k.provider}:${k.key ?? ''}`)).toEqual([
      'secrets,configmaps:aescbc:key1',
      'events:identity:',
      '*.apps:aescbc:key2',
    ])
  })

  it('after the rollout verifies with the config the nodes now run; the rewrite only with --rewrite, else named as next step', async () => {
    const cp = fakeControlPlane()
    const seen: string[] = []
    const followUps = {
      verify: async ({text: config}: StageConfig) => {
        seen.push(`verify ${config === cp.files.get('cp-3')?.fs.get(ENC)?.content}`)
        return {resource: 'secrets', ok: true, stored: `secretbox:${K1}`, expected: `secretbox:${K1}`, problems: []}
      },
      rewrite: async () => {
        seen.push('rewrite')
        return {resources: ['secrets'], rewritten: 4, alreadyCurrent: 0, failed: 0, incomplete: [], failures: []}
      },
    }
    const plan = await enableEncryption({dryRun: true}, {...cp.deps, followUps})
    expect(seen).toEqual([])
    expect(plan.verify).toBeUndefined()
    const first = await enableEncryption({}, {...cp.deps, followUps})
    expect(seen).toEqual(['verify true'])
    expect(first.verify).toMatchObject({ok: true, stored: `secretbox:${K1}`})
    expect(first.rewrite).toBeUndefined()
    expect(first.next).toEqual([expect.stringContaining('kubectl encryption rewrite -A')])
    const again = await enableEncryption({rewrite: true}, {...cp.deps, followUps})
    expect(again.unchanged).toBe(true)
    expect(seen).toEqual(['verify true', 'verify true', 'rewrite'])
    expect(again.rewrite).toMatchObject({rewritten: 4, failed: 0})
    expect(again.next).toEqual([])
  })

  it('Ctrl-C while the last node restarts: every node finishes, then the run stops before verify (exit 4, where it stopped, nodes reported)', async () => {
    const cp = fakeControlPlane()
    const controller = new AbortController()
    const waitRestarted = cp.waiter.waitRestarted.bind(cp.waiter)
    cp.waiter.waitRestarted = async (node, before) => {
      if (node === 'cp-3') controller.abort()
      return waitRestarted(node, before)
    }
    const seen: string[] = []
    const followUps = {
      verify: async () => {
        seen.push('verify')
        return undefined
      },
      rewrite: async () => {
        seen.push('rewrite')
        return {resources: [], rewritten: 0, alreadyCurrent: 0, failed: 0, incomplete: [], failures: []}
      },
    }
    const error = await enableEncryption({rewrite: true}, {...cp.deps, signal: controller.signal, followUps}).catch(
      (e: unknown) => e,
    )
    expect(error).toMatchObject({code: 'INTERRUPTED', exitCode: 4})
    expect((error as Error).message).toBe(
      'interrupted: stopped at stage verify (not started; every node has the config); run the same command to continue',
    )
    expect(seen).toEqual([])
    const partial = partialResultOf(error) as {
      nodes: Array<{node: string; status: string}>
      kubeadmConfig: {status: string}
    }
    expect(partial.nodes.map((n) => [n.node, n.status])).toEqual([
      ['cp-1', 'changed'],
      ['cp-2', 'changed'],
      ['cp-3', 'changed'],
    ])
    expect(partial.kubeadmConfig.status).toBe('updated')
  })

  it('a verify that cannot run is reported (the change stays), not thrown', async () => {
    const cp = fakeControlPlane()
    const followUps = {
      verify: async () => {
        throw new Error('etcd unreachable')
      },
      rewrite: async () => ({resources: [], rewritten: 0, alreadyCurrent: 0, failed: 0, incomplete: [], failures: []}),
    }
    const result = await enableEncryption({}, {...cp.deps, followUps})
    expect(result.nodes.every((n) => n.status === 'changed')).toBe(true)
    expect(result.verify).toMatchObject({ok: false, notRun: 'etcd unreachable'})
    expect(result.next[0]).toContain('kubectl encryption verify')
  })

  describe('read check before any change', () => {
    const noVerify = {
      verify: async () => undefined,
      rewrite: async () => ({resources: [], rewritten: 0, alreadyCurrent: 0, failed: 0, incomplete: [], failures: []}),
    }
    const seed = fixture('configs/seed-with-comments.yaml')

    it('refuses a config that cannot read stored values (exit 3, counts per resource and provider:key, 3 examples); nothing written, no question asked', async () => {
      const cp = fakeControlPlane()
      const check = fakeReadCheck({needs: 'key-old', storedAs: 'aescbc:key-old', unreadable: 5})
      let asked = false
      const deps = {
        ...cp.deps,
        confirm: async () => (asked = true),
        followUps: {...noVerify, checkConfig: check.checkConfig},
      }
      const error = await enableEncryption({configText: seed}, deps).catch((e: unknown) => e)
      expect(error).toMatchObject({code: 'CONFIG_CANNOT_READ', exitCode: 3})
      const message = (error as Error).message
      expect(message).toContain('5 of 10 value(s)')
      expect(message).toContain('secrets (aescbc:key-old=5)')
      expect(message.match(/\/registry\/secrets\//g)).toHaveLength(3)
      expect(check.seen).toEqual([seed])
      expect(asked).toBe(false)
      for (const f of cp.files.values()) expect(f.log).toEqual([])
      expect(cp.objects.store.get('configmaps/kube-system/kubeadm-config')?.metadata.resourceVersion).toBe('1')
      // key material of the checked config never reaches the error
      for (const secret of secretsIn(seed)) expect(JSON.stringify(error) + message).not.toContain(secret)
    })

    it('--force goes ahead over unreadable values, with a warning and the count in the result', async () => {
      const cp = fakeControlPlane()
      const check = fakeReadCheck({needs: 'key-old'})
      const result = await enableEncryption(
        {configText: seed, force: true},
        {...cp.deps, followUps: {...noVerify, checkConfig: check.checkConfig}},
      )
      expect(result.nodes.every((n) => n.status === 'changed')).toBe(true)
      expect(result.readCheck).toMatchObject({status: 'unreadable', forced: true, unreadable: 3})
      expect(cp.events).toContainEqual({
        type: 'warning',
        message: expect.stringContaining('--force: going ahead although 3 stored value(s)'),
      })
    })

    it('a config that reads everything goes ahead; the dry run shows the check (and a refusal without throwing)', async () => {
      const cp = fakeControlPlane()
      const good = fakeReadCheck({needs: 'key1'})
      const plan = await enableEncryption(
        {configText: seed, dryRun: true},
        {...cp.deps, followUps: {...noVerify, checkConfig: good.checkConfig}},
      )
      expect(plan.readCheck).toEqual({status: 'readable', values: 10, unreadable: 0})
      const bad = fakeReadCheck({needs: 'key-old'})
      const refused = await enableEncryption(
        {configText: seed, dryRun: true},
        {...cp.deps, followUps: {...noVerify, checkConfig: bad.checkConfig}},
      )
      expect(refused.readCheck).toMatchObject({
        status: 'unreadable',
        unreadable: 3,
        examples: ['/registry/secrets/default/s0', '/registry/secrets/default/s1', '/registry/secrets/default/s2'],
      })
      for (const f of cp.files.values()) expect(f.log).toEqual([])
      const result = await enableEncryption(
        {configText: seed},
        {...cp.deps, followUps: {...noVerify, checkConfig: good.checkConfig}},
      )
      expect(result.readCheck).toMatchObject({status: 'readable'})
      expect(result.nodes.every((n) => n.status === 'changed')).toBe(true)
      // a second run changes no node: nothing to prove, no scan
      const again = await enableEncryption(
        {configText: seed},
        {...cp.deps, followUps: {...noVerify, checkConfig: good.checkConfig}},
      )
      expect(again.readCheck).toBeUndefined()
      expect(good.seen).toHaveLength(2)
    })

    it('etcd that cannot be read: a warning, the check reported as not run, and enable goes on', async () => {
      const cp = fakeControlPlane()
      const check = fakeReadCheck({fail: 'etcd unreachable'})
      const result = await enableEncryption({}, {...cp.deps, followUps: {...noVerify, checkConfig: check.checkConfig}})
      expect(result.readCheck).toEqual({status: 'not-run', reason: 'etcd could not be read: etcd unreachable'})
      expect(cp.events).toContainEqual({
        type: 'warning',
        message: expect.stringContaining('read check not run before enable'),
      })
      expect(result.nodes.every((n) => n.status === 'changed')).toBe(true)
    })

    it('replacing the config the nodes run: allowed when proven readable, refused when not, ALREADY_ENABLED when it cannot be proven', async () => {
      const cp = fakeControlPlane()
      await enableEncryption({configText: seed}, cp.deps)
      for (const f of cp.files.values()) f.log.length = 0
      const other = seed.replaceAll('key1', 'key9')
      await expect(
        enableEncryption(
          {configText: other},
          {...cp.deps, followUps: {...noVerify, checkConfig: fakeReadCheck({needs: 'key1'}).checkConfig}},
        ),
      ).rejects.toMatchObject({code: 'CONFIG_CANNOT_READ'})
      await expect(
        enableEncryption(
          {configText: other},
          {...cp.deps, followUps: {...noVerify, checkConfig: fakeReadCheck({fail: 'no etcd'}).checkConfig}},
        ),
      ).rejects.toMatchObject({code: 'ALREADY_ENABLED', exitCode: 3})
      for (const f of cp.files.values()) expect(f.log).toEqual([])
      const replaced = await enableEncryption(
        {configText: other},
        {...cp.deps, followUps: {...noVerify, checkConfig: fakeReadCheck({needs: 'key9'}).checkConfig}},
      )
      expect(replaced.readCheck?.status).toBe('readable')
      expect(cp.files.get('cp-1')?.fs.get(ENC)?.content).toBe(other)
    })
  })
})
