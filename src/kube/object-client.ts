import {apiErrorFromResponse, type HttpRequest, type HttpResponse, type KubeHttp} from './http.js'
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

/** One page of a list, whichever encoding it is asked in. */
function listRequest(resource: ApiResource, options: ListOptions): HttpRequest {
  return {
    method: 'GET',
    path: resourcePath(resource, options.namespace),
    query: {
      labelSelector: options.labelSelector,
      fieldSelector: options.fieldSelector,
      limit: options.limit,
      continue: options.continueToken,
    },
    what: {verb: 'list', resource: describe(resource), namespace: options.namespace},
  }
}

/** Lists drop apiVersion/kind from items; put them back so an item can be replaced as is. */
function withType(resource: ApiResource, object: KubeObject): KubeObject {
  return {...object, apiVersion: object.apiVersion ?? apiVersionOf(resource), kind: object.kind ?? resource.kind}
}

/** PartialObjectMetadataList, with plain JSON as the fallback kube-apiserver picks when it cannot convert. */
const METADATA_ONLY = 'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json'

/**
 * Protobuf first, JSON for what the server cannot encode so (custom resources), as kubectl and
 * client-go ask (k8s.io/client-go/rest: ContentConfig.AcceptContentTypes).
 */
const PROTOBUF_OR_JSON = 'application/vnd.kubernetes.protobuf, application/json'

/** An object's bytes as the server sent them in protobuf (own property, kept by object spread). */
const ENCODED = Symbol('protobuf bytes')
type Encoded = KubeObject & {[ENCODED]?: Buffer}

type Protobuf = typeof import('./protobuf.js')
let protobufModule: Promise<Protobuf> | undefined
/** protobufjs is loaded on the first protobuf request only: commands that never send one skip it. */
const loadProtobuf = () => (protobufModule ??= import('./protobuf.js'))

const isProtobuf = (response: HttpResponse) =>
  String(response.headers['content-type'] ?? '').startsWith('application/vnd.kubernetes.protobuf')

/** ObjectClient for any resource, built-in or custom, over plain REST paths. */
export class RestObjectClient implements ObjectClient {
  constructor(private readonly http: KubeHttp) {}

  /**
   * A request that prefers protobuf: the answer's envelope, or undefined when the server answered
   * JSON (returned as `json`). Errors are read from protobuf or JSON as they come.
   */
  private async protobufOrJson(
    request: HttpRequest,
  ): Promise<{pb: Protobuf; envelope: import('./protobuf.js').Envelope} | {json: unknown}> {
    const pb = await loadProtobuf()
    const response = await this.http.send({...request, accept: PROTOBUF_OR_JSON})
    const where = {...request.what, server: this.http.server}
    if (response.status < 200 || response.status >= 300) {
      if (!isProtobuf(response)) throw apiErrorFromResponse(response, where)
      let status: ReturnType<Protobuf['decodeStatus']> | undefined
      try {
        status = pb.decodeStatus(pb.unwrap(response.body).raw)
      } catch {
        status = undefined
      }
      throw apiErrorFromResponse(response, where, status ?? {})
    }
    if (!isProtobuf(response))
      return {json: response.body.length === 0 ? {} : JSON.parse(response.body.toString('utf8'))}
    return {pb, envelope: pb.unwrap(response.body)}
  }

  /** One object read from protobuf: its type, metadata, and its bytes to write back. */
  private static encodedObject(
    resource: ApiResource,
    meta: import('./protobuf.js').ObjectMetaFields,
    raw: Buffer,
  ): KubeObject {
    const object: Encoded = {apiVersion: apiVersionOf(resource), kind: resource.kind, metadata: {...meta}}
    object[ENCODED] = raw
    return object
  }

  async list(resource: ApiResource, options: ListOptions = {}): Promise<ListPage> {
    if (options.protobuf && !options.metadataOnly) return this.listPreferringProtobuf(resource, options)
    const list = await this.http.json<{
      items?: KubeObject[]
      metadata?: {continue?: string; resourceVersion?: string; remainingItemCount?: number}
    }>({
      ...listRequest(resource, options),
      accept: options.metadataOnly ? METADATA_ONLY : undefined,
    })
    return {
      items: (list.items ?? []).map((item) => withType(resource, item)),
      continueToken: list.metadata?.continue || undefined,
      resourceVersion: list.metadata?.resourceVersion,
      remainingItemCount: list.metadata?.remainingItemCount,
      encoding: 'json',
    }
  }

  private async listPreferringProtobuf(resource: ApiResource, options: ListOptions): Promise<ListPage> {
    const answer = await this.protobufOrJson(listRequest(resource, options))
    if ('json' in answer) {
      const list = answer.json as {
        items?: KubeObject[]
        metadata?: {continue?: string; resourceVersion?: string; remainingItemCount?: number}
      }
      return {
        items: (list.items ?? []).map((item) => withType(resource, item)),
        continueToken: list.metadata?.continue || undefined,
        resourceVersion: list.metadata?.resourceVersion,
        remainingItemCount: list.metadata?.remainingItemCount,
        encoding: 'json',
      }
    }
    const list = answer.pb.decodeList(answer.envelope.raw)
    return {
      items: list.items.map(({raw, ...meta}) => RestObjectClient.encodedObject(resource, meta, raw)),
      continueToken: list.continue || undefined,
      resourceVersion: list.resourceVersion,
      remainingItemCount: list.remainingItemCount,
      encoding: 'protobuf',
    }
  }

  /** GET or PUT of one object preferring protobuf; a JSON answer is returned as JSON. */
  private async oneObject(resource: ApiResource, request: HttpRequest): Promise<KubeObject> {
    const answer = await this.protobufOrJson(request)
    if ('json' in answer) return withType(resource, answer.json as KubeObject)
    const raw = answer.envelope.raw
    return RestObjectClient.encodedObject(resource, answer.pb.objectMeta(raw), raw)
  }

  async get(
    resource: ApiResource,
    name: string,
    namespace?: string,
    options: {protobuf?: boolean} = {},
  ): Promise<KubeObject> {
    const what = {verb: 'get', resource: describe(resource), namespace, name}
    if (options.protobuf)
      return this.oneObject(resource, {method: 'GET', path: resourcePath(resource, namespace, name), what})
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
    const encoded = (object as Encoded)[ENCODED]
    if (encoded) {
      // The listed bytes, unchanged: their metadata.resourceVersion is the precondition.
      const pb = await loadProtobuf()
      return this.oneObject(resource, {
        method: 'PUT',
        path: resourcePath(resource, namespace, name),
        body: pb.wrap({apiVersion: apiVersionOf(resource), kind: resource.kind}, encoded),
        contentType: pb.PROTOBUF_MEDIA_TYPE,
        what: {verb: 'update', resource: describe(resource), namespace, name},
      })
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
