/**
 * What the operations need from the Kubernetes API, as plain types. src/kube/ is the only place
 * that imports @kubernetes/client-node; it implements these interfaces and translates its errors
 * into KubeApiError, so operations and tests never see the library.
 */
export interface ApiResource {
  group: string
  version: string
  /** plural, e.g. "secrets" */
  resource: string
  kind: string
  namespaced: boolean
}

export interface ObjectMeta {
  name: string
  namespace?: string
  uid?: string
  resourceVersion?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
  [field: string]: unknown
}

export interface KubeObject {
  apiVersion: string
  kind: string
  metadata: ObjectMeta
  [field: string]: unknown
}

export interface ListOptions {
  namespace?: string
  labelSelector?: string
  fieldSelector?: string
  limit?: number
  continueToken?: string
}

export interface ListPage {
  items: KubeObject[]
  /** Empty or undefined when the list is complete. */
  continueToken?: string
  resourceVersion?: string
}

/** An API error with the fields operations branch on; `status` is the HTTP code. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly retryAfterSeconds?: number,
    /** For 410 Gone on a list: the fresh continue token the server offered, if any. */
    readonly continueHint?: string,
  ) {
    super(message)
    this.name = 'KubeApiError'
  }
}

export interface ObjectClient {
  list(resource: ApiResource, options: ListOptions): Promise<ListPage>
  get(resource: ApiResource, name: string, namespace?: string): Promise<KubeObject>
  create(resource: ApiResource, object: KubeObject): Promise<KubeObject>
  /** PUT with the object's own metadata.resourceVersion as precondition. */
  replace(resource: ApiResource, object: KubeObject): Promise<KubeObject>
  delete(resource: ApiResource, name: string, namespace?: string): Promise<void>
}
