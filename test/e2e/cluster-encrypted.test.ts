// status --scan and verify with encryption switched on in the sandbox (aescbc key1, identity
// fallback), then a node with a different config and a node whose apiserver is down. Every node's
// manifest is restored afterwards.
import {randomBytes} from 'node:crypto'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {aescbcConfig, ENC_CONFIG, enableOnNode, MANIFEST, newKey, restoreNodes} from './helpers/encryption-setup.js'
import {json, plugin, sshArgs} from './helpers/plugin.js'
import {kubectl, ok, readNodeFile, run, sandbox, sshOk, waitFor, writeNodeFile} from './helpers/sandbox.js'

const ns = `enc-${Date.now().toString(36)}`
const key1 = newKey('key1')
const saved = new Map<string, string>()

interface Status {
  nodes: Array<{
    node: string
    apiserver: {pod?: string; ready: boolean}
    encryption?: {configPath?: string}
    config: {hash?: string}
  }>
  agreement: {agree: boolean; hashes: Record<string, string[]>}
  scan?: {
    resources: Array<{
      resource: string
      total: number
      plaintext: number
      stale: number
      undecryptable: number
      orphans: number
      byProvider: Record<string, number>
    }>
  }
  problems: string[]
  warnings: string[]
}

beforeAll(async () => {
  const {nodes} = sandbox()
  for (const node of nodes) saved.set(node, await readNodeFile(node, MANIFEST))
  await ok('kubectl', ['create', 'namespace', ns])
  await ok('kubectl', ['create', 'secret', 'generic', 'before', '-n', ns, '--from-literal=k=v'])
  for (const node of nodes) await enableOnNode(node, aescbcConfig([key1]))
  await ok('kubectl', ['create', 'secret', 'generic', 'after', '-n', ns, '--from-literal=k=v'])
}, 600_000)

afterAll(async () => {
  // Delete the test objects first, while every node can still decrypt them.
  // Wait until the namespace controller has deleted them: an API server restarted without key1 while a
  // key1 value is stored cannot list Secrets and never becomes Ready (docs/kubernetes-behaviour.md §4.3).
  await kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=300s'])
  await run('etcdctl', ['del', '--prefix', `/registry/secrets/${ns}-gone/`])
  await restoreNodes(saved)
}, 900_000)

describe('with encryption on every node', () => {
  it('status: all nodes on, the same hash, secrets written with aescbc:key1', async () => {
    const doc = json<
      Status & {resources: Array<{resource: string; write: string; readOnly: string[]; identityFallback: boolean}>}
    >(await plugin(['status', ...sshArgs(), '-o', 'json']))
    expect(doc.agreement.agree).toBe(true)
    expect(new Set(doc.nodes.map((n) => n.config.hash)).size).toBe(1)
    expect(doc.resources).toEqual([
      {resource: 'secrets', write: 'aescbc:key1', readOnly: ['identity'], identityFallback: true},
    ])
  })

  it('verify: the value starts with k8s:enc:aescbc:v1:key1: and exits 0', async () => {
    const r = await plugin(['verify', '-n', ns, ...sshArgs(), '--hexdump'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^00000000 {2}6b 38 73 3a 65 6e 63 3a {2}61 65 73 63 62 63 3a 76 {2}\|k8s:enc:aescbc:v\|/m)
    expect(r.stdout).toContain('Result:     OK')
    const left = await kubectl(['get', 'secrets', '-n', ns, '-l', 'kubectl-encryption/verify=true', '-o', 'name'])
    expect(left.stdout.trim()).toBe('')
  })

  it('status --scan: finds the plaintext/stale Secret from before, an orphan and an undecryptable value (exit 5)', async () => {
    // Other test files share the sandbox: count what this test adds, not what was there before.
    const scanSecrets = async () => {
      const r = await plugin(['status', ...sshArgs(), '--scan', '-o', 'json'])
      return {r, secrets: json<Status>(r).scan!.resources.find((x) => x.resource === 'secrets')!}
    }
    const {secrets: baseline} = await scanSecrets()
    // An orphan: a plaintext Secret value left behind in a namespace that no longer exists (as stored, it
    // names its namespace: kube-apiserver's watch cache cannot load a namespaced object without one);
    // a wrong key: aescbc bytes no key opens.
    const orphan = {apiVersion: 'v1', kind: 'Secret', metadata: {name: 'orphan', namespace: `${ns}-gone`}}
    await ok('etcdctl', ['put', `/registry/secrets/${ns}-gone/orphan`], {input: JSON.stringify(orphan)})
    await ok('etcdctl', ['put', `/registry/secrets/${ns}/wrong-key`], {
      input: Buffer.concat([Buffer.from('k8s:enc:aescbc:v1:key1:'), randomBytes(48)]),
    })
    const {r, secrets} = await scanSecrets()
    expect(r.code, r.stderr).toBe(5)
    expect(secrets.plaintext).toBeGreaterThanOrEqual(2) // "before" and the orphan
    expect(secrets.plaintext - baseline.plaintext).toBe(1) // the orphan
    expect(secrets.stale).toBeGreaterThanOrEqual(2)
    expect(secrets.undecryptable - baseline.undecryptable).toBe(1)
    expect(secrets.orphans - baseline.orphans).toBe(1)
    expect(secrets.byProvider['aescbc:key1']).toBeGreaterThanOrEqual(1)
    const problems = json<Status>(r).problems.join('\n')
    expect(problems).toContain('value(s) stored in plaintext')
    expect(problems).toContain(`${secrets.undecryptable} value(s) that no configured key can decrypt`)
    // Neither value may outlive the test: an API server that starts while a value no key opens is
    // stored cannot fill its watch cache for Secrets and never becomes ready.
    await ok('etcdctl', ['del', `/registry/secrets/${ns}/wrong-key`])
    await ok('etcdctl', ['del', `/registry/secrets/${ns}-gone/orphan`])
    // inspect names the same value as undecryptable... and reads "after" with key1
    const after = json<{decryption: {status: string; provider?: string; keyName?: string}}>(
      await plugin(['inspect', 'secret/after', '-n', ns, ...sshArgs(), '-o', 'json']),
    )
    expect(after.decryption).toMatchObject({status: 'ok', provider: 'aescbc', keyName: 'key1'})
  })
})

describe('nodes that disagree', () => {
  it('a node with a different config is named, with both hashes (exit 5)', async () => {
    const [, second] = sandbox().nodes
    await enableOnNode(second!, aescbcConfig([newKey('key2'), key1]))
    const r = await plugin(['status', ...sshArgs(), '-o', 'json'])
    expect(r.code).toBe(5)
    const doc = json<Status>(r)
    expect(doc.agreement.agree).toBe(false)
    const problem = doc.problems.find((p) => p.includes('different encryption configs'))!
    expect(problem).toContain(`${second}: sha256:`)
  })

  it('a node whose apiserver is down is named as not ready (exit 5)', async () => {
    const third = sandbox().nodes[2]!
    const manifest = await readNodeFile(third, MANIFEST)
    // A config path outside every volumeMount: the apiserver cannot start (Kubernetes issue 53867).
    const UNMOUNTED = '/etc/kubernetes/unmounted/enc.yaml'
    await writeNodeFile(
      third,
      MANIFEST,
      manifest.replace(`--encryption-provider-config=${ENC_CONFIG}`, `--encryption-provider-config=${UNMOUNTED}`),
    )
    await waitFor(
      `kube-apiserver-${third} to go down`,
      async () => {
        const doc = json<Status>(await plugin(['status', '--no-ssh', '-o', 'json']))
        // The old mirror pod goes not ready first, then is replaced by one for the changed manifest
        // (missing for a moment): wait for the new one, which names the unmounted path.
        const node = doc.nodes.find((n) => n.node === third)
        return (
          node?.apiserver.pod !== undefined &&
          node.apiserver.ready === false &&
          node.encryption?.configPath === UNMOUNTED
        )
      },
      180_000,
      2000,
    )
    const r = await plugin(['status', ...sshArgs()])
    expect(r.code).toBe(5)
    expect(r.stdout).toMatch(new RegExp(`^${third}\\s+not ready`, 'm'))
    expect(r.stdout).toContain(`${third}: /etc/kubernetes/unmounted/enc.yaml is not inside any volumeMount`)
  })

  it('a stray kube-apiserver.yaml.bak in the manifests dir is reported (exit 5)', async () => {
    const first = sandbox().nodes[0]!
    await writeNodeFile(
      first,
      '/etc/kubernetes/manifests/kube-apiserver.yaml.bak',
      '# not a manifest, just a stray copy\n',
    )
    const r = await plugin(['status', ...sshArgs()])
    expect(r.code).toBe(5)
    expect(r.stdout).toContain(`${first}: /etc/kubernetes/manifests/kube-apiserver.yaml.bak is in the manifests dir`)
    await sshOk(first, 'sudo -n rm -f /etc/kubernetes/manifests/kube-apiserver.yaml.bak')
  })
})
