/** `kubectl encryption config validate|generate` through bin/run.js, as a user runs them. */
import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {afterAll, describe, expect, it} from 'vitest'

const run = promisify(execFile)
const bin = new URL('../../bin/run.js', import.meta.url).pathname
const vectorsConfig = new URL('../fixtures/vectors/encryption-config.yaml', import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), 'config-cli-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

async function plugin(...args: string[]) {
  return pluginAs({}, ...args)
}

/** Runs the CLI, optionally as another user (`{uid, gid}`), the way a non-root operator would. */
async function pluginAs(user: {uid?: number; gid?: number}, ...args: string[]) {
  try {
    const {stdout, stderr} = await run(process.execPath, [bin, ...args], {
      cwd: user.uid === undefined ? dir : tmpdir(),
      ...user,
    })
    return {code: 0, stdout, stderr}
  } catch (error) {
    const e = error as {code: number; stdout: string; stderr: string}
    return {code: e.code, stdout: e.stdout, stderr: e.stderr}
  }
}

const file = (name: string, content: string | Buffer) => {
  const path = join(dir, name)
  writeFileSync(path, content)
  return path
}

const SECRET = 'AAECAwQFBgcICQoLDA0OD_=='

// Each case spawns the CLI (0.4 s of CPU); on a loaded machine wall time is many times that.
describe('kubectl encryption config validate', {timeout: 120_000}, () => {
  it('accepts the vectors configuration: exit 0, the raw-bytes hash, warnings on stderr', async () => {
    const r = await plugin('config', 'validate', vectorsConfig, '-o', 'json')
    expect(r.code).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc).toMatchObject({valid: true, errors: [], targetVersion: '1.36'})
    // A valid file has no error message at all (not "" and not "[]"): the keys a script sees.
    expect(Object.keys(doc)).toEqual(['valid', 'file', 'hash', 'targetVersion', 'errors', 'warnings'])
    expect(doc.hash).toBe(`sha256:${createHash('sha256').update(readFileSync(vectorsConfig)).digest('hex')}`)
    expect(doc.warnings).toEqual(expect.arrayContaining([expect.stringContaining('aescbc is weak')]))
    const table = await plugin('config', 'validate', vectorsConfig)
    expect(table.stdout).toMatch(/^Valid:\s+yes$/m)
    expect(table.stderr).toContain('Warning: resources[0].providers[1].aescbc: aescbc is weak')
  })

  it.each([
    [
      'a missing file',
      () => join(dir, 'missing.yaml'),
      'Read',
      'open ' + join(dir, 'missing.yaml') + ': no such file or directory',
    ],
    ['an empty file', () => file('empty.yaml', ''), 'Read', 'is empty'],
    [
      'a YAML syntax error',
      () => file('syntax.yaml', 'apiVersion: apiserver.config.k8s.io/v1\nkind: [\n'),
      'Decode',
      ': yaml: line ',
    ],
    [
      'binary garbage',
      () => file('garbage.bin', Buffer.from([0x00, 0xff, 0x13, 0x37, 0x80, 0x0a, 0x7b])),
      'Decode',
      'error decoding encryption provider configuration file',
    ],
    [
      'a wrong kind',
      () => file('kind.yaml', 'apiVersion: apiserver.config.k8s.io/v1\nkind: Secret\n'),
      'Decode',
      'no kind "Secret" is registered for version "apiserver.config.k8s.io/v1"',
    ],
    [
      'a directory',
      () => (mkdirSync(join(dir, 'a-dir'), {recursive: true}), join(dir, 'a-dir')),
      'Read',
      `read ${join(dir, 'a-dir')}: is a directory`,
    ],
    [
      'a file name that is too long',
      () => join(dir, 'x'.repeat(300)),
      'Read',
      `open ${join(dir, 'x'.repeat(300))}: file name too long`,
    ],
    [
      'a path through a file',
      () => join(file('plain.yaml', 'x'), 'enc.yaml'),
      'Read',
      `open ${join(dir, 'plain.yaml', 'enc.yaml')}: not a directory`,
    ],
    [
      'broken JSON',
      () => file('broken.json', '{"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",}'),
      'Decode',
      `json parse error: invalid character '}' looking for beginning of object key string`,
    ],
  ])('rejects %s with exit 3, a clear message and nothing written', async (_name, make, type, text) => {
    const path = make()
    const before = readdirSync(dir).sort()
    const r = await plugin('config', 'validate', path, '-o', 'json')
    expect(r.code).toBe(3)
    const doc = JSON.parse(r.stdout)
    expect(doc.valid).toBe(false)
    expect(doc.errors[0].type).toBe(type)
    expect(doc.message).toContain(text)
    expect(readdirSync(dir).sort()).toEqual(before)
    const table = await plugin('config', 'validate', path)
    expect(table.code).toBe(3)
    expect(table.stdout).toMatch(/^Valid:\s+NO$/m)
    expect(table.stdout).toContain(text)
  })

  it('rejects an unreadable file with exit 3 and Go\'s "permission denied"', async (ctx) => {
    const path = file('unreadable.yaml', readFileSync(vectorsConfig))
    chmodSync(path, 0o000)
    // root reads anything: run as nobody, if the CLI can start as nobody here.
    const user = process.getuid?.() === 0 ? {uid: 65534, gid: 65534} : {}
    if (user.uid !== undefined && (await pluginAs(user, '--version')).code !== 0) ctx.skip()
    const r = await pluginAs(user, 'config', 'validate', path, '-o', 'json')
    expect(r.code).toBe(3)
    const doc = JSON.parse(r.stdout)
    expect(doc.errors).toEqual([
      {
        field: '',
        type: 'Read',
        detail: `error reading encryption provider configuration file "${path}": open ${path}: permission denied`,
      },
    ])
    expect(doc.message).toBe(`error while parsing file: error while loading file: ${doc.errors[0].detail}`)
  })

  it('never prints key material, whatever is wrong with the file, in any output format', async () => {
    const k = Buffer.from('0123456789abcdef0123456789ABCDEF').toString('base64') // 32 bytes
    const head =
      'apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n'
    const cases = {
      'valid-with-warnings.yaml': `${head}  - aescbc: {keys: [{name: k, secret: "${k}"}, {name: k, secret: "${k}"}]}\n`,
      'two-types.yaml': `${head}  - aescbc: {keys: [{name: k, secret: "${k}"}]}\n    secretbox: {keys: [{name: k, secret: "${k}"}]}\n`,
      'wrong-length.yaml': `${head}  - secretbox: {keys: [{name: k, secret: "${k.slice(0, 24)}"}]}\n`,
      'unpadded.yaml': `${head}  - secretbox: {keys: [{name: k, secret: "${k.replace(/=+$/, '')}"}]}\n`,
      'unknown-field.yaml': `${head}  - secretbox: {keys: [{name: k, secret: "${k}", secrett: "${k}"}]}\n`,
      // The key slipped into a field name (a lost 'secret:' line); the apiserver would echo the name.
      'key-as-field.yaml': `${head}  - secretbox: {keys: [{name: k, "${k}": x}]}\n`,
      'key-as-field.json': `{"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration", "resources": [{"resources": ["secrets"], "providers": [{"secretbox": {"keys": [{"name": "k", "${k}": "x"}]}}]}]}`,
      'syntax.yaml': `${head}  - secretbox: {keys: [{name: k, secret: "${k}" ]}\n`,
      'broken.json': `{"kind": "EncryptionConfiguration", "resources": [{"providers": [{"secretbox": {"keys": [{"name": "k1", "secret": ${k}}]}}]}]}`,
      'garbage.yaml': Buffer.concat([
        Buffer.from(`${head}  - secretbox: {keys: [{name: k, secret: "${k}"}]}\n`),
        Buffer.from([0, 1, 2]),
      ]),
    }
    const runs = await Promise.all(
      Object.entries(cases).flatMap(([name, content]) => {
        const path = file(name, content)
        const outputs =
          name === 'two-types.yaml' || name.startsWith('valid')
            ? [[], ['-o', 'json'], ['-o', 'yaml']]
            : [[], ['-o', 'json']]
        return outputs.map(async (out) => ({name, out, r: await plugin('config', 'validate', path, ...out)}))
      }),
    )
    for (const {name, out, r} of runs) {
      expect(r.code, `${name} ${out.join(' ')}`).toBe(name.startsWith('valid') ? 0 : 3)
      // Neither the secret nor any 8-character piece of it (V8's JSON errors quote ~10 characters of the file).
      const pieces = Array.from({length: k.length - 7}, (_, i) => k.slice(i, i + 8))
      expect(
        pieces.filter((piece) => (r.stdout + r.stderr).includes(piece)),
        `${name} ${out.join(' ')}`,
      ).toEqual([])
    }
  })

  it('reports field errors as {field, type, detail} and never prints the secret', async () => {
    const path = file(
      'bad-key.yaml',
      `apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys: [{name: k1, secret: "${SECRET}"}]\n    identity: {}\n`,
    )
    const r = await plugin('config', 'validate', path, '-o', 'json')
    expect(r.code).toBe(3)
    const doc = JSON.parse(r.stdout)
    expect(doc.errors).toEqual([
      {
        field: 'resources[0].providers[0]',
        type: 'Invalid',
        detail: 'more than one provider specified in a single element, should split into different list elements',
      },
      {
        field: 'resources[0].providers[0].aescbc.keys[0].secret',
        type: 'Invalid',
        detail: 'secrets must be base64 encoded',
      },
    ])
    expect(doc.message).toContain('"Secret":"REDACTED"')
    expect(r.stdout + r.stderr).not.toContain(SECRET)
  })

  it('gates by --target-version and takes --feature-gates', async () => {
    const path = file(
      'kmsv1.yaml',
      'apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers: [{kms: {name: k, endpoint: "unix:///k.sock"}}]\n',
    )
    expect((await plugin('config', 'validate', path, '--target-version', '1.28')).code).toBe(0)
    const off = await plugin('config', 'validate', path, '--target-version', '1.29')
    expect(off.code).toBe(3)
    expect(off.stdout).toContain('error while building transformers: KMSv1 is deprecated')
    expect((await plugin('config', 'validate', path, '--feature-gates', 'KMSv1=true')).code).toBe(0)
  })

  it('without FILE exits 2 and names the missing argument', async () => {
    const r = await plugin('config', 'validate')
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain('error: Missing 1 required arg: file - EncryptionConfiguration file')
  })

  it('rejects a bad --target-version with exit 2', async () => {
    const r = await plugin('config', 'validate', vectorsConfig, '--target-version', 'banana')
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--target-version "banana"')
  })
})

describe('kubectl encryption config check', {timeout: 120_000}, () => {
  // The file is loaded before anything is contacted: the kubeconfig named here does not exist, and
  // the etcd endpoint has nothing listening; neither is ever reached.
  const offline = ['--kubeconfig', join(dir, 'no-kubeconfig'), '--etcd-endpoints', 'https://127.0.0.1:1']

  it('a missing FILE is the config validate error: CONFIG_INVALID, exit 3', async () => {
    const path = join(dir, 'missing-check.yaml')
    const r = await plugin('config', 'check', path, ...offline)
    expect(r.code).toBe(3)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain(`open ${path}: no such file or directory`)
  })

  it("an invalid FILE gives config validate's message, redacted, exit 3 (-o json: the error document)", async () => {
    const path = file(
      'check-bad.yaml',
      `apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers: [{aescbc: {keys: [{name: k, secret: ${SECRET}}]}}]\n`,
    )
    const validate = JSON.parse((await plugin('config', 'validate', path, '-o', 'json')).stdout) as {message: string}
    const r = await plugin('config', 'check', path, ...offline, '-o', 'json')
    expect(r.code).toBe(3)
    expect(JSON.parse(r.stdout)).toEqual({
      error: expect.objectContaining({code: 'CONFIG_INVALID', message: validate.message, exitCode: 3}),
    })
    expect(r.stdout + r.stderr).not.toContain(SECRET)
  })
})

describe('kubectl encryption config generate', {timeout: 120_000}, () => {
  it.each([
    ['secretbox', '32'],
    ['aesgcm', '16'],
    ['aesgcm', '24'],
    ['aescbc', '32'],
  ])('%s with a %s-byte key round-trips through validate', async (provider, size) => {
    const r = await plugin(
      'config',
      'generate',
      '--provider',
      provider,
      '--key-size',
      size,
      '--resource',
      'secrets',
      '--resource',
      '*.apps',
      '--identity-fallback',
    )
    expect(r.code).toBe(0)
    const path = file(`gen-${provider}-${size}.yaml`, r.stdout)
    const check = await plugin('config', 'validate', path, '-o', 'json')
    expect(JSON.parse(check.stdout)).toMatchObject({valid: true, errors: []})
    const secret = /secret: (\S+)/.exec(r.stdout)?.[1] ?? ''
    expect(Buffer.from(secret, 'base64')).toHaveLength(Number(size))
    expect(r.stdout).toMatch(new RegExp(`- ${provider}:[\\s\\S]*- identity: \\{\\}`))
  })

  it('prints a JSON configuration that validates too', async () => {
    const r = await plugin('config', 'generate', '-o', 'json', '--key-name', 'k1')
    expect(JSON.parse(r.stdout).resources[0].providers[0].secretbox.keys[0].name).toBe('k1')
    const check = await plugin('config', 'validate', file('gen.json', r.stdout))
    expect(check.code).toBe(0)
  })

  it('creates --output-file with mode 0600, prints only path, name and fingerprint, and refuses to overwrite', async () => {
    const path = join(dir, 'out.yaml')
    const r = await plugin('config', 'generate', '--output-file', path, '--key-name', 'first', '-o', 'json')
    expect(r.code).toBe(0)
    expect(statSync(path).mode & 0o777).toBe(0o600)
    const doc = JSON.parse(r.stdout)
    const secret = /secret: (\S+)/.exec(readFileSync(path, 'utf8'))?.[1] ?? ''
    expect(doc).toEqual({
      file: path,
      provider: 'secretbox',
      keyName: 'first',
      keySize: 32,
      fingerprint: `sha256:${createHash('sha256').update(Buffer.from(secret, 'base64')).digest('hex')}`,
      resources: ['secrets'],
      identityFallback: false,
    })
    expect(r.stdout + r.stderr).not.toContain(secret)

    const content = readFileSync(path)
    const again = await plugin('config', 'generate', '--output-file', path, '--key-name', 'second')
    expect(again.code).toBe(3)
    expect(again.stderr).toContain('already exists')
    expect(readFileSync(path).equals(content)).toBe(true)

    const forced = await plugin('config', 'generate', '--output-file', path, '--key-name', 'second', '--force')
    expect(forced.code).toBe(0)
    expect(readFileSync(path, 'utf8')).toContain('name: second')
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(readdirSync(dir).filter((n) => n.startsWith('.out.yaml'))).toEqual([])
  })

  it.each([
    [['--provider', 'secretbox', '--key-size', '16'], '--key-size 16 is not allowed for secretbox'],
    [['--resource', 'Secrets'], 'resource name should not contain capital letters'],
    [['--resource', 'secrets', '--resource', '*.'], 'will be masked'],
    [['--key-name', ''], 'name is a mandatory field for a key'],
    [['--resource', ''], '--resource "" names no resource'],
    [['--resource', 'secrets configmaps'], '--resource "secrets configmaps" names no resource'],
    [['--provider', 'kms'], '--provider kms needs --kms-endpoint'],
    [
      ['--provider', 'kms', '--kms-endpoint', '/var/run/kms.sock'],
      '--kms-endpoint "/var/run/kms.sock" must start with unix://',
    ],
    [['--provider', 'kms', '--kms-endpoint', 'unix://kms.sock'], 'must name an absolute socket path'],
    [
      ['--provider', 'kms', '--kms-endpoint', 'unix:///k.sock', '--kms-timeout', 'soon'],
      '--kms-timeout "soon" is not a positive duration',
    ],
    [['--provider', 'kms', '--kms-endpoint', 'unix:///k.sock', '--kms-name', 'a:b'], "must not contain ':'"],
    [
      ['--provider', 'kms', '--kms-endpoint', 'unix:///k.sock', '--key-size', '32'],
      '--key-size does not apply to --provider kms',
    ],
    [['--kms-endpoint', 'unix:///k.sock'], '--kms-endpoint only applies with --provider kms'],
  ])('refuses %j with exit 2 and writes nothing', async (args, text) => {
    const path = join(dir, 'never.yaml')
    const r = await plugin('config', 'generate', ...args, '--output-file', path)
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(text)
    expect(r.stderr.split('\n').filter((l) => l.startsWith('error:'))).toHaveLength(1)
    expect(r.stdout).toBe('')
    expect(readdirSync(dir)).not.toContain('never.yaml')
  })

  it('--provider kms writes a v2 provider with the defaults (name kms-plugin, timeout 3s) that validates', async () => {
    const r = await plugin(
      'config',
      'generate',
      '--provider',
      'kms',
      '--kms-endpoint',
      'unix:///var/run/kmsplugin/socket.sock',
      '--identity-fallback',
      '-o',
      'json',
    )
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toBe('')
    expect(JSON.parse(r.stdout).resources[0].providers).toEqual([
      {kms: {apiVersion: 'v2', name: 'kms-plugin', endpoint: 'unix:///var/run/kmsplugin/socket.sock', timeout: '3s'}},
      {identity: {}},
    ])
    const check = await plugin('config', 'validate', file('gen-kms.json', r.stdout))
    expect(check.code).toBe(0)
  })

  it('--provider kms --output-file: 0600, prints name, endpoint, API version and timeout', async () => {
    const path = join(dir, 'kms.yaml')
    const r = await plugin(
      'config',
      'generate',
      '--provider',
      'kms',
      '--kms-endpoint',
      'unix:///etc/kubernetes/kms/kms.sock',
      '--kms-name',
      'vault',
      '--kms-timeout',
      '10s',
      '--output-file',
      path,
      '-o',
      'json',
    )
    expect(r.code, r.stderr).toBe(0)
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(JSON.parse(r.stdout)).toEqual({
      file: path,
      provider: 'kms',
      kmsName: 'vault',
      endpoint: 'unix:///etc/kubernetes/kms/kms.sock',
      apiVersion: 'v2',
      timeout: '10s',
      resources: ['secrets'],
      identityFallback: false,
    })
    expect(readFileSync(path, 'utf8')).toContain('endpoint: unix:///etc/kubernetes/kms/kms.sock')
  })

  it('--kms-api-version v1 only when asked, with a warning that v1 is off by default since 1.29', async () => {
    const r = await plugin(
      'config',
      'generate',
      '--provider',
      'kms',
      '--kms-endpoint',
      'unix:///k.sock',
      '--kms-api-version',
      'v1',
    )
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('apiVersion: v1\n')
    expect(r.stdout).toMatch(/- kms:\n\s+apiVersion: v1/)
    expect(r.stderr).toContain('KMS v1 is deprecated and off by default since Kubernetes 1.29')
    expect(r.stderr).toContain('--feature-gates=KMSv1=true')
    expect(r.stderr.match(/KMS v1/g)).toHaveLength(1)
  })
})
