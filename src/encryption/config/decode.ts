/**
 * Strict decoding of an EncryptionConfiguration file, as kube-apiserver decodes it (docs/kubernetes-behaviour.md §5.2–5.4):
 * YAML (YAML 1.1 scalars, as go-yaml v2 reads them) or JSON; apiVersion/kind checked (also the legacy
 * `v1`/`EncryptionConfig` pair); unknown and duplicate fields are errors; names are case-sensitive;
 * defaults applied. Error texts follow the apiserver's; where the Go libraries' wording could not be
 * reproduced byte for byte (YAML syntax messages, docs/kubernetes-behaviour.md §17), the shape is kept and the detail is ours.
 */
import {type Document, isAlias, isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Tags} from 'yaml'

import type {EncryptionConfiguration, KmsProviderSpec} from './model.js'
import {type ConfigError, REDACTED, stageError} from './errors.js'
import {decodeGoBase64} from '../gocompat/base64.js'
import {goQuote, parseGoDuration} from '../gocompat/format.js'
import {goJsonSyntaxError} from '../gocompat/json-syntax.js'
import {goYamlReaderError} from '../gocompat/yaml-reader.js'

export const API_VERSION = 'apiserver.config.k8s.io/v1'
export const KIND = 'EncryptionConfiguration'
/** Registered "due to a docs bug" and still accepted (docs/kubernetes-behaviour.md §5.2 step 3). */
export const LEGACY_API_VERSION = 'v1'
export const LEGACY_KIND = 'EncryptionConfig'

export interface ParseResult {
  /** The decoded configuration with defaults applied (docs/kubernetes-behaviour.md §5.4); absent when decoding failed. */
  config?: EncryptionConfiguration
  /** Decode errors (type `Decode`); empty when decoding succeeded. */
  errors: ConfigError[]
}

// ---- the schema of the v1 types, with the Go names encoding/json puts in its messages ----

type Spec =
  | {kind: 'string'}
  | {kind: 'int32'}
  | {kind: 'duration'}
  | {kind: 'list'; of: Spec; goType: string}
  | {kind: 'struct'; name: string; goType: string; fields: Record<string, Spec>}

const str: Spec = {kind: 'string'}
const keySpec: Spec = {kind: 'struct', name: 'Key', goType: 'v1.Key', fields: {name: str, secret: str}}
const aesSpec = (name: string): Spec => ({
  kind: 'struct',
  name,
  goType: `v1.${name}`,
  fields: {keys: {kind: 'list', of: keySpec, goType: '[]v1.Key'}},
})
const kmsSpec: Spec = {
  kind: 'struct',
  name: 'KMSConfiguration',
  goType: 'v1.KMSConfiguration',
  fields: {apiVersion: str, name: str, cachesize: {kind: 'int32'}, endpoint: str, timeout: {kind: 'duration'}},
}
const providerSpec: Spec = {
  kind: 'struct',
  name: 'ProviderConfiguration',
  goType: 'v1.ProviderConfiguration',
  fields: {
    aesgcm: aesSpec('AESConfiguration'),
    aescbc: aesSpec('AESConfiguration'),
    secretbox: aesSpec('SecretboxConfiguration'),
    identity: {kind: 'struct', name: 'IdentityConfiguration', goType: 'v1.IdentityConfiguration', fields: {}},
    kms: kmsSpec,
  },
}
const resourceSpec: Spec = {
  kind: 'struct',
  name: 'ResourceConfiguration',
  goType: 'v1.ResourceConfiguration',
  fields: {
    resources: {kind: 'list', of: str, goType: '[]string'},
    providers: {kind: 'list', of: providerSpec, goType: '[]v1.ProviderConfiguration'},
  },
}
const configSpec: Spec & {kind: 'struct'} = {
  kind: 'struct',
  name: 'EncryptionConfiguration',
  goType: 'v1.EncryptionConfiguration',
  fields: {
    apiVersion: str,
    kind: str,
    resources: {kind: 'list', of: resourceSpec, goType: '[]v1.ResourceConfiguration'},
  },
}

function jsonKind(value: unknown): string {
  if (Array.isArray(value)) return 'array'
  if (typeof value === 'boolean') return 'bool'
  if (typeof value === 'number' || typeof value === 'bigint') return 'number'
  if (typeof value === 'string') return 'string'
  return 'object'
}

interface DecodeState {
  /** encoding/json reports the first type error only. */
  typeError?: string
  /** An error from a field's own UnmarshalJSON (metav1.Duration) stops decoding at once and wins over a saved type error. */
  fatal?: string
  /** Strict errors (unknown fields), in document order. */
  strict: string[]
}

/**
 * Decodes a plain value against the schema like sigs.k8s.io/json's strict Unmarshal: nulls become
 * zero values, unknown fields are collected with their indexed path, the first type mismatch is kept.
 */
function decode(value: unknown, spec: Spec, state: DecodeState, path: string, goPath: string, owner: string): unknown {
  const mismatch = (what = jsonKind(value), goType?: string) => {
    state.typeError ??= `json: cannot unmarshal ${what} into Go struct field ${owner}.${goPath} of type ${goType ?? goTypeOf(spec)}`
    return undefined
  }
  if (value === null || value === undefined) return undefined
  switch (spec.kind) {
    case 'string':
      return typeof value === 'string' ? value : mismatch()
    case 'int32':
      if (typeof value !== 'number') return mismatch()
      if (!Number.isInteger(value) || value > 2 ** 31 - 1 || value < -(2 ** 31)) return mismatch(`number ${value}`)
      return value
    case 'duration': {
      // metav1.Duration.UnmarshalJSON: a JSON string parsed by time.ParseDuration.
      // Its UnmarshalJSON decodes the string with json.Unmarshal, whose type error encoding/json then
      // completes with the outer field (Go's UnmarshalTypeError in a struct field), as the apiserver shows.
      if (typeof value !== 'string') {
        state.fatal ??= `json: cannot unmarshal ${jsonKind(value)} into Go struct field ${owner}.${goPath} of type string`
        return undefined
      }
      const parsed = parseGoDuration(value)
      if ('error' in parsed) state.fatal ??= parsed.error
      return value
    }
    case 'list':
      if (!Array.isArray(value)) return mismatch()
      return value.map((item, i) => decode(item, spec.of, state, `${path}[${i}]`, goPath, owner) ?? zero(spec.of))
    case 'struct': {
      if (typeof value !== 'object' || Array.isArray(value)) return mismatch()
      const out: Record<string, unknown> = {}
      for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
        const fieldPath = path === '' ? key : `${path}.${key}`
        const field = spec.fields[key]
        if (!field) {
          state.strict.push(unknownField(path, key))
          continue
        }
        const decoded = decode(item, field, state, fieldPath, goPath === '' ? key : `${goPath}.${key}`, spec.name)
        if (decoded !== undefined) out[key] = decoded
      }
      return out
    }
  }
}

function goTypeOf(spec: Spec): string {
  switch (spec.kind) {
    case 'string':
      return 'string'
    case 'int32':
      return 'int32'
    case 'duration':
      return 'v1.Duration'
    default:
      return spec.goType
  }
}

/** The zero value of a list element that was null (Go leaves the zero value). */
function zero(spec: Spec): unknown {
  return spec.kind === 'string' ? '' : spec.kind === 'struct' ? {} : undefined
}

// ---- YAML front end ----

/** go-yaml v2 reads YAML 1.1 scalars (yes/no/on/off are booleans, 0777 is octal) but has no sexagesimal numbers or timestamps. */
const yamlOptions = {
  version: '1.1' as const,
  uniqueKeys: false,
  prettyErrors: false,
  customTags: (tags: Tags) =>
    tags.filter((t) =>
      typeof t === 'string'
        ? !['intTime', 'floatTime', 'timestamp'].includes(t)
        : t.format !== 'TIME' && t.tag !== 'tag:yaml.org,2002:timestamp',
    ),
}

function keyText(key: unknown): string {
  if (isScalar(key)) return typeof key.value === 'string' ? goQuote(key.value) : String(key.value)
  return String(key)
}

/**
 * The strict errors sigs.k8s.io/json gives for a JSON file, in document order: `duplicate field "path"`
 * for a known field seen twice in one object, `unknown field "path"` for a field the type does not have
 * (every occurrence, also inside a value a later duplicate replaces).
 */
function jsonStrictErrors(doc: Document): string[] {
  const found: string[] = []
  const walk = (node: unknown, spec: Spec, path: string) => {
    if (spec.kind === 'struct' && isMap(node)) {
      const seen = new Set<string>()
      for (const pair of node.items) {
        const name = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
        const childPath = path === '' ? name : `${path}.${name}`
        const field = spec.fields[name]
        if (!field) {
          found.push(unknownField(path, name))
          continue
        }
        if (seen.has(name)) found.push(`duplicate field ${goQuote(childPath)}`)
        seen.add(name)
        walk(pair.value, field, childPath)
      }
    } else if (spec.kind === 'list' && isSeq(node)) {
      for (const [i, item] of node.items.entries()) walk(item, spec.of, `${path}[${i}]`)
    }
  }
  walk(doc.contents, configSpec, '')
  return found
}

/** Duplicate keys in YAML: go-yaml v2's strict errors (`line N: key "x" already set in map`). */
function findDuplicates(doc: Document, lines: LineCounter): string[] {
  const found: string[] = []
  const walk = (node: unknown) => {
    if (isAlias(node)) return
    if (isMap(node)) {
      const seen = new Set<string>()
      for (const pair of node.items) {
        const text = keyText(pair.key)
        if (seen.has(text)) {
          const offset = isScalar(pair.key) ? (pair.key.range?.[0] ?? 0) : 0
          found.push(`line ${lines.linePos(offset).line}: key ${text} already set in map`)
        }
        seen.add(text)
        walk(pair.value)
      }
    } else if (isSeq(node)) {
      for (const item of node.items) walk(item)
    }
  }
  walk(doc.contents)
  return found
}

/**
 * The name runtime.NewScheme gives the apiserver's config scheme (naming.GetNameFromCallsite), which
 * its "no kind" error ends with; the same in 1.36 and 1.37 (checked by test/crosscheck/).
 */
const SCHEME_NAME = 'pkg/runtime/scheme.go:111'

const TYPE_META =
  'struct { APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }'

const GO_SPACE_THEN_BRACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\{/

/** Keyed providers whose `keys` was absent or null in the file (Go's nil slice, echoed as `null`; `keys: []` is `[]`). */
const nilKeyLists = new WeakSet<object>()

/** Whether `keys` was absent or null in the decoded file (docs/kubernetes-behaviour.md §6.1: the provider echo shows `"Keys":null` then). */
export function keysWereNull(provider: object): boolean {
  return nilKeyLists.has(provider)
}

/** Applies the v1 defaults (docs/kubernetes-behaviour.md §5.4) in place. */
export function applyDefaults(config: EncryptionConfiguration): EncryptionConfiguration {
  for (const entry of config.resources ?? []) {
    for (const provider of entry.providers ?? []) {
      const kms: KmsProviderSpec | undefined = provider.kms
      if (!kms) continue
      kms.timeout ??= '3s'
      if (!kms.apiVersion) kms.apiVersion = 'v1'
      if (kms.cachesize === undefined && kms.apiVersion === 'v1') kms.cachesize = 1000
    }
  }
  return config
}

/**
 * Decodes an EncryptionConfiguration file, its raw bytes or its text (docs/kubernetes-behaviour.md §5.2 steps 2–4, without
 * validation). `source` is the path named in messages. Messages never contain key material: where the
 * apiserver would echo the file's content, the content is left out.
 */
export function parseEncryptionConfig(input: string | Uint8Array, source = '<input>'): ParseResult {
  const fail = (detail: string): ParseResult => ({
    errors: [
      stageError('Decode', `error decoding encryption provider configuration file ${goQuote(source)}: ${detail}`),
    ],
  })
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8')
  // A JSON document goes to the JSON decoder, anything else to the YAML one (docs/kubernetes-behaviour.md §5.2 step 2): '{' after
  // Go's unicode.IsSpace (unlike JavaScript's \s: NEL is a space, a byte order mark is not, so a JSON
  // file with a BOM is read as YAML, which skips the BOM).
  const json = GO_SPACE_THEN_BRACE.test(text)
  const syntaxError = json ? goJsonSyntaxError(bytes) : goYamlReaderError(bytes)
  if (syntaxError) return fail(json ? `couldn't get version/kind; json parse error: ${syntaxError}` : syntaxError)
  const lines = new LineCounter()
  const docs = parseAllDocuments(text, {...yamlOptions, lineCounter: lines})
  const doc = Array.isArray(docs) ? docs[0] : undefined
  const syntax = doc?.errors[0]
  if (syntax)
    return fail(`yaml: line ${syntax.linePos?.[0]?.line ?? lines.linePos(syntax.pos[0]).line}: ${syntax.message}`)
  let value: unknown
  try {
    value = doc ? doc.toJS({maxAliasCount: 100}) : null
  } catch (error) {
    return fail(`yaml: ${(error as Error).message}`)
  }

  // Type identifiers first, as the universal decoder does (docs/kubernetes-behaviour.md §5.2 step 3).
  if (value !== null && value !== undefined && (typeof value !== 'object' || Array.isArray(value))) {
    return fail(
      `couldn't get version/kind; json parse error: json: cannot unmarshal ${jsonKind(value)} into Go value of type ${TYPE_META}`,
    )
  }
  const top = (value ?? {}) as Record<string, unknown>
  for (const field of ['apiVersion', 'kind']) {
    const v = top[field]
    if (v !== undefined && v !== null && typeof v !== 'string') {
      return fail(
        `couldn't get version/kind; json parse error: json: cannot unmarshal ${jsonKind(v)} into Go struct field .${field} of type string`,
      )
    }
  }
  const apiVersion = (top.apiVersion as string | undefined) ?? ''
  const kind = (top.kind as string | undefined) ?? ''
  // The apiserver echoes the whole file here; we leave it out because it holds key secrets.
  if (kind === '') return fail(`Object 'Kind' is missing in the file (content not shown)`)
  if (apiVersion === '') return fail(`Object 'apiVersion' is missing in the file (content not shown)`)
  const registered =
    (apiVersion === API_VERSION && kind === KIND) || (apiVersion === LEGACY_API_VERSION && kind === LEGACY_KIND)
  if (!registered)
    return fail(
      `no kind ${goQuote(kind)} is registered for version ${goQuote(apiVersion)} in scheme ${goQuote(SCHEME_NAME)}`,
    )

  const state: DecodeState = {strict: []}
  const decoded = decode(top, configSpec, state, '', '', configSpec.name) as EncryptionConfiguration
  const fatal = state.fatal ?? state.typeError
  if (fatal) return fail(fatal)
  // YAML: go-yaml's duplicate check is one error listing every line, then the unknown fields of the
  // JSON it converts to (duplicates collapsed). JSON: each duplicate and unknown field in document order.
  const duplicates = doc && !json ? findDuplicates(doc, lines) : []
  const yamlDuplicates = duplicates.length > 0 ? [`yaml: unmarshal errors:\n  ${duplicates.join('\n  ')}`] : []
  const strictErrors = json ? (doc ? jsonStrictErrors(doc) : []) : [...yamlDuplicates, ...state.strict]
  if (strictErrors.length > 0) return fail(`strict decoding error: ${strictErrors.join(', ')}`)

  // Absent lists decode to empty ones (Go's nil slices), so consumers need no undefined checks.
  decoded.resources ??= []
  for (const entry of decoded.resources) {
    entry.resources ??= []
    entry.providers ??= []
    for (const p of entry.providers) {
      for (const keyed of [p.aescbc, p.aesgcm, p.secretbox]) {
        if (keyed && keyed.keys === undefined) nilKeyLists.add(keyed)
        if (keyed) keyed.keys ??= []
      }
    }
  }
  return {config: applyDefaults(decoded), errors: []}
}

/**
 * The strict error for a field the type does not have. Its name shows as "REDACTED" when it could be
 * a key (Go base64 of 16 bytes or more, e.g. a secret whose `secret:` line was lost): the apiserver
 * would echo it, we never print key material (docs/kubernetes-behaviour.md §14.6). No field of the schema is that long, so
 * real typos still show.
 */
function unknownField(path: string, name: string): string {
  const shown = (decodeGoBase64(name)?.length ?? 0) >= 16 ? REDACTED : name
  return `unknown field ${goQuote(path === '' ? shown : `${path}.${shown}`)}`
}
