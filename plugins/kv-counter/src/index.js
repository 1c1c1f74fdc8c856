// kv-counter: increments a counter in forgeone:host/kv on every run and returns the new value.
// The input names the counter (empty: "counter"); values are stored as decimal text.
import { get, set } from 'forgeone:host/kv@0.1.0';
import { write } from 'forgeone:host/log@0.1.0';

/** A host call that failed: the thrown value's payload is the host-error record { code, message }. */
function hostError(e) {
  const p = e !== null && typeof e === 'object' ? e.payload : undefined;
  return p !== undefined && typeof p.code === 'string' ? `${p.code}: ${p.message}` : String(e instanceof Error ? e.message : e);
}

/**
 * @param {string} input - the counter's name
 * @returns {string} the new value
 */
function main(input) {
  const key = input === '' ? 'counter' : `counter/${input}`;
  let stored;
  try {
    stored = get(key);
  } catch (e) {
    throw new Error(`kv get ${key}: ${hostError(e)}`);
  }
  const text = stored === undefined ? '0' : new TextDecoder().decode(stored);
  if (!/^[0-9]{1,15}$/.test(text)) throw new Error(`${key} holds ${JSON.stringify(text.slice(0, 32))}, not a counter`);
  const next = Number(text) + 1;
  try {
    set(key, new TextEncoder().encode(String(next)));
  } catch (e) {
    throw new Error(`kv set ${key}: ${hostError(e)}`);
  }
  write('info', `${key} = ${next}`);
  return String(next);
}

/**
 * The entry point: the `ok` result is what {@link main} returns, the `err` result its error message.
 * componentize-js turns a thrown *string* into `err`; any other thrown value would trap the component.
 * @param {string} input
 * @returns {string}
 */
export function run(input) {
  try {
    return main(input);
  } catch (e) {
    throw e instanceof Error ? e.message : String(e);
  }
}
