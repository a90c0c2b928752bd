import { Command, CommanderError, Option } from 'commander';
import { Context, type GlobalOptions, type Io } from './cli/context.ts';
import { registerAdminCommands } from './commands/admin.ts';
import { registerApplyCommand } from './commands/apply.ts';
import { registerArtifactCommands } from './commands/artifacts.ts';
import { registerStatusCommand } from './commands/commit.ts';
import { registerCompareCommand } from './commands/compare.ts';
import { registerExecuteCommand } from './commands/execute.ts';
import { registerHookCommands } from './commands/hooks.ts';
import { registerObserveCommands } from './commands/observe.ts';
import { registerQueryCommands } from './commands/query.ts';
import { registerRepoCommands } from './commands/repos.ts';
import { registerScheduleCommands } from './commands/schedule.ts';
import { registerSecretCommands } from './commands/secrets.ts';
import { registerVerifyCommand } from './commands/verify.ts';
import { registerWatchCommand } from './commands/watch.ts';
import { describeFailure, EXIT_CODES_HELP, ExitCode, oneLine } from './exit.ts';

export const DEFAULT_REMOTE = 'http://127.0.0.1:8330';

/** Runs one command's body with its context and records the exit code it returns. */
export type Runner = (cmd: Command, body: (ctx: Context) => Promise<number>) => Promise<void>;

const ENV_HELP = `Environment:
  BUILDER_REMOTE  server URL (default ${DEFAULT_REMOTE})
  BUILDER_TOKEN   access token
  BUILDER_CA      a CA file to trust, as --ca
  NODE_EXTRA_CA_CERTS  a PEM file of CAs Node trusts besides the public ones (a private CA)

A server certificate that does not verify is never retried: exit 4 at once, saying why.`;

/** Build the commander program; nothing here exits the process. */
export function buildProgram(io: Io, run: Runner): Command {
  const program = new Command('builder-client')
    .description('Schedule, run and follow jobs on a builder server.')
    .addOption(new Option('--remote <url>', 'server URL').env('BUILDER_REMOTE').default(DEFAULT_REMOTE))
    .addOption(new Option('--token <token>', 'access token').env('BUILDER_TOKEN'))
    .addOption(
      new Option('--ca <file>', 'also trust this CA (PEM) for an https:// remote, e.g. a private CA').env('BUILDER_CA'),
    )
    .option('--json', 'machine output: one JSON document, or JSON lines for streams')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) => write(`builder-client: ${oneLine(text.replace(/^error: /, ''))}\n`),
    })
    .exitOverride()
    .showSuggestionAfterError(true)
    .addHelpText('afterAll', `\n${EXIT_CODES_HELP}\n\n${ENV_HELP}\n`);

  registerScheduleCommands(program, run);
  registerApplyCommand(program, run);
  registerExecuteCommand(program, run);
  registerQueryCommands(program, run);
  registerAdminCommands(program, run);
  registerObserveCommands(program, run);
  registerWatchCommand(program, run);
  registerArtifactCommands(program, run);
  registerSecretCommands(program, run);
  registerStatusCommand(program, run);
  registerHookCommands(program, run);
  registerCompareCommand(program, run);
  registerVerifyCommand(program, run);
  registerRepoCommands(program, run);
  return program;
}

export function globalOptions(cmd: Command): GlobalOptions {
  const opts = cmd.optsWithGlobals<{ remote?: string; token?: string; json?: boolean; ca?: string }>();
  return { remote: opts.remote ?? DEFAULT_REMOTE, token: opts.token, json: opts.json === true, ca: opts.ca };
}

/** Parse `argv` (without node and script), run the command, return the exit code. */
export async function runCli(argv: readonly string[], io: Io): Promise<number> {
  let exitCode: number = ExitCode.Ok;
  const run: Runner = async (cmd, body) => {
    exitCode = await body(new Context(io, globalOptions(cmd)));
  };
  const program = buildProgram(io, run);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return commanderExitCode(error);
    const failure = describeFailure(error);
    io.stderr.write(`builder-client: ${oneLine(failure.message)}\n`);
    return failure.exitCode;
  }
}

function commanderExitCode(error: CommanderError): number {
  switch (error.code) {
    case 'commander.helpDisplayed':
    case 'commander.version':
      return ExitCode.Ok;
    case 'commander.help':
      return error.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    default:
      return ExitCode.Usage; // unknown option or command, missing or invalid argument
  }
}
