import {
  type ApiResource,
  type KubeObject,
  KubeApiError,
  type ListOptions,
  type ListPage,
  type ObjectClient,
} from '../../../src/kube/types.js'

/**
 * An in-memory apiserver for operation tests: one store of versioned objects with etcd-like
 * revisions, paged lists that are consistent snapshots (continue tokens carry the list's revision,
 * as kube's do), compaction (410 with or without a continue hint), resourceVersion preconditions
 * (409), no-op updates that skip the write unless the stored value is stale (docs/kubernetes-behaviour.md §4.2), and hooks
 * to inject faults (429/5xx/connection errors, denials, 403, orphans, undecryptable values).
 */
export interface StoredValue {
  object: KubeObject
  /** The write key the value is stored under. */
  key: string
  rev: number
  deleted?: boolean
}

export type Verb = 'list' | 'get' | 'replace'

export interface FaultContext {
  verb: Verb
  resource: ApiResource
  name?: string
  namespace?: string
  object?: KubeObject
}

export const SECRETS: ApiResource = {group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true}
export const CONFIGMAPS: ApiResource = {
  group: '',
  version: 'v1',
  resource: 'configmaps',
  kind: 'ConfigMap',
  namespaced: true,
}
export const PANDAS: ApiResource = {
  group: 'awesome.bears.example',
  version: 'v1',
  resource: 'pandas',
  kind: 'Panda',
  namespaced: false,
}

export class FakeCluster implements ObjectClient {
  revision = 1
  compactedRevision = 0
  /** The key new writes use (the config's first key). */
  currentKey = 'new'
  /** Whether a 410 carries a fresh continue hint (kube-apiserver does). */
  hintOn410 = true
  readonly namespaces = new Set<string>()
  /** Per resource, per `ns/name`: the history of values, newest last. */
  private readonly data = new Map<string, Map<string, StoredValue[]>>()
  /** Called before every request; throw from it to inject a fault. May be async. */
  fault?: (ctx: FaultContext) => void | Promise<void>
  /** Replaces the namespace lookup (e.g. to answer 403 for a user without `get namespaces`). */
  namespaceFault?: (name: string) => never
  /** Called after a successful request (e.g. to let a "concurrent writer" act). */
  after?: (ctx: FaultContext) => void | Promise<void>
  readonly calls: Record<Verb, number> = {list: 0, get: 0, replace: 0}
  /** Writes that changed the stored value, per object key. */
  readonly writes = new Map<string, number>()
  latencyMs = 0
  /** `ns/name` of values no configured key can read: a list over one fails as kube-apiserver's does (docs/kubernetes-behaviour.md §4.3). */
  readonly undecryptable = new Set<string>()
  /** answer an unreadable value in a list as kube-apiserver 1.33+ does (500 StorageReadError) */
  storageReadErrors = false

  private bucket(resource: ApiResource): Map<string, StoredValue[]> {
    const id = `${resource.group}/${resource.resource}`
    let bucket = this.data.get(id)
    if (!bucket) this.data.set(id, (bucket = new Map()))
    return bucket
  }

  private static key(namespace: string | undefined, name: string): string {
    return namespace ? `${namespace}/${name}` : name
  }

  /** Seeds an object stored under `key` (default "old": stale after a key change). */
  seed(
    resource: ApiResource,
    namespace: string | undefined,
    name: string,
    data: Record<string, string>,
    key = 'old',
  ): void {
    if (namespace) this.namespaces.add(namespace)
    const rev = ++this.revision
    const object: KubeObject = {
      apiVersion: resource.group ? `${resource.group}/${resource.version}` : resource.version,
      kind: resource.kind,
      metadata: {name, ...(namespace ? {namespace} : {}), uid: `uid-${name}`},
      data,
    }
    this.bucket(resource).set(FakeCluster.key(namespace, name), [{object, key, rev}])
  }

  /** Seeds any object as it is (e.g. a ValidatingWebhookConfiguration), under the current key. */
  seedObject(resource: ApiResource, object: KubeObject): void {
    const {name, namespace} = object.metadata
    if (namespace) this.namespaces.add(namespace)
    this.bucket(resource).set(FakeCluster.key(namespace, name), [{object, key: this.currentKey, rev: ++this.revision}])
  }

  current(resource: ApiResource, namespace: string | undefined, name: string): StoredValue | undefined {
    const history = this.bucket(resource).get(FakeCluster.key(namespace, name))
    const last = history?.at(-1)
    return last && !last.deleted ? last : undefined
  }

  all(resource: ApiResource): StoredValue[] {
    return [...this.bucket(resource).values()].map((h) => h.at(-1)!).filter((v) => !v.deleted)
  }

  /** A client of someone else (a controller, a user) updating an object through the API. */
  externalWrite(
    resource: ApiResource,
    namespace: string | undefined,
    name: string,
    data: Record<string, string>,
  ): void {
    const k = FakeCluster.key(namespace, name)
    const history = this.bucket(resource).get(k)
    const last = history?.at(-1)
    if (!history || !last || last.deleted) throw new Error(`no ${k}`)
    history.push({object: {...last.object, data}, key: this.currentKey, rev: ++this.revision})
  }

  externalDelete(resource: ApiResource, namespace: string | undefined, name: string): void {
    const history = this.bucket(resource).get(FakeCluster.key(namespace, name))!
    history.push({...history.at(-1)!, deleted: true, rev: ++this.revision})
  }

  compact(): void {
    this.compactedRevision = this.revision
  }

  private withRv(value: StoredValue): KubeObject {
    return {...value.object, metadata: {...value.object.metadata, resourceVersion: String(value.rev)}}
  }

  private async enter(ctx: FaultContext): Promise<void> {
    this.calls[ctx.verb]++
    if (this.latencyMs) await new Promise((r) => setTimeout(r, this.latencyMs))
    else await Promise.resolve()
    await this.fault?.(ctx)
  }

  async list(resource: ApiResource, options: ListOptions): Promise<ListPage> {
    await this.enter({verb: 'list', resource, namespace: options.namespace})
    let atRev = this.revision
    const prefix = options.namespace ? `${options.namespace}/` : ''
    let startAt: string | undefined
    if (options.continueToken) {
      // kube's token: {"v":"meta.k8s.io/v1","rv":N,"start":"<key after the list prefix>\0"}; rv -1 = latest
      const token = JSON.parse(Buffer.from(options.continueToken, 'base64').toString()) as {
        v: string
        rv: number
        start: string
      }
      if (token.v !== 'meta.k8s.io/v1' || !token.rv || !token.start)
        throw new KubeApiError(400, 'BadRequest', 'continue key is not valid')
      if (token.rv > 0 && token.rv <= this.compactedRevision) {
        const hint = this.hintOn410 ? encodeToken(-1, token.start) : undefined
        throw new KubeApiError(
          410,
          'Expired',
          'The provided continue parameter is too old to display a consistent list result.',
          undefined,
          hint,
        )
      }
      if (token.rv > 0) atRev = token.rv
      startAt = prefix + token.start
    }
    const keys = [...this.bucket(resource).keys()]
      .filter((k) => k.startsWith(prefix) && (startAt === undefined || k >= startAt))
      .sort()
    const items: KubeObject[] = []
    let last: string | undefined
    let remaining = 0
    for (const k of keys) {
      const value = this.bucket(resource)
        .get(k)!
        .filter((v) => v.rev <= atRev)
        .at(-1)
      if (!value || value.deleted) continue
      if (options.labelSelector && !matches(value.object, options.labelSelector)) continue
      if (options.limit && items.length >= options.limit) {
        remaining++
        continue
      }
      if (this.undecryptable.has(k)) {
        const key = `/registry/${resource.resource}/${k}`
        // kube-apiserver 1.33+ (AllowUnsafeMalformedObjectDeletion on): 500 StorageReadError naming the
        // page's first unreadable key; before: an internal error "unable to transform key".
        if (this.storageReadErrors) {
          throw new KubeApiError(
            500,
            'StorageReadError',
            `failed to read one or more ${resource.resource} from the storage: StorageError: corrupt object, Code: 7, Key: ${key}, ResourceVersion: 0, AdditionalErrorMsg: no matching key was found for the provided AES transformer`,
          )
        }
        throw undecryptableError(`unable to transform key "${key}": `)
      }
      const {apiVersion: _a, kind: _k, ...rest} = this.withRv(value)
      items.push(rest as KubeObject) // list items come without apiVersion/kind
      last = k
    }
    const more = remaining > 0
    return {
      items,
      resourceVersion: String(atRev),
      continueToken: more ? encodeToken(atRev, `${last!.slice(prefix.length)}\u0000`) : undefined,
      remainingItemCount: more && !options.labelSelector ? remaining : undefined,
    }
  }

  async get(resource: ApiResource, name: string, namespace?: string): Promise<KubeObject> {
    // Namespaces (the ones objects were seeded in) answer as kube-apiserver's; not counted in `calls`.
    if (resource.resource === 'namespaces' && resource.group === '') {
      if (this.namespaceFault) return this.namespaceFault(name)
      if (this.namespaces.has(name)) return {apiVersion: 'v1', kind: 'Namespace', metadata: {name}}
      throw new KubeApiError(404, 'NotFound', `namespaces "${name}" not found`, undefined, undefined, undefined, {
        name,
        kind: 'namespaces',
      })
    }
    await this.enter({verb: 'get', resource, name, namespace})
    if (this.undecryptable.has(FakeCluster.key(namespace, name))) throw undecryptableError('')
    const value = this.current(resource, namespace, name)
    if (!value)
      throw new KubeApiError(
        404,
        'NotFound',
        `${resource.resource} "${name}" not found`,
        undefined,
        undefined,
        undefined,
        {name, kind: resource.resource},
      )
    return this.withRv(value)
  }

  async replace(resource: ApiResource, object: KubeObject): Promise<KubeObject> {
    const {name, namespace} = object.metadata
    await this.enter({verb: 'replace', resource, name, namespace, object})
    if (namespace && !this.namespaces.has(namespace))
      throw new KubeApiError(404, 'NotFound', `namespaces "${namespace}" not found`, undefined, undefined, undefined, {
        name: namespace,
        kind: 'namespaces',
      })
    const k = FakeCluster.key(namespace, name)
    const history = this.bucket(resource).get(k)
    const last = history?.at(-1)
    if (!history || !last || last.deleted)
      throw new KubeApiError(404, 'NotFound', `${resource.resource} "${name}" not found`)
    if (object.metadata.resourceVersion !== String(last.rev))
      throw new KubeApiError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${resource.resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      )
    if (object.apiVersion === undefined || object.kind !== resource.kind)
      throw new KubeApiError(400, 'BadRequest', 'missing apiVersion/kind')
    const {resourceVersion: _rv, ...meta} = object.metadata
    const incoming = {...object, metadata: meta}
    const same = canonical(incoming) === canonical(last.object)
    let stored = last
    if (!same || last.key !== this.currentKey) {
      stored = {object: incoming, key: this.currentKey, rev: ++this.revision}
      history.push(stored)
      this.writes.set(k, (this.writes.get(k) ?? 0) + 1)
    }
    await this.after?.({verb: 'replace', resource, name, namespace, object})
    return this.withRv(stored)
  }

  async create(): Promise<KubeObject> {
    throw new Error('not used')
  }

  async delete(): Promise<void> {
    throw new Error('not used')
  }
}

function encodeToken(rv: number, start: string): string {
  return Buffer.from(JSON.stringify({v: 'meta.k8s.io/v1', rv, start})).toString('base64')
}

function undecryptableError(where: string): KubeApiError {
  return new KubeApiError(
    500,
    'InternalError',
    `Internal error occurred: ${where}no matching key was found for the provided AES transformer`,
  )
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  )
}

/** Equality selectors only (`a=b,c!=d`), enough for tests. */
function matches(object: KubeObject, selector: string): boolean {
  const labels = object.metadata.labels ?? {}
  return selector.split(',').every((term) => {
    const [k, v] = term.split(/!?=/)
    return term.includes('!=') ? labels[k!] !== v : labels[k!] === v
  })
}

/** Virtual time: sleeps return at once and advance `now`, so back-off and rate limits cost nothing. */
export class FakeClock {
  t = 0
  readonly sleeps: number[] = []
  now = () => this.t
  sleep = async (ms: number) => {
    this.sleeps.push(ms)
    this.t += Math.max(0, ms)
    await new Promise((r) => setImmediate(r))
  }
}

/** A checkpoint store in memory; `frozen` makes it ignore saves, as a SIGKILL would. */
export class MemoryCheckpointStore {
  readonly location = 'memory://checkpoint'
  saved?: string
  saves = 0
  frozen = false
  async load() {
    return this.saved === undefined ? undefined : JSON.parse(this.saved)
  }
  async save(checkpoint: unknown) {
    if (this.frozen) return
    this.saves++
    this.saved = JSON.stringify(checkpoint)
  }
  async clear() {
    if (!this.frozen) this.saved = undefined
  }
}
