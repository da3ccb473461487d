/**
 * A single API server stand-in against a private etcd (no TLS on etcd), with its own CA, serving
 * and client certificates, a token file and a kubeconfig for the real kubectl. Used by the
 * standin*.test.ts files before (and independently of) the full sandbox.
 */
import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync, readFileSync} from 'node:fs'
import {request} from 'node:https'
import net from 'node:net'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

export const REPO = resolve(import.meta.dirname, '../..')
const MAIN = join(REPO, 'test/sandbox/apiserver/main.ts')

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => res(port))
    })
    s.on('error', rej)
  })
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, {cwd: dir, stdio: 'pipe'})
}

function makeCert(dir: string, name: string, subject: string, ext: string): void {
  openssl(dir, ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject])
  writeFileSync(join(dir, `${name}.ext`), ext)
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`])
}

export interface StandinOptions {
  encryptionConfig?: string
  extraFlags?: string[]
  env?: Record<string, string>
  /** the endpoint that must answer 200 before start() resolves (default /readyz) */
  waitFor?: string
}

export class EtcdFixture {
  dir = mkdtempSync(join(tmpdir(), 'standin-etcd-'))
  process?: ChildProcess
  endpoint = ''

  async start(): Promise<void> {
    const client = await freePort()
    const peer = await freePort()
    this.endpoint = `http://127.0.0.1:${client}`
    this.process = spawn(
      'etcd',
      [
        '--data-dir', join(this.dir, 'data'),
        '--listen-client-urls', this.endpoint,
        '--advertise-client-urls', this.endpoint,
        '--listen-peer-urls', `http://127.0.0.1:${peer}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
        '--initial-cluster', `default=http://127.0.0.1:${peer}`,
      ],
      {stdio: 'ignore'},
    )
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline) {
      try {
        this.etcdctl(['endpoint', 'health'])
        return
      } catch {
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    throw new Error('etcd did not become healthy')
  }

  etcdctl(args: string[], input?: Buffer): Buffer {
    return execFileSync('etcdctl', ['--endpoints', this.endpoint, ...args], {env: {...process.env, ETCDCTL_API: '3'}, input, stdio: ['pipe', 'pipe', 'pipe']})
  }

  /** The raw etcd value of a key (etcdctl -w json gives it base64). */
  getRaw(key: string): Buffer | undefined {
    const out = JSON.parse(this.etcdctl(['get', key, '-w', 'json']).toString())
    const kv = out.kvs?.[0]
    return kv ? Buffer.from(kv.value, 'base64') : undefined
  }

  putRaw(key: string, value: Buffer): void {
    // etcdctl put reads the value from stdin when it is not given
    this.etcdctl(['put', key], value)
  }

  async stop(): Promise<void> {
    if (this.process && this.process.exitCode === null) {
      const done = new Promise((r) => this.process!.once('exit', r))
      this.process.kill('SIGTERM')
      await done
    }
    rmSync(this.dir, {recursive: true, force: true})
  }
}

export class StandinFixture {
  dir = mkdtempSync(join(tmpdir(), 'standin-'))
  process?: ChildProcess
  port = 0
  kubeconfig = join(this.dir, 'kubeconfig')
  viewerToken = 'viewer-token-0123456789'
  stderr = ''

  constructor(readonly etcd: EtcdFixture) {
    openssl(this.dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=kubernetes'])
    makeCert(this.dir, 'apiserver', '/CN=kube-apiserver', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
    makeCert(this.dir, 'admin', '/O=system:masters/CN=kubernetes-admin', 'extendedKeyUsage=clientAuth\n')
    makeCert(this.dir, 'node', '/O=system:nodes/CN=system:node:cp-1', 'extendedKeyUsage=clientAuth\n')
    writeFileSync(join(this.dir, 'tokens.csv'), `${this.viewerToken},viewer,viewer-uid,"sandbox:viewers"\n`)
  }

  file(name: string): string {
    return join(this.dir, name)
  }

  async start(options: StandinOptions = {}): Promise<void> {
    this.port = this.port || (await freePort())
    const flags = [
      '--advertise-address=127.0.0.1',
      `--secure-port=${this.port}`,
      `--etcd-servers=${this.etcd.endpoint}`,
      `--tls-cert-file=${this.file('apiserver.crt')}`,
      `--tls-private-key-file=${this.file('apiserver.key')}`,
      `--client-ca-file=${this.file('ca.crt')}`,
      `--token-auth-file=${this.file('tokens.csv')}`,
      '--authorization-mode=Node,RBAC',
      ...(options.encryptionConfig ? [`--encryption-provider-config=${options.encryptionConfig}`] : []),
      ...(options.extraFlags ?? []),
    ]
    this.stderr = ''
    this.process = spawn(process.execPath, ['--import', 'tsx', MAIN, ...flags], {cwd: REPO, env: {...process.env, ...options.env}, stdio: ['ignore', 'ignore', 'pipe']})
    this.process.stderr!.on('data', (d) => (this.stderr += d.toString()))
    writeFileSync(
      this.kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: standin',
        '  cluster:',
        `    server: https://127.0.0.1:${this.port}`,
        `    certificate-authority-data: ${readFileSync(this.file('ca.crt')).toString('base64')}`,
        'users:',
        '- name: kubernetes-admin',
        '  user:',
        `    client-certificate-data: ${readFileSync(this.file('admin.crt')).toString('base64')}`,
        `    client-key-data: ${readFileSync(this.file('admin.key')).toString('base64')}`,
        '- name: viewer',
        '  user:',
        `    token: ${this.viewerToken}`,
        'contexts:',
        '- name: admin',
        '  context: {cluster: standin, user: kubernetes-admin}',
        '- name: viewer',
        '  context: {cluster: standin, user: viewer}',
        'current-context: admin',
        '',
      ].join('\n'),
    )
    // generous: tsx start-up alone takes seconds on a loaded machine
    const deadline = Date.now() + 90_000
    while (Date.now() < deadline) {
      if (this.process.exitCode !== null) throw new Error(`stand-in exited ${this.process.exitCode}: ${this.stderr}`)
      try {
        const r = await this.request('GET', options.waitFor ?? '/readyz', undefined, {anonymous: true})
        if (r.status === 200) return
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error(`stand-in did not become ready: ${this.stderr}`)
  }

  /** Starts with flags that must fail; resolves with exit code and stderr. */
  async startExpectingFailure(options: StandinOptions): Promise<{code: number | null; stderr: string}> {
    const p = this.start(options).then(
      () => {
        throw new Error('stand-in started although it should not')
      },
      () => undefined,
    )
    await p
    await new Promise((r) => (this.process!.exitCode !== null ? r(undefined) : this.process!.once('exit', r)))
    return {code: this.process!.exitCode, stderr: this.stderr}
  }

  request(
    method: string,
    path: string,
    body?: unknown,
    opts: {anonymous?: boolean; token?: string; identity?: 'admin' | 'node'; contentType?: string; accept?: string} = {},
  ): Promise<{status: number; body: any; text: string}> {
    const identity = opts.identity ?? 'admin'
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)
    return new Promise((res, rej) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: this.port,
          method,
          path,
          agent: false,
          ca: readFileSync(this.file('ca.crt')),
          ...(opts.anonymous || opts.token ? {} : {cert: readFileSync(this.file(`${identity}.crt`)), key: readFileSync(this.file(`${identity}.key`))}),
          headers: {
            ...(payload ? {'Content-Type': opts.contentType ?? 'application/json'} : {}),
            ...(opts.token ? {Authorization: `Bearer ${opts.token}`} : {}),
            ...(opts.accept ? {Accept: opts.accept} : {}),
          },
        },
        (resp) => {
          const chunks: Buffer[] = []
          resp.on('data', (c) => chunks.push(c))
          resp.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8')
            let parsed: any = text
            try {
              parsed = JSON.parse(text)
            } catch {
              // text body
            }
            res({status: resp.statusCode ?? 0, body: parsed, text})
          })
        },
      )
      req.on('error', rej)
      if (payload) req.write(payload)
      req.end()
    })
  }

  kubectl(args: string[], input?: string, context = 'admin'): {code: number; stdout: string; stderr: string} {
    try {
      const stdout = execFileSync('kubectl', ['--kubeconfig', this.kubeconfig, '--context', context, ...args], {input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000})
      return {code: 0, stdout: stdout.toString(), stderr: ''}
    } catch (err) {
      const e = err as {status: number; stdout: Buffer; stderr: Buffer}
      return {code: e.status ?? 1, stdout: e.stdout?.toString() ?? '', stderr: e.stderr?.toString() ?? ''}
    }
  }

  async stop(): Promise<void> {
    if (this.process && this.process.exitCode === null) {
      const done = new Promise((r) => this.process!.once('exit', r))
      this.process.kill('SIGTERM')
      await done
    }
  }

  async dispose(): Promise<void> {
    await this.stop()
    rmSync(this.dir, {recursive: true, force: true})
  }
}
