// `berth ui`: makes sure the daemon serves the web UI and prints where and how to sign in.
import { writeStdout } from '../../runtime/output.ts';
import type { EngineClient } from '../client.ts';
import type { UiStatus } from '../../api/routes/ui.ts';

export interface UiCommandOptions {
  listen?: string;
  format?: string;
}

export async function uiCommand(opts: UiCommandOptions, connect: () => Promise<EngineClient>): Promise<void> {
  const client = await connect();
  let status = await client.get<UiStatus>('/berth/ui');
  if (!status.Enabled) {
    status = await client.json<UiStatus>('POST', '/berth/ui', { query: { listen: opts.listen } });
  } else if (opts.listen) {
    process.stderr.write(`The web UI already runs at ${status.URL}; --listen applies only when it starts (restart the daemon to move it).\n`);
  }
  if (!status.URL || !status.Token) throw new Error('the daemon did not report the web UI\'s address');
  if (opts.format === 'json') {
    writeStdout(`${JSON.stringify({ URL: status.URL, Token: status.Token, TokenFile: status.TokenFile })}\n`);
    return;
  }
  writeStdout(
    `Berth web UI: ${status.URL}\n` +
    `Token:        ${status.Token}\n` +
    `              (also in ${status.TokenFile}, readable by root only; it changes when the daemon restarts)\n` +
    `Sign in at:   ${status.URL}login#token=${status.Token}\n`);
}
