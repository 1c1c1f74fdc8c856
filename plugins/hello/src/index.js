// hello: the ForgeOne sample plugin. Logs a greeting through forgeone:host/log and returns it.
import { write } from 'forgeone:host/log@0.1.0';

/**
 * @param {string} input - who to greet (empty: the world)
 * @returns {string} the greeting
 */
export function run(input) {
  const greeting = `Hello, ${input === '' ? 'world' : input}!`;
  write('info', greeting);
  return greeting;
}
