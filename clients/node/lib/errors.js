'use strict';

/**
 * Thrown when the message adapter itself fails: it answered a command with an error,
 * exited, could not be started, or did not answer before the invocation's deadline.
 *
 * As with @cumulus/cumulus-message-adapter-js, `message` is what the adapter wrote on
 * stderr. When the adapter answered with a structured error frame, `message` is the text
 * the adapter would have written on stderr before exiting in the historic (non-structured)
 * mode, and `adapterError` holds the frame (`{name, message, command}`).
 */
class CumulusMessageAdapterExecutionError extends Error {
  constructor(message, details = {}) {
    super(message);
    this.name = 'CumulusMessageAdapterExecutionError';
    for (const [key, value] of Object.entries(details)) {
      if (value !== undefined) this[key] = value;
    }
  }
}

module.exports = { CumulusMessageAdapterExecutionError };
