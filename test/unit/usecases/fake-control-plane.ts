import {createHash} from 'node:crypto'
import {readFileSync} from 'node:fs'

import {PluginError} from '../../../src/errors.js'
import {
  type ApiResource,
  type KubeObject,
  KubeApiError,
  type ListPage,
  type ObjectClient,
} from '../../../src/kube/types.js'
import type {ControlPlaneDeps} from '../../../src/changes/deps.js'
import type {ApiserverState, ApiserverWaiter} from '../../../src/changes/rollout.js'
import type {RemoteDirEntry, RemoteFiles, RemoteStat, WriteOptions} from '../../../src/ssh/remote-files.js'

interface FakeFile {
  content: string
  mode: number
  uid: number
  gid: number
}

const sha = (text: string) => createHash('sha256').update(text).digest('hex')

/** In-memory files of one node, with the same contract as ShellRemoteFiles. */
export class FakeFiles implements RemoteFiles {
  readonly fs = new Map<string, FakeFile>()
  readonly log: string[] = []
  failWrites = false
  constructor(readonly node: string) {}

  async read(path: string) {
    const f = this.fs.get(path)
    return f ? Buffer.from(f.content) : undefined
  }
  async stat(path: string): Promise<RemoteStat | undefined> {
    const f = this.fs.get(path)
    return f
      ? {
          path,
          uid: f.uid,
          gid: f.gid,
          mode: f.mode,
          size: f.content.length,
          type: 'file',
          sha256: `sha256:${sha(f.content)}`,
        }
      : undefined
  }
  async writeAtomic(path: string, data: Uint8Array | string, o: WriteOptions = {}) {
    if (this.failWrites) throw new PluginError('unexpected', 'REMOTE_FILE_OP_FAILED', `disk full on ${this.node}`)
    const old = this.fs.get(path)
    this.log.push(`write ${path}`)
    this.fs.set(path, {
      content: Buffer.from(data).toString('utf8'),
      mode: o.mode ?? old?.mode ?? 0o600,
      uid: o.uid ?? old?.uid ?? 0,
      gid: o.gid ?? old?.gid ?? 0,
    })
  }
  async mkdir(path: string) {
    this.log.push(`mkdir ${path}`)
  }
  async backup(path: string, dir: string) {
    const f = this.fs.get(path)
    if (!f) throw new Error(`no ${path}`)
    let target = `${dir}/${path.split('/').pop()}`
    for (let n = 1; this.fs.has(target); n++) target = `${dir}/${path.split('/').pop()}.${n}`
    this.fs.set(target, {...f})
    this.log.push(`backup ${path} -> ${target}`)
    return target
  }
  async restore(backup: string, target: string) {
    const f = this.fs.get(backup)
    if (!f) throw new Error(`no ${backup}`)
    this.fs.set(target, {...f})
    this.log.push(`restore ${backup} -> ${target}`)
  }
  async list(dir: string): Promise<RemoteDirEntry[]> {
    return [...this.fs.keys()]
      .filter((p) => p.startsWith(`${dir}/`))
      .map((p) => ({name: p.slice(dir.length + 1), type: 'file', size: 0}))
  }
  async remove(path: string) {
    this.fs.delete(path)
    this.log.push(`remove ${path}`)
  }
}

/**
 * The kubelet and apiserver of each node, as the waiter sees them: the mirror hash is the manifest's
 * hash; a node listed in `broken` never becomes ready once its manifest names an encryption config.
 */
export class FakeWaiter implements ApiserverWaiter {
  readonly broken = new Set<string>()
  /** Nodes whose kubelet stops working after the first write (the rollback cannot be confirmed). */
  readonly dead = new Set<string>()
  readonly waits: string[] = []
  constructor(private readonly files: Map<string, FakeFiles>) {}

  private manifest(node: string) {
    return this.files.get(node)?.fs.get('/etc/kubernetes/manifests/kube-apiserver.yaml')?.content ?? ''
  }
  async snapshot(node: string): Promise<ApiserverState> {
    return {mirrorHash: sha(this.manifest(node))}
  }
  async waitRestarted(node: string, before: ApiserverState) {
    this.waits.push(`restart ${node}`)
    const now = sha(this.manifest(node))
    if (
      this.dead.has(node) ||
      now === before.mirrorHash ||
      (this.broken.has(node) && this.manifest(node).includes('--encryption-provider-config'))
    ) {
      throw new PluginError('unexpected', 'WAIT_TIMEOUT', `timed out waiting for the kube-apiserver on ${node}`)
    }
  }
  async waitRestored(node: string, original: ApiserverState) {
    this.waits.push(`restored ${node}`)
    if (this.dead.has(node) || sha(this.manifest(node)) !== original.mirrorHash)
      throw new PluginError('unexpected', 'WAIT_TIMEOUT', 'not back')
  }
  async waitConfigLoaded(node: string, hash: string) {
    this.waits.push(`reload ${node} ${hash.slice(0, 15)}`)
  }
}

/** An ObjectClient holding ConfigMaps only (kubeadm-config, the rotation state). */
export class FakeObjects implements ObjectClient {
  readonly store = new Map<string, KubeObject>()
  private rv = 1
  private key = (r: ApiResource, name: string, ns?: string) => `${r.resource}/${ns ?? ''}/${name}`
  async list(): Promise<ListPage> {
    return {items: []}
  }
  async get(r: ApiResource, name: string, ns?: string) {
    const o = this.store.get(this.key(r, name, ns))
    if (!o) throw new KubeApiError(404, 'NotFound', `${r.resource} "${name}" not found`)
    return structuredClone(o)
  }
  async create(r: ApiResource, o: KubeObject) {
    const k = this.key(r, o.metadata.name, o.metadata.namespace)
    if (this.store.has(k)) throw new KubeApiError(409, 'AlreadyExists', 'exists')
    const stored = {...structuredClone(o), metadata: {...o.metadata, resourceVersion: String(this.rv++)}}
    this.store.set(k, stored)
    return structuredClone(stored)
  }
  async replace(r: ApiResource, o: KubeObject) {
    const k = this.key(r, o.metadata.name, o.metadata.namespace)
    const cur = this.store.get(k)
    if (!cur) throw new KubeApiError(404, 'NotFound', 'not found')
    if (o.metadata.resourceVersion && o.metadata.resourceVersion !== cur.metadata.resourceVersion)
      throw new KubeApiError(409, 'Conflict', 'conflict')
    const stored = {...structuredClone(o), metadata: {...o.metadata, resourceVersion: String(this.rv++)}}
    this.store.set(k, stored)
    return structuredClone(stored)
  }
  async delete(r: ApiResource, name: string, ns?: string) {
    this.store.delete(this.key(r, name, ns))
  }
}

export const fixture = (path: string) => readFileSync(new URL(`../../fixtures/${path}`, import.meta.url), 'utf8')

/** Three kubeadm nodes without encryption, a kubeadm-config ConfigMap, fakes wired as deps. */
export function fakeControlPlane(nodeNames = ['cp-1', 'cp-2', 'cp-3']) {
  const files = new Map(nodeNames.map((n) => [n, new FakeFiles(n)]))
  for (const f of files.values()) {
    f.fs.set('/etc/kubernetes/manifests/kube-apiserver.yaml', {
      content: fixture('manifests/kubeadm-comments.yaml'),
      mode: 0o600,
      uid: 0,
      gid: 0,
    })
  }
  const waiter = new FakeWaiter(files)
  const objects = new FakeObjects()
  objects.store.set('configmaps/kube-system/kubeadm-config', {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {name: 'kubeadm-config', namespace: 'kube-system', resourceVersion: '1'},
    data: {ClusterConfiguration: fixture('manifests/cluster-configuration-v1beta4.yaml')},
  })
  const events: unknown[] = []
  const deps: ControlPlaneDeps = {
    nodes: async () => nodeNames,
    files: (n) => files.get(n) as FakeFiles,
    waiter,
    objects,
    now: () => new Date('2026-11-27T21:00:00Z'),
    onEvent: (e) => events.push(e),
  }
  return {files, waiter, objects, deps, events}
}
