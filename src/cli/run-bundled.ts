import {type Command, execute, type Interfaces, ModuleLoader, Plugin} from '@oclif/core'

/** A command module, imported on demand: only the command that runs is evaluated. */
export type CommandLoader = () => Promise<{default: Command.Class}>

/**
 * What the build (scripts/bundle.ts) puts into the one-file bundle: package.json, the
 * oclif.manifest.json made at build time, a lazy import per command found in src/commands, and
 * the modules package.json names by path (the help class).
 */
export interface BundleContents {
  pjson: Interfaces.PJSON
  manifest: Interfaces.Manifest
  commands: Record<string, CommandLoader>
  modules: Record<string, () => Promise<unknown>>
}

/**
 * The root plugin of the bundled CLI. oclif normally finds commands and the manifest on disk
 * (package.json, oclif.manifest.json, dist/commands/*.js); inside the bundle, and inside the
 * standalone executable, there is no such tree, so this plugin takes them from the bundle.
 */
class BundledPlugin extends Plugin {
  constructor(
    root: string,
    private readonly contents: BundleContents,
  ) {
    super({root, pjson: contents.pjson, isRoot: true, type: 'core'})
    // Plugin.load() reads <root>/oclif.manifest.json; the manifest is in the bundle instead. It is
    // handed over without its commands, which load() adds below.
    Object.assign(this, {_manifest: async () => ({...contents.manifest, commands: {}})})
  }

  /**
   * oclif's load(), except that the commands are sorted by code unit, not with localeCompare: its
   * first call starts ICU's collator, about 5 ms of CPU at every start (a seventh of the standalone
   * executable's own start-up). The ids are ASCII, so the order is the same; help sorts its lists
   * again anyway. The entries are made as oclif's Plugin.load() makes them (@oclif/core 4,
   * lib/config/plugin.js).
   */
  override async load(): Promise<void> {
    await super.load()
    this.manifest = this.contents.manifest
    this.commands = Object.entries(this.manifest.commands)
      .map(([id, c]) => ({
        ...c,
        load: async () => this.findCommand(id, {must: true}),
        pluginAlias: this.alias,
        pluginType: c.pluginType === 'jit' ? ('jit' as const) : this.type,
      }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  override async findCommand(id: string, opts: {must: true}): Promise<Command.Class>
  override async findCommand(id: string, opts?: {must: boolean}): Promise<Command.Class | undefined>
  override async findCommand(id: string, opts: {must?: boolean} = {}): Promise<Command.Class | undefined> {
    const load = this.contents.commands[id]
    if (!load) {
      if (opts.must) throw new Error(`command ${id} not found`)
      return undefined
    }
    const command = (await load()).default
    command.id = id
    command.plugin = this
    return command
  }
}

/**
 * Runs the CLI from the bundle. `root` is the directory oclif treats as the package root
 * (the npm package, or the directory holding the standalone executable).
 */
export async function runBundled(
  root: string,
  contents: BundleContents,
  argv = process.argv.slice(2),
): Promise<unknown> {
  // Deprecation warnings come from libraries (grpc-js sets the TLS server name to an etcd IP
  // address: DEP0123); a user of the plugin cannot act on them, and stderr is for our own messages.
  process.noDeprecation = true
  // oclif loads the help class named in package.json through its module loader, by path;
  // answer that path from the bundle and leave every other path to oclif.
  const loader = ModuleLoader as {load: typeof ModuleLoader.load}
  const original = loader.load
  loader.load = async (config, modulePath) => {
    const bundled = Object.entries(contents.modules).find(([path]) => samePath(modulePath, path))
    return (bundled ? bundled[1]() : original(config, modulePath)) as never
  }

  const misuse = misusedCommand(contents, argv)
  if (misuse) {
    process.stderr.write(`error: ${misuse.message}\nhint: ${misuse.hint}\n`)
    process.exitCode = 2
    return undefined
  }

  const plugin = new BundledPlugin(root, contents)
  await plugin.load()
  return execute({args: argv, loadOptions: {root, pjson: contents.pjson, plugins: new Map([[plugin.name, plugin]])}})
}

/** `/x/dist/output/help.js` (as oclif resolves it) and `./dist/output/help.js` (as package.json says). */
function samePath(resolved: string, fromPackageJson: string): boolean {
  const tail = fromPackageJson.replace(/^\.\//, '').replace(/\.js$/, '')
  return resolved.replaceAll('\\', '/').replace(/\.js$/, '').endsWith(tail)
}

/**
 * With spaced topics oclif reads `status extra-arg` as the command `status:extra-arg` and prints its
 * raw ` ›   Error: command status:extra-arg not found`. Words after a command that takes no arguments,
 * and a first word that is no command or topic, are usage errors in the plugin's own form (exit 2).
 */
export function misusedCommand(
  contents: Pick<BundleContents, 'commands' | 'manifest'>,
  argv: string[],
): {message: string; hint: string} | undefined {
  const words: string[] = []
  for (const arg of argv) {
    if (arg.startsWith('-')) break
    words.push(arg)
  }
  if (words.length === 0) return undefined
  const ids = Object.keys(contents.commands)
  const isTopic = (id: string) => ids.some((c) => c.startsWith(`${id}:`))
  for (let n = words.length; n > 0; n--) {
    const id = words.slice(0, n).join(':')
    if (!ids.includes(id)) continue
    const command = contents.manifest.commands[id]
    // A command that reads its own words (strict = false, e.g. __complete for shell completion) takes any.
    if (command?.strict === false) return undefined
    const args = command?.args ?? {}
    if (n < words.length && Object.keys(args).length === 0)
      return {
        message: `unexpected argument ${JSON.stringify(words[n])}: 'kubectl encryption ${words.slice(0, n).join(' ')}' takes no arguments`,
        hint: `See 'kubectl encryption ${words.slice(0, n).join(' ')} --help'.`,
      }
    return undefined
  }
  if (isTopic(words[0]!) || words[0] === 'help') return undefined
  return {
    message: `unknown command ${JSON.stringify(words[0])}`,
    hint: "See 'kubectl encryption --help' for the commands.",
  }
}
