import {spawn} from 'node:child_process'

import {PluginError, usageError} from '../errors.js'
import {quoteCommand} from './shell-quote.js'
import {translateSshFailure} from './ssh-errors.js'
import {DEFAULT_SSH_OPTIONS, type SshOptions} from './ssh-options.js'
import type {NodeTarget, RemoteRunOptions, RemoteRunResult, SshConnector, SshSession} from './ssh-session.js'

interface SpawnResult {
  exitCode: number
  stdout: Buffer
  stderr: string
  timedOut: boolean
  spawnError?: Error
}

function runProcess(
  binary: string,
  args: string[],
  stdin: Uint8Array | string | undefined,
  timeoutMs: number,
): Promise<SpawnResult> {
  return new Promise((resolve) => {
    const child = spawn(binary, args, {stdio: ['pipe', 'pipe', 'pipe']})
    const out: Buffer[] = []
    const err: Buffer[] = []
    let timedOut = false
    let settled = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGTERM')
      setTimeout(() => child.kill('SIGKILL'), 2000).unref()
    }, timeoutMs)
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk))
    child.stdin.on('error', () => {}) // EPIPE when the remote side exits early; the exit code tells
    const finish = (exitCode: number, spawnError?: Error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve({exitCode, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8'), timedOut, spawnError})
    }
    child.on('error', (error) => finish(-1, error))
    child.on('close', (code, signal) => finish(code ?? (signal ? 128 : -1)))
    if (stdin !== undefined) child.stdin.end(stdin)
    else child.stdin.end()
  })
}

const STRICT_KEY = /^stricthostkeychecking\b/i

/**
 * The system OpenSSH client (so ~/.ssh/config, the agent, ProxyJump and known_hosts apply), run
 * with BatchMode=yes and host keys checked: StrictHostKeyChecking=yes unless the user's ssh config
 * or an --ssh-option sets it (docs/architecture.md §3). Remote commands run as `sudo -n -- argv…`.
 */
export class OpenSshSession implements SshSession {
  private baseArgs: Promise<string[]> | undefined

  constructor(
    readonly node: string,
    readonly address: string,
    private readonly options: SshOptions = DEFAULT_SSH_OPTIONS,
  ) {}

  private get binary(): string {
    return this.options.sshBinary ?? 'ssh'
  }

  /** The ssh arguments before the destination, resolved once per session. */
  private sshArgs(): Promise<string[]> {
    this.baseArgs ??= this.computeArgs()
    return this.baseArgs
  }

  private async computeArgs(): Promise<string[]> {
    const o = this.options
    const args: string[] = []
    if (o.configFile) args.push('-F', o.configFile)
    // BatchMode first: ssh keeps the first value it sees, and a prompt would eat our stdin.
    args.push('-o', 'BatchMode=yes')
    for (const option of o.extraOptions) args.push('-o', option)
    const userSetStrict = o.extraOptions.some((option) => STRICT_KEY.test(option.trim()))
    if (!userSetStrict && !(await this.configSetsStrictHostKeyChecking(args))) {
      args.push('-o', 'StrictHostKeyChecking=yes')
    }
    args.push('-o', `ConnectTimeout=${o.connectTimeoutSeconds}`)
    if (o.user) args.push('-l', o.user)
    if (o.port !== undefined) args.push('-p', String(o.port))
    if (o.identity) args.push('-i', o.identity)
    args.push('-T')
    return args
  }

  /**
   * `ssh -G` prints the effective configuration without connecting. OpenSSH's default is "ask"
   * (which BatchMode turns into a refusal); any other value was chosen by the user's config.
   */
  private async configSetsStrictHostKeyChecking(args: string[]): Promise<boolean> {
    const result = await runProcess(this.binary, ['-G', ...args, '--', this.address], undefined, 10_000)
    if (result.spawnError) throw this.spawnFailure(result.spawnError)
    if (result.exitCode !== 0) {
      throw new PluginError('usage', 'SSH_CONFIG_INVALID', `ssh cannot use its configuration for node ${this.node}.`, {
        hint: 'Check --ssh-config and --ssh-option values (run `ssh -G <node>` to see the problem).',
        detail: result.stderr.trim(),
      })
    }
    const line = result.stdout
      .toString('utf8')
      .split('\n')
      .find((l) => l.toLowerCase().startsWith('stricthostkeychecking '))
    const value = line?.split(/\s+/)[1]?.toLowerCase()
    return value !== undefined && value !== 'ask'
  }

  private spawnFailure(error: Error): PluginError {
    return new PluginError(
      'precondition',
      'SSH_CLIENT_MISSING',
      `Cannot run the ssh client (${this.binary}): ${error.message}`,
      {
        hint: 'Install the OpenSSH client (package openssh-client) and make sure `ssh` is on PATH.',
      },
    )
  }

  async run(argv: readonly string[], options: RemoteRunOptions = {}): Promise<RemoteRunResult> {
    if (argv.length === 0) throw usageError('SSH_EMPTY_COMMAND', 'empty remote command')
    const remote = this.options.sudo ? ['sudo', '-n', '--', ...argv] : [...argv]
    const args = [...(await this.sshArgs()), '--', this.address, quoteCommand(remote)]
    const timeoutMs = options.timeoutMs ?? this.options.commandTimeoutMs
    const result = await runProcess(this.binary, args, options.stdin, timeoutMs)
    if (result.spawnError) throw this.spawnFailure(result.spawnError)
    if (result.timedOut) {
      throw new PluginError(
        'precondition',
        'SSH_TIMEOUT',
        `A command on node ${this.node} did not finish within ${Math.round(timeoutMs / 1000)}s (${argv[0]}).`,
        {
          hint: 'Check that the node is responsive; the command may have left a dot-prefixed temp file that the next run replaces.',
          detail: result.stderr.trim(),
        },
      )
    }
    const failure = translateSshFailure(this.node, this.address, result.exitCode, result.stderr)
    if (failure) throw failure
    return {exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr}
  }
}

/** Picks the address per --ssh-address and hands out one OpenSshSession per node. */
export class OpenSshConnector implements SshConnector {
  private readonly sessions = new Map<string, OpenSshSession>()

  constructor(private readonly options: SshOptions = DEFAULT_SSH_OPTIONS) {}

  open(node: NodeTarget): OpenSshSession {
    const cached = this.sessions.get(node.name)
    if (cached) return cached
    let address = node.name
    if (this.options.address === 'internal-ip') {
      if (!node.internalIP) {
        throw new PluginError(
          'precondition',
          'NODE_NO_INTERNAL_IP',
          `Node ${node.name} has no InternalIP address in its status.`,
          {
            hint: 'Reach it by name instead (drop --ssh-address internal-ip) with a Host entry in your ssh config.',
          },
        )
      }
      address = node.internalIP
    }
    const session = new OpenSshSession(node.name, address, this.options)
    this.sessions.set(node.name, session)
    return session
  }
}
