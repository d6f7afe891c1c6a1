#!/usr/bin/env bash
# Removes what install.sh added, and only that: the panel registrations (undone with the
# panel's own tools), the files and folders it wrote, the directories it had to create,
# and the application. The data directory (catalog, settings, secrets) stays unless
# --purge; backups on destinations are never touched.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

usage() {
  cat <<'USAGE'
Usage: uninstall.sh [--prefix DIR] [--purge]

  --prefix DIR   the root the installer was given (also $TIDEMARK_ROOT)
  --purge        also delete the data directory (catalog, settings, secrets, logs);
                 snapshots on the destinations are not deleted either way
  -h, --help     this text
USAGE
}

ROOT=${TIDEMARK_ROOT:-}
PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || usage_error "--prefix needs a directory"; ROOT=$2; shift 2 ;;
    --prefix=*) ROOT=${1#*=}; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown option: $1" ;;
  esac
done
ROOT=${ROOT%/}
check_path "--prefix" "$ROOT" empty-ok
[ -n "$ROOT" ] || [ "$(id -u)" -eq 0 ] || die "run the uninstaller as root"

ENV_FILE=$(state install.env)
[ -f "$ENV_FILE" ] || die "Tidemark is not installed here ($ENV_FILE is missing)"
APP_DIR='' DATA_DIR='' PANEL='' VERSION=''
# shellcheck disable=SC1090
. <(sed -n 's/^\(VERSION\|APP_DIR\|DATA_DIR\|PANEL\)=\([A-Za-z0-9._/-]*\)$/\1=\2/p' "$ENV_FILE")
[ -n "$APP_DIR" ] && [ -n "$DATA_DIR" ] || die "$ENV_FILE is incomplete"
check_path "APP_DIR" "$APP_DIR"
check_path "DATA_DIR" "$DATA_DIR"
say "Removing Tidemark $VERSION (panel: $PANEL)"

if systemd_usable && [ -f /etc/systemd/system/tidemark.service ]; then
  systemctl disable --now tidemark.service > /dev/null 2>&1 || say "  note: could not stop tidemark.service"
fi

# 1. Undo the panel registrations, newest first. One that fails is kept in the record
#    (and the uninstaller exits 1), so running it again finishes the job.
FAILED=()
REGS=$(state registrations)
if [ -f "$REGS" ]; then
  mapfile -t lines < <(tac "$REGS")
  for line in "${lines[@]}"; do
    read -r kind a b <<< "$line"
    cmd=()
    case "$kind" in
      hook) cmd=("$ROOT/usr/local/cpanel/bin/manage_hooks" delete script "$ROOT$CPANEL_HOOK_SCRIPT" --manual --category Whostmgr --event "$a" --stage "$b") ;;
      jupiter) cmd=("$ROOT/usr/local/cpanel/scripts/uninstall_plugin" "$ROOT$a" --theme jupiter) ;;
      appconfig) cmd=("$ROOT/usr/local/cpanel/bin/unregister_appconfig" "$a") ;;
      *) say "  note: unknown registration '$line' left alone"; continue ;;
    esac
    say "  running: ${cmd[*]}"
    if ! "${cmd[@]}"; then FAILED+=("$line"); fi
  done
  if [ ${#FAILED[@]} -gt 0 ]; then
    printf '%s\n' "${FAILED[@]}" > "$REGS"
    die "these panel registrations could not be undone: ${FAILED[*]}; fix the cause and run uninstall.sh again"
  fi
  rm -f "$REGS"
fi

# 2. The files and folders written outside the application.
FILES=$(state installed-files)
if [ -f "$FILES" ]; then
  mapfile -t lines < <(tac "$FILES")
  for path in "${lines[@]}"; do
    [ -n "$path" ] || continue
    case "$path" in
      */) rm -rf "${ROOT}${path%/}" ;;
      *) rm -f "$ROOT$path" ;;
    esac
  done
  rm -f "$FILES"
fi

# 3. The application (only a folder the installer marked as Tidemark's).
if [ -d "$ROOT$APP_DIR" ]; then
  [ -f "$ROOT$APP_DIR/.tidemark-app" ] || die "$ROOT$APP_DIR is not marked as a Tidemark installation: not removing it"
  rm -rf "$ROOT$APP_DIR"
fi

# 4. The data, only when asked.
if [ "$PURGE" -eq 1 ]; then
  rm -rf "$ROOT$DATA_DIR"
  say "  data directory $ROOT$DATA_DIR deleted (--purge)"
else
  say "  data directory $ROOT$DATA_DIR kept (catalog, settings, secrets); install again to use it, or --purge to delete it"
fi

# 5. The record, then the directories the installer created (only those left empty).
rm -f "$ENV_FILE"
DIRS=$(state created-dirs)
if [ -f "$DIRS" ]; then
  mapfile -t lines < <(tac "$DIRS")
  rm -f "$DIRS"
  for dir in "${lines[@]}"; do
    [ -n "$dir" ] && [ -d "$ROOT$dir" ] && rmdir "$ROOT$dir" 2> /dev/null || true
  done
fi
if systemd_usable; then systemctl daemon-reload || true; fi
say "Done: Tidemark removed."
