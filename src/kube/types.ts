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
  /** ListMeta.remainingItemCount: how many items follow this page, when the server says (no selectors). */
  remainingItemCount?: number
}

/** Status.details of a failed request: which object the error is about (e.g. kind "namespaces"). */
export interface KubeErrorDetails {
  name?: string
  group?: string
  kind?: string
}

/**
 * An API error with the fields operations branch on; `status` is the HTTP code, or 0 when no HTTP
 * response arrived at all (connection refused/reset, TLS or socket failure, timeout): such errors
 * are transient for the operations (an apiserver restarting) and are retried with back-off.
 */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly retryAfterSeconds?: number,
    /** For 410 Gone on a list: the fresh continue token the server offered, if any. */
    readonly continueHint?: string,
    /** Status.details, when the server sent them; a 404 whose details.kind is "namespaces" means the namespace is gone. */
    readonly details?: KubeErrorDetails,
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
