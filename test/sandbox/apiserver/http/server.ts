/**
 * The REST surface kubectl and @kubernetes/client-node use: discovery, core/v1 resources,
 * CRDs and custom resources, health, metrics, and the pods/exec upgrade.
 */
import type {IncomingMessage, ServerResponse} from 'node:http'
import {parse as parseYaml} from 'yaml'
import {decodeEnvelope} from '../proto/codec.js'
import {apiVersionOf, BUILTIN, CRD_RESOURCE, resourceFromCrd, type ResourceInfo} from '../registry.js'
import {parseFieldSelector, parseLabelSelector} from '../storage/selectors.js'
import type {Store} from '../storage/store.js'
import {authenticate, authorize, type UserInfo} from './auth.js'
import {validateUpdate} from './admission.js'
import {apiGroupDocument, apiGroupList, apiResourceList, apiVersions} from './discovery.js'
import {openApiV2Document} from './openapi.js'
import {jsonPatch, mergePatch, strategicMergePatch} from './patch.js'
import {ApiError, errors} from './status.js'
import {tableFor, wantsTable} from './table.js'

type Json = Record<string, any>

export interface HealthCheck {
  name: string
  /** resolves when healthy, rejects with the reason otherwise */
  check(): Promise<void>
}

export interface ServerDeps {
  store: Store
  tokens: Map<string, UserInfo>
  serverAddress: string
  gitVersion: string
  metrics: () => string
  /** extra checks for /healthz and /readyz (KMS, spec §10) */
  kmsChecks: () => HealthCheck[]
  readyChecks: HealthCheck[]
  log: (line: string) => void
}

export interface ResourceRequest {
  info: ResourceInfo
  namespace?: string
  name?: string
  subresource?: string
}

const NON_RESOURCE_PUBLIC = /^\/(healthz|livez|readyz|version)(\/.*)?$/

function send(res: ServerResponse, code: number, body: unknown, contentType = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  res.writeHead(code, {'Content-Type': contentType, 'Cache-Control': 'no-cache, private', 'Content-Length': Buffer.byteLength(text)})
  res.end(text)
}

export function sendError(res: ServerResponse, err: ApiError): void {
  send(res, err.code, err.toStatus())
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** Request bodies: JSON, or the protobuf envelope kubectl's typed clients send (spec §13.2). */
function parseObjectBody(req: IncomingMessage, body: Buffer): any {
  const type = String(req.headers['content-type'] ?? '').split(';')[0].trim()
  if (type === 'application/vnd.kubernetes.protobuf') {
    try {
      return decodeEnvelope(body)
    } catch (err) {
      throw errors.badRequest(`the object provided is unrecognized (${(err as Error).message})`)
    }
  }
  if (type === 'application/yaml') return parseYaml(body.toString('utf8'))
  return parseJsonBody(body)
}

function parseJsonBody(body: Buffer): any {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch (err) {
    throw errors.badRequest(`the object provided is unrecognized (${(err as Error).message})`)
  }
}

/** Validating admission of an update's resulting object (admission.ts). */
function admitted(next: Json): Json {
  validateUpdate(next)
  return next
}

export class ApiServerHandler {
  constructor(private readonly deps: ServerDeps) {}

  /** Custom resources of the CRDs currently in etcd (shared by all stand-ins, so read each time). */
  async customResources(): Promise<ResourceInfo[]> {
    const {items} = await this.deps.store.list(CRD_RESOURCE, undefined, {labels: () => true, fields: () => true, filtered: false})
    return items.map(resourceFromCrd).filter((r): r is ResourceInfo => Boolean(r))
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://localhost')
    try {
      const auth = authenticate(req, this.deps.tokens)
      if ('unauthorized' in auth) throw errors.unauthorized()
      await this.route(req, res, url, auth.user)
    } catch (err) {
      if (err instanceof ApiError) return sendError(res, err)
      this.deps.log(`internal error on ${req.method} ${url.pathname}: ${(err as Error).stack ?? err}`)
      sendError(res, errors.internal((err as Error).message ?? String(err)))
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL, user: UserInfo): Promise<void> {
    const path = url.pathname.replace(/\/+$/, '') || '/'
    if (NON_RESOURCE_PUBLIC.test(path)) return this.nonResource(res, path, url)
    if (user.name === 'system:anonymous' && !path.startsWith('/api')) throw errors.forbiddenPath(user.name, 'get', url.pathname)
    if (path === '/metrics') {
      if (!user.groups.includes('system:masters')) throw errors.forbiddenPath(user.name, 'get', url.pathname)
      return send(res, 200, this.deps.metrics(), 'text/plain; version=0.0.4; charset=utf-8')
    }
    if (path === '/openapi/v2') {
      const doc = openApiV2Document(this.deps.gitVersion)
      res.writeHead(200, {'Content-Type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf', 'Content-Length': doc.length})
      return void res.end(doc)
    }
    if (path.startsWith('/openapi/v3')) throw errors.notFoundPath()
    if (path === '/api') return send(res, 200, apiVersions(this.deps.serverAddress))
    if (path === '/api/v1') return send(res, 200, apiResourceList('v1', BUILTIN))
    if (path === '/apis') return send(res, 200, apiGroupList(await this.customResources()))
    const parts = path.split('/').slice(1)
    let gvParts: number
    let resources: ResourceInfo[]
    if (parts[0] === 'api' && parts[1] === 'v1') {
      gvParts = 2
      resources = BUILTIN
    } else if (parts[0] === 'apis' && parts.length >= 2) {
      const group = parts[1]
      const all = group === CRD_RESOURCE.group ? [CRD_RESOURCE] : (await this.customResources()).filter((r) => r.group === group)
      if (all.length === 0) throw errors.notFoundPath()
      if (parts.length === 2) return send(res, 200, apiGroupDocument(group, all[0].version))
      resources = all.filter((r) => r.version === parts[2])
      if (resources.length === 0) throw errors.notFoundPath()
      if (parts.length === 3) return send(res, 200, apiResourceList(`${group}/${parts[2]}`, resources))
      gvParts = 3
    } else {
      throw errors.notFoundPath()
    }
    const rr = this.parseResourcePath(parts.slice(gvParts), resources)
    return this.resource(req, res, url, user, rr)
  }

  private parseResourcePath(seg: string[], resources: ResourceInfo[]): ResourceRequest {
    const find = (name: string) => {
      const info = resources.find((r) => r.resource === name)
      if (!info) throw errors.notFoundPath()
      return info
    }
    if (seg[0] === 'namespaces' && seg.length >= 3 && !['status', 'finalize'].includes(seg[2])) {
      const info = find(seg[2])
      if (!info.namespaced) throw errors.notFoundPath()
      return {info, namespace: seg[1], name: seg[3], subresource: seg[4]}
    }
    const info = find(seg[0])
    return {info, name: seg[1], subresource: seg[2]}
  }

  private verbOf(method: string, rr: ResourceRequest, url: URL): string {
    const watch = ['true', '1'].includes(url.searchParams.get('watch') ?? '')
    switch (method) {
      case 'GET':
        return rr.name ? 'get' : watch ? 'watch' : 'list'
      case 'POST':
        return 'create'
      case 'PUT':
        return 'update'
      case 'PATCH':
        return 'patch'
      case 'DELETE':
        return rr.name ? 'delete' : 'deletecollection'
      default:
        throw errors.methodNotAllowed()
    }
  }

  private async resource(req: IncomingMessage, res: ServerResponse, url: URL, user: UserInfo, rr: ResourceRequest): Promise<void> {
    const {info} = rr
    if (rr.subresource && !info.subresources.includes(rr.subresource)) throw errors.notFoundPath()
    let verb = this.verbOf(req.method ?? 'GET', rr, url)
    if (rr.subresource === 'exec') verb = req.method === 'GET' ? 'get' : 'create'
    // the namespace of a Namespace object is its own name for authorization
    const namespace = rr.namespace ?? (info.resource === 'namespaces' ? rr.name ?? '' : '')
    if (!authorize(user, {verb, group: info.group, resource: info.resource, subresource: rr.subresource ?? '', namespace, name: rr.name ?? ''}))
      throw errors.forbidden(user.name, verb, info.group, info.resource, rr.subresource ?? '', namespace, rr.name)
    if (rr.subresource === 'exec') throw errors.badRequest('Upgrade request required')
    const store = this.deps.store
    const dryRun = url.searchParams.has('dryRun')
    switch (verb) {
      case 'get':
        return send(res, 200, await store.get(info, rr.namespace, rr.name!))
      case 'list':
      case 'watch': {
        if (verb === 'watch') throw errors.methodNotAllowed()
        return this.list(req, res, url, rr)
      }
      case 'create': {
        if (rr.name) throw errors.methodNotAllowed()
        const body = parseObjectBody(req, await readBody(req))
        this.checkKind(body, info)
        if (info.namespaced) await this.requireNamespace(rr.namespace!)
        const created = dryRun ? body : await store.create(info, body, rr.namespace, (o) => this.onCreate(info, o))
        return send(res, 201, created)
      }
      case 'update': {
        const body = parseObjectBody(req, await readBody(req))
        this.checkKind(body, info)
        if (body?.metadata?.name && body.metadata.name !== rr.name)
          throw errors.badRequest(`the name of the object (${body.metadata.name}) does not match the name on the URL (${rr.name})`)
        if (info.namespaced) await this.requireNamespace(rr.namespace!)
        const updated = await store.update(info, rr.namespace, rr.name!, (current) => admitted(this.applyUpdate(info, rr, current, body)))
        return send(res, 200, updated)
      }
      case 'patch': {
        const type = String(req.headers['content-type'] ?? '').split(';')[0].trim()
        const patch = parseJsonBody(await readBody(req))
        if (info.namespaced) await this.requireNamespace(rr.namespace!)
        const updated = await store.update(info, rr.namespace, rr.name!, (current) => {
          let next: Json
          if (type === 'application/merge-patch+json') next = mergePatch(current, patch)
          else if (type === 'application/strategic-merge-patch+json') {
            if (info.encoding === 'json') throw errors.unsupportedMediaType(type)
            next = strategicMergePatch(current, patch)
          } else if (type === 'application/json-patch+json') next = jsonPatch(current, patch)
          else throw errors.unsupportedMediaType(type)
          return admitted(this.applyUpdate(info, rr, current, next))
        })
        return send(res, 200, updated)
      }
      case 'delete': {
        let opts: Json = {}
        const body = await readBody(req)
        if (body.length) opts = parseJsonBody(body)
        const deleted = await store.delete(info, rr.namespace, rr.name!, opts?.preconditions)
        // The namespace controller's work, done at once: a deleted namespace leaves no objects behind
        // (left in etcd they would be orphans that status --scan reports, spec §12).
        if (info.resource === 'namespaces') {
          const namespaced = [...BUILTIN, ...(await this.customResources())].filter((r) => r.namespaced)
          await store.deletePrefixes(namespaced.map((r) => store.listPrefix(r, rr.name!)))
        }
        if (info.resource === 'pods' || info.resource === 'namespaces' || info.encoding === 'json') return send(res, 200, deleted)
        return send(res, 200, {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Success',
          details: {name: rr.name, ...(info.group ? {group: info.group} : {}), kind: info.resource, uid: deleted.metadata?.uid},
        })
      }
      default:
        throw errors.methodNotAllowed()
    }
  }

  private checkKind(body: Json, info: ResourceInfo): void {
    if (!body || typeof body !== 'object') throw errors.badRequest('the object provided is unrecognized')
    if (body.kind && body.kind !== info.kind)
      throw errors.badRequest(`the API version in the data (${body.apiVersion}) does not match the expected API version (${apiVersionOf(info)})`)
  }

  private async requireNamespace(namespace: string): Promise<void> {
    const ns = BUILTIN.find((r) => r.resource === 'namespaces')!
    try {
      await this.deps.store.get(ns, undefined, namespace)
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) throw errors.notFound('', 'namespaces', namespace)
      throw err
    }
  }

  /** What the registries' PrepareForCreate strategies set. */
  private onCreate(info: ResourceInfo, obj: Json): Json {
    if (info.resource === 'secrets') {
      obj.type = obj.type || 'Opaque'
      if (obj.stringData) {
        obj.data = {...(obj.data ?? {})}
        for (const [k, v] of Object.entries(obj.stringData)) obj.data[k] = Buffer.from(String(v)).toString('base64')
        delete obj.stringData
      }
    }
    if (info.resource === 'namespaces') {
      obj.spec = {finalizers: ['kubernetes'], ...(obj.spec ?? {})}
      obj.status = {phase: 'Active'}
    }
    if (info.resource === 'pods') obj.status = {phase: 'Pending', ...(obj.status ?? {})}
    if (info === CRD_RESOURCE) {
      obj.status = {
        acceptedNames: obj.spec?.names ?? {},
        conditions: [
          {type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found', lastTransitionTime: obj.metadata.creationTimestamp},
          {type: 'Established', status: 'True', reason: 'InitialNamesAccepted', message: 'the initial names have been accepted', lastTransitionTime: obj.metadata.creationTimestamp},
        ],
        storedVersions: (obj.spec?.versions ?? []).filter((v: Json) => v.storage).map((v: Json) => v.name),
      }
    }
    return obj
  }

  /** PrepareForUpdate: resourceVersion precondition, server-owned metadata kept, status/spec split. */
  private applyUpdate(info: ResourceInfo, rr: ResourceRequest, current: Json, body: Json): Json {
    const name = rr.name!
    const rv = body?.metadata?.resourceVersion
    if (rv && rv !== current.metadata.resourceVersion) throw errors.conflict(info.group, info.resource, name)
    if (body?.metadata?.uid && body.metadata.uid !== current.metadata.uid)
      throw errors.conflict(
        info.group,
        info.resource,
        name,
        `Precondition failed: UID in precondition: ${body.metadata.uid}, UID in object meta: ${current.metadata.uid}`,
      )
    let next: Json = structuredClone(body)
    if (rr.subresource === 'status') next = {...current, status: body.status}
    else if (info.subresources.includes('status') && info.resource !== 'namespaces') next.status = current.status
    next.metadata = {...(next.metadata ?? {})}
    for (const field of ['uid', 'creationTimestamp', 'namespace', 'name', 'generation', 'deletionTimestamp'])
      if (current.metadata[field] !== undefined) next.metadata[field] = current.metadata[field]
      else delete next.metadata[field]
    delete next.metadata.managedFields
    if (info.resource === 'secrets') {
      next.type = next.type || current.type || 'Opaque'
      if (next.stringData) {
        next.data = {...(next.data ?? {})}
        for (const [k, v] of Object.entries(next.stringData)) next.data[k] = Buffer.from(String(v)).toString('base64')
        delete next.stringData
      }
    }
    if (info.encoding === 'json' && info.group !== '' && info !== CRD_RESOURCE) {
      const specChanged = JSON.stringify(next.spec) !== JSON.stringify(current.spec)
      if (specChanged && rr.subresource !== 'status') next.metadata.generation = (current.metadata.generation ?? 1) + 1
    }
    if (info === CRD_RESOURCE && rr.subresource !== 'status') next.status = current.status
    return next
  }

  private async list(req: IncomingMessage, res: ServerResponse, url: URL, rr: ResourceRequest): Promise<void> {
    const {info} = rr
    const q = url.searchParams
    const labelText = q.get('labelSelector')
    const fieldText = q.get('fieldSelector')
    const limit = q.get('limit') ? Number(q.get('limit')) : undefined
    const result = await this.deps.store.list(info, rr.namespace, {
      limit,
      continueToken: q.get('continue') ?? undefined,
      labels: parseLabelSelector(labelText),
      fields: parseFieldSelector(fieldText, info.resource, info.kind, apiVersionOf(info)),
      filtered: Boolean(labelText || fieldText),
    })
    const metadata: Json = {resourceVersion: result.resourceVersion}
    if (result.continueToken) metadata.continue = result.continueToken
    if (result.remainingItemCount !== undefined) metadata.remainingItemCount = result.remainingItemCount
    const typed = info.group === '' || info === CRD_RESOURCE
    const items = result.items.map((item) => {
      if (!typed) return item
      const {apiVersion: _a, kind: _k, ...rest} = item
      return rest
    })
    if (wantsTable(req.headers.accept)) return send(res, 200, tableFor(info, result.items, metadata))
    send(res, 200, {kind: info.listKind, apiVersion: apiVersionOf(info), metadata, items})
  }

  private async nonResource(res: ServerResponse, path: string, url: URL): Promise<void> {
    if (path === '/version') {
      return send(res, 200, {
        major: '1',
        minor: '34',
        emulationMajor: '1',
        emulationMinor: '34',
        minCompatibilityMajor: '1',
        minCompatibilityMinor: '33',
        gitVersion: this.deps.gitVersion,
        gitCommit: '0000000000000000000000000000000000000000',
        gitTreeState: 'clean',
        buildDate: '2026-01-01T00:00:00Z',
        goVersion: 'go1.24.0',
        compiler: 'gc',
        platform: 'linux/amd64',
      })
    }
    const [, endpoint, single] = path.match(/^\/(healthz|livez|readyz)(?:\/(.+))?$/)!
    const checks: HealthCheck[] = [
      {name: 'ping', check: async () => {}},
      {name: 'log', check: async () => {}},
      ...(endpoint === 'livez' ? [] : this.deps.readyChecks),
      ...(endpoint === 'livez' ? [] : this.deps.kmsChecks()),
    ]
    if (single) {
      const c = checks.find((x) => x.name === single)
      if (!c) return send(res, 404, '404 page not found\n', 'text/plain; charset=utf-8')
      try {
        await c.check()
        return send(res, 200, 'ok', 'text/plain; charset=utf-8')
      } catch (err) {
        return send(res, 500, `internal server error: ${(err as Error).message}\n`, 'text/plain; charset=utf-8')
      }
    }
    const lines: string[] = []
    let failed = false
    for (const c of checks) {
      try {
        await c.check()
        lines.push(`[+]${c.name} ok`)
      } catch (err) {
        failed = true
        lines.push(`[-]${c.name} failed: reason withheld`)
        this.deps.log(`${endpoint} check failed: ${c.name}: ${(err as Error).message}`)
      }
    }
    const verbose = url.searchParams.has('verbose')
    if (failed) return send(res, 500, `${lines.join('\n')}\n${endpoint} check failed\n`, 'text/plain; charset=utf-8')
    return send(res, 200, verbose ? `${lines.join('\n')}\n${endpoint} check passed\n` : 'ok', 'text/plain; charset=utf-8')
  }
}
