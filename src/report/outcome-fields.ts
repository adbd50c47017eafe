// The fields each run writes into its PAM User record about how it ended (custom text fields, no secret in any of
// them), as the report reads them. Records older than these fields lack them: every one is optional.
export const OUTCOME_FIELDS = {
  /** ISO-8601 UTC time the run ended. */
  at: 'last_rotation_at',
  /** The run's exit code, "0" to "5". */
  exit: 'last_rotation_exit',
  /** The error code (e.g. DELIVERY_INCOMPLETE); empty on success. */
  error: 'last_rotation_error',
  /** One line: the summary or the error message, at most 300 characters. */
  message: 'last_rotation_message',
} as const;
