#!/usr/bin/env node
// The `forgeone` binary: run the CLI on the real process and set the exit status.
import { runCli } from './index.js';

// A closed pipe (`forgeone ... | head`) is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
}

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (text) => {
    process.stdout.write(text);
  },
  stderr: (text) => {
    process.stderr.write(text);
  },
  isTTY: Boolean(process.stdout.isTTY) && Boolean(process.stderr.isTTY),
  env: process.env,
  cwd: process.cwd(),
});
