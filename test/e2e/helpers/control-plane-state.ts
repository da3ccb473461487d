// Saving and restoring what enable / decrypt-all change on the sandbox's nodes (manifests, the config
// dir, backup dirs, kubeadm-config), and the "no key material in any output" check. A restore first
// decrypts what the test's keys encrypted (identity first, every Secret and every other resource the
// configs list rewritten), so the next test file never meets values under a key that is gone.
import {expect} from 'vitest'
import {parse} from 'yaml'

import {putIdentityFirst} from '../../../src/encryption/config/edit.js'
import {apiserverHash, MANIFEST} from './encryption-setup.js'
import {pluginOutputs} from './plugin.js'
import {kubectl, ok, readNodeFile, run, sandbox, sshOk, waitForApiserverRestart, writeNodeFile} from './sandbox.js'

const BACKUP_ROOT = '/etc/kubernetes/tmp'

export interface SavedNode {
  manifest: string
  /** base64 of `tar cz enc` under /etc/kubernetes, or '' when there was no /etc/kubernetes/enc. */
  encTar: string
  backupDirs: string[]
  manifestsDir: string[]
}

export interface SavedControlPlane {
  nodes: Record<string, SavedNode>
  kubeadmConfig?: string
}

const listDir = async (node: string, dir: string) =>
  (await sshOk(node, `sudo -n sh -c 'ls -A ${dir} 2>/dev/null; true'`)).split('\n').filter(Boolean)

/** kubeadm-config's ClusterConfiguration text, or undefined when the ConfigMap cannot be read. */
export async function kubeadmClusterConfiguration(): Promise<string | undefined> {
  const r = await kubectl([
    'get',
    'configmap',
    '-n',
    'kube-system',
    'kubeadm-config',
    '-o',
    'jsonpath={.data.ClusterConfiguration}',
  ])
  return r.code === 0 ? r.stdout : undefined
}

export async function saveControlPlane(): Promise<SavedControlPlane> {
  const nodes: Record<string, SavedNode> = {}
  for (const node of sandbox().nodes) {
    nodes[node] = {
      manifest: await readNodeFile(node, MANIFEST),
      encTar: (
        await sshOk(
          node,
          `sudo -n sh -c 'if [ -e /etc/kubernetes/enc ]; then tar -C /etc/kubernetes -czf - enc | base64 -w0; fi'`,
        )
      ).trim(),
      backupDirs: await listDir(node, BACKUP_ROOT),
      manifestsDir: await listDir(node, '/etc/kubernetes/manifests'),
    }
  }
  return {nodes, kubeadmConfig: await kubeadmClusterConfiguration()}
}

/** What a node looks like, for "nothing changed" checks: manifests, config dir and backup dirs. */
export async function nodeState(node: string): Promise<string> {
  return sshOk(
    node,
    `sudo -n sh -c 'cd /etc/kubernetes && sha256sum manifests/* ; ls -lA enc 2>/dev/null; sha256sum enc/* 2>/dev/null; ls -A tmp 2>/dev/null; true'`,
  )
}

export const allNodeStates = async () =>
  Object.fromEntries(await Promise.all(sandbox().nodes.map(async (n) => [n, await nodeState(n)] as const)))

/** Restarts a node's apiserver (the file is read only at start) by touching its manifest. */
async function restartWith(node: string, manifest: string): Promise<void> {
  const before = await apiserverHash(node).catch(() => '')
  await writeNodeFile(node, MANIFEST, manifest)
  await waitForApiserverRestart(node, before, 180_000)
}

export async function restoreControlPlane(saved: SavedControlPlane | undefined): Promise<void> {
  if (!saved) return
  const errors: string[] = []
  const attempt = async (what: string, step: () => Promise<unknown>) => {
    try {
      await step()
    } catch (error) {
      errors.push(`${what}: ${(error as Error).message}`)
    }
  }
  // 1. Decrypt what this file's keys encrypted: identity first on every node that runs a config.
  let decrypting = false
  // What the configs encrypt besides Secrets (e.g. configmaps): rewritten too, or the API server
  // restarted without the config could not read them.
  const listed = new Set<string>(['secrets'])
  for (const node of sandbox().nodes) {
    await attempt(`identity first on ${node}`, async () => {
      const manifest = await readNodeFile(node, MANIFEST)
      const path = /--encryption-provider-config=(\S+)/.exec(manifest)?.[1]
      if (!path) return
      const config = await readNodeFile(node, path).catch(() => undefined)
      if (config === undefined) return
      const doc = parse(config) as {resources?: Array<{resources?: string[]}>} | null
      for (const r of doc?.resources?.flatMap((x) => x.resources ?? []) ?? []) if (!r.includes('*')) listed.add(r)
      const edit = putIdentityFirst(config)
      if (!edit.changed) return
      decrypting = true
      await writeNodeFile(node, path, edit.text)
      await restartWith(node, `${manifest.replace(/^# restore .*\n/m, '')}# restore ${Date.now()}\n`)
    })
  }
  // 2. The seed's rewrite, so every Secret (and whatever else was listed) is plaintext again (objects
  // that fail are left as they are).
  if (decrypting) {
    for (const resource of listed)
      await attempt(`rewrite ${resource}`, async () => {
        // Secrets must list; another resource may be gone by now (a test's CRD), nothing to decrypt then.
        const all = await run('kubectl', ['get', resource, '-A', '-o', 'json'])
        if (all.code !== 0 && resource === 'secrets') throw new Error(`kubectl get secrets -A: ${all.stderr}`)
        if (all.code === 0) await run('kubectl', ['replace', '-f', '-'], {input: all.stdout})
      })
  }
  // 3. Manifests, config dir, backup dirs, stray files in the manifests dir.
  for (const [node, s] of Object.entries(saved.nodes)) {
    await attempt(`manifest of ${node}`, async () => {
      if ((await readNodeFile(node, MANIFEST)) !== s.manifest) await restartWith(node, s.manifest)
    })
    await attempt(`files of ${node}`, async () => {
      await sshOk(
        node,
        `sudo -n sh -c 'data=$(cat); rm -rf /etc/kubernetes/enc; if [ -n "$data" ]; then printf %s "$data" | base64 -d | tar -C /etc/kubernetes -xzf -; fi'`,
        s.encTar,
      )
      for (const dir of await listDir(node, BACKUP_ROOT))
        if (!s.backupDirs.includes(dir)) await sshOk(node, `sudo -n rm -rf ${BACKUP_ROOT}/${dir}`)
      for (const file of await listDir(node, '/etc/kubernetes/manifests'))
        if (!s.manifestsDir.includes(file)) await sshOk(node, `sudo -n rm -f /etc/kubernetes/manifests/${file}`)
    })
  }
  // 4. kubeadm-config.
  if (saved.kubeadmConfig !== undefined) {
    await attempt('kubeadm-config', async () => {
      const cm = JSON.parse(
        await ok('kubectl', ['get', 'configmap', '-n', 'kube-system', 'kubeadm-config', '-o', 'json']),
      ) as {data: Record<string, string>}
      if (cm.data.ClusterConfiguration === saved.kubeadmConfig) return
      cm.data.ClusterConfiguration = saved.kubeadmConfig as string
      await ok('kubectl', ['replace', '-f', '-'], {input: JSON.stringify(cm)})
    })
  }
  if (errors.length > 0) throw new Error(`restoring the sandbox failed:\n${errors.join('\n')}`)
}

/** Key secrets seen on the nodes during this file (configs and backups); kept after the files are gone. */
const seenKeys = new Set<string>()

export async function collectKeyMaterial(extra: string[] = []): Promise<void> {
  const scan = (text: string) => {
    for (const m of text.matchAll(/secret:\s*["']?([A-Za-z0-9+/=]{16,})/g)) seenKeys.add(m[1] as string)
  }
  for (const node of sandbox().nodes) {
    scan(
      await sshOk(
        node,
        `sudo -n sh -c 'cat /etc/kubernetes/enc/* ${BACKUP_ROOT}/kubectl-encryption-*/* 2>/dev/null; true'`,
      ),
    )
  }
  extra.forEach(scan)
}

/** No key secret, base64 or hex, in anything the plugin printed so far in this file. */
export async function expectNoKeyMaterial(extra: string[] = []): Promise<void> {
  await collectKeyMaterial(extra)
  const all = pluginOutputs.join('\n')
  const lower = all.toLowerCase()
  for (const secret of seenKeys) {
    expect(all.includes(secret), 'key material (base64) in plugin output').toBe(false)
    expect(lower.includes(Buffer.from(secret, 'base64').toString('hex')), 'key material (hex) in plugin output').toBe(
      false,
    )
  }
}

export const keysSeen = () => seenKeys.size
