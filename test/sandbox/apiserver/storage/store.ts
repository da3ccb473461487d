/**
 * Objects in etcd exactly as kube-apiserver keeps them: keys of spec §12, values serialized as
 * spec §13 and passed through the resource's transformer (spec §2–§4), resourceVersion = etcd
 * mod revision, no-op updates skipped unless the stored value is stale (spec §4.2).
 */
import {randomUUID} from 'node:crypto'
import {decodeEnvelope, encodeEnvelope, isProtobufValue} from '../proto/codec.js'
import {goJson} from '../proto/go-json.js'
import {ApiError, errors} from '../http/status.js'
import {apiVersionOf, type ResourceInfo} from '../registry.js'
import {type Matcher} from './selectors.js'
import {TransformFailure, type TransformerRegistry} from './transformer.js'

type Json = Record<string, any>

/** The slice of etcd3's KVClient the store uses (a test may pass another implementation). */
export interface KvClient {
  range(req: Json): Promise<any>
  txn(req: Json): Promise<any>
}

const CMP_EQUAL = 0
const TARGET_CREATE = 1
const TARGET_MOD = 2

const CONTINUE_EXPIRED =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.'
const CONTINUE_INCONSISTENT =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue value from this response.'

export interface ListOptions {
  limit?: number
  continueToken?: string
  labels: Matcher
  fields: Matcher
  /** true when a selector filters the list (no remainingItemCount then) */
  filtered: boolean
}

export interface ListResult {
  items: Json[]
  resourceVersion: string
  continueToken?: string
  remainingItemCount?: number
}

export type Mutation = (current: Json) => Json | Promise<Json>

function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix)
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++
      return end.subarray(0, i + 1)
    }
  }
  return Buffer.from([0])
}

function isCompacted(err: unknown): boolean {
  return /required revision has been compacted/.test(String((err as Error)?.message ?? err))
}

/** Kubernetes' continue token: base64 of {"v":"meta.k8s.io/v1","rv":N,"start":"<key after prefix>"}. */
export function encodeContinue(keyAfterPrefix: string, rv: number): string {
  return Buffer.from(JSON.stringify({v: 'meta.k8s.io/v1', rv, start: keyAfterPrefix})).toString('base64')
}

export function decodeContinue(token: string): {rv: number; start: string} {
  let parsed: any
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64').toString('utf8'))
  } catch {
    throw errors.badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)')
  }
  if (parsed?.v !== 'meta.k8s.io/v1') throw errors.badRequest('continue key is not valid: server does not recognize this encoded key')
  if (typeof parsed.start !== 'string' || parsed.start.length === 0 || parsed.start.includes('..'))
    throw errors.badRequest('continue key is not valid: encoded start key is invalid')
  if (parsed.rv === 0 || typeof parsed.rv !== 'number')
    throw errors.badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)')
  return {rv: parsed.rv, start: parsed.start}
}

export class Store {
  private readonly root: string

  constructor(
    private readonly kv: KvClient,
    etcdPrefix: string,
    private readonly transformers: TransformerRegistry,
    private readonly mediaType: string = 'application/vnd.kubernetes.protobuf',
    private readonly onTransformError: (info: ResourceInfo, key: string, err: Error) => void = () => {},
  ) {
    // spec §12.1: joined onto "/" with any trailing slash removed
    this.root = ('/' + etcdPrefix).replace(/\/+/g, '/').replace(/\/$/, '')
  }

  key(info: ResourceInfo, namespace: string | undefined, name: string): string {
    return info.namespaced ? `${this.root}/${info.storagePrefix}/${namespace}/${name}` : `${this.root}/${info.storagePrefix}/${name}`
  }

  listPrefix(info: ResourceInfo, namespace?: string): string {
    return info.namespaced && namespace ? `${this.root}/${info.storagePrefix}/${namespace}/` : `${this.root}/${info.storagePrefix}/`
  }

  serialize(info: ResourceInfo, obj: Json): Buffer {
    const clean = structuredClone(obj)
    if (clean.metadata) {
      delete clean.metadata.resourceVersion
      delete clean.metadata.selfLink
    }
    if (info.encoding === 'protobuf' && this.mediaType === 'application/vnd.kubernetes.protobuf') return encodeEnvelope(clean)
    return goJson(clean)
  }

  private decode(info: ResourceInfo, plaintext: Buffer, key: string): Json {
    try {
      if (isProtobufValue(plaintext)) return decodeEnvelope(plaintext)
      if (plaintext[0] === 0x7b) return JSON.parse(plaintext.toString('utf8'))
    } catch (err) {
      throw errors.internal(`unable to decode ${key}: ${(err as Error).message}`)
    }
    void info
    throw errors.internal(`unable to decode ${key}: unrecognized storage encoding`)
  }

  /** Decrypts and decodes one etcd kv; errors keep the transformer's text for the caller to wrap. */
  private async load(info: ResourceInfo, kv: any): Promise<{obj: Json; plaintext: Buffer; stale: boolean}> {
    const key = kv.key.toString('utf8')
    const transformer = this.transformers.forResource(info.group, info.resource)
    const {plaintext, stale} = await transformer.read(key, kv.value)
    const obj = this.decode(info, plaintext, key)
    obj.metadata = obj.metadata ?? {}
    obj.metadata.resourceVersion = String(kv.mod_revision)
    return {obj, plaintext, stale}
  }

  private async rangeOne(key: string): Promise<any | undefined> {
    const res = await this.kv.range({key: Buffer.from(key)})
    return res.kvs[0]
  }

  private async loadOrFail(info: ResourceInfo, kv: any) {
    try {
      return await this.load(info, kv)
    } catch (err) {
      if (err instanceof TransformFailure) {
        this.onTransformError(info, kv.key.toString(), err)
        throw errors.internal(err.message)
      }
      throw err
    }
  }

  async get(info: ResourceInfo, namespace: string | undefined, name: string): Promise<Json> {
    const kv = await this.rangeOne(this.key(info, namespace, name))
    if (!kv) throw errors.notFound(info.group, info.resource, name)
    return (await this.loadOrFail(info, kv)).obj
  }

  async list(info: ResourceInfo, namespace: string | undefined, opts: ListOptions): Promise<ListResult> {
    const prefix = this.listPrefix(info, namespace)
    const end = prefixEnd(Buffer.from(prefix))
    let startKey = Buffer.from(prefix)
    let revision = 0
    if (opts.continueToken) {
      const token = decodeContinue(opts.continueToken)
      startKey = Buffer.from(prefix + token.start)
      revision = token.rv > 0 ? token.rv : 0
    }
    const limit = opts.limit && opts.limit > 0 ? opts.limit : 0
    const items: Json[] = []
    let readRevision = revision
    let lastKey: string | undefined
    let hasMore = false
    let remaining: number | undefined
    for (;;) {
      let res: any
      try {
        res = await this.kv.range({key: startKey, range_end: end, limit: limit ? Math.max(limit - items.length, limit) : 0, revision})
      } catch (err) {
        if (isCompacted(err)) {
          if (opts.continueToken) {
            // k8s: the client may go on at the latest revision with this token (rv -1)
            const fresh = encodeContinue(startKey.toString('utf8').slice(prefix.length), -1)
            throw errors.expired(CONTINUE_INCONSISTENT, fresh)
          }
          throw errors.expired(CONTINUE_EXPIRED)
        }
        throw err
      }
      if (!readRevision) readRevision = Number(res.header.revision)
      revision = readRevision
      const kvs: any[] = res.kvs
      let consumed = 0
      for (const kv of kvs) {
        consumed++
        const key = kv.key.toString('utf8')
        lastKey = key
        let loaded
        try {
          loaded = await this.load(info, kv)
        } catch (err) {
          if (err instanceof TransformFailure) {
            this.onTransformError(info, key, err)
            throw errors.internal(`unable to transform key "${key}": ${err.message}`)
          }
          throw err
        }
        if (opts.labels(loaded.obj) && opts.fields(loaded.obj)) items.push(loaded.obj)
        if (limit && items.length >= limit) break
      }
      const moreInBatch = consumed < kvs.length
      hasMore = moreInBatch || Boolean(res.more)
      if (limit && items.length >= limit) {
        if (hasMore && !opts.filtered) remaining = Number(res.count) - consumed
        break
      }
      if (!res.more || kvs.length === 0) {
        hasMore = false
        break
      }
      startKey = Buffer.concat([Buffer.from(lastKey!), Buffer.from([0])])
    }
    const result: ListResult = {items, resourceVersion: String(readRevision)}
    if (hasMore && lastKey) {
      result.continueToken = encodeContinue(lastKey.slice(prefix.length) + '\u0000', readRevision)
      if (remaining !== undefined && remaining > 0) result.remainingItemCount = remaining
    }
    return result
  }

  /** Fills in what the registry sets on create; returns the object to store. */
  private prepareCreate(info: ResourceInfo, obj: Json, namespace: string | undefined): Json {
    const out = structuredClone(obj)
    out.apiVersion = apiVersionOf(info)
    out.kind = info.kind
    const meta = (out.metadata = out.metadata ?? {})
    if (!meta.name && meta.generateName) meta.name = meta.generateName + randomUUID().replace(/-/g, '').slice(0, 5)
    if (!meta.name)
      throw errors.invalid(info.kind, info.group, '', [
        {field: 'metadata.name', type: 'Required value', detail: 'name or generateName is required'},
      ])
    if (info.namespaced) meta.namespace = namespace
    else delete meta.namespace
    meta.uid = randomUUID()
    meta.creationTimestamp = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
    delete meta.resourceVersion
    delete meta.selfLink
    delete meta.deletionTimestamp
    delete meta.managedFields
    if (info.encoding === 'json' && info.group !== '') meta.generation = 1
    return out
  }

  async create(info: ResourceInfo, obj: Json, namespace: string | undefined, fixup: (o: Json) => Json = (o) => o): Promise<Json> {
    const prepared = fixup(this.prepareCreate(info, obj, namespace))
    const key = this.key(info, namespace, prepared.metadata.name)
    const transformer = this.transformers.forResource(info.group, info.resource)
    const value = await this.writeValue(info, key, this.serialize(info, prepared))
    void transformer
    const res = await this.kv.txn({
      compare: [{key: Buffer.from(key), target: TARGET_CREATE, result: CMP_EQUAL, create_revision: 0}],
      success: [{request_put: {key: Buffer.from(key), value}}],
      failure: [],
    })
    if (!res.succeeded) throw errors.alreadyExists(info.group, info.resource, prepared.metadata.name)
    prepared.metadata.resourceVersion = String(res.header.revision)
    return prepared
  }

  private async writeValue(info: ResourceInfo, key: string, plaintext: Buffer): Promise<Buffer> {
    try {
      return await this.transformers.forResource(info.group, info.resource).write(key, plaintext)
    } catch (err) {
      if (err instanceof TransformFailure) throw errors.internal(err.message)
      throw err
    }
  }

  /**
   * GuaranteedUpdate: read, mutate, skip when the bytes are unchanged and the stored value is not
   * stale (spec §4.2), else write with the first provider/key under a mod-revision compare.
   */
  async update(info: ResourceInfo, namespace: string | undefined, name: string, mutate: Mutation): Promise<Json> {
    const key = this.key(info, namespace, name)
    for (let attempt = 0; attempt < 20; attempt++) {
      const kv = await this.rangeOne(key)
      if (!kv) throw errors.notFound(info.group, info.resource, name)
      const current = await this.loadOrFail(info, kv)
      const next = await mutate(structuredClone(current.obj))
      next.apiVersion = apiVersionOf(info)
      next.kind = info.kind
      const bytes = this.serialize(info, next)
      if (bytes.equals(current.plaintext) && !current.stale) return current.obj
      const value = await this.writeValue(info, key, bytes)
      const res = await this.kv.txn({
        compare: [{key: Buffer.from(key), target: TARGET_MOD, result: CMP_EQUAL, mod_revision: kv.mod_revision}],
        success: [{request_put: {key: Buffer.from(key), value}}],
        failure: [],
      })
      if (res.succeeded) {
        next.metadata.resourceVersion = String(res.header.revision)
        delete next.metadata.selfLink
        return next
      }
    }
    throw errors.conflict(info.group, info.resource, name)
  }

  /** Removes every key under each prefix, whatever its value (even one no key can decrypt). */
  async deletePrefixes(prefixes: string[]): Promise<void> {
    for (const prefix of prefixes) {
      await this.kv.txn({compare: [], success: [{request_delete_range: {key: Buffer.from(prefix), range_end: prefixEnd(Buffer.from(prefix))}}], failure: []})
    }
  }

  async delete(info: ResourceInfo, namespace: string | undefined, name: string, precondition?: {uid?: string; resourceVersion?: string}): Promise<Json> {
    const key = this.key(info, namespace, name)
    for (let attempt = 0; attempt < 20; attempt++) {
      const kv = await this.rangeOne(key)
      if (!kv) throw errors.notFound(info.group, info.resource, name)
      const current = await this.loadOrFail(info, kv)
      if (precondition?.uid && precondition.uid !== current.obj.metadata.uid)
        throw errors.conflict(
          info.group,
          info.resource,
          name,
          `Precondition failed: UID in precondition: ${precondition.uid}, UID in object meta: ${current.obj.metadata.uid}`,
        )
      if (precondition?.resourceVersion && precondition.resourceVersion !== String(kv.mod_revision))
        throw errors.conflict(
          info.group,
          info.resource,
          name,
          `Precondition failed: ResourceVersion in precondition: ${precondition.resourceVersion}, ResourceVersion in object meta: ${kv.mod_revision}`,
        )
      const res = await this.kv.txn({
        compare: [{key: Buffer.from(key), target: TARGET_MOD, result: CMP_EQUAL, mod_revision: kv.mod_revision}],
        success: [{request_delete_range: {key: Buffer.from(key)}}],
        failure: [],
      })
      if (res.succeeded) return current.obj
    }
    throw errors.conflict(info.group, info.resource, name)
  }
}

export {ApiError}
