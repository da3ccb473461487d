/**
 * Shell completion, computed by the plugin itself from its command tree (the oclif manifest), so
 * the standalone executable completes exactly the commands and flags it has.
 *
 * The protocol is cobra's, which kubectl uses for plugins (kubectl ≥ 1.26 runs
 * `kubectl_complete-<plugin> <words…>`): one candidate per line, then `:<directive>`. The bash and
 * zsh scripts below speak the same protocol with `kubectl-encryption __complete`.
 */

export interface CompletionFlag {
  name: string
  char?: string
  type: 'boolean' | 'option'
  options?: readonly string[]
  hidden?: boolean
}

export interface CompletionCommand {
  /** oclif id, topics separated by `:` */
  id: string
  hidden?: boolean
  flags: Record<string, CompletionFlag>
}

/** cobra's ShellCompDirective values that we use. */
export const DIRECTIVE = {
  /** Let the shell complete file names when there are no candidates. */
  default: 0,
  /** Do not fall back to file names. */
  noFileComp: 4,
} as const

export interface Completion {
  candidates: string[]
  directive: number
}

/**
 * Candidates for the last word of `words` (the words after the plugin name; the last one is the
 * word being completed, possibly empty).
 */
export function complete(commands: readonly CompletionCommand[], words: readonly string[]): Completion {
  const visible = commands.filter((c) => !c.hidden && !c.id.startsWith('__'))
  const partial = words.at(-1) ?? ''
  const before = words.slice(0, -1)

  // The command: the longest run of leading words that names one (the rest are its arguments).
  const leading: string[] = []
  for (const word of before) {
    if (word.startsWith('-')) break
    leading.push(word)
  }
  let length = leading.length
  while (length > 0 && !visible.some((c) => c.id === leading.slice(0, length).join(':'))) length--
  const command = length > 0 ? visible.find((c) => c.id === leading.slice(0, length).join(':')) : undefined

  if (before.length === length || !command) {
    // Right after the command words: the next segment under them (topics and their commands).
    const path = command ? leading.slice(0, length) : leading
    const next = new Set<string>()
    for (const c of visible) {
      const segments = c.id.split(':')
      if (segments.length > path.length && segments.slice(0, path.length).join(':') === path.join(':'))
        next.add(segments[path.length]!)
    }
    const names = [...next].filter((n) => n.startsWith(partial)).sort()
    if (!command) return {candidates: names, directive: DIRECTIVE.noFileComp}
    if (!partial.startsWith('-') && names.length > 0) return {candidates: names, directive: DIRECTIVE.noFileComp}
  }
  if (!command) return {candidates: [], directive: DIRECTIVE.noFileComp}

  const flags = Object.values(command.flags).filter((f) => !f.hidden)
  const previous = before.at(-1)
  const pending = previous?.startsWith('-') && !previous.includes('=') ? findFlag(flags, previous) : undefined
  if (pending?.type === 'option') {
    // The value of the flag just typed: its choices, or files.
    return pending.options
      ? {candidates: pending.options.filter((o) => o.startsWith(partial)), directive: DIRECTIVE.noFileComp}
      : {candidates: [], directive: DIRECTIVE.default}
  }
  if (partial.startsWith('--') && partial.includes('=')) {
    const [name, value] = [partial.slice(0, partial.indexOf('=')), partial.slice(partial.indexOf('=') + 1)]
    const flag = findFlag(flags, name)
    const options = flag?.options?.filter((o) => o.startsWith(value)).map((o) => `${name}=${o}`)
    return options
      ? {candidates: options, directive: DIRECTIVE.noFileComp}
      : {candidates: [], directive: DIRECTIVE.default}
  }
  if (partial.startsWith('-')) {
    const names = flags.flatMap((f) => [`--${f.name}`, ...(f.char && partial.length <= 2 ? [`-${f.char}`] : [])])
    return {candidates: names.filter((n) => n.startsWith(partial)).sort(), directive: DIRECTIVE.noFileComp}
  }
  // A positional argument: often a file (config validate FILE).
  return {candidates: [], directive: DIRECTIVE.default}
}

function findFlag(flags: readonly CompletionFlag[], word: string): CompletionFlag | undefined {
  return word.startsWith('--')
    ? flags.find((f) => `--${f.name}` === word)
    : flags.find((f) => f.char && `-${f.char}` === word)
}

export function formatCompletion({candidates, directive}: Completion): string {
  return [...candidates, `:${directive}`].join('\n') + '\n'
}

/** The bash script `kubectl encryption completion bash` prints. */
export function bashScript(bin: string): string {
  const fn = `_${bin.replaceAll('-', '_')}`
  return `# bash completion for ${bin}.
# Load it in the current shell:   source <(${bin} completion bash)
# or for every shell:             ${bin} completion bash > /etc/bash_completion.d/${bin}

${fn}() {
    local cur=\${COMP_WORDS[COMP_CWORD]} out directive line
    local -a candidates=()
    out=$("\${COMP_WORDS[0]}" __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return
    directive=\${out##*:}
    while IFS='' read -r line; do
        [[ -n $line && $line != :* ]] && candidates+=("$line")
    done <<< "$out"
    COMPREPLY=()
    if [[ \${#candidates[@]} -gt 0 ]]; then
        while IFS='' read -r line; do COMPREPLY+=("$line"); done < <(compgen -W "\${candidates[*]}" -- "$cur")
    elif [[ $directive == 0 ]]; then
        while IFS='' read -r line; do COMPREPLY+=("$line"); done < <(compgen -f -- "$cur")
    fi
}
complete -o default -F ${fn} ${bin}
`
}

/** The zsh script `kubectl encryption completion zsh` prints. */
export function zshScript(bin: string): string {
  const fn = `_${bin.replaceAll('-', '_')}`
  return `#compdef ${bin}
# zsh completion for ${bin}.
# Load it in the current shell:   source <(${bin} completion zsh)
# or for every shell:             ${bin} completion zsh > "\${fpath[1]}/_${bin}"

${fn}() {
    local -a candidates
    local out directive line
    out=$("\${words[1]}" __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null) || return 1
    directive=\${out##*:}
    for line in "\${(@f)out}"; do
        [[ -n $line && $line != :* ]] && candidates+=("$line")
    done
    if (( \${#candidates} )); then
        compadd -- "\${candidates[@]}"
    elif [[ $directive == 0 ]]; then
        _files
    fi
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    ${fn} "$@"
else
    compdef ${fn} ${bin}
fi
`
}
