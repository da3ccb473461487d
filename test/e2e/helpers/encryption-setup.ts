// Seed-style encryption set-up done by hand over ssh, as an operator following the Kubernetes task
// page would (the plugin's own `enable` is tested elsewhere): write /etc/kubernetes/enc/enc.yaml and
// add the flag, volumeMount and volume to the node's kube-apiserver manifest.
import {randomBytes} from 'node:crypto'
import {parseDocument, type YAMLMap, type YAMLSeq} from 'yaml'
import {mirrorPod, readNodeFile, sshOk, waitForApiserverRestart, writeNodeFile} from './sandbox.js'

export const MANIFEST = '/etc/kubernetes/manifests/kube-apiserver.yaml'
export const ENC_CONFIG = '/etc/kubernetes/enc/enc.yaml'

export interface TestKey {
  name: string
  secret: string
}

export const newKey = (name: string): TestKey => ({name, secret: randomBytes(32).toString('base64')})

export function aescbcConfig(keys: TestKey[], fallbackIdentity = true, resources = ['secrets']): string {
  return `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
${resources.map((r) => `      - ${r}\n`).join('')}    providers:
      - aescbc:
          keys:
${keys.map((k) => `            - name: ${k.name}\n              secret: ${k.secret}\n`).join('')}${fallbackIdentity ? '      - identity: {}\n' : ''}`
}

/** Adds --encryption-provider-config (and, unless `mount` is false, the enc volume) to a manifest text. */
export function withEncryptionFlag(manifest: string, options: {mount?: boolean; path?: string} = {}): string {
  const doc = parseDocument(manifest)
  const container = (doc.getIn(['spec', 'containers']) as YAMLSeq).items[0] as YAMLMap
  const command = container.get('command') as YAMLSeq
  command.add(doc.createNode(`--encryption-provider-config=${options.path ?? ENC_CONFIG}`))
  if (options.mount !== false) {
    ;(container.get('volumeMounts') as YAMLSeq).add(
      doc.createNode({mountPath: '/etc/kubernetes/enc', name: 'enc', readOnly: true}),
    )
    ;(doc.getIn(['spec', 'volumes']) as YAMLSeq).add(
      doc.createNode({hostPath: {path: '/etc/kubernetes/enc', type: 'DirectoryOrCreate'}, name: 'enc'}),
    )
  }
  return doc.toString()
}

export async function apiserverHash(node: string): Promise<string> {
  const pod = await mirrorPod(`kube-apiserver-${node}`)
  if (!pod) throw new Error(`no mirror pod kube-apiserver-${node}`)
  return pod.metadata.annotations['kubernetes.io/config.hash']!
}

/** Writes the config and (if not yet there) the flag on one node, then waits for its API server to come back. */
export async function enableOnNode(node: string, config: string, until: 'ready' | 'serving' = 'ready'): Promise<void> {
  const before = await apiserverHash(node)
  await writeNodeFile(node, ENC_CONFIG, config)
  const manifest = await readNodeFile(node, MANIFEST)
  if (manifest.includes('--encryption-provider-config=')) {
    // The API server reads the file only at start: touch the manifest so the kubelet restarts it.
    await writeNodeFile(node, MANIFEST, manifest.replace(/^# restarted .*\n/m, '') + `# restarted ${Date.now()}\n`)
  } else {
    await writeNodeFile(node, MANIFEST, withEncryptionFlag(manifest))
  }
  await waitForApiserverRestart(node, before, 90_000, until)
}

/**
 * Puts back the manifests saved before a test (restarting each changed API server) and removes the
 * config dir and any stray manifest copy. Delete what only the test's keys can read first: an API
 * server restarted without a key whose values are still stored never becomes Ready.
 */
export async function restoreNodes(saved: Map<string, string>): Promise<void> {
  for (const [node, manifest] of saved) {
    const before = await apiserverHash(node).catch(() => '')
    const current = await readNodeFile(node, MANIFEST).catch(() => '')
    if (current === manifest) continue
    await writeNodeFile(node, MANIFEST, manifest)
    await waitForApiserverRestart(node, before, 180_000)
    await sshOk(node, `sudo -n rm -rf /etc/kubernetes/enc ${MANIFEST}.bak`)
  }
}
