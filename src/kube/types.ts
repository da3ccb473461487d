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
  /** From discovery when known: singular name, short names and verbs, for `secret/name`-style arguments. */
  singularName?: string
  shortNames?: string[]
  verbs?: string[]
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
  /**
   * Ask for metadata only (PartialObjectMetadataList): names and resourceVersions without the
   * objects' bodies, for counting. A server that cannot answer so sends the full list instead.
   */
  metadataOnly?: boolean
  /**
   * Prefer Kubernetes' protobuf encoding, as client-go does for built-in types: cheaper for the
   * apiserver to encode and decode than JSON. A resource the server cannot serve so (custom
   * resources: apiextensions-apiserver serves them in JSON only) is answered in JSON. Items listed
   * in protobuf carry only apiVersion, kind and metadata name/namespace/uid/resourceVersion here;
   * replace() writes such an item back as the bytes it was listed as.
   */
  protobuf?: boolean
}

export interface ListPage {
  items: KubeObject[]
  /** Empty or undefined when the list is complete. */
  continueToken?: string
  resourceVersion?: string
  /** ListMeta.remainingItemCount: how many items follow this page, when the server says (no selectors). */
  remainingItemCount?: number
  /** How the server answered (protobuf only when asked for with ListOptions.protobuf); undefined: JSON. */
  encoding?: 'json' | 'protobuf'
}

/** Status.details of a failed request: which object the error is about (e.g. kind "namespaces"). */
export interface KubeErrorDetails {
  name?: string
  group?: string
  kind?: string
  /**
   * Status.details.causes. A list that met values the server cannot read answers reason
   * StorageReadError with one cause per value, its etcd key in `field` (KEP-3926).
   */
  causes?: Array<{reason?: string; field?: string; message?: string}>
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
    /** What was being done, e.g. `list secrets`, and against which server; used for hints. */
    readonly where?: {verb?: string; resource?: string; namespace?: string; name?: string; server?: string},
    /** Status.details, when the server sent them; a 404 whose details.kind is "namespaces" means the namespace is gone. */
    readonly details?: KubeErrorDetails,
  ) {
    super(message)
    this.name = 'KubeApiError'
  }
}

export interface ObjectClient {
  list(resource: ApiResource, options: ListOptions): Promise<ListPage>
  /** protobuf: as ListOptions.protobuf. */
  get(resource: ApiResource, name: string, namespace?: string, options?: {protobuf?: boolean}): Promise<KubeObject>
  create(resource: ApiResource, object: KubeObject): Promise<KubeObject>
  /**
   * PUT with the object's own metadata.resourceVersion as precondition. An object listed or read in
   * protobuf is sent as its bytes, unchanged, and the answer is read in protobuf too.
   */
  replace(resource: ApiResource, object: KubeObject): Promise<KubeObject>
  delete(resource: ApiResource, name: string, namespace?: string, options?: DeleteOptions): Promise<void>
}

export interface DeleteOptions {
  /**
   * DeleteOptions.ignoreStoreReadErrorWithClusterBreakingPotential (KEP-3926): the server deletes an
   * object whose stored value it cannot read, skipping finalizers, admission and preconditions; it
   * refuses (409) an object it can read. Needs the verb unsafe-delete-ignore-read-errors.
   */
  ignoreStoreReadErrorWithClusterBreakingPotential?: boolean
}

/** One question for a SelfSubjectAccessReview: may the current user do `verb` on this resource? */
export interface AccessCheck {
  verb: string
  group: string
  resource: string
  /** Omitted: in every namespace (or a cluster-scoped resource). */
  namespace?: string
}

/** What the server says about the current user (SelfSubjectAccessReview, SelfSubjectReview). */
export interface AccessReviewer {
  canI(check: AccessCheck): Promise<{allowed: boolean; reason?: string}>
  /** The user name the server authenticated, when it answers SelfSubjectReview. */
  whoAmI(): Promise<string | undefined>
}

/** The kubeconfig context in effect after --kubeconfig, KUBECONFIG and --context (kubectl's rules). */
export interface KubeContextInfo {
  contextName: string
  cluster: string
  user: string
  /** The API server URL of the context's cluster. */
  server: string
  /** The context's namespace, or `default` as kubectl picks it. */
  namespace: string
  /** The kubeconfig files that were read, in precedence order. */
  files: string[]
}

export interface PodRef {
  namespace: string
  name: string
  container?: string
}

export interface ExecResult {
  stdout: Buffer
  stderr: Buffer
  /** The command's exit code, from the exec Status (v4 channel protocol). */
  code: number
}

/** pods/exec: runs argv (no shell) in a container and captures its output. */
export interface PodExecutor {
  exec(pod: PodRef, argv: string[], options?: {timeoutMs?: number}): Promise<ExecResult>
}

/** API discovery: every resource the server serves (no subresources). */
export interface ResourceDiscovery {
  resources(): Promise<ApiResource[]>
}

export interface RawResponse {
  status: number
  body: string
}

/**
 * Raw GETs of non-resource paths (`/readyz?verbose`, `/livez`, `/metrics`), either through the
 * kubeconfig's server or against one apiserver endpoint (`host:port`), with the same credentials.
 * Never throws for HTTP status codes; network failures are a KubeApiError with status 0.
 */
export interface EndpointProbe {
  get(path: string, options?: {endpoint?: string; timeoutMs?: number}): Promise<RawResponse>
}

/** Everything the operations use from one cluster. */
export interface KubeCluster {
  context: KubeContextInfo
  objects: ObjectClient
  discovery: ResourceDiscovery
  exec: PodExecutor
  probe: EndpointProbe
  access: AccessReviewer
  close(): void
}

/** TLS and auth options for connections to the API server (KubeHttp, pods/exec WebSockets). */
export interface TlsMaterial {
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
  rejectUnauthorized?: boolean
  servername?: string
  headers: Record<string, string>
  auth?: string
}
