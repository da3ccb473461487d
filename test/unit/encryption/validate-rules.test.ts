/**
 * One row per validation rule of docs/kubernetes-behaviour.md §6 (and §5.2 decoding), asserting the apiserver's exact text.
 */
import {describe, expect, it} from 'vitest'

import {apiserverMessage} from '../../../src/encryption/config-errors.js'
import {parseEncryptionConfig} from '../../../src/encryption/config-decode.js'
import {validateEncryptionConfig, type ValidateOptions} from '../../../src/encryption/validate-config.js'

const K32 = 'Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA='
const head = 'apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n'

/** Decodes and validates; returns every error message (decode errors included) and the warnings. */
function check(yaml: string, options: ValidateOptions = {}) {
  const parsed = parseEncryptionConfig(yaml, '/etc/kubernetes/enc/config.yaml')
  if (!parsed.config) return {messages: parsed.errors.map((e) => e.message), errors: parsed.errors, warnings: [] as string[]}
  const result = validateEncryptionConfig(parsed.config, options)
  return {messages: result.errors.map((e) => e.message), errors: result.errors, warnings: result.warnings}
}

/** One entry: a resource list and a providers block (YAML flow or block text indented by 4). */
const entry = (resources: string[], providers: string) =>
  `${head}resources:\n- resources: ${JSON.stringify(resources)}\n  providers:\n${providers}`
const aescbc = (secret: string, name = 'key1') => `  - aescbc:\n      keys:\n      - name: ${JSON.stringify(name)}\n        secret: ${JSON.stringify(secret)}\n`
const kms = (fields: string) => `  - kms: {${fields}}\n`

describe('top level and per-entry lists (docs/kubernetes-behaviour.md §6.2, §6.3 steps 1 and 4)', () => {
  it.each([
    ['no resources', `${head}resources: []\n`, 'resources: Required value: at least one resources is required'],
    ['resources missing', head, 'resources: Required value: at least one resources is required'],
    ['empty resource list', entry([], aescbc(K32)), 'resources[0].resources: Required value: at least one resources[0].resources is required'],
    ['empty providers', `${head}resources:\n- resources: [secrets]\n  providers: []\n`, 'resources[0].providers: Required value: at least one resources[0].providers is required'],
  ])('%s', (_name, yaml, message) => {
    expect(check(yaml).messages).toEqual([message])
  })

  it('substitutes the entry index in the detail', () => {
    const yaml = `${head}resources:\n- resources: [secrets]\n  providers: [{identity: {}}]\n- resources: []\n  providers: []\n`
    expect(check(yaml).messages).toEqual([
      'resources[1].resources: Required value: at least one resources[1].resources is required',
      'resources[1].providers: Required value: at least one resources[1].providers is required',
    ])
  })
})

const DUP = 'the same resource cannot be specified multiple times'
const OVERLAP = "using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked"

describe('duplicates and overlap in one list (docs/kubernetes-behaviour.md §6.3 step 2)', () => {
  it.each([
    [['secrets', 'secrets.'], [DUP]],
    [['secrets', 'secrets'], [DUP]],
    [['*.*', '*.*'], [DUP, OVERLAP]],
    [['*.', '*.'], [DUP, OVERLAP]],
    [['*.apps', '*.apps'], [DUP, OVERLAP]],
    [['secrets', 'secrets.', '*.'], [DUP, OVERLAP]],
    [['secrets.', '*.*'], [OVERLAP]],
    [['secrets', '*.'], [OVERLAP]],
    [['*.apps', 'deployments.apps'], [OVERLAP]],
    [['*.*', 'secrets'], [OVERLAP]],
    [['*.apps', '*.'], []],
    [['secrets', 'configmaps', 'deployments.apps'], []],
  ])('%j', (list, details) => {
    const value = JSON.stringify(list)
    expect(check(entry(list, aescbc(K32))).messages).toEqual(details.map((d) => `resources[0].resources: Invalid value: ${value}: ${d}`))
  })
})

describe('each resource string, first matching rule only (docs/kubernetes-behaviour.md §6.3 step 3)', () => {
  it.each([
    ['Secrets', 'resource name should not contain capital letters'],
    ['*.Apps', 'resource name should not contain capital letters'],
    ['*', "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources"],
    ['serviceipallocations', 'resources which do not have REST API/s cannot be encrypted'],
    ['servicenodeportallocations', 'resources which do not have REST API/s cannot be encrypted'],
    ['apiserveripinfo', 'resources which do not have REST API/s cannot be encrypted'],
    ['events.events.k8s.io', "'*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use 'events' instead in the config file"],
    ['*.events.k8s.io', "'*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use 'events' instead in the config file"],
    ['*.extensions', "'extensions' group has been removed and cannot be used for encryption"],
    ['foo.extensions', "'extensions' group has been removed and cannot be used for encryption"],
    ['secrets.*', 'encrypting the same resource across groups is not supported'],
  ])('%j', (text, detail) => {
    expect(check(entry([text], aescbc(K32))).messages).toEqual([`resources[0].resources[0]: Invalid value: ${JSON.stringify(text)}: ${detail}`])
  })

  it.each(['', 'secrets.v1', 'with space', 'events', 'pandas.awesome.bears.example'])('accepts %j', (text) => {
    expect(check(entry([text], aescbc(K32))).messages).toEqual([])
  })
})

describe('exactly one provider type (docs/kubernetes-behaviour.md §6.3 step 5)', () => {
  it('identity: with a null value counts as no provider', () => {
    expect(check(entry(['secrets'], '  - identity:\n')).messages).toEqual([
      'resources[0].providers[0]: Invalid value: {"AESGCM":null,"AESCBC":null,"Secretbox":null,"Identity":null,"KMS":null}: provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity',
    ])
  })

  it('two types in one element: echoes the provider with the secrets REDACTED, then still checks the first type', () => {
    const yaml = entry(['secrets'], `  - identity: {}\n    aescbc:\n      keys:\n      - {name: k, secret: "${K32}"}\n    secretbox:\n      keys: []\n    aesgcm: {}\n`)
    const {messages} = check(yaml)
    // Go's JSON of the internal struct: `keys: []` is an empty slice ([]), a missing `keys` a nil one (null).
    expect(messages).toEqual([
      'resources[0].providers[0]: Invalid value: {"AESGCM":{"Keys":null},"AESCBC":{"Keys":[{"Name":"k","Secret":"REDACTED"}]},"Secretbox":{"Keys":[]},"Identity":{},"KMS":null}: more than one provider specified in a single element, should split into different list elements',
      'resources[0].providers[0].aesgcm.keys: Required value: at least one keys is required',
    ])
    expect(messages.join('\n')).not.toContain(K32)
  })

  it('echoes a KMS provider after defaults, durations as Go prints them', () => {
    const yaml = entry(['secrets'], `  - identity: {}\n    kms: {name: a, endpoint: "unix:///k", timeout: 90s}\n  - identity: {}\n    kms: {apiVersion: v2, name: b, endpoint: "unix:///k"}\n`)
    expect(check(yaml, {featureGates: {KMSv1: true}}).messages).toEqual([
      'resources[0].providers[0]: Invalid value: {"AESGCM":null,"AESCBC":null,"Secretbox":null,"Identity":{},"KMS":{"APIVersion":"v1","Name":"a","CacheSize":1000,"Endpoint":"unix:///k","Timeout":"1m30s"}}: more than one provider specified in a single element, should split into different list elements',
      'resources[0].providers[1]: Invalid value: {"AESGCM":null,"AESCBC":null,"Secretbox":null,"Identity":{},"KMS":{"APIVersion":"v2","Name":"b","CacheSize":null,"Endpoint":"unix:///k","Timeout":"3s"}}: more than one provider specified in a single element, should split into different list elements',
    ])
  })

  it('runs the type-specific checks of the first type in the order KMS, AESGCM, AESCBC, Secretbox', () => {
    const yaml = entry(['secrets'], `  - secretbox:\n      keys: []\n    aesgcm: {}\n`)
    expect(check(yaml).messages).toEqual([
      expect.stringContaining('more than one provider specified'),
      'resources[0].providers[0].aesgcm.keys: Required value: at least one keys is required',
    ])
  })
})

describe('keys (docs/kubernetes-behaviour.md §6.4)', () => {
  const secretError = (detail: string) => `resources[0].providers[0].aescbc.keys[0].secret: Invalid value: "REDACTED": ${detail}`
  it.each([
    ['no keys', '  - aescbc: {}\n', 'resources[0].providers[0].aescbc.keys: Required value: at least one keys is required'],
    ['keys: null', '  - aescbc:\n      keys:\n', 'resources[0].providers[0].aescbc.keys: Required value: at least one keys is required'],
    ['empty secret', aescbc(''), 'resources[0].providers[0].aescbc.keys[0].secret: Required value: secret is a mandatory field for a key'],
    ['base64 without padding', aescbc('AAECAwQFBgcICQoLDA0ODw'), secretError('secrets must be base64 encoded')],
    ['URL-safe base64', aescbc('-_ECAwQFBgcICQoLDA0ODw=='), secretError('secrets must be base64 encoded')],
    ['a space inside', aescbc('AAECAwQFBgcI CQoLDA0ODw=='), secretError('secrets must be base64 encoded')],
    ['9 bytes', aescbc('AAECAwQFBgcI'), secretError('secret is not of the expected length, got 9, expected one of [16 24 32]')],
    ['33 bytes', aescbc(Buffer.alloc(33).toString('base64')), secretError('secret is not of the expected length, got 33, expected one of [16 24 32]')],
  ])('%s', (_name, providers, message) => {
    expect(check(entry(['secrets'], providers)).messages).toEqual([message])
  })

  it('ignores CR and LF inside a secret', () => {
    expect(check(entry(['secrets'], aescbc('AAECAwQFBgcI\r\nCQoLDA0ODw=='))).messages).toEqual([])
  })

  it.each([
    ['a literal block keeps the line breaks: accepted', '|\n          AAECAwQFBgcICQoL\n          DA0ODw==', []],
    ['a folded block turns them into a space: refused', '>-\n          AAECAwQFBgcICQoL\n          DA0ODw==', [secretError('secrets must be base64 encoded')]],
    ['a plain multi-line scalar folds too: refused', '\n          AAECAwQFBgcICQoL\n          DA0ODw==', [secretError('secrets must be base64 encoded')]],
    ['a trailing space inside quotes: refused', '"AAECAwQFBgcICQoLDA0ODw== "', [secretError('secrets must be base64 encoded')]],
  ])('a secret written over several YAML lines, %s', (_name, scalar, messages) => {
    const yaml = entry(['secrets'], `  - aescbc:\n      keys:\n      - name: k\n        secret: ${scalar}\n`)
    expect(check(yaml).messages).toEqual(messages)
  })

  it('reports an empty name and goes on to check the secret', () => {
    expect(check(entry(['secrets'], aescbc('AAEC', ''))).messages).toEqual([
      'resources[0].providers[0].aescbc.keys[0].name: Required value: name is a mandatory field for a key',
      'resources[0].providers[0].aescbc.keys[0].secret: Invalid value: "REDACTED": secret is not of the expected length, got 3, expected one of [16 24 32]',
    ])
  })

  it.each([
    ['aescbc', 16, true],
    ['aescbc', 24, true],
    ['aescbc', 32, true],
    ['aesgcm', 16, true],
    ['aesgcm', 24, true],
    ['aesgcm', 32, true],
    ['secretbox', 32, true],
    ['secretbox', 16, false],
    ['secretbox', 24, false],
  ])('%s accepts a %d-byte key: %s', (type, size, ok) => {
    const yaml = entry(['secrets'], `  - ${type}:\n      keys:\n      - {name: k, secret: "${Buffer.alloc(size, 7).toString('base64')}"}\n`)
    const expected = type === 'secretbox' ? '[32]' : '[16 24 32]'
    expect(check(yaml).messages).toEqual(
      ok ? [] : [`resources[0].providers[0].${type}.keys[0].secret: Invalid value: "REDACTED": secret is not of the expected length, got ${size}, expected one of ${expected}`],
    )
  })

  it('accepts duplicate key names and names with ":" (warnings only)', () => {
    const yaml = entry(['secrets'], `  - secretbox:\n      keys:\n      - {name: "a:b", secret: "${K32}"}\n      - {name: "a:b", secret: "${K32}"}\n`)
    const result = check(yaml)
    expect(result.messages).toEqual([])
    expect(result.warnings.join('\n')).toContain('duplicate key name "a:b"')
    expect(result.warnings.join('\n')).toContain('contains \':\'')
  })
})

describe('kms (docs/kubernetes-behaviour.md §6.5)', () => {
  const p = 'resources[0].providers[0].kms'
  const ok = 'endpoint: "unix:///run/kms.sock"'
  it.each([
    ['name missing', kms(`apiVersion: v2, ${ok}`), [`${p}.name: Required value: name is a mandatory field for a provider`]],
    ['v2 name with ":"', kms(`apiVersion: v2, name: "a:b", ${ok}`), [`${p}.name: Invalid value: "a:b": invalid KMS provider name a:b, must not contain ':'`]],
    ['negative timeout', kms(`apiVersion: v2, name: a, ${ok}, timeout: -1s`), [`${p}.timeout: Invalid value: "-1s": timeout should be a positive value`]],
    ['zero timeout in ms', kms(`apiVersion: v2, name: a, ${ok}, timeout: 0ms`), [`${p}.timeout: Invalid value: "0s": timeout should be a positive value`]],
    ['timeout rendered as Go prints it', kms(`apiVersion: v2, name: a, ${ok}, timeout: -1500ms`), [`${p}.timeout: Invalid value: "-1.5s": timeout should be a positive value`]],
    ['endpoint empty', kms('apiVersion: v2, name: a'), [`${p}.endpoint: Invalid value: "": endpoint is a mandatory field for a kms`]],
    ['endpoint scheme tcp', kms('apiVersion: v2, name: a, endpoint: "tcp://127.0.0.1:9000"'), [`${p}.endpoint: Invalid value: "tcp://127.0.0.1:9000": unsupported scheme "tcp" for KMS provider, only unix is supported`]],
    ['endpoint without scheme', kms('apiVersion: v2, name: a, endpoint: "/run/kms.sock"'), [`${p}.endpoint: Invalid value: "/run/kms.sock": unsupported scheme "" for KMS provider, only unix is supported`]],
    ['endpoint with a control character', kms('apiVersion: v2, name: a, endpoint: "unix:///x\\ty"'), [`${p}.endpoint: Invalid value: "unix:///x\\ty": invalid endpoint for kms provider, error: parse "unix:///x\\ty": net/url: invalid control character in URL`]],
    ['endpoint with an unclosed IPv6 host', kms('apiVersion: v2, name: a, endpoint: "unix://[::1/k.sock"'), [`${p}.endpoint: Invalid value: "unix://[::1/k.sock": invalid endpoint for kms provider, error: parse "unix://[::1/k.sock": missing ']' in host`]],
    ['endpoint with a bad port', kms('apiVersion: v2, name: a, endpoint: "unix://host:sock/k"'), [`${p}.endpoint: Invalid value: "unix://host:sock/k": invalid endpoint for kms provider, error: parse "unix://host:sock/k": invalid port ":sock" after host`]],
    ['endpoint with a space in the host', kms('apiVersion: v2, name: a, endpoint: "unix://my host/k"'), [`${p}.endpoint: Invalid value: "unix://my host/k": invalid endpoint for kms provider, error: parse "unix://my host/k": invalid character " " in host name`]],
    ['endpoint with a bad escape in the path', kms('apiVersion: v2, name: a, endpoint: "unix:///run/%zz.sock"'), [`${p}.endpoint: Invalid value: "unix:///run/%zz.sock": invalid endpoint for kms provider, error: parse "unix:///run/%zz.sock": invalid URL escape "%zz"`]],
    ['endpoint starting with ":"', kms('apiVersion: v2, name: a, endpoint: ":/run/kms.sock"'), [`${p}.endpoint: Invalid value: ":/run/kms.sock": invalid endpoint for kms provider, error: parse ":/run/kms.sock": missing protocol scheme`]],
    ['endpoint whose first segment has a colon', kms('apiVersion: v2, name: a, endpoint: "1unix:/run/kms.sock"'), [`${p}.endpoint: Invalid value: "1unix:/run/kms.sock": invalid endpoint for kms provider, error: parse "1unix:/run/kms.sock": first path segment in URL cannot contain colon`]],
    ['a control character before a fragment: Go quotes the URL without the fragment', kms('apiVersion: v2, name: a, endpoint: "unix:///x\\ty#f"'), [`${p}.endpoint: Invalid value: "unix:///x\\ty#f": invalid endpoint for kms provider, error: parse "unix:///x\\ty": net/url: invalid control character in URL`]],
    ['a bad escape in the fragment: Go quotes the whole URL', kms('apiVersion: v2, name: a, endpoint: "unix:///x#%zz"'), [`${p}.endpoint: Invalid value: "unix:///x#%zz": invalid endpoint for kms provider, error: parse "unix:///x#%zz": invalid URL escape "%zz"`]],
    ['cachesize in v2', kms(`apiVersion: v2, name: a, ${ok}, cachesize: 10`), [`${p}.cachesize: Invalid value: 10: cachesize is not supported in v2`]],
    ['cachesize 0 in v1', kms(`apiVersion: v1, name: a, ${ok}, cachesize: 0`), [`${p}.cachesize: Invalid value: 0: cachesize should be a positive value, or negative to disable`]],
    ['apiVersion v3', kms(`apiVersion: v3, name: a, ${ok}, cachesize: 5`), [`${p}.cachesize: Invalid value: 5: cachesize is not supported in v2`, `${p}.apiVersion: Invalid value: "v3": unsupported apiVersion apiVersion for KMS provider, only v1 and v2 are supported`]],
  ])('%s', (_name, providers, messages) => {
    expect(check(entry(['secrets'], providers), {featureGates: {KMSv1: true}}).messages).toEqual(messages)
  })

  it.each([
    ['v1 name with ":" is allowed', kms(`apiVersion: v1, name: "a:b", ${ok}`)],
    ['negative cachesize disables the v1 cache', kms(`name: a, ${ok}, cachesize: -1`)],
    ['abstract socket', kms('apiVersion: v2, name: a, endpoint: "unix:///@kms"')],
    ['scheme is case-insensitive', kms('apiVersion: v2, name: a, endpoint: "UNIX:///run/kms.sock"')],
    ['the query is not checked (Go keeps it raw)', kms('apiVersion: v2, name: a, endpoint: "unix:///run/kms.sock?x=%zz"')],
    ['unix://@name (host after an empty userinfo)', kms('apiVersion: v2, name: a, endpoint: "unix://@kms"')],
    ['a rootless unix: path is opaque', kms('apiVersion: v2, name: a, endpoint: "unix:kms.sock"')],
  ])('%s', (_name, providers) => {
    expect(check(entry(['secrets'], providers), {featureGates: {KMSv1: true}}).messages).toEqual([])
  })

  const twoEntries = (v1: string, v2: string) =>
    `${head}resources:\n- resources: [secrets]\n  providers:\n${kms(`apiVersion: ${v1}, name: same, ${ok}`)}- resources: [configmaps]\n  providers:\n${kms(`apiVersion: ${v2}, name: same, ${ok}`)}`
  const dup = 'resources[1].providers[0].kms.name: Invalid value: "same": duplicate KMS provider name same, names must be unique'

  it.each([
    ['v1 then v1, no reload', 'v1', 'v1', false, []],
    ['v1 then v1, reload', 'v1', 'v1', true, [dup]],
    ['v2 then v1, no reload', 'v2', 'v1', false, []],
    ['v1 then v2, no reload', 'v1', 'v2', false, [dup]],
    ['v2 then v2, no reload', 'v2', 'v2', false, [dup]],
  ])('duplicate names: %s', (_name, a, b, reload, messages) => {
    expect(check(twoEntries(a, b), {automaticReload: reload, featureGates: {KMSv1: true}}).messages).toEqual(messages)
  })

  it('a second nameless v2 provider is also a duplicate (of "")', () => {
    const yaml = entry(['secrets'], `${kms(`apiVersion: v2, ${ok}`)}${kms(`apiVersion: v2, ${ok}`)}`)
    expect(check(yaml).messages).toEqual([
      `${p}.name: Required value: name is a mandatory field for a provider`,
      'resources[0].providers[1].kms.name: Required value: name is a mandatory field for a provider',
      'resources[0].providers[1].kms.name: Invalid value: "": duplicate KMS provider name , names must be unique',
    ])
  })

  it('the same v2 name in two providers of one entry is a duplicate too', () => {
    const yaml = entry(['secrets'], `${kms(`apiVersion: v2, name: a, ${ok}`)}${kms(`apiVersion: v2, name: a, ${ok}`)}`)
    expect(check(yaml).messages).toEqual(['resources[0].providers[1].kms.name: Invalid value: "a": duplicate KMS provider name a, names must be unique'])
  })

  it('applies defaults before validation: v1 gets cachesize 1000, every kms a 3s timeout (docs/kubernetes-behaviour.md §5.4)', () => {
    const parsed = parseEncryptionConfig(entry(['secrets'], kms(`name: a, ${ok}`)))
    expect(parsed.config?.resources[0]?.providers[0]?.kms).toEqual({name: 'a', endpoint: 'unix:///run/kms.sock', apiVersion: 'v1', cachesize: 1000, timeout: '3s'})
    const v2 = parseEncryptionConfig(entry(['secrets'], kms(`apiVersion: v2, name: a, ${ok}`)))
    expect(v2.config?.resources[0]?.providers[0]?.kms?.cachesize).toBeUndefined()
  })
})

describe('build checks: masking and the KMSv1 gate (docs/kubernetes-behaviour.md §6.6)', () => {
  const two = (a: string[], b: string[]) =>
    `${head}resources:\n- resources: ${JSON.stringify(a)}\n  providers: [{identity: {}}]\n- resources: ${JSON.stringify(b)}\n  providers: [{identity: {}}]\n`
  it.each([
    [['*.'], ['secrets'], 'resource "secrets" is masked by earlier rule "*."'],
    [['*.*'], ['*.'], 'resource "*." is masked by earlier rule "*.*"'],
    [['*.foo'], ['*.foo'], 'resource "*.foo" is masked by earlier rule "*.foo"'],
    [['*.*'], ['*.*'], 'resource "*.*" is masked by earlier rule "*.*"'],
    [['*.apps'], ['deployments.apps'], 'resource "deployments.apps" is masked by earlier rule "*.apps"'],
    [['*.*'], ['deployments.apps'], 'resource "deployments.apps" is masked by earlier rule "*.*"'],
    [['*.'], ['secrets.'], 'resource "secrets" is masked by earlier rule "*."'],
    [['*.*'], ['pandas.awesome.bears.example'], 'resource "pandas.awesome.bears.example" is masked by earlier rule "*.*"'],
  ])('%j then %j', (a, b, message) => {
    const {errors} = check(two(a, b))
    expect(errors.map((e) => e.message)).toEqual([message])
    expect(errors.map((e) => e.type)).toEqual(['Build'])
    expect(apiserverMessage(errors)).toBe(`error while building transformers: ${message}`)
  })

  it.each([
    [['secrets'], ['*.']],
    [['secrets'], ['*.*']],
    [['*.apps'], ['*.']],
    [['*.'], ['*.apps']],
    [['*.apps'], ['*.*']],
    [['*.', 'configmaps.apps'], ['*.*']],
  ])('the converse order is allowed: %j then %j (with a warning)', (a, b) => {
    const result = check(two(a, b))
    expect(result.messages).toEqual([])
    if (a[0] === 'secrets') expect(result.warnings.join('\n')).toContain('never apply to it')
  })

  const v1 = entry(['secrets'], kms('name: a, endpoint: "unix:///k.sock"'))
  const gate = 'KMSv1 is deprecated and will only receive security updates going forward. Use KMSv2 instead.  Set --feature-gates=KMSv1=true to use the deprecated KMSv1 feature.'
  it.each([
    ['1.36 default', {}, [gate]],
    ['1.29', {targetVersion: {major: 1, minor: 29}}, [gate]],
    ['1.28', {targetVersion: {major: 1, minor: 28}}, []],
    ['1.36 with KMSv1=true', {featureGates: {KMSv1: true}}, []],
  ] as Array<[string, ValidateOptions, string[]]>)('KMS v1 at %s', (_name, options, messages) => {
    expect(check(v1, options).messages).toEqual(messages)
  })

  it('stops at the first masked resource, in file order', () => {
    const yaml = `${head}resources:\n- resources: ["*."]\n  providers: [{identity: {}}]\n- resources: [configmaps]\n  providers: [{identity: {}}]\n- resources: [secrets]\n  providers: [{identity: {}}]\n`
    expect(check(yaml).messages).toEqual(['resource "configmaps" is masked by earlier rule "*."'])
  })

  it('runs the build checks only when validation passed', () => {
    const yaml = `${head}resources:\n- resources: ["*."]\n  providers: [{identity: {}}]\n- resources: [secrets]\n  providers: []\n`
    expect(check(yaml).messages).toEqual(['resources[1].providers: Required value: at least one resources[1].providers is required'])
  })
})

describe('release gates for --target-version (docs/kubernetes-behaviour.md §15)', () => {
  const at = (minor: number): ValidateOptions => ({targetVersion: {major: 1, minor}, featureGates: {KMSv1: true, KMSv2: true}})

  it('the resource-list and resource-string rules came with wildcards in 1.27', () => {
    const yaml = entry(['Secrets', 'configmaps', 'configmaps.', 'apiserveripinfo', 'foo.extensions'], aescbc(K32))
    expect(check(yaml, at(26)).messages).toEqual([])
    expect(check(yaml, at(27)).messages).toEqual([
      `resources[0].resources: Invalid value: ${JSON.stringify(['Secrets', 'configmaps', 'configmaps.', 'apiserveripinfo', 'foo.extensions'])}: ${DUP}`,
      'resources[0].resources[0]: Invalid value: "Secrets": resource name should not contain capital letters',
      'resources[0].resources[3]: Invalid value: "apiserveripinfo": resources which do not have REST API/s cannot be encrypted',
      `resources[0].resources[4]: Invalid value: "foo.extensions": 'extensions' group has been removed and cannot be used for encryption`,
    ])
    // 1.26 does not refuse the capital letters, but nothing matches them.
    expect(check(yaml, at(26)).warnings.join('\n')).toContain('"Secrets" matches nothing')
  })

  it('masking is checked from 1.27; before, the wildcard itself is the problem', () => {
    const yaml = `${head}resources:\n- resources: ["*."]\n  providers: [{identity: {}}]\n- resources: [secrets]\n  providers: [{identity: {}}]\n`
    expect(check(yaml, at(27)).messages).toEqual(['resource "secrets" is masked by earlier rule "*."'])
    expect(check(yaml, at(26)).messages).toEqual([expect.stringContaining('wildcard "*." needs Kubernetes 1.27 or newer')])
  })

  it('unique KMS v2 names are enforced from 1.26', () => {
    const yaml = entry(['secrets'], `${kms('apiVersion: v2, name: a, endpoint: "unix:///k"')}${kms('apiVersion: v2, name: a, endpoint: "unix:///k"')}`)
    expect(check(yaml, at(25)).messages).toEqual([])
    expect(check(yaml, at(26)).messages).toEqual([expect.stringContaining('duplicate KMS provider name a')])
  })

  it('a build error and a release gate are both in the message', () => {
    const yaml = `${head}resources:\n- resources: [secrets]\n  providers: [{kms: {name: a, endpoint: "unix:///k"}}]\n`
    const {errors} = check(yaml, {targetVersion: {major: 1, minor: 25}, automaticReload: true, featureGates: {KMSv1: false}})
    expect(errors.map((e) => e.type)).toEqual(['Build', 'Unsupported'])
    expect(apiserverMessage(errors)).toMatch(/^error while building transformers: KMSv1 is deprecated.*; --encryption-provider-config-automatic-reload needs Kubernetes 1\.26/)
  })

  it('wildcards need 1.27', () => {
    const yaml = entry(['*.*'], aescbc(K32))
    expect(check(yaml, {targetVersion: {major: 1, minor: 27}}).messages).toEqual([])
    const detail = 'wildcard "*.*" needs Kubernetes 1.27 or newer; Kubernetes 1.26 treats it as a resource named "*" and encrypts nothing with it'
    // Like a field error: the path is the field, the detail does not repeat it, the message leads with it.
    expect(check(yaml, {targetVersion: {major: 1, minor: 26}}).errors).toEqual([
      {field: 'resources[0].resources[0]', type: 'Unsupported', detail, message: `resources[0].resources[0]: ${detail}`},
    ])
  })

  it('KMS v2 needs 1.25, and its alpha gate before 1.27', () => {
    const yaml = entry(['secrets'], kms('apiVersion: v2, name: a, endpoint: "unix:///k.sock"'))
    expect(check(yaml, {targetVersion: {major: 1, minor: 24}}).messages).toEqual([expect.stringContaining('KMS v2 needs Kubernetes 1.25')])
    expect(check(yaml, {targetVersion: {major: 1, minor: 26}}).messages).toEqual([expect.stringContaining('--feature-gates=KMSv2=true')])
    expect(check(yaml, {targetVersion: {major: 1, minor: 26}, featureGates: {KMSv2: true}}).messages).toEqual([])
    expect(check(yaml, {targetVersion: {major: 1, minor: 27}}).messages).toEqual([])
    expect(check(yaml, {targetVersion: {major: 1, minor: 28}, featureGates: {KMSv2: false}}).messages).toEqual([
      'resources[0].providers[0].kms.apiVersion: KMS v2 is turned off by --feature-gates KMSv2=false (target: Kubernetes 1.28)',
    ])
    // The gate is gone from 1.32 (KMS v2 always on).
    expect(check(yaml, {featureGates: {KMSv2: false}}).messages).toEqual([])
  })

  it('automatic reload needs 1.26', () => {
    const yaml = entry(['secrets'], aescbc(K32))
    expect(check(yaml, {targetVersion: {major: 1, minor: 25}, automaticReload: true}).messages).toEqual([expect.stringContaining('automatic-reload needs Kubernetes 1.26')])
  })

  it('custom resources before 1.26 are a warning (the group might be built in)', () => {
    const yaml = entry(['pandas.awesome.bears.example'], aescbc(K32))
    expect(check(yaml, {targetVersion: {major: 1, minor: 25}}).warnings.join('\n')).toContain('custom resources can be encrypted from Kubernetes 1.26')
    expect(check(yaml, {targetVersion: {major: 1, minor: 26}}).warnings.join('\n')).not.toContain('custom resources')
  })
})

describe('strict decoding (docs/kubernetes-behaviour.md §5.2)', () => {
  const decode = (text: string) => check(text).messages
  const file = '"/etc/kubernetes/enc/config.yaml"'
  it.each([
    ['an unknown field', entry(['secrets'], kms('name: a, endpoint: "unix:///k", pandas: 1')), `error decoding encryption provider configuration file ${file}: strict decoding error: unknown field "resources[0].providers[0].kms.pandas"`],
    ['a case-mismatched field', entry(['secrets'], kms('name: a, endpoint: "unix:///k", cacheSize: 1')), `error decoding encryption provider configuration file ${file}: strict decoding error: unknown field "resources[0].providers[0].kms.cacheSize"`],
    ['a key as a field name, never printed (a lost "secret:" line)', entry(['secrets'], `  - secretbox:\n      keys: [{name: k, "${K32}": x}]\n`), `error decoding encryption provider configuration file ${file}: strict decoding error: unknown field "resources[0].providers[0].secretbox.keys[0].REDACTED"`],
    ['an unknown top-level field', `${head}resource: []\n`, `error decoding encryption provider configuration file ${file}: strict decoding error: unknown field "resource"`],
    ['fields inside identity', entry(['secrets'], '  - identity: {foo: 1}\n'), `error decoding encryption provider configuration file ${file}: strict decoding error: unknown field "resources[0].providers[0].identity.foo"`],
    ['a duplicate YAML key', `${head}resources:\n- resources: [secrets]\n  resources: [configmaps]\n  providers: [{identity: {}}]\n`, `error decoding encryption provider configuration file ${file}: strict decoding error: yaml: unmarshal errors:\n  line 5: key "resources" already set in map`],
    ['a duplicate JSON key', '{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","kind":"EncryptionConfiguration","resources":[]}', `error decoding encryption provider configuration file ${file}: strict decoding error: duplicate field "kind"`],
    ['a wrong kind', 'apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfigurations\n', `error decoding encryption provider configuration file ${file}: no kind "EncryptionConfigurations" is registered for version "apiserver.config.k8s.io/v1" in scheme "pkg/runtime/scheme.go:111"`],
    ['the new kind with the legacy version', 'apiVersion: v1\nkind: EncryptionConfiguration\n', `error decoding encryption provider configuration file ${file}: no kind "EncryptionConfiguration" is registered for version "v1" in scheme "pkg/runtime/scheme.go:111"`],
    ['no apiVersion', 'kind: EncryptionConfiguration\nresources: []\n', `error decoding encryption provider configuration file ${file}: Object 'apiVersion' is missing in the file (content not shown)`],
    ['the legacy kind with the new version', 'apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfig\n', `error decoding encryption provider configuration file ${file}: no kind "EncryptionConfig" is registered for version "apiserver.config.k8s.io/v1" in scheme "pkg/runtime/scheme.go:111"`],
    ['a list instead of a string list', `${head}resources:\n- resources: secrets\n`, `error decoding encryption provider configuration file ${file}: json: cannot unmarshal string into Go struct field ResourceConfiguration.resources.resources of type []string`],
    ['a number as a secret', entry(['secrets'], '  - aescbc:\n      keys: [{name: k, secret: 1234}]\n'), `error decoding encryption provider configuration file ${file}: json: cannot unmarshal number into Go struct field Key.resources.providers.aescbc.keys.secret of type string`],
    ['a YAML 1.1 boolean as a name', entry(['secrets'], '  - aescbc:\n      keys: [{name: yes, secret: "x"}]\n'), `error decoding encryption provider configuration file ${file}: json: cannot unmarshal bool into Go struct field Key.resources.providers.aescbc.keys.name of type string`],
    ['a bad duration', entry(['secrets'], kms('name: a, endpoint: "unix:///k", timeout: 3')), `error decoding encryption provider configuration file ${file}: json: cannot unmarshal number into Go struct field KMSConfiguration.resources.providers.kms.timeout of type string`],
    ['a duration without unit', entry(['secrets'], kms('name: a, endpoint: "unix:///k", timeout: "3"')), `error decoding encryption provider configuration file ${file}: time: missing unit in duration "3"`],
    ['a fractional cachesize', entry(['secrets'], kms('name: a, endpoint: "unix:///k", cachesize: 1.5')), `error decoding encryption provider configuration file ${file}: json: cannot unmarshal number 1.5 into Go struct field KMSConfiguration.resources.providers.kms.cachesize of type int32`],
  ])('%s', (_name, text, message) => {
    expect(decode(text)).toEqual([message])
  })

  it('JSON: duplicate and unknown fields in document order, also inside a value a later duplicate replaces', () => {
    const text = JSON.stringify({apiVersion: 'apiserver.config.k8s.io/v1', kind: 'EncryptionConfiguration', resources: [{resources: ['secrets'], providers: [{identity: {}}]}]})
      .replace('"resources":[{', '"pandas":1,"resources":[{"bears":2},{')
      .replace('"resources":["secrets"]', '"resources":["secrets"],"resources":["configmaps"]')
    expect(check(text).messages).toEqual([
      `error decoding encryption provider configuration file ${file}: strict decoding error: unknown field "pandas", unknown field "resources[0].bears", duplicate field "resources[1].resources"`,
    ])
    const replaced = '{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","resources":[{"x":1}],"resources":[]}'
    expect(check(replaced).messages).toEqual([
      `error decoding encryption provider configuration file ${file}: strict decoding error: unknown field "resources[0].x", duplicate field "resources"`,
    ])
  })

  const json = '{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","resources":[{"resources":["secrets"],"providers":[{"secretbox":{"keys":[{"name":"k","secret":"SECRET"'
  it.each([
    ['text after a value', `${json} oops}]}}]}]}`, `invalid character 'o' after object key:value pair`],
    ['a trailing comma', `${json},}]}}]}]}`, `invalid character '}' looking for beginning of object key string`],
    ['a truncated file', json, 'unexpected end of JSON input'],
    ['single quotes', "{'kind': 'EncryptionConfiguration'}", `invalid character '\\'' looking for beginning of object key string`],
    ['a raw tab inside a string', '{"kind": "Encryption\tConfiguration"}', `invalid character '\\t' in string literal`],
    ['a bad literal', '{"kind": tru}', `invalid character '}' in literal true (expecting 'e')`],
    ['garbage after the document', '{"kind": "EncryptionConfiguration"} x', `invalid character 'x' after top-level value`],
  ])('broken JSON, %s: Go\'s syntax error, never a snippet of the file', (_name, text, detail) => {
    const messages = check(text.replace('SECRET', K32)).messages
    expect(messages).toEqual([`error decoding encryption provider configuration file ${file}: couldn't get version/kind; json parse error: ${detail}`])
    expect(messages.join()).not.toContain(K32.slice(0, 8))
  })

  it.each([
    ['a NUL byte', Buffer.from(`${head}resources: []\n\0`), 'yaml: control characters are not allowed'],
    ['DEL', Buffer.from(`${head}resources: [\x7f]\n`), 'yaml: control characters are not allowed'],
    ['a stray UTF-8 continuation byte', Buffer.concat([Buffer.from(head), Buffer.from([0x80, 0x0a])]), 'yaml: invalid leading UTF-8 octet'],
    ['a cut UTF-8 sequence', Buffer.concat([Buffer.from(head), Buffer.from([0xc3])]), 'yaml: incomplete UTF-8 octet sequence'],
    ['a bad trailing byte', Buffer.concat([Buffer.from(head), Buffer.from([0xe2, 0x28, 0xa1])]), 'yaml: invalid trailing UTF-8 octet'],
    ['an overlong encoding', Buffer.concat([Buffer.from(head), Buffer.from([0xc0, 0xaf])]), 'yaml: invalid length of a UTF-8 sequence'],
    ['an encoded surrogate', Buffer.concat([Buffer.from(head), Buffer.from([0xed, 0xa0, 0x80])]), 'yaml: invalid Unicode character'],
  ])('YAML with %s fails in go-yaml\'s reader', (_name, bytes, detail) => {
    const parsed = parseEncryptionConfig(bytes, '/etc/kubernetes/enc/config.yaml')
    expect(parsed.errors.map((e) => e.message)).toEqual([`error decoding encryption provider configuration file ${file}: ${detail}`])
  })

  it('reads JSON after a byte order mark as YAML, as the apiserver does (it is not a space to Go)', () => {
    const doc = JSON.stringify({apiVersion: 'apiserver.config.k8s.io/v1', kind: 'EncryptionConfiguration', resources: [{resources: ['secrets'], providers: [{identity: {}}]}]})
    expect(parseEncryptionConfig(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(doc)])).errors).toEqual([])
    // On the JSON path a duplicate is `duplicate field`; after a BOM it is go-yaml's message.
    const dup = doc.replace('"kind"', '"kind":"EncryptionConfiguration","kind"')
    expect(parseEncryptionConfig(dup).errors[0]?.message).toContain('strict decoding error: duplicate field "kind"')
    expect(parseEncryptionConfig(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(dup)])).errors[0]?.message).toContain('key "kind" already set in map')
  })

  it('accepts a UTF-8 byte order mark, NEL and non-ASCII text in YAML', () => {
    const parsed = parseEncryptionConfig(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${head}# clé \u0085\nresources: []\n`)]))
    expect(parsed.errors).toEqual([])
  })

  it('an error from a duration (its own UnmarshalJSON) stops decoding and wins over an earlier type error', () => {
    const yaml = entry(['secrets'], `${kms('name: a, endpoint: "unix:///k", cachesize: "x"')}${kms('name: b, endpoint: "unix:///k", timeout: 3x')}`)
    expect(check(yaml).messages).toEqual([`error decoding encryption provider configuration file ${file}: time: unknown unit "x" in duration "3x"`])
  })

  it('accepts the legacy apiVersion v1 / kind EncryptionConfig pair, and JSON', () => {
    expect(check(`apiVersion: v1\nkind: EncryptionConfig\nresources:\n- resources: [secrets]\n  providers: [{identity: {}}]\n`).messages).toEqual([])
    const json = JSON.stringify({apiVersion: 'apiserver.config.k8s.io/v1', kind: 'EncryptionConfiguration', resources: [{resources: ['secrets'], providers: [{secretbox: {keys: [{name: 'k', secret: K32}]}}]}]})
    expect(check(json).messages).toEqual([])
  })

  it('never echoes the file content when kind is missing or JSON is broken', () => {
    const missing = check(`resources:\n- providers: [{aescbc: {keys: [{name: k, secret: "${K32}"}]}}]\n`).messages.join()
    expect(missing).toContain("Object 'Kind' is missing")
    expect(missing).not.toContain(K32)
    const broken = check(`{"kind": "EncryptionConfiguration", "secret": "${K32}" oops}`).messages.join()
    expect(broken).toContain("couldn't get version/kind; json parse error")
    expect(broken).not.toContain(K32)
  })

  it('wraps decode and validation errors like the apiserver, joining several as [e1, e2]', () => {
    const yaml = entry([], aescbc('AAEC'))
    const result = check(yaml)
    expect(apiserverMessage(result.errors)).toBe(
      'error while parsing file: [resources[0].resources: Required value: at least one resources[0].resources is required, resources[0].providers[0].aescbc.keys[0].secret: Invalid value: "REDACTED": secret is not of the expected length, got 3, expected one of [16 24 32]]',
    )
  })

  it('makes no message when there is no error (not "[]")', () => {
    expect(apiserverMessage([])).toBe('')
  })

  it('de-duplicates identical messages', () => {
    const yaml = `${head}resources:\n- resources: ["*", "*"]\n  providers: [{identity: {}}]\n`
    expect(check(yaml).messages.filter((m) => m.includes("use '*.'"))).toHaveLength(2)
    // Different paths make different messages; the aggregate only drops exact repeats.
    const same = `${head}resources:\n- resources: ["*.*", "*.*", "*.*"]\n  providers: [{identity: {}}]\n`
    expect(check(same).messages).toHaveLength(2)
  })
})
