/**
 * `kiln completion bash|zsh|fish`: shell completion generated from the command tree itself,
 * so a new command or option completes without anyone editing a script.
 *
 *   source <(kiln completion bash)         # ~/.bashrc
 *   source <(kiln completion zsh)          # ~/.zshrc (uses bashcompinit)
 *   kiln completion fish > ~/.config/fish/completions/kiln.fish
 */
import { type Command, InvalidArgumentError } from "commander";

/** One command of the tree: its path of subcommand names, its children and its long options. */
type Node = { path: string; children: string[]; options: string[] };

const SHELLS = ["bash", "zsh", "fish"] as const;

/** Adds `completion` to `program`; the script describes `program` as it is when run. */
export function registerCompletionCommand(program: Command): void {
  program
    .command("completion <shell>")
    .description(`print a completion script for ${SHELLS.join(", ")}`)
    .action((shell: string) => {
      if (!(SHELLS as readonly string[]).includes(shell)) {
        throw new InvalidArgumentError(`shell must be one of ${SHELLS.join(", ")}, not '${shell}'.`);
      }
      const nodes = commandTree(program);
      process.stdout.write(shell === "fish" ? fishScript(nodes) : bashScript(nodes, shell === "zsh"));
    });
}

/** Every command of `root` with its subcommand path ("" for the root). */
export function commandTree(root: Command): Node[] {
  const nodes: Node[] = [];
  const visit = (command: Command, path: string) => {
    const options = command.options.map((o) => o.long).filter((o): o is string => !!o);
    if (path === "") options.push("--help", "--version");
    nodes.push({ path, children: command.commands.map((c) => c.name()), options });
    for (const child of command.commands) visit(child, path ? `${path} ${child.name()}` : child.name());
  };
  visit(root, "");
  return nodes;
}

/** A bash script (zsh: the same behind bashcompinit). */
export function bashScript(nodes: Node[], zsh: boolean): string {
  const cases = (pick: (n: Node) => string[]) =>
    nodes.map((n) => `    ${JSON.stringify(n.path)}) echo ${JSON.stringify(pick(n).join(" "))} ;;`).join("\n");
  return `${zsh ? "autoload -U +X bashcompinit && bashcompinit\n" : ""}# kiln completion
_kiln_children() {
  case "$1" in
${cases((n) => n.children)}
  esac
}
_kiln_options() {
  case "$1" in
${cases((n) => n.options)}
  esac
}
_kiln() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" i w next
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    for next in $(_kiln_children "$path"); do
      if [[ "$w" == "$next" ]]; then path="\${path:+$path }$w"; break; fi
    done
  done
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(_kiln_options "$path")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_kiln_children "$path")" -- "$cur"))
  fi
}
complete -o default -F _kiln kiln
`;
}

/** A fish script: subcommands where their parent was typed last, options per command. */
export function fishScript(nodes: Node[]): string {
  const lines = ["# kiln completion", "complete -c kiln -f"];
  for (const node of nodes) {
    const words = node.path.split(" ").filter(Boolean);
    const condition = words.length === 0 ? "__fish_use_subcommand" : `__fish_seen_subcommand_from ${words.at(-1)}`;
    if (node.children.length) lines.push(`complete -c kiln -n '${condition}' -a '${node.children.join(" ")}'`);
    for (const option of node.options) lines.push(`complete -c kiln -n '${condition}' -l '${option.replace(/^--/, "")}'`);
  }
  return `${lines.join("\n")}\n`;
}
