import {randomBytes} from 'node:crypto'

import {
  Document,
  isMap,
  isScalar,
  isSeq,
  parseAllDocuments,
  parseDocument,
  visit,
  type YAMLMap,
  type YAMLSeq,
} from 'yaml'

import {type ErrorCode, PluginError} from '../../errors.js'
import type {AesProviderType} from './model.js'
import {keyFingerprint, sha256Label} from '../fingerprint.js'
import {DEFAULT_PROVIDER, defaultKeyName} from './generate.js'

/**
 * Edits of an EncryptionConfiguration file on its YAML Document, so comments and layout survive
 * (docs/architecture.md §3 step 1), for the seed's procedures: rotation (new key second, then first, then the
 * old one removed), provider switch (new provider second, then first), decrypt-all (identity first,
 * old keys kept readable). New keys are generated here and never leave this module except inside
 * the returned file text: callers see key names and `sha256:` fingerprints only (docs/architecture.md §2).
 */
export type KeyedProvider = AesProviderType

export const KEYED_PROVIDERS: readonly KeyedProvider[] = ['aescbc', 'aesgcm', 'secretbox']

/** Key sizes we generate: 32 bytes for all (the seed's `head -c 32 /dev/urandom | base64`). */
const NEW_KEY_BYTES = 32

export interface ConfigEdit {
  text: string
  changed: boolean
  /** What changed, in words with key names only. */
  changes: string[]
}

export interface NewKeyInfo {
  name: string
  provider: KeyedProvider
  /** `sha256:` of the key bytes (same as keyFingerprint of the config helper). */
  fingerprint: string
}

export interface AddKeyEdit extends ConfigEdit {
  keyName: string
  /** One entry per provider type the key was added to (a secret is never shared across types). */
  keys: NewKeyInfo[]
}

/** Which `resources[]` entries an edit touches. */
export interface EntrySelector {
  /** Resource strings as in the file (e.g. `secrets`, `*.apps`); an entry matches if it lists any. Default: see each edit. */
  resources?: string[]
}

function configError(code: ErrorCode, message: string, hint?: string): PluginError {
  return new PluginError('precondition', code, message, {hint})
}

function parse(text: string): {doc: Document; entries: YAMLMap[]} {
  const doc = parseDocument(text)
  if (doc.errors.length > 0)
    throw configError(
      'CONFIG_INVALID',
      `The encryption configuration is not valid YAML: ${doc.errors[0]?.message.split('\n')[0]}`,
    )
  const resources = isMap(doc.contents) ? doc.contents.get('resources', true) : undefined
  if (!isSeq(resources)) throw configError('CONFIG_INVALID', 'The encryption configuration has no resources list.')
  return {doc, entries: resources.items.filter((e): e is YAMLMap => isMap(e))}
}

const text = (node: unknown): string | undefined =>
  isScalar(node) && node.value !== null ? String(node.value) : undefined

function providersOf(entry: YAMLMap): YAMLSeq {
  const providers = entry.get('providers', true)
  if (!isSeq(providers)) throw configError('CONFIG_INVALID', 'A resources entry has no providers list.')
  return providers
}

/** The provider type of a providers[] item (`aescbc`, `identity`, …). */
function providerType(item: unknown): string | undefined {
  if (!isMap(item) || item.items.length !== 1) return undefined
  return text(item.items[0]?.key)
}

function keysOf(item: unknown): YAMLSeq | undefined {
  if (!isMap(item)) return undefined
  const body = item.items[0]?.value
  const keys = isMap(body) ? body.get('keys', true) : undefined
  return isSeq(keys) ? keys : undefined
}

function keyNames(item: unknown): string[] {
  return (keysOf(item)?.items ?? []).map((k) => (isMap(k) ? (text(k.get('name', true)) ?? '') : ''))
}

function entryResources(entry: YAMLMap): string[] {
  const list = entry.get('resources', true)
  return isSeq(list) ? list.items.map((r) => text(r) ?? '') : []
}

function label(entry: YAMLMap): string {
  return entryResources(entry).join(',')
}

function select(entries: YAMLMap[], selector: EntrySelector, fallback: (entry: YAMLMap) => boolean): YAMLMap[] {
  if (selector.resources && selector.resources.length > 0) {
    const wanted = new Set(selector.resources)
    const chosen = entries.filter((e) => entryResources(e).some((r) => wanted.has(r)))
    const found = new Set(chosen.flatMap(entryResources))
    const missing = selector.resources.filter((r) => !found.has(r))
    if (missing.length > 0) {
      throw configError(
        'CONFIG_RESOURCE_NOT_FOUND',
        `The encryption configuration has no entry for ${missing.join(', ')}.`,
        'Name resources exactly as the file lists them (e.g. secrets, *.apps).',
      )
    }
    return chosen
  }
  return entries.filter(fallback)
}

/** By default rotation touches every entry whose write (first) provider is aescbc, aesgcm or secretbox. */
const writesWithLocalKey = (entry: YAMLMap) =>
  KEYED_PROVIDERS.includes(providerType(providersOf(entry).items[0]) as KeyedProvider)

function finish(doc: Document, source: string, changes: string[]): ConfigEdit {
  if (changes.length === 0) return {text: source, changed: false, changes}
  return {
    text: doc.toString({lineWidth: 0, indentSeq: /^( *)[^\s#-][^\n]*:[ \t]*\n\1 +- /m.test(source)}),
    changed: true,
    changes,
  }
}

/** The config helper's key fingerprint; a secret that is not valid base64 is fingerprinted as text. */
function secretFingerprint(secret: string): string {
  return keyFingerprint(secret) ?? sha256Label(secret)
}

/** A fresh random key, base64 (Go StdEncoding, padded). Stays inside this module. */
function newSecret(): string {
  return randomBytes(NEW_KEY_BYTES).toString('base64')
}

/** All key names used anywhere in the file. */
export function keyNamesInConfig(source: string): string[] {
  const {entries} = parse(source)
  return entries.flatMap((e) => providersOf(e).items.flatMap(keyNames))
}

/**
 * A key name never used before: `key-<UTC time>` (as `config generate` names keys), with `-2`, `-3`…
 * when the file already has it. A counter (key1, key2…) would start again at key1 after decrypt-all
 * and enable, and values in older etcd backups carry a `key1` prefix that the new key1 cannot open.
 */
export function nextKeyName(source?: string, now: Date = new Date()): string {
  const used = new Set(source === undefined ? [] : keyNamesInConfig(source))
  const base = defaultKeyName(now)
  let name = base
  for (let n = 2; used.has(name); n++) name = `${base}-${n}`
  return name
}

/**
 * Rotation/switch stage 1: a new key that every apiserver can read but none writes yet. Per entry,
 * for `provider` (default: the entry's write provider): if it is the write provider, the key becomes
 * its SECOND key; if the entry has that provider further down, the key goes first in it; otherwise a
 * new `provider` with that key becomes the SECOND provider. Entries share one secret per provider
 * type. A key of that name already in the file is reused, never regenerated (nodes may hold it).
 */
export function addKey(
  source: string,
  options: EntrySelector & {provider?: KeyedProvider; keyName?: string},
): AddKeyEdit {
  const {doc, entries} = parse(source)
  const chosen = select(entries, options, writesWithLocalKey)
  if (chosen.length === 0)
    throw configError(
      'CONFIG_NOTHING_TO_ROTATE',
      'No resources entry writes with aescbc, aesgcm or secretbox; there is no local key to rotate.',
      'Pass --resource to pick entries, or enable encryption first.',
    )
  const name = options.keyName ?? nextKeyName(source)
  const changes: string[] = []
  const secrets = new Map<KeyedProvider, string>()
  const existingSecret = (type: KeyedProvider) =>
    entries
      .flatMap((e) => providersOf(e).items.filter((p) => providerType(p) === type))
      .flatMap((p) => keysOf(p)?.items ?? [])
      .filter((k): k is YAMLMap => isMap(k) && text(k.get('name', true)) === name)
      .map((k) => text(k.get('secret', true)))
      .find((v) => v !== undefined)
  for (const entry of chosen) {
    const providers = providersOf(entry)
    const writeType = providerType(providers.items[0]) as KeyedProvider
    const type = options.provider ?? (KEYED_PROVIDERS.includes(writeType) ? writeType : undefined)
    if (!type)
      throw configError(
        'CONFIG_NOTHING_TO_ROTATE',
        `Entry ${label(entry)} writes with ${providerType(providers.items[0])}; say which provider the new key is for.`,
      )
    if (!secrets.has(type)) secrets.set(type, existingSecret(type) ?? newSecret())
    if (providers.items.some((p) => providerType(p) === type && keyNames(p).includes(name))) continue
    const other = providers.items.find((p) => keyNames(p).includes(name))
    if (other)
      throw configError(
        'CONFIG_KEY_NAME_TAKEN',
        `Key name ${name} is already used by ${providerType(other)} in entry ${label(entry)}.`,
        'Choose another key name.',
      )
    const keyNode = doc.createNode({name, secret: secrets.get(type)})
    const index = providers.items.findIndex((p) => providerType(p) === type)
    const keys = index >= 0 ? keysOf(providers.items[index]) : undefined
    if (index >= 0 && !keys)
      throw configError('CONFIG_INVALID', `The ${type} provider of entry ${label(entry)} has no keys list.`)
    if (index === 0 && keys) {
      keys.items.splice(1, 0, keyNode)
      changes.push(`added key ${name} as second ${type} key for ${label(entry)}`)
    } else if (keys) {
      keys.items.unshift(keyNode)
      changes.push(`added key ${name} to the (read-only) ${type} provider for ${label(entry)}`)
    } else {
      providers.items.splice(1, 0, doc.createNode({[type]: {keys: [{name, secret: secrets.get(type)}]}}))
      changes.push(`added ${type} provider with key ${name} as second provider for ${label(entry)}`)
    }
  }
  const keys = [...secrets].map(([provider, secret]) => ({name, provider, fingerprint: secretFingerprint(secret)}))
  return {...finish(doc, source, changes), keyName: name, keys}
}

/**
 * Rotation/switch stage 3: the key `keyName` of `provider` becomes the write key: its provider
 * moves to the front of providers and the key to the front of its keys. Default entries: those that
 * hold the key.
 */
export function promoteKey(
  source: string,
  options: EntrySelector & {provider: KeyedProvider; keyName: string},
): ConfigEdit {
  const {doc, entries} = parse(source)
  const holds = (e: YAMLMap) =>
    providersOf(e).items.some((p) => providerType(p) === options.provider && keyNames(p).includes(options.keyName))
  const chosen = select(entries, options, holds)
  if (chosen.length === 0)
    throw configError(
      'CONFIG_KEY_NOT_FOUND',
      `No entry has ${options.provider} key ${options.keyName}.`,
      'Run the earlier rotation stage first (`kubectl encryption rotate --stage add-key`).',
    )
  const changes: string[] = []
  for (const entry of chosen) {
    const providers = providersOf(entry)
    const index = providers.items.findIndex(
      (p) => providerType(p) === options.provider && keyNames(p).includes(options.keyName),
    )
    if (index < 0)
      throw configError(
        'CONFIG_KEY_NOT_FOUND',
        `Entry ${label(entry)} has no ${options.provider} key ${options.keyName}.`,
      )
    if (index > 0) {
      const [item] = providers.items.splice(index, 1)
      providers.items.unshift(item)
      changes.push(`made ${options.provider} the first provider for ${label(entry)}`)
    }
    const keys = keysOf(providers.items[0])
    const k = keyNames(providers.items[0]).indexOf(options.keyName)
    if (keys && k > 0) {
      const [key] = keys.items.splice(k, 1)
      keys.items.unshift(key)
      changes.push(`made ${options.keyName} the first ${options.provider} key for ${label(entry)}`)
    }
  }
  return finish(doc, source, changes)
}

/** A KMS v2 provider as `rotate --provider kms` adds it (the shape `config generate --provider kms` writes). */
export interface KmsProviderSpec {
  name: string
  endpoint: string
  timeout: string
}

function kmsName(item: unknown): string | undefined {
  if (providerType(item) !== 'kms' || !isMap(item)) return undefined
  const body = item.items[0]?.value
  return isMap(body) ? text(body.get('name', true)) : undefined
}

/**
 * Switch to KMS, stage 1: the KMS v2 provider `spec` as the SECOND provider of each selected entry
 * (default: those writing with aescbc, aesgcm or secretbox), so every apiserver can read values it
 * writes before any writes them (seed: a new provider goes second first). An entry that already has
 * a kms provider of that name keeps it (a resumed run); one with another endpoint is refused.
 */
export function addKmsProvider(source: string, options: EntrySelector & {kms: KmsProviderSpec}): ConfigEdit {
  const {doc, entries} = parse(source)
  const chosen = select(entries, options, writesWithLocalKey)
  if (chosen.length === 0)
    throw configError(
      'CONFIG_NOTHING_TO_ROTATE',
      'No resources entry writes with aescbc, aesgcm or secretbox; there is nothing to move to KMS.',
      'Pass --resource to pick entries, or enable encryption first.',
    )
  const changes: string[] = []
  const {name, endpoint, timeout} = options.kms
  for (const entry of chosen) {
    const providers = providersOf(entry)
    const existing = providers.items.find((p) => kmsName(p) === name)
    if (existing) {
      const body = isMap(existing) ? existing.items[0]?.value : undefined
      const has = isMap(body) ? text(body.get('endpoint', true)) : undefined
      if (has !== endpoint)
        throw configError(
          'CONFIG_KMS_NAME_TAKEN',
          `Entry ${label(entry)} already has a KMS provider named ${name} at ${has}, not ${endpoint}.`,
          'Choose another --kms-name.',
        )
      continue
    }
    providers.items.splice(1, 0, doc.createNode({kms: {apiVersion: 'v2', name, endpoint, timeout}}))
    changes.push(`added kms provider ${name} (${endpoint}) as second provider for ${label(entry)}`)
  }
  return finish(doc, source, changes)
}

/** Switch to KMS, stage 3: the kms provider `name` moves to the front (default entries: those that have it). */
export function promoteKmsProvider(source: string, options: EntrySelector & {name: string}): ConfigEdit {
  const {doc, entries} = parse(source)
  const has = (e: YAMLMap) => providersOf(e).items.some((p) => kmsName(p) === options.name)
  const chosen = select(entries, options, has)
  if (chosen.length === 0)
    throw configError(
      'CONFIG_KEY_NOT_FOUND',
      `No entry has a KMS provider named ${options.name}.`,
      'Run the earlier rotation stage first (`kubectl encryption rotate --stage add-key`).',
    )
  const changes: string[] = []
  for (const entry of chosen) {
    const providers = providersOf(entry)
    const index = providers.items.findIndex((p) => kmsName(p) === options.name)
    if (index < 0)
      throw configError('CONFIG_KEY_NOT_FOUND', `Entry ${label(entry)} has no KMS provider ${options.name}.`)
    if (index > 0) {
      const [item] = providers.items.splice(index, 1)
      providers.items.unshift(item)
      changes.push(`made kms ${options.name} the first provider for ${label(entry)}`)
    }
  }
  return finish(doc, source, changes)
}

/**
 * Rotation stage 6: removes key `keyName` from every provider of the selected entries (default: all
 * entries). A provider left without keys is removed; an entry would be left with no provider: refused.
 * Refuses to remove a key that is still the write key.
 */
export function removeKey(
  source: string,
  options: EntrySelector & {keyName: string; provider?: KeyedProvider},
): ConfigEdit {
  const {doc, entries} = parse(source)
  const chosen = select(entries, options, () => true)
  const changes: string[] = []
  for (const entry of chosen) {
    const providers = providersOf(entry)
    for (let i = 0; i < providers.items.length; i++) {
      const item = providers.items[i]
      const type = providerType(item)
      if (options.provider && type !== options.provider) continue
      const names = keyNames(item)
      const k = names.indexOf(options.keyName)
      if (k < 0) continue
      if (i === 0 && k === 0) {
        throw configError(
          'CONFIG_KEY_IN_USE',
          `Key ${options.keyName} is still the write key for ${label(entry)}.`,
          'Promote another key first (rotate stages add-key and promote).',
        )
      }
      if (names.length === 1) {
        if (providers.items.length === 1)
          throw configError(
            'CONFIG_KEY_IN_USE',
            `Removing ${options.keyName} would leave ${label(entry)} without a provider.`,
          )
        providers.items.splice(i, 1)
        i--
        changes.push(`removed ${type} provider (its only key was ${options.keyName}) for ${label(entry)}`)
      } else {
        keysOf(item)?.items.splice(k, 1)
        changes.push(`removed ${type} key ${options.keyName} for ${label(entry)}`)
      }
    }
  }
  return finish(doc, source, changes)
}

/**
 * Decrypt-all: `identity: {}` first for the selected entries (default: all that do not already
 * write with identity), every old provider and key kept so existing data stays readable.
 */
export function putIdentityFirst(source: string, options: EntrySelector = {}): ConfigEdit {
  const {doc, entries} = parse(source)
  const chosen = select(entries, options, (e) => providerType(providersOf(e).items[0]) !== 'identity')
  const changes: string[] = []
  for (const entry of chosen) {
    const providers = providersOf(entry)
    const index = providers.items.findIndex((p) => providerType(p) === 'identity')
    if (index === 0) continue
    if (index > 0) {
      const [item] = providers.items.splice(index, 1)
      // `enable`'s note on the fallback ("identity last: …") is about the place it leaves.
      if (isMap(item) && /identity last/.test(item.commentBefore ?? '')) item.commentBefore = undefined
      providers.items.unshift(item)
      changes.push(`moved identity to the front for ${label(entry)}`)
    } else {
      const identity = doc.createNode({identity: {}}) as YAMLMap
      providers.items.unshift(identity)
      changes.push(`added identity as the first provider for ${label(entry)}`)
    }
  }
  return finish(doc, source, changes)
}

/**
 * The end state of decrypt-all without removing the flag: only `identity: {}` left for the selected
 * entries (default: all), so the file holds no key material any more. Only safe after a scan found
 * nothing encrypted.
 */
export function dropAllKeys(source: string, options: EntrySelector = {}): ConfigEdit {
  const {doc, entries} = parse(source)
  const chosen = select(entries, options, () => true)
  const changes: string[] = []
  for (const entry of chosen) {
    const providers = providersOf(entry)
    if (providers.items.length === 1 && providerType(providers.items[0]) === 'identity') continue
    const removed = providers.items.map(providerType).filter((t) => t !== 'identity')
    const identity = providers.items.find((p) => providerType(p) === 'identity') ?? doc.createNode({identity: {}})
    providers.items.splice(0, providers.items.length, identity)
    changes.push(`left only identity for ${label(entry)} (removed ${removed.join(', ')})`)
  }
  return finish(doc, source, changes)
}

/** A new configuration for `enable`: one entry, one fresh key, identity kept as a read fallback (seed). */
export function newConfig(options: {resources?: string[]; provider?: KeyedProvider; keyName?: string} = {}): {
  text: string
  key: NewKeyInfo
} {
  const provider = options.provider ?? DEFAULT_PROVIDER
  const name = options.keyName ?? nextKeyName()
  const secret = newSecret()
  const doc = new Document({
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'EncryptionConfiguration',
    resources: [
      {
        resources: options.resources ?? ['secrets'],
        providers: [{[provider]: {keys: [{name, secret}]}}, {identity: {}}],
      },
    ],
  })
  doc.commentBefore = ' Written by kubectl encryption enable. Keep this file root-only (0600).'
  const identity = doc.getIn(['resources', 0, 'providers', 1], true)
  if (isMap(identity))
    identity.commentBefore = ' identity last: data written before encryption was enabled stays readable'
  return {text: doc.toString({lineWidth: 0}), key: {name, provider, fingerprint: secretFingerprint(secret)}}
}

const SECRET_LINE = /^(\s*(?:-\s+)?["']?secret["']?:\s*)(["']?)([A-Za-z0-9+/=_-]{8,})\2/gm

const mask = (secret: string) => `<redacted ${secretFingerprint(secret).slice(0, 19)}>`

/**
 * The text with every key secret replaced by a marker naming its fingerprint, for dry-run diffs and
 * logs. Two different keys get different markers, the same key the same marker. Secrets are found
 * through the YAML (any style, JSON too) and, for text that does not parse, by `secret:` lines.
 */
export function maskSecrets(source: string): string {
  const secrets = new Set<string>()
  try {
    for (const doc of parseAllDocuments(source)) {
      if (!(doc instanceof Document)) continue
      visit(doc, {
        Pair(_key, pair) {
          if (isScalar(pair.key) && pair.key.value === 'secret' && isScalar(pair.value) && pair.value.value !== null)
            secrets.add(String(pair.value.value))
        },
      })
    }
  } catch {
    // fall through to the line pattern
  }
  let out = source.replace(
    SECRET_LINE,
    (_m, lead: string, quote: string, secret: string) => `${lead}${quote}${mask(secret)}${quote}`,
  )
  for (const secret of [...secrets].sort((a, b) => b.length - a.length))
    if (secret.length >= 8) out = out.replaceAll(secret, mask(secret))
  return out
}
