#!/bin/sh
# Keeper Gateway post-rotation script for the aws-ecr-pull-secret target. Attach this file to the PAM User
# record with no command: it runs the installed keeper-rotate program, which does the work, and the gateway's
# input line passes through on stdin. The program is $KEEPER_ROTATE_BIN if set, else the installed one, else
# the one on the PATH. It uses no other command, so it runs whatever PATH the gateway gives it.
target=aws-ecr-pull-secret
installed=/opt/keeper-rotate/bin/keeper-rotate
state_dir=/var/lib/keeper-rotate

# A value from the environment goes into a message only if it is all printable ASCII: no line break or
# terminal control reaches the gateway's log through it.
shown() {
  case $1 in
    *[![:print:]]*) printf '%s' '(a value with unprintable characters)' ;;
    *) printf '%s' "$1" ;;
  esac
}

# Exit 2 when there is no program to run: nothing was read or changed.
if [ -n "${KEEPER_ROTATE_BIN:-}" ]; then
  program=$KEEPER_ROTATE_BIN
  if [ ! -f "$program" ] || [ ! -x "$program" ]; then
    echo "keeper-rotate: BINARY_NOT_FOUND: KEEPER_ROTATE_BIN names $(shown "$program"), which is not an executable file; install keeper-rotate there (see the README) or unset KEEPER_ROTATE_BIN; nothing was changed" >&2
    exit 2
  fi
elif [ -f "$installed" ] && [ -x "$installed" ]; then
  program=$installed
elif program=$(command -v keeper-rotate) && [ -n "$program" ]; then
  :
else
  echo "keeper-rotate: BINARY_NOT_FOUND: keeper-rotate is neither at $installed nor on the PATH ($(shown "${PATH:-}")); install it (see the README) or set KEEPER_ROTATE_BIN to its path; nothing was changed" >&2
  exit 2
fi

# The install makes this folder for the gateway's user; runs keep their locks and journals there unless told.
if [ -z "${KEEPER_ROTATE_STATE_DIR:-}" ] && [ -d "$state_dir" ]; then
  KEEPER_ROTATE_STATE_DIR=$state_dir
  export KEEPER_ROTATE_STATE_DIR
fi

exec "$program" "$target" "$@"
