#!/bin/sh
# Installs keeper-rotate on a Linux Keeper Gateway host (run as root), or removes it (--uninstall).
#
#   sh install.sh [--binary PATH] [--user NAME] [--prefix DIR]    install, or upgrade in place
#   sh install.sh --uninstall [--prefix DIR]                       remove the binary and the wrappers
#
# What it installs:
#   PREFIX/bin/keeper-rotate    the binary (mode 0755, owned by root), where the wrappers look for it
#   PREFIX/wrappers/*.sh        the per-target wrapper scripts, when a wrappers/ folder is beside this script
#   /var/lib/keeper-rotate      the state folder, owned by the gateway's user, mode 0700
# PREFIX defaults to /opt/keeper-rotate. The binary defaults to ./keeper-rotate beside this script (a release
# folder), else ../dist/keeper-rotate (this script in a checkout's packaging/, after `npm run build:binary`).
# DESTDIR, when set, is put in front of every path written (staging a package, tests); root is then not needed.
#
# Everything is checked before anything changes, so a refusal leaves the host as it was. A second run with the
# same binary changes nothing and says so. Exit 0 done, 1 refused or failed, 2 bad usage.
set -eu
umask 022
set -f # no globbing except where it is switched on for one pattern: paths and `ls` fields stay literal

PROG='keeper-rotate install'
# The wrappers' contract: they run PREFIX/bin/keeper-rotate and point the scripts at STATE_DIR when it exists.
STATE_DIR=/var/lib/keeper-rotate

say() { printf '%s: %s\n' "$PROG" "$*"; }
fail() {
  printf '%s: %s\n' "$PROG" "$*" >&2
  exit 1
}
usage() {
  printf '%s: %s\n' "$PROG" "$*" >&2
  echo "usage: sh install.sh [--binary PATH] [--user NAME] [--prefix DIR] | --uninstall [--prefix DIR]" >&2
  exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
binary=
user=keeper-gw
prefix=${PREFIX:-/opt/keeper-rotate}
action=install
while [ $# -gt 0 ]; do
  case $1 in
    --binary) [ $# -ge 2 ] || usage "--binary needs a path"; binary=$2; shift 2 ;;
    --binary=*) binary=${1#--binary=}; shift ;;
    --user) [ $# -ge 2 ] || usage "--user needs a name"; user=$2; shift 2 ;;
    --user=*) user=${1#--user=}; shift ;;
    --prefix) [ $# -ge 2 ] || usage "--prefix needs a folder"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --uninstall) action=uninstall; shift ;;
    -h | --help) sed -n '2,17s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) usage "unknown argument: $1" ;;
  esac
done
case $prefix in /*) ;; *) usage "--prefix must be an absolute path: $prefix" ;; esac
prefix=${prefix%/}

destdir=${DESTDIR:-}
destdir=${destdir%/}
if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
  fail "run it as root (sudo sh install.sh ...): it writes under $prefix and $STATE_DIR and gives the state folder to the gateway's user; set DESTDIR to stage the files elsewhere without root"
fi

bin_dir=$destdir$prefix/bin
wrap_dir=$destdir$prefix/wrappers
bin_dest=$bin_dir/keeper-rotate
state=$destdir$STATE_DIR

# `ls -ldn` is POSIX and reports a link itself, not what it points to: field 1 the mode, field 3 the uid.
mode_of() {
  # shellcheck disable=SC2046 # the split into fields is the point
  set -- $(ls -ldn "$1")
  printf '%s\n' "${1%[.+@]}"
}
uid_of() {
  # shellcheck disable=SC2046
  set -- $(ls -ldn "$1")
  printf '%s\n' "$3"
}
# Group- or other-writable: someone besides the owner could swap what is in it.
others_can_write() {
  case $(mode_of "$1") in ?????w???? | ????????w?) return 0 ;; *) return 1 ;; esac
}

changed=0
changes() { if [ "$changed" -eq 1 ]; then echo '1 change'; else echo "$changed changes"; fi; }
tmp=
trap 'if [ -n "$tmp" ]; then rm -f "$tmp"; fi' EXIT
trap 'exit 1' HUP INT TERM

# Folders of the install (PREFIX, bin, wrappers): created 0755; an existing one that others can write is
# refused, since whoever can write it can replace the binary the gateway runs. (A link to a folder is looked
# at through the link: "$1/".)
check_install_dir() {
  if [ ! -e "$1" ] && [ ! -L "$1" ]; then return 0; fi
  [ -d "$1" ] || fail "$1 exists and is not a folder"
  if others_can_write "$1/"; then
    fail "$1 has mode $(mode_of "$1/"): others could replace what is installed in it; make it writable by its owner only (chmod go-w '$1') and re-run"
  fi
}
make_dir() {
  [ -d "$1" ] && return 0
  mkdir -p "$1"
  chmod 0755 "$1"
  say "created $1 (mode 0755)"
  changed=$((changed + 1))
}

# Puts `$1` at `$2` (mode 0755): a temporary file in the same folder, renamed over the old one. The rename
# swaps the name in one step, so the gateway never runs a half-written file, and a rotation still running the
# old binary keeps its file to the end (writing over a running binary in place fails, or corrupts it).
install_file() {
  if [ -f "$2" ] && [ ! -L "$2" ] && cmp -s "$1" "$2" && [ "$(mode_of "$2")" = -rwxr-xr-x ] && [ "$(uid_of "$2")" -eq "$(id -u)" ]; then
    say "unchanged $2"
    return 0
  fi
  if [ -e "$2" ]; then verb=replaced; else verb=installed; fi
  tmp=$(mktemp "$(dirname "$2")/.keeper-rotate-install.XXXXXX")
  cp "$1" "$tmp"
  chmod 0755 "$tmp"
  mv -f "$tmp" "$2"
  tmp=
  say "$verb $2 (mode 0755)"
  changed=$((changed + 1))
}

if [ "$action" = uninstall ]; then
  if [ -f "$bin_dest" ]; then
    rm -f "$bin_dest"
    say "removed $bin_dest"
    changed=$((changed + 1))
  fi
  if [ -d "$wrap_dir" ]; then
    set +f
    for f in "$wrap_dir"/*.sh; do
      set -f
      [ -f "$f" ] || continue
      rm -f "$f"
      say "removed $f"
      changed=$((changed + 1))
    done
    set -f
  fi
  # Only empty folders go: anything else someone put there stays, and says so.
  for dir in "$wrap_dir" "$bin_dir" "$destdir$prefix"; do
    [ -d "$dir" ] || continue
    if rmdir "$dir" 2>/dev/null; then
      say "removed $dir"
      changed=$((changed + 1))
    else
      say "kept $dir: not empty"
    fi
  done
  if [ -e "$state" ] || [ -L "$state" ]; then
    say "kept $state: it may hold the journal of an unfinished rotation or a sealed secret Keeper has not stored yet, which the next run (after a reinstall) finishes or stores; delete it yourself only if no rotation will run on this host again"
  fi
  if [ "$changed" -eq 0 ]; then say "nothing to remove"; else say "uninstalled ($(changes))"; fi
  exit 0
fi

# --- install: check everything first ---

if [ -z "$binary" ]; then
  if [ -f "$here/keeper-rotate" ]; then
    binary=$here/keeper-rotate
  elif [ -f "$here/../dist/keeper-rotate" ]; then
    binary=$(cd "$here/../dist" && pwd)/keeper-rotate
  else
    fail "no binary beside this script ($here/keeper-rotate) nor in $(dirname "$here")/dist/ (npm run build:binary makes it); pass --binary PATH"
  fi
fi
[ -f "$binary" ] || fail "--binary $binary is not a file"
[ -s "$binary" ] || fail "--binary $binary is empty"
[ -r "$binary" ] || fail "--binary $binary cannot be read"

uid=$(id -u -- "$user" 2>/dev/null) || fail "no user '$user' on this host: the state folder must belong to the user the Keeper Gateway runs scripts as (keeper-gw for Keeper's Linux gateway service); create it or name it with --user"
gid=$(id -g -- "$user")

# A rename over a link or a folder would not replace what the gateway runs.
check_install_file() {
  if [ -L "$1" ] || { [ -e "$1" ] && [ ! -f "$1" ]; }; then
    fail "$1 exists and is not a plain file (a link or a folder); move it away and re-run"
  fi
}
for dir in "$destdir$prefix" "$bin_dir" "$wrap_dir"; do check_install_dir "$dir"; done
check_install_file "$bin_dest"
wrappers=no
set +f
for f in "$here"/wrappers/*.sh; do
  set -f
  if [ -f "$f" ]; then
    wrappers=yes
    check_install_file "$wrap_dir/$(basename "$f")"
  fi
done
set -f

# The scripts refuse a state folder that is a link, someone else's, or not 0700 (STATE_DIR_UNAVAILABLE), and
# never change one they find; nor does this: what it holds decides what the next run does to a target.
state_exists=no
if [ -L "$state" ]; then
  fail "$state is a symbolic link; the scripts refuse it (STATE_DIR_UNAVAILABLE), since whoever can change the link can redirect their locks and journals; replace it with a real folder and re-run"
elif [ -e "$state" ]; then
  [ -d "$state" ] || fail "$state exists and is not a folder; the scripts would refuse it (STATE_DIR_UNAVAILABLE)"
  if [ "$(uid_of "$state")" -ne "$uid" ]; then
    fail "$state belongs to uid $(uid_of "$state"), not to $user (uid $uid); the scripts would refuse it (STATE_DIR_UNAVAILABLE). Left as it is: if it is yours to give, chown -R $uid '$state' and re-run"
  fi
  case $(mode_of "$state") in
    drw[xs]--[-S]--[-T]) ;; # 0700, whatever the set-id and sticky bits (as the scripts see it)
    *) fail "$state has mode $(mode_of "$state"); the scripts take only a folder private to the gateway's user, drwx------ (else STATE_DIR_UNAVAILABLE). Left as it is: if nobody else could have written into it, chmod 700 '$state' and re-run" ;;
  esac
  state_exists=yes
fi

# --- install: act ---

say "installing the binary $binary"
make_dir "$destdir$prefix"
make_dir "$bin_dir"
install_file "$binary" "$bin_dest"
if [ "$wrappers" = yes ]; then
  make_dir "$wrap_dir"
  set +f
  for f in "$here"/wrappers/*.sh; do
    set -f
    if [ -f "$f" ]; then install_file "$f" "$wrap_dir/$(basename "$f")"; fi
  done
  set -f
else
  say "no wrappers/ beside this script: none installed"
fi

if [ "$state_exists" = yes ]; then
  say "unchanged $state (owner $user, mode 0700)"
else
  make_dir "$(dirname "$state")"
  # Made private before it is given away, so it is never reachable by anyone else.
  mkdir -m 0700 "$state"
  chown "$uid:$gid" "$state"
  say "created $state (owner $user, mode 0700)"
  changed=$((changed + 1))
fi

if [ "$prefix" != /opt/keeper-rotate ]; then
  say "note: the wrappers look for /opt/keeper-rotate/bin/keeper-rotate; set KEEPER_ROTATE_BIN=$prefix/bin/keeper-rotate in the gateway's environment"
fi
if [ "$changed" -eq 0 ]; then say "nothing to change: already installed"; else say "installed ($(changes))"; fi
