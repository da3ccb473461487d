import {
  type ApiResource,
  KubeApiError,
  type KubeObject,
  type ListOptions,
  type ListPage,
  type ObjectClient,
  type ResourceDiscovery,
} from '../../../src/kube/types.js'
import {CONFIGMAPS, SECRETS} from '../helpers/fake-cluster.js'

export const migrationsResource = (version = 'v1'): ApiResource => ({
  group: 'storagemigration.k8s.io',
  version,
  resource: 'storageversionmigrations',
  kind: 'StorageVersionMigration',
  namespaced: false,
})

interface Stored {
  namespace: string
  name: string
  rv: number
  /** Not under the current write key: the migrator's patch makes the apiserver write it. */
  stale: boolean
}

interface Migration {
  object: KubeObject
  /** GETs seen so far: the controller acts on a schedule of GETs, not of time. */
  polls: number
}

/**
 * A small cluster with kube-controller-manager's storage-version migrator in it, behind the
 * ObjectClient and ResourceDiscovery interfaces. Each GET of a migration moves the controller one
 * step: `pendingPolls` GETs without conditions, one Running halfway (with its "N/M objects not
 * yet migrated" message and status.resourceVersion), then Succeeded (stale objects get a new
 * resourceVersion) or, for the resources in `failing`, Failed with the controller's texts.
 */
export class FakeMigrator implements ObjectClient, ResourceDiscovery {
  /** null: the API is not served at all. */
  servedVersion: string | null = 'v1'
  pendingPolls = 2
  failing = new Set<string>()
  readonly migrations = new Map<string, Migration>()
  readonly creates: KubeObject[] = []
  private readonly objects = new Map<string, Stored[]>()
  private rv = 100

  seed(resource: ApiResource, count: number, stale: number, namespaces = ['alpha', 'beta']): void {
    const list = this.objects.get(resource.resource) ?? []
    for (let i = 0; i < count; i++)
      list.push({namespace: namespaces[i % namespaces.length]!, name: `o-${i}`, rv: ++this.rv, stale: i < stale})
    this.objects.set(resource.resource, list)
  }

  migrationsApi(): ApiResource {
    return migrationsResource(this.servedVersion ?? 'v1')
  }

  stale(resource: ApiResource): number {
    return (this.objects.get(resource.resource) ?? []).filter((o) => o.stale).length
  }

  async resources(): Promise<ApiResource[]> {
    return [SECRETS, CONFIGMAPS, ...(this.servedVersion ? [migrationsResource(this.servedVersion)] : [])]
  }

  async list(resource: ApiResource, options: ListOptions): Promise<ListPage> {
    const all = this.objects.get(resource.resource) ?? []
    const start = Number(options.continueToken ?? 0)
    const end = options.limit ? start + options.limit : all.length
    const items = all.slice(start, end).map((o) => ({
      apiVersion: 'meta.k8s.io/v1',
      kind: 'PartialObjectMetadata',
      metadata: {namespace: o.namespace, name: o.name, resourceVersion: String(o.rv)},
    }))
    const more = end < all.length
    return {
      items,
      continueToken: more ? String(end) : undefined,
      remainingItemCount: more ? all.length - end : undefined,
      resourceVersion: String(this.rv),
    }
  }

  async get(resource: ApiResource, name: string): Promise<KubeObject> {
    const m = this.migrations.get(name)
    if (resource.resource !== 'storageversionmigrations' || !m)
      throw new KubeApiError(404, 'NotFound', `${resource.resource} "${name}" not found`)
    m.polls++
    this.step(m)
    return structuredClone(m.object)
  }

  async create(resource: ApiResource, object: KubeObject): Promise<KubeObject> {
    if (resource.resource !== 'storageversionmigrations') throw new Error('the fake only creates migrations')
    const name = object.metadata.name
    if (this.migrations.has(name))
      throw new KubeApiError(409, 'AlreadyExists', `storageversionmigrations "${name}" already exists`)
    this.creates.push(structuredClone(object))
    this.migrations.set(name, {object: {...structuredClone(object), status: {}}, polls: 0})
    return object
  }

  async replace(): Promise<KubeObject> {
    throw new Error('the svm engine never replaces objects')
  }

  async delete(): Promise<void> {
    throw new Error('the svm engine never deletes objects')
  }

  private step(m: Migration): void {
    const status = m.object.status as {conditions?: object[]; resourceVersion?: string}
    const target = (m.object.spec as {resource: {resource: string}}).resource.resource
    const objects = this.objects.get(target) ?? []
    const running = (message: string) => ({type: 'Running', status: 'True', reason: 'MigrationRunning', message})
    if (!status.conditions?.length) {
      if (m.polls <= this.pendingPolls) return
      status.resourceVersion = String(this.rv)
      const left = Math.ceil(objects.length / 2)
      status.conditions = [running(`The migration is running, ${left}/${objects.length} objects not yet migrated`)]
      return
    }
    if (status.conditions.some((c) => (c as {type: string}).type !== 'Running')) return
    if (this.failing.has(target)) {
      status.conditions = [
        running('The migration is running'),
        {
          type: 'Failed',
          status: 'True',
          reason: 'StorageVersionMigrationFailed',
          message: `2/${objects.length} not yet migrated. migration encountered unhandled error: admission webhook "deny.example" denied the request`,
        },
      ]
      return
    }
    for (const o of objects)
      if (o.stale) {
        o.stale = false
        o.rv = ++this.rv
      }
    status.conditions = [
      running(`The migration is running, ${objects.length} objects verified migrated`),
      {type: 'Succeeded', status: 'True', reason: 'StorageVersionMigrationSucceeded', message: 'Migration completed'},
    ]
  }
}
