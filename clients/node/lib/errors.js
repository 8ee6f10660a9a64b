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

/**
 * Thrown when the next message is over Step Functions' limit for a state's output (256 KiB
 * of UTF-8 JSON, unless CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES says otherwise): returned,
 * it would fail the execution later with an opaque States.DataLimitExceeded.
 */
class MessageTooLargeError extends Error {
  constructor(size, limit, variable) {
    super(`the next message is ${size} bytes of JSON, over Step Functions' limit of ${limit} `
      + `bytes for a state's output (${variable}); set ReplaceConfig in the task's parameters `
      + '(e.g. "ReplaceConfig": {"Path": "$.payload", "TargetPath": "$.payload", "MaxSize": '
      + '100000}) so the adapter stores the large part in S3 and passes a reference');
    this.name = 'MessageTooLargeError';
    this.command = 'createNextEvent';
    this.size = size;
    this.limit = limit;
  }
}

module.exports = { CumulusMessageAdapterExecutionError, MessageTooLargeError };
