import type {KubeHttp} from './http.js'
import type {ApiResource, DeleteOptions, KubeObject, ListOptions, ListPage, ObjectClient} from './types.js'

/** `v1` for the core group, `group/version` otherwise. */
export function apiVersionOf(resource: ApiResource): string {
  return resource.group ? `${resource.group}/${resource.version}` : resource.version
}

/** The REST path of a resource collection or object (namespace omitted = all namespaces / cluster scope). */
export function resourcePath(resource: ApiResource, namespace?: string, name?: string): string {
  const root = resource.group ? `/apis/${resource.group}/${resource.version}` : `/api/${resource.version}`
  const scope = resource.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''
  const object = name === undefined ? '' : `/${encodeURIComponent(name)}`
  return `${root}${scope}/${resource.resource}${object}`
}

function describe(resource: ApiResource): string {
  return resource.group ? `${resource.resource}.${resource.group}` : resource.resource
}

/** Lists drop apiVersion/kind from items; put them back so an item can be replaced as is. */
function withType(resource: ApiResource, object: KubeObject): KubeObject {
  return {...object, apiVersion: object.apiVersion ?? apiVersionOf(resource), kind: object.kind ?? resource.kind}
}

/** PartialObjectMetadataList, with plain JSON as the fallback kube-apiserver picks when it cannot convert. */
const METADATA_ONLY = 'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json'

/** ObjectClient for any resource, built-in or custom, over plain REST paths. */
export class RestObjectClient implements ObjectClient {
  constructor(private readonly http: KubeHttp) {}

  async list(resource: ApiResource, options: ListOptions = {}): Promise<ListPage> {
    const list = await this.http.json<{
      items?: KubeObject[]
      metadata?: {continue?: string; resourceVersion?: string; remainingItemCount?: number}
    }>({
      method: 'GET',
      path: resourcePath(resource, options.namespace),
      accept: options.metadataOnly ? METADATA_ONLY : undefined,
      query: {
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
        limit: options.limit,
        continue: options.continueToken,
      },
      what: {verb: 'list', resource: describe(resource), namespace: options.namespace},
    })
    return {
      items: (list.items ?? []).map((item) => withType(resource, item)),
      continueToken: list.metadata?.continue || undefined,
      resourceVersion: list.metadata?.resourceVersion,
      remainingItemCount: list.metadata?.remainingItemCount,
    }
  }

  async get(resource: ApiResource, name: string, namespace?: string): Promise<KubeObject> {
    const object = await this.http.json<KubeObject>({
      method: 'GET',
      path: resourcePath(resource, namespace, name),
      what: {verb: 'get', resource: describe(resource), namespace, name},
    })
    return withType(resource, object)
  }

  async create(resource: ApiResource, object: KubeObject): Promise<KubeObject> {
    const namespace = object.metadata.namespace
    const created = await this.http.json<KubeObject>({
      method: 'POST',
      path: resourcePath(resource, namespace),
      body: withType(resource, object),
      what: {verb: 'create', resource: describe(resource), namespace, name: object.metadata.name},
    })
    return withType(resource, created)
  }

  async replace(resource: ApiResource, object: KubeObject): Promise<KubeObject> {
    const {name, namespace, resourceVersion} = object.metadata
    if (!resourceVersion) {
      // A replace without a precondition could overwrite a newer write (docs/architecture.md §4): refuse.
      throw new Error(`replace ${describe(resource)}/${name}: the object carries no metadata.resourceVersion`)
    }
    const replaced = await this.http.json<KubeObject>({
      method: 'PUT',
      path: resourcePath(resource, namespace, name),
      body: withType(resource, object),
      what: {verb: 'update', resource: describe(resource), namespace, name},
    })
    return withType(resource, replaced)
  }

  async delete(resource: ApiResource, name: string, namespace?: string, options?: DeleteOptions): Promise<void> {
    await this.http.json<unknown>({
      method: 'DELETE',
      path: resourcePath(resource, namespace, name),
      body: options?.ignoreStoreReadErrorWithClusterBreakingPotential
        ? {kind: 'DeleteOptions', apiVersion: 'v1', ignoreStoreReadErrorWithClusterBreakingPotential: true}
        : undefined,
      what: {verb: 'delete', resource: describe(resource), namespace, name},
    })
  }
}
