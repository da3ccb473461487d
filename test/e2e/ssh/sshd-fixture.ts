import {type ChildProcess, execFileSync, spawn} from 'node:child_process'
import {chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createConnection, createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

/**
 * A real OpenSSH sshd for tests: its own host key, key-only auth for root, a random loopback port.
 * `extraConfig` lines are appended to sshd_config (e.g. `SetEnv PATH=…` to put a fake sudo first).
 */
export interface Sshd {
  port: number
  dir: string
  hostPublicKey: string
  clientKey: string
  stop(): Promise<void>
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

function keygen(path: string): string {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test', '-f', path])
  return readFileSync(`${path}.pub`, 'utf8').trim()
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${log()}`)
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({port, host: '127.0.0.1'})
      socket.once('data', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`sshd did not listen on ${port}: ${log()}`)
}

export async function startSshd(extraConfig: string[] = [], clientKey?: string): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), 'sshd-'))
  chmodSync(dir, 0o700)
  mkdirSync('/run/sshd', {recursive: true})
  const hostPublicKey = keygen(join(dir, 'host_ed25519'))
  const key = clientKey ?? join(dir, 'client_ed25519')
  if (!clientKey) keygen(key)
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${key}.pub`, 'utf8'), {mode: 0o600})
  const port = await freePort()
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${join(dir, 'host_ed25519')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    ...extraConfig,
  ]
  writeFileSync(join(dir, 'sshd_config'), config.join('\n') + '\n')
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let log = ''
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()))
  await waitForPort(port, child, () => log)
  return {
    port,
    dir,
    hostPublicKey,
    clientKey: key,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        await exited
      }
      rmSync(dir, {recursive: true, force: true})
    },
  }
}
