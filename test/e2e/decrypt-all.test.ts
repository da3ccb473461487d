// `kubectl encryption decrypt-all` against the sandbox: encryption switched on with the plugin's own
// `enable --rewrite`, then decrypted, proven with `status --scan`, and taken out with
// --remove-encryption. Everything is put back afterwards (decrypted first if a test failed midway).
import {randomBytes} from 'node:crypto'

import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import {parse} from 'yaml'

import {
  kubeadmClusterConfiguration,
  allNodeStates,
  collectKeyMaterial,
  expectNoKeyMaterial,
  keysSeen,
  restoreControlPlane,
  saveControlPlane,
  type SavedControlPlane,
} from './helpers/control-plane-state.js'
import {DENY_UPDATE_WEBHOOK} from '../sandbox/admission-webhook.js'
import {ENC_CONFIG, MANIFEST} from './helpers/encryption-setup.js'
import {json, plugin, sshArgs} from './helpers/plugin.js'
import {kubectl, ok, readNodeFile, run, runBytes, sandbox, sshOk} from './helpers/sandbox.js'
import {configWithUnreachableNode} from './helpers/ssh-variants.js'

const ns = `decrypt-${Date.now().toString(36)}`
let saved: SavedControlPlane | undefined

interface DecryptJson {
  alreadyOff: boolean
  stages: Array<{stage: string; status: string; detail?: string; nodes?: Array<{node: string; status: string}>}>
  readableKeys: Array<{provider: string; key: string; fingerprint?: string}>
  rewrite?: {
    rewritten: number
    failed: number
    resources: string[]
    estimate?: {resources: Array<{resource: string; objects: number | null; bytes: number | null}>}
    webhooks?: Array<{webhook: string; failurePolicy: string}>
  }
  scan?: {total: number; byResource: Record<string, number>; examples: string[]}
  decrypted: boolean
  removed: boolean
  kubeadmConfig?: {status: string}
  configBackups: Array<{node: string; path: string}>
  keysForOlderBackups?: Array<{resource: string; keys: string[]}>
  next: string[]
}

interface StatusJson {
  nodes: Array<{node: string; encryption: {enabled: boolean}}>
  scan?: {resources: Array<{resource: string; total: number; plaintext: number; byProvider: Record<string, number>}>}
}

const nodes = () => sandbox().nodes
const stored = async (name: string) =>
  (await runBytes('etcdctl', ['get', `/registry/secrets/${ns}/${name}`, '--print-value-only']))
    .subarray(0, 8)
    .toString()
const scanSecrets = async () =>
  json<StatusJson>(await plugin(['status', '--scan', ...sshArgs(), '-o', 'json'])).scan!.resources.find(
    (r) => r.resource === 'secrets',
  )!

beforeAll(async () => {
  saved = await saveControlPlane()
  await ok('kubectl', ['create', 'namespace', ns])
  await ok('kubectl', ['create', 'secret', 'generic', 'before', '-n', ns, '--from-literal=k=v'])
  // Encryption on with the plugin itself, existing Secrets rewritten under the new key.
  const r = await plugin(['enable', '--yes', '--rewrite', ...sshArgs()], {timeoutMs: 600_000})
  if (r.code !== 0) throw new Error(`enable failed (exit ${r.code}): ${r.stderr}${r.stdout}`)
  await ok('kubectl', ['create', 'secret', 'generic', 'after', '-n', ns, '--from-literal=k=v'])
  expect(await stored('before')).toBe('k8s:enc:')
  expect(await stored('after')).toBe('k8s:enc:')
}, 900_000)

afterEach(async () => {
  await expectNoKeyMaterial()
})

afterAll(async () => {
  await run('etcdctl', ['del', '--prefix', `/registry/secrets/${ns}-gone/`])
  await kubectl(['delete', 'namespace', ns, '--wait=false'])
  await restoreControlPlane(saved)
}, 900_000)

describe('kubectl encryption decrypt-all', {timeout: 900_000}, () => {
  it('--dry-run --remove-encryption: identity-first and removal diffs per node (secrets masked), nothing changed', async () => {
    const before = await allNodeStates()
    const r = await plugin(['decrypt-all', '--dry-run', '--remove-encryption', ...sshArgs()])
    expect(r.code, r.stderr).toBe(0)
    for (const node of nodes()) {
      expect(r.stdout).toContain(`# ${node}: ${ENC_CONFIG}`)
      expect(r.stdout).toContain(`# ${node}: ${MANIFEST} (after a clean scan)`)
    }
    expect(r.stdout).toContain('+      - identity: {}')
    expect(r.stdout).toContain(`-    - --encryption-provider-config=${ENC_CONFIG}`)
    expect(r.stdout).toMatch(/secret: <redacted sha256:[0-9a-f]{12}>/)
    expect(r.stdout).toContain('Dry run: nothing was changed.')
    // the keys an etcd backup from before the decryption needs, by name (enable's secretbox key)
    expect(r.stdout).toMatch(
      /^Keys for older etcd backups \(keep them: backups taken before the decryption need them; .*\):\n {2}RESOURCE\s+KEYS\n {2}secrets\s+secretbox:key-\d{8}T\d{6}Z\n/m,
    )
    expect(await allNodeStates()).toEqual(before)
    await collectKeyMaterial()
    expect(keysSeen()).toBeGreaterThan(0)
  })

  it('without --yes and without a terminal: refused (exit 3); an unreachable node: exit 3; nothing changed', async () => {
    const before = await allNodeStates()
    const refused = await plugin(['decrypt-all', ...sshArgs()])
    expect(refused.code).toBe(3)
    expect(refused.stderr).toContain('--yes')
    const unreachable = await plugin(['decrypt-all', '--yes', '--ssh-config', configWithUnreachableNode('cp-2')])
    expect(unreachable.code).toBe(3)
    expect(unreachable.stderr).toContain('Cannot connect to node cp-2 over SSH')
    expect(await allNodeStates()).toEqual(before)
  })

  it('identity first on every node (old key kept), everything rewritten; status --scan then shows only plaintext', async () => {
    const r = await plugin(['decrypt-all', '--yes', '-o', 'json', ...sshArgs()], {timeoutMs: 600_000})
    expect(r.code, r.stderr).toBe(0)
    const result = json<DecryptJson>(r)
    expect(result.stages.map((s) => `${s.stage}:${s.status}`)).toEqual([
      'identity-first:done',
      'rewrite:done',
      'scan:done',
      'remove-encryption:skipped',
    ])
    expect(result.stages[0]?.nodes?.map((n) => n.status)).toEqual(['changed', 'changed', 'changed'])
    // enable named its key key-<UTC time> (issue 13 item 12)
    expect(result.readableKeys).toEqual([
      {
        provider: 'secretbox',
        key: expect.stringMatching(/^key-\d{8}T\d{6}Z$/),
        fingerprint: expect.stringMatching(/^sha256:/),
      },
    ])
    const keyName = result.readableKeys[0]!.key
    expect(result.rewrite?.rewritten).toBeGreaterThanOrEqual(2)
    // before the rewrite stage wrote anything: the sandbox's deny-update webhook (UPDATE of */*) and the estimate
    expect(result.rewrite?.webhooks).toContainEqual(
      expect.objectContaining({webhook: DENY_UPDATE_WEBHOOK, failurePolicy: 'Fail'}),
    )
    expect(result.rewrite?.estimate?.resources.map((x) => x.resource)).toContain('secrets')
    const warned = r.stderr.indexOf(`Warning: validating admission webhook ${DENY_UPDATE_WEBHOOK} `)
    expect(warned, r.stderr).toBeGreaterThanOrEqual(0)
    expect(r.stderr.indexOf('Estimate: '), r.stderr).toBeGreaterThan(warned)
    expect(result.scan?.total).toBe(0)
    expect(result.decrypted).toBe(true)
    expect(result.next).toEqual([expect.stringContaining('decrypt-all --remove-encryption')])
    for (const node of nodes()) {
      // compared by structure, so a failure never prints the key
      const providers = (
        parse(await readNodeFile(node, ENC_CONFIG)) as {
          resources: Array<{providers: Array<Record<string, {keys?: Array<{name: string}>}>>}>
        }
      ).resources[0]!.providers
      expect(providers.map((p) => Object.keys(p)[0])).toEqual(['identity', 'secretbox'])
      expect(providers[1]!.secretbox!.keys!.map((k) => k.name)).toEqual([keyName])
      expect(await readNodeFile(node, MANIFEST)).toContain(`--encryption-provider-config=${ENC_CONFIG}`)
    }
    expect(await stored('before')).not.toBe('k8s:enc:')
    expect(await stored('after')).not.toBe('k8s:enc:')
    const secrets = await scanSecrets()
    expect(secrets.total).toBeGreaterThanOrEqual(2)
    expect(secrets.plaintext).toBe(secrets.total)
    expect(Object.keys(secrets.byProvider)).toEqual(['identity'])
  })

  it('a value the API cannot rewrite (encrypted, in a deleted namespace) is found by the scan: exit 5, encryption not removed', async () => {
    await ok('etcdctl', ['put', `/registry/secrets/${ns}-gone/left`], {
      input: Buffer.concat([Buffer.from('k8s:enc:secretbox:v1:key1:'), randomBytes(48)]),
    })
    const before = await allNodeStates()
    const r = await plugin(['decrypt-all', '--yes', '--remove-encryption', ...sshArgs()], {timeoutMs: 600_000})
    expect(r.code, r.stderr).toBe(5)
    expect(r.stdout).toMatch(/scan\s+failed\s+1 value\(s\) still encrypted \(secrets=1\)/)
    expect(r.stdout).toContain(`/registry/secrets/${ns}-gone/left`)
    expect(r.stdout).toMatch(/remove-encryption\s+skipped\s+encrypted values are left/)
    expect(await allNodeStates()).toEqual(before)
    await ok('etcdctl', ['del', `/registry/secrets/${ns}-gone/left`])
  })

  it('--remove-encryption after a clean scan: manifests as before enable, kubeadm-config too, the config moved to the backup dir', async () => {
    const r = await plugin(['decrypt-all', '--yes', '--remove-encryption', '-o', 'json', ...sshArgs()], {
      timeoutMs: 600_000,
    })
    expect(r.code, r.stderr).toBe(0)
    const result = json<DecryptJson>(r)
    expect(result.stages.map((s) => `${s.stage}:${s.status}`)).toEqual([
      'identity-first:unchanged',
      'rewrite:done',
      'scan:done',
      'remove-encryption:done',
    ])
    expect(result.removed).toBe(true)
    expect(result.kubeadmConfig?.status).toBe('updated')
    for (const node of nodes()) {
      const manifest = await readNodeFile(node, MANIFEST)
      expect(manifest).not.toContain('encryption-provider-config')
      expect(manifest).toBe(saved!.nodes[node]!.manifest)
      expect((await sshOk(node, `sudo -n sh -c 'test -e ${ENC_CONFIG} && echo present || echo absent'`)).trim()).toBe(
        'absent',
      )
      expect(await sshOk(node, 'sudo -n ls -A /etc/kubernetes/manifests')).toBe(
        'etcd.yaml\nkube-apiserver.yaml\nkube-controller-manager.yaml\n',
      )
    }
    for (const b of result.configBackups) {
      expect(b.path).toMatch(/^\/etc\/kubernetes\/tmp\/kubectl-encryption-\d{8}T\d{6}Z\/enc\.yaml(\.\d+)?$/)
      expect(await sshOk(b.node, `sudo -n stat -c '%U %a' ${b.path}`)).toBe('root 600\n')
    }
    expect(result.configBackups.map((b) => b.node)).toEqual(nodes())
    // named per resource: exactly the keys the moved configs hold (compared by name, never printing a secret)
    const moved = (
      parse(await sshOk(result.configBackups[0]!.node, `sudo -n cat ${result.configBackups[0]!.path}`)) as {
        resources: Array<{providers: Array<Record<string, {keys?: Array<{name: string}>}>>}>
      }
    ).resources[0]!.providers
    expect(moved.map((p) => Object.keys(p)[0])).toEqual(['identity', 'secretbox'])
    expect(result.keysForOlderBackups).toEqual([
      {resource: 'secrets', keys: moved[1]!.secretbox!.keys!.map((k) => `secretbox:${k.name}`)},
    ])
    expect(await kubeadmClusterConfiguration()).toBe(saved!.kubeadmConfig)
    const status = json<StatusJson>(await plugin(['status', '--scan', ...sshArgs(), '-o', 'json']))
    expect(status.nodes.map((n) => n.encryption.enabled)).toEqual([false, false, false])
    const secrets = status.scan!.resources.find((x) => x.resource === 'secrets')!
    expect(secrets.plaintext).toBe(secrets.total)
    // and again: nothing to do
    const again = await plugin(['decrypt-all', '--yes', ...sshArgs()])
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain('Encryption at rest is off on every control-plane node: nothing to do.')
  })
})
